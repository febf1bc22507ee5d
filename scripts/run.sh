#!/usr/bin/env bash
# The main job on a fresh machine: sets up the OpenVINO runtime (.venv) if it is missing, then
# runs the burn-compress CLI (default: the reference QAT recipe, `qat`). Arguments go to the
# CLI: `scripts/run.sh run configs/mnist_prune50_int8.json`.
#
# It builds the CLI alone (flex backend; no ndarray, no burn-train) with the `main-job` profile
# (Cargo.toml): optimised, no overflow checks or debug assertions, procedural macros unoptimised.
# The test command builds its own profile (`dev`, into target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-openvino.sh
if [ "$#" -eq 0 ]; then
  set -- qat
fi
cargo build --quiet --profile main-job -p burn-compress-cli
exec "${CARGO_TARGET_DIR:-target}/main-job/burn-compress" "$@"
