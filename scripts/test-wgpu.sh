#!/usr/bin/env bash
# Runs the fake-quantize, gradient, mask and fused-op tests of burn-compress-core and
# burn-compress-quant on a wgpu device as well as flex and ndarray. On a machine without a GPU
# the device is Mesa's lavapipe (a Vulkan driver on the CPU), installed here if missing.
# This builds Burn a second time, with wgpu (about 20-30 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && command -v apt-get >/dev/null; then
  echo "installing Mesa's Vulkan drivers (lavapipe)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
cargo test -p burn-compress-core -p burn-compress-quant \
  --features burn-compress-core/wgpu,burn-compress-quant/wgpu "$@"
