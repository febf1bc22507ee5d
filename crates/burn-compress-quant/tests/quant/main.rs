//! Tests of burn-compress-quant against independent references: OpenVINO's own FakeQuantize
//! outputs (tests/data), NNCF's own quantize functions (tests/data), hand-computed values, the
//! NNCF gradient formulas and finite differences.

mod backward;
mod errors;
mod forward;
mod fused;
mod model;
mod nncf;
mod prepare;

use burn::tensor::Device;
use serde_json::Value;

/// The backends every numerical test runs on.
pub fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    #[allow(deprecated)]
    let mut devices = vec![Device::flex(), Device::ndarray()];
    #[cfg(feature = "wgpu")]
    devices.push(Device::wgpu(burn::tensor::DeviceKind::Cpu));
    devices
}

/// A JSON array of numbers as f32.
pub fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// A JSON array of dimensions.
pub fn dims(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_u64().expect("dim") as usize)
        .collect()
}
