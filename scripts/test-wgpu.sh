#!/usr/bin/env bash
# The wgpu tests. On a machine without a GPU the device is Mesa's lavapipe (a Vulkan driver on
# the CPU), installed here if missing.
# 1. The fake-quantize, gradient, mask and fused-op tests of burn-compress-core and
#    burn-compress-quant on a wgpu device as well as flex and ndarray.
# 2. crates/burn-compress-cli/tests/wgpu.rs: masks and quantizers fine-tuned on wgpu and
#    exported, the IR run by OpenVINO against Burn's forward there; the CLI's recipe on
#    `--device wgpu`.
# This builds Burn a second time, with wgpu (about 50 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && command -v apt-get >/dev/null; then
  echo "installing Mesa's Vulkan drivers (lavapipe)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
scripts/setup-openvino.sh
export BURN_COMPRESS_PYTHON="$PWD/.venv/bin/python"
# One cargo invocation, so that the three packages share one build of Burn with wgpu.
cargo test -p burn-compress-core -p burn-compress-quant -p burn-compress-cli \
  --features burn-compress-core/wgpu,burn-compress-quant/wgpu,burn-compress-cli/wgpu "$@"
