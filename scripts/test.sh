#!/usr/bin/env bash
# Sets up the test prerequisites on a fresh machine and runs the whole test suite.
# - .venv: Python venv with OpenVINO (the exported IRs are checked in the real runtime)
# - cargo test over the workspace (dev profile; dependencies built with opt-level 3)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-openvino.sh
export BURN_COMPRESS_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace "$@"
