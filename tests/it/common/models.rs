//! Test networks: the reference CNN with random BatchNorm statistics, a residual network,
//! depthwise-separable and grouped convolutions, an attention block, 1-D convolutions, and
//! models with quantizer slots.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, LeakyRelu, LeakyReluConfig,
    Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d,
};
use burn::tensor::activation::{gelu, relu, sigmoid, silu, softmax, tanh};
use burn::tensor::Tensor;
use burn_compress_recipes::ReferenceCnn;

use super::{bn, dev, randomize_batch_norm};

pub fn reference_cnn(seed: u64) -> ReferenceCnn {
    dev().seed(seed);
    let mut m = ReferenceCnn::new(&dev());
    randomize_batch_norm(m.bn1.as_mut().unwrap(), 100);
    randomize_batch_norm(m.bn2.as_mut().unwrap(), 200);
    m
}

#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub down: Option<Conv2d>,
    pub down_bn: Option<BatchNorm>,
}

impl BasicBlock {
    pub fn new(i: usize, o: usize, stride: usize, seed: u64) -> Self {
        let c3 = |a, b, s| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(&dev())
        };
        let (down, down_bn) = if stride != 1 || i != o {
            (
                Some(
                    Conv2dConfig::new([i, o], [1, 1])
                        .with_stride([stride, stride])
                        .init(&dev()),
                ),
                Some(bn(o, seed + 30)),
            )
        } else {
            (None, None)
        };
        Self {
            conv1: c3(i, o, stride),
            bn1: bn(o, seed),
            conv2: c3(o, o, 1),
            bn2: bn(o, seed + 10),
            down,
            down_bn,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        let skip = match (&self.down, &self.down_bn) {
            (Some(d), Some(b)) => b.forward(d.forward(x)),
            _ => x,
        };
        relu(y + skip)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: Conv2d,
    pub bn: BatchNorm,
    pub blocks: Vec<BasicBlock>,
    pub pool: AdaptiveAvgPool2d,
    pub fc: Linear,
}

impl ResNet {
    pub fn new() -> Self {
        dev().seed(3);
        Self {
            stem: Conv2dConfig::new([3, 16], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(&dev()),
            bn: bn(16, 1),
            blocks: vec![
                BasicBlock::new(16, 16, 1, 10),
                BasicBlock::new(16, 32, 2, 50),
            ],
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(32, 10).init(&dev()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.bn.forward(self.stem.forward(x)));
        for b in &self.blocks {
            x = b.forward(x);
        }
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.fc.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct DepthwiseSeparable {
    dw1: Conv2d,
    pw1: Conv2d,
    dw2: Conv2d,
    pw2: Conv2d,
    dilated: Conv2d,
    grouped: Conv2d,
    avg: AvgPool2d,
    adaptive: AdaptiveAvgPool2d,
    leaky: LeakyRelu,
    fc: Linear,
}

impl DepthwiseSeparable {
    pub fn new() -> Self {
        dev().seed(5);
        let d = &dev();
        Self {
            dw1: Conv2dConfig::new([8, 8], [3, 3])
                .with_groups(8)
                .with_padding(PaddingConfig2d::Same)
                .init(d),
            pw1: Conv2dConfig::new([8, 16], [1, 1]).init(d),
            dw2: Conv2dConfig::new([16, 16], [3, 3])
                .with_groups(16)
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(d),
            pw2: Conv2dConfig::new([16, 24], [1, 1]).with_bias(false).init(d),
            dilated: Conv2dConfig::new([24, 24], [3, 3])
                .with_dilation([2, 2])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(d),
            grouped: Conv2dConfig::new([24, 16], [3, 3])
                .with_groups(4)
                .with_padding(PaddingConfig2d::Valid)
                .init(d),
            avg: AvgPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_count_include_pad(false)
                .init(),
            adaptive: AdaptiveAvgPool2dConfig::new([3, 3]).init(),
            leaky: LeakyReluConfig::new().with_negative_slope(0.1).init(),
            fc: LinearConfig::new(16 * 9, 7).init(d),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.leaky.forward(self.pw1.forward(self.dw1.forward(x)));
        let x = sigmoid(self.pw2.forward(self.dw2.forward(x)));
        let x = tanh(self.dilated.forward(x));
        let x = silu(self.grouped.forward(x));
        let x = self.adaptive.forward(self.avg.forward(x));
        self.fc.forward(x.flatten::<2>(1, 3))
    }
}

#[derive(Module, Debug)]
pub struct AttentionBlock {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

pub const HEADS: usize = 2;

impl AttentionBlock {
    pub fn new() -> Self {
        dev().seed(7);
        let d = &dev();
        let l = |a, b| LinearConfig::new(a, b).init(d);
        Self {
            ln1: LayerNormConfig::new(16).init(d),
            q: l(16, 16),
            k: l(16, 16),
            v: l(16, 16),
            o: l(16, 16),
            ln2: LayerNormConfig::new(16).init(d),
            fc1: l(16, 32),
            fc2: l(32, 16),
            dropout: DropoutConfig::new(0.3).init(),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let dh = d / HEADS;
        let h = self.ln1.forward(x.clone());
        let q = self
            .q
            .forward(h.clone())
            .reshape([b, s, HEADS, dh])
            .swap_dims(1, 2);
        let k = self
            .k
            .forward(h.clone())
            .reshape([b, s, HEADS, dh])
            .permute([0, 2, 3, 1]);
        let v = self.v.forward(h).reshape([b, s, HEADS, dh]).swap_dims(1, 2);
        let att = softmax(q.matmul(k).div_scalar((dh as f32).sqrt()), 3);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        let x = x + self.o.forward(y);
        let h = self
            .dropout
            .forward(gelu(self.fc1.forward(self.ln2.forward(x.clone()))));
        let x = x + self.fc2.forward(h);
        // Slicing, concatenation, tensor and scalar arithmetic, clamp.
        let lo = x.clone().slice([0..b, 0..s, 0..d / 2]);
        let hi = x.clone().slice([0..b, 0..s, d / 2..d]);
        let mixed = Tensor::cat(vec![lo.clone() * hi.clone(), (lo - hi).div_scalar(2.0)], 2);
        let mixed = mixed
            .clamp(-3.0, 3.0)
            .mul_scalar(0.5)
            .add_scalar(0.1)
            .sub_scalar(0.2);
        mixed / (x.clone().abs() + 1.0) - x
    }
}

#[derive(Module, Debug)]
pub struct Conv1dNet {
    conv: Conv1d,
    conv2: Conv1d,
    fc: Linear,
}

impl Conv1dNet {
    pub fn new() -> Self {
        dev().seed(9);
        Self {
            conv: Conv1dConfig::new(4, 8, 3)
                .with_stride(2)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(&dev()),
            conv2: Conv1dConfig::new(8, 8, 3)
                .with_dilation(2)
                .with_groups(2)
                .init(&dev()),
            fc: LinearConfig::new(8 * 6, 5).init(&dev()),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = relu(self.conv2.forward(relu(self.conv.forward(x))));
        self.fc.forward(x.flatten::<2>(1, 2))
    }
}

/// A stem, a plain and a depthwise-separable branch (two filters per channel) concatenated, a strided convolution and a
/// flatten into a Linear classifier: `[n, 3, 8, 8]` -> `[n, 5]`.
#[derive(Module, Debug)]
pub struct ConcatNet {
    pub stem: Conv2d,
    pub branch: Conv2d,
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
    pub merge: Conv2d,
    pub head: Linear,
}

impl ConcatNet {
    pub fn new() -> Self {
        dev().seed(23);
        let d = &dev();
        Self {
            stem: Conv2dConfig::new([3, 8], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(d),
            branch: Conv2dConfig::new([8, 6], [1, 1]).init(d),
            depthwise: Conv2dConfig::new([8, 16], [3, 3])
                .with_groups(8)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(d),
            pointwise: Conv2dConfig::new([16, 6], [1, 1]).init(d),
            merge: Conv2dConfig::new([12, 10], [3, 3])
                .with_stride([2, 2])
                .init(d),
            head: LinearConfig::new(10 * 3 * 3, 5).init(d),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.stem.forward(x));
        let a = relu(self.branch.forward(x.clone()));
        let b = relu(self.pointwise.forward(self.depthwise.forward(x)));
        let x = relu(self.merge.forward(Tensor::cat(vec![a, b], 1)));
        self.head.forward(x.flatten::<2>(1, 3))
    }
}

/// The reference CNN as a user writes it before QAT: stock `Conv2d` / `Linear` fields, no
/// quantizer slots. Same parameters as [`ReferenceCnn`] (whose layers are wrapped).
#[derive(Module, Debug)]
pub struct StockCnn {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub conv2: Conv2d,
    pub bn2: Option<BatchNorm>,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl StockCnn {
    pub fn new(seed: u64) -> Self {
        dev().seed(seed);
        let conv = |i, o| Conv2dConfig::new([i, o], [3, 3]).init(&dev());
        Self {
            conv1: conv(1, 32),
            bn1: Some(bn(32, seed + 1)),
            conv2: conv(32, 64),
            bn2: Some(bn(64, seed + 2)),
            fc1: LinearConfig::new(1600, 128).init(&dev()),
            fc2: LinearConfig::new(128, 10).init(&dev()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let max_pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let pool = |x: Tensor<4>| max_pool.forward(x);
        let x = self.bn1.as_ref().unwrap().forward(self.conv1.forward(x));
        let x = pool(relu(x));
        let x = self.bn2.as_ref().unwrap().forward(self.conv2.forward(x));
        let x: Tensor<2> = pool(relu(x)).flatten(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}
