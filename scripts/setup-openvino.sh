#!/usr/bin/env bash
# Creates .venv with the OpenVINO runtime (PyPI) unless it is already there. The tests run the
# exported IRs in it; the CLI finds its C library there (or through OPENVINO_LIB).
set -euo pipefail
cd "$(dirname "$0")/.."
OPENVINO_VERSION=2026.4.1
if ! .venv/bin/python -c "import openvino, numpy; assert openvino.__version__.startswith('$OPENVINO_VERSION')" 2>/dev/null; then
  echo "setting up .venv with openvino==$OPENVINO_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "openvino==$OPENVINO_VERSION" numpy
fi
