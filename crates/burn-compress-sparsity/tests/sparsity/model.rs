//! A small network with a convolution and two linear layers.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct Small {
    pub conv: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Small {
    /// Deterministic weights from `seed`.
    pub fn new(device: &Device, seed: u64) -> Self {
        device.seed(seed);
        Self {
            conv: Conv2dConfig::new([4, 8], [3, 3]).init(device),
            fc1: LinearConfig::new(8 * 4 * 4, 16).init(device),
            fc2: LinearConfig::new(16, 4).init(device),
        }
    }

    /// `[n, 4, 6, 6]` -> `[n, 4]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv.forward(x)).flatten::<2>(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

/// Values of a tensor on the host.
pub fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}
