#!/usr/bin/env bash
# The main job on a fresh machine: sets up the OpenVINO runtime (.venv) if it is missing, then
# runs the burn-compress CLI (default: the reference QAT recipe, `qat`). Arguments go to the
# CLI: `scripts/run.sh run configs/mnist_prune50_int8.json`.
#
# It builds exactly what the test command builds (`cargo test --workspace --no-run`: the CLI
# binary with the tests, one set of dependency features), so the README's two commands share
# one build of Burn.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-openvino.sh
if [ "$#" -eq 0 ]; then
  set -- qat
fi
cargo test --quiet --workspace --no-run
exec "${CARGO_TARGET_DIR:-target}/debug/burn-compress" "$@"
