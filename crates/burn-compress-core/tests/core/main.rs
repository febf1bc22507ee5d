//! Tests of burn-compress-core against independent references: hand-computed schedule levels,
//! Burn's own convolution,
//! hand-written fake-quantize and mask formulas, and Burn's own module lifecycle (valid(),
//! records, device moves).

mod conv;
mod rounding;
mod schedule;
mod transform;

use burn::tensor::Device;

/// The backends every numerical test runs on.
pub fn devices() -> Vec<Device> {
    #[allow(deprecated)]
    #[allow(unused_mut)]
    let mut devices = vec![Device::flex(), Device::ndarray()];
    #[cfg(feature = "wgpu")]
    devices.push(Device::wgpu(burn::tensor::DeviceKind::Cpu));
    devices
}
