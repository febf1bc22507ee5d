//! The reference CNN of the MNIST recipe, with activation-quantizer slots on every
//! convolution and linear input: Conv2d(1->32, 3x3) -> BN -> ReLU -> MaxPool 2 ->
//! Conv2d(32->64, 3x3) -> BN -> ReLU -> MaxPool 2 -> flatten (1600) -> Linear(1600->128) ->
//! ReLU -> Linear(128->10).

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use burn_compress_quant::{fold_batch_norm, QConv2d, QLinear};

/// The reference CNN. The batch norms become `None` once folded into the convolutions.
#[derive(Module, Debug)]
pub struct ReferenceCnn {
    /// First convolution, 1 -> 32 channels.
    pub conv1: QConv2d,
    /// Its batch norm.
    pub bn1: Option<BatchNorm>,
    /// Second convolution, 32 -> 64 channels.
    pub conv2: QConv2d,
    /// Its batch norm.
    pub bn2: Option<BatchNorm>,
    /// Hidden linear layer, 1600 -> 128.
    pub fc1: QLinear,
    /// Classifier, 128 -> 10.
    pub fc2: QLinear,
    pool: MaxPool2d,
    relu: Relu,
}

impl ReferenceCnn {
    /// A freshly initialised network on `device`.
    pub fn new(device: &Device) -> Self {
        let conv =
            |input, output| QConv2d::new(Conv2dConfig::new([input, output], [3, 3]).init(device));
        let linear = |input, output| QLinear::new(LinearConfig::new(input, output).init(device));
        Self {
            conv1: conv(1, 32),
            bn1: Some(BatchNormConfig::new(32).init(device)),
            conv2: conv(32, 64),
            bn2: Some(BatchNormConfig::new(64).init(device)),
            fc1: linear(1600, 128),
            fc2: linear(128, 10),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            relu: Relu::new(),
        }
    }

    /// Logits `[n, 10]` for images `[n, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.conv1.forward(images);
        let x = match &self.bn1 {
            Some(bn) => bn.forward(x),
            None => x,
        };
        let x = self.pool.forward(self.relu.forward(x));
        let x = self.conv2.forward(x);
        let x = match &self.bn2 {
            Some(bn) => bn.forward(x),
            None => x,
        };
        let x = self.pool.forward(self.relu.forward(x));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.relu.forward(self.fc1.forward(x));
        self.fc2.forward(x)
    }

    /// Folds each batch norm into its convolution (eval-mode equivalent network).
    pub fn fold_batch_norms(mut self) -> burn_compress_quant::Result<Self> {
        if let Some(bn) = self.bn1.take() {
            self.conv1.conv = fold_batch_norm(self.conv1.conv, &bn, "conv1.conv")?;
        }
        if let Some(bn) = self.bn2.take() {
            self.conv2.conv = fold_batch_norm(self.conv2.conv, &bn, "conv2.conv")?;
        }
        Ok(self)
    }
}
