//! A tiny model with every kind of quantizer slot, for the prepare and error tests.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use burn_compress_quant::{QConv2d, QLinear};

#[derive(Module, Debug)]
pub struct Tiny {
    pub conv: QConv2d,
    pub fc1: QLinear,
    pub fc2: QLinear,
    relu: Relu,
}

impl Tiny {
    /// Deterministic weights (seeded), so that every layer sees non-zero activations.
    pub fn new(device: &Device) -> Self {
        device.seed(7);
        Self {
            conv: QConv2d::new(Conv2dConfig::new([1, 2], [3, 3]).init(device)),
            fc1: QLinear::new(LinearConfig::new(32, 8).init(device)),
            fc2: QLinear::new(LinearConfig::new(8, 3).init(device)),
            relu: Relu::new(),
        }
    }

    /// `[n, 1, 6, 6]` -> `[n, 3]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.relu.forward(self.conv.forward(x));
        let x = self.relu.forward(self.fc1.forward(x.flatten(1, 3)));
        self.fc2.forward(x)
    }
}

/// A `[n, 1, 6, 6]` batch whose values run evenly from `low` to `high`.
pub fn ramp(n: usize, low: f32, high: f32, device: &Device) -> Tensor<4> {
    let count = n * 36;
    let values: Vec<f32> = (0..count)
        .map(|i| low + (high - low) * i as f32 / (count - 1) as f32)
        .collect();
    Tensor::<1>::from_floats(values.as_slice(), device).reshape([n, 1, 6, 6])
}
