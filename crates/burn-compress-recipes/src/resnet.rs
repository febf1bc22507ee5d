//! The CIFAR-style ResNet-18 of the pruning benchmarks (the architecture of the NNCF IRs in
//! `shared/data/nncf-resnet18`): 3x3 stem 3->64, BasicBlocks [2, 2, 2, 2] of widths 64, 128,
//! 256, 512 with strides 1, 2, 2, 2 and 1x1 downsample convolutions where the shape changes,
//! global average pooling, Linear 512->10; input `[n, 3, 32, 32]`, 11.17 M parameters.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_compress_core::fold_batch_norm;
use burn_compress_quant::ActivationQuantizer;

/// A convolution, an optional batch norm (`None` once folded), an optional ReLU and an
/// activation-quantizer slot on the result.
///
/// Activations are quantized where they are produced, as NNCF places its quantizers: after the
/// ReLU, or before a residual add. OpenVINO then fuses every FakeQuantize into the convolution
/// (or add) that produces it, and each convolution reads and writes u8.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: Option<BatchNorm>,
    /// Quantizer of the output.
    pub quant: ActivationQuantizer,
}

impl ConvBn {
    fn new(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let pad = kernel / 2;
        Self {
            conv: Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            bn: Some(BatchNormConfig::new(output).init(device)),
            quant: ActivationQuantizer::new(device),
        }
    }

    /// `quant(bn(conv(x)))`, with a ReLU before the quantizer if `relu`.
    pub fn forward(&self, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
        let mut y = self.conv.forward(x);
        if let Some(bn) = &self.bn {
            y = bn.forward(y);
        }
        if with_relu {
            y = relu(y);
        }
        self.quant.forward(y)
    }

    fn fold(mut self, path: &str) -> burn_compress_core::Result<Self> {
        if let Some(bn) = self.bn.take() {
            self.conv = fold_batch_norm(self.conv, &bn, &format!("{path}.conv"))?;
        }
        Ok(self)
    }
}

/// A residual basic block.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3x3 convolution (strided when downsampling), with its ReLU.
    pub conv1: ConvBn,
    /// Second 3x3 convolution, quantized before the add.
    pub conv2: ConvBn,
    /// 1x1 projection of the shortcut, when the shape changes.
    pub down: Option<ConvBn>,
    /// Quantizer of the block's output.
    pub out_quant: ActivationQuantizer,
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: ConvBn::new(input, output, 3, stride, device),
            conv2: ConvBn::new(output, output, 3, 1, device),
            down: (stride != 1 || input != output)
                .then(|| ConvBn::new(input, output, 1, stride, device)),
            out_quant: ActivationQuantizer::new(device),
        }
    }

    /// `quant(relu(conv2(conv1(x)) + shortcut(x)))`; `x` arrives quantized.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self
            .conv2
            .forward(self.conv1.forward(x.clone(), true), false);
        let shortcut = match &self.down {
            Some(down) => down.forward(x, false),
            None => x,
        };
        self.out_quant.forward(relu(y + shortcut))
    }
}

/// CIFAR-style ResNet-18, with activation-quantizer slots on the input, after every ReLU,
/// before every residual add and after the global pooling.
#[derive(Module, Debug)]
pub struct CifarResNet18 {
    /// Quantizer of the input images.
    pub input_quant: ActivationQuantizer,
    /// 3x3 stem, 3 -> 64, with its ReLU.
    pub stem: ConvBn,
    /// The eight basic blocks.
    pub blocks: Vec<BasicBlock>,
    /// Global average pooling.
    pub pool: AdaptiveAvgPool2d,
    /// Quantizer of the pooled features.
    pub pool_quant: ActivationQuantizer,
    /// Classifier, 512 -> 10.
    pub fc: Linear,
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
            input_quant: ActivationQuantizer::new(device),
            stem: ConvBn::new(3, 64, 3, 1, device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            pool_quant: ActivationQuantizer::new(device),
            fc: LinearConfig::new(512, 10).init(device),
        }
    }

    /// Logits `[n, 10]` for images `[n, 3, 32, 32]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(self.input_quant.forward(x), true);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let pooled = self.pool_quant.forward(self.pool.forward(x));
        self.fc.forward(pooled.flatten(1, 3))
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
                    out_quant: b.out_quant,
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
