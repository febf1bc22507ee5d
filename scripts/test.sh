#!/usr/bin/env bash
# Sets up the test prerequisites on a fresh machine and runs the whole test suite.
# - .venv: Python venv with OpenVINO (the exported IRs are checked in the real runtime)
# - cargo test over the workspace (dev profile; dependencies built with opt-level 3)
set -euo pipefail
cd "$(dirname "$0")/.."
OPENVINO_VERSION=2026.4.1
if ! .venv/bin/python -c "import openvino, numpy; assert openvino.__version__.startswith('$OPENVINO_VERSION')" 2>/dev/null; then
  echo "setting up .venv with openvino==$OPENVINO_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "openvino==$OPENVINO_VERSION" numpy
fi
export BURN_COMPRESS_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace "$@"
