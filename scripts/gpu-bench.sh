#!/usr/bin/env bash
# On a machine with a GPU: names the GPU, then runs the QAT step benchmark on flex and on wgpu
# (`cargo bench --bench qat_step --features wgpu`) and the reference QAT recipe on
# `--device wgpu` (release build), and prints their output for the README.
#
# Needs a Rust toolchain, the crates (network, or a `cargo vendor` directory set up in
# .cargo/config.toml) and a Vulkan driver for the GPU (NVIDIA's driver ships one). The recipe's
# OpenVINO row needs the .venv that scripts/setup-openvino.sh makes (PyPI); without it the
# summary says OpenVINO was not run. Env: QAT_BENCH_STEPS, QAT_BENCH_ROUNDS (see the bench).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
elif command -v vulkaninfo >/dev/null; then
  vulkaninfo --summary 2>/dev/null | grep -E "deviceName|deviceType" || true
else
  echo "no nvidia-smi or vulkaninfo: wgpu picks the best adapter it finds"
fi
scripts/setup-openvino.sh || echo "OpenVINO set-up failed: the recipe runs without its IR row"
export BURN_COMPRESS_PYTHON="$PWD/.venv/bin/python"

echo "== QAT step, flex and wgpu (cargo bench --bench qat_step --features wgpu)"
QAT_BENCH_DEVICES=flex,wgpu cargo bench --bench qat_step --features wgpu

echo "== reference QAT recipe on --device wgpu (release)"
cargo build --release -p burn-compress-cli --features wgpu
started=$(date +%s)
"${CARGO_TARGET_DIR:-target}/release/burn-compress" run configs/mnist_qat.json --device wgpu --out out/gpu_qat
echo "recipe wall time: $(( $(date +%s) - started )) s"
