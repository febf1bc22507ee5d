#!/usr/bin/env bash
# The main job on a fresh machine: sets up the OpenVINO runtime (.venv) if it is missing, then
# runs the burn-compress CLI (default: the reference QAT recipe, `qat`). Arguments go to the
# CLI: `scripts/run.sh run configs/mnist_prune50_int8.json`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-openvino.sh
if [ "$#" -eq 0 ]; then
  set -- qat
fi
exec cargo run --quiet -p burn-compress-cli -- "$@"
