//! The small network and data the examples share.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::LinearConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_compress::prelude::*;

/// Your model: layers whose inputs should be quantized are wrapped (`QConv2d`, `QLinear`);
/// the wrappers are identities until quantizers are attached.
#[derive(Module, Debug)]
pub struct Net {
    pub conv1: QConv2d,
    pub conv2: QConv2d,
    pub pool: AdaptiveAvgPool2d,
    pub head: QLinear,
}

impl Net {
    pub fn new(device: &Device) -> Self {
        device.seed(7);
        let conv = |i, o| QConv2d::new(Conv2dConfig::new([i, o], [3, 3]).init(device));
        Self {
            conv1: conv(3, 16),
            conv2: conv(16, 32),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: QLinear::new(LinearConfig::new(32, 10).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.head.forward(x)
    }
}

/// Deterministic pseudo-random images `[n, 3, 16, 16]` and labels (stand-ins for your data).
pub fn batch(n: usize, seed: u64, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let pixels: Vec<f32> = (0..n * 3 * 16 * 16).map(|_| next() * 2.0 - 1.0).collect();
    let labels: Vec<i64> = (0..n).map(|_| (next() * 10.0) as i64 % 10).collect();
    (
        Tensor::from_data(TensorData::new(pixels, [n, 3, 16, 16]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    )
}
