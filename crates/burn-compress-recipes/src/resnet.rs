//! The CIFAR-style ResNet-18 of the pruning benchmarks (the architecture of the NNCF IRs in
//! `shared/data/nncf-resnet18`): 3x3 stem 3->64, BasicBlocks [2, 2, 2, 2] of widths 64, 128,
//! 256, 512 with strides 1, 2, 2, 2 and 1x1 downsample convolutions where the shape changes,
//! global average pooling, Linear 512->10; input `[n, 3, 32, 32]`, 11.17 M parameters.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_compress_core::fold_batch_norm;
use burn_compress_quant::{QConv2d, QLinear};

/// A convolution (with an activation-quantizer slot on its input) followed by an optional batch
/// norm (`None` once folded).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: QConv2d,
    /// Its batch norm.
    pub bn: Option<BatchNorm>,
}

impl ConvBn {
    fn new(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let pad = kernel / 2;
        Self {
            conv: QConv2d::new(
                Conv2dConfig::new([input, output], [kernel, kernel])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                    .with_bias(false)
                    .init(device),
            ),
            bn: Some(BatchNormConfig::new(output).init(device)),
        }
    }

    /// `bn(conv(x))`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        match &self.bn {
            Some(bn) => bn.forward(y),
            None => y,
        }
    }

    fn fold(mut self, path: &str) -> burn_compress_core::Result<Self> {
        if let Some(bn) = self.bn.take() {
            self.conv.conv = fold_batch_norm(self.conv.conv, &bn, path)?;
        }
        Ok(self)
    }
}

/// A residual basic block.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3x3 convolution (strided when downsampling).
    pub conv1: ConvBn,
    /// Second 3x3 convolution.
    pub conv2: ConvBn,
    /// 1x1 projection of the shortcut, when the shape changes.
    pub down: Option<ConvBn>,
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: ConvBn::new(input, output, 3, stride, device),
            conv2: ConvBn::new(output, output, 3, 1, device),
            down: (stride != 1 || input != output)
                .then(|| ConvBn::new(input, output, 1, stride, device)),
        }
    }

    /// `relu(conv2(relu(conv1(x))) + shortcut(x))`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv2.forward(relu(self.conv1.forward(x.clone())));
        let shortcut = match &self.down {
            Some(down) => down.forward(x),
            None => x,
        };
        relu(y + shortcut)
    }
}

/// CIFAR-style ResNet-18.
#[derive(Module, Debug)]
pub struct CifarResNet18 {
    /// 3x3 stem, 3 -> 64.
    pub stem: ConvBn,
    /// The eight basic blocks.
    pub blocks: Vec<BasicBlock>,
    /// Global average pooling.
    pub pool: AdaptiveAvgPool2d,
    /// Classifier, 512 -> 10.
    pub fc: QLinear,
}

impl CifarResNet18 {
    /// A freshly initialised network on `device`.
    pub fn new(device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut channels = 64;
        for (width, stride) in [(64, 1), (128, 2), (256, 2), (512, 2)] {
            blocks.push(BasicBlock::new(channels, width, stride, device));
            blocks.push(BasicBlock::new(width, width, 1, device));
            channels = width;
        }
        Self {
            stem: ConvBn::new(3, 64, 3, 1, device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: QLinear::new(LinearConfig::new(512, 10).init(device)),
        }
    }

    /// Logits `[n, 10]` for images `[n, 3, 32, 32]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.stem.forward(x));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.fc.forward(self.pool.forward(x).flatten(1, 3))
    }

    /// Folds every batch norm into its convolution (eval-mode equivalent network).
    pub fn fold_batch_norms(self) -> burn_compress_core::Result<Self> {
        let blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                Ok(BasicBlock {
                    conv1: b.conv1.fold(&format!("blocks.{i}.conv1"))?,
                    conv2: b.conv2.fold(&format!("blocks.{i}.conv2"))?,
                    down: b
                        .down
                        .map(|d| d.fold(&format!("blocks.{i}.down")))
                        .transpose()?,
                })
            })
            .collect::<burn_compress_core::Result<Vec<_>>>()?;
        Ok(Self {
            stem: self.stem.fold("stem")?,
            blocks,
            ..self
        })
    }
}
