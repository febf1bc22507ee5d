#!/usr/bin/env bash
# The main job on a fresh machine: sets up the OpenVINO runtime (.venv) if it is missing, then
# runs the burn-compress CLI (default: the reference QAT recipe, `qat`). Arguments go to the
# CLI: `scripts/run.sh run configs/mnist_prune50_int8.json`.
#
# It builds the workspace as the test command does (same dependency features), so the second
# of the README's two commands reuses the first one's build of Burn.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-openvino.sh
if [ "$#" -eq 0 ]; then
  set -- qat
fi
cargo build --quiet --workspace --all-targets
exec target/debug/burn-compress "$@"
