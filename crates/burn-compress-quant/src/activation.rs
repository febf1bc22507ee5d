//! Activation quantizer layers: a standalone [`ActivationQuantizer`] and the [`QConv2d`],
//! [`QConv1d`], [`QConvTranspose1d`], [`QConvTranspose2d`] and [`QLinear`] wrappers that
//! quantize a layer's input.
//!
//! An activation quantizer is an identity until [`quantize`](crate::quantize) attaches a
//! [`FakeQuantizer`] to it (as the reparameterization of its `slot` parameter, so the state
//! travels with the module through `valid()`, `train()`, devices and records). A model can
//! therefore declare its quantizer slots once and load FP32 checkpoints unchanged.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use burn_compress_core::calibration;
use burn_compress_core::FakeQuantizer;

/// A fake-quantize layer for an activation; identity until a quantizer is attached.
#[derive(Module, Debug)]
pub struct ActivationQuantizer {
    /// Carrier of the attached [`FakeQuantizer`]; its own value is never used.
    pub slot: Param<Tensor<1>>,
}

impl ActivationQuantizer {
    /// An empty (identity) quantizer slot.
    pub fn new(device: &Device) -> Self {
        Self {
            slot: Param::from_tensor(Tensor::zeros([1], device)).set_require_grad(false),
        }
    }

    /// The attached quantizer, if any.
    pub fn quantizer(&self) -> Option<&FakeQuantizer> {
        self.slot.reparameterization::<FakeQuantizer>()
    }

    /// Quantizes `x` (or records it, while a calibration session runs on this thread).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if calibration::observe(self.slot.id, &x) {
            return x;
        }
        match self.quantizer() {
            Some(quantizer) => quantizer.forward(x),
            None => x,
        }
    }
}

/// A convolution wrapper `$name` over the stock layer `$layer` (input and output of rank
/// `$rank`, applied by `$apply`) whose input passes through an [`ActivationQuantizer`].
macro_rules! input_quantized_conv {
    ($name:ident, $layer:ident, $rank:literal, $apply:expr) => {
        #[doc = concat!("A [`", stringify!($layer), "`] whose input passes through an [`ActivationQuantizer`].")]
        #[derive(Module, Debug)]
        pub struct $name {
            /// Quantizer of the convolution's input.
            pub input_quant: ActivationQuantizer,
            /// The stock convolution (its weight is quantized by reparameterization).
            pub conv: $layer,
        }

        impl $name {
            /// Wraps a convolution.
            pub fn new(conv: $layer) -> Self {
                let device = conv.weight.lazy_device();
                Self {
                    input_quant: ActivationQuantizer::new(&device),
                    conv,
                }
            }

            /// `conv(quantize(x))`.
            pub fn forward(&self, x: Tensor<$rank>) -> Tensor<$rank> {
                $apply(&self.conv, self.input_quant.forward(x))
            }
        }
    };
}

input_quantized_conv!(QConv1d, Conv1d, 3, Conv1d::forward);
input_quantized_conv!(QConv2d, Conv2d, 4, conv2d_forward);
input_quantized_conv!(
    QConvTranspose1d,
    ConvTranspose1d,
    3,
    ConvTranspose1d::forward
);
input_quantized_conv!(
    QConvTranspose2d,
    ConvTranspose2d,
    4,
    ConvTranspose2d::forward
);

/// `conv.forward(x)`, through [`burn_compress_core::conv::conv2d`] (a faster input gradient for
/// few input channels on Flex) where the padding is given (`Valid`, `Explicit`); `Same` padding
/// is resolved inside Burn's layer, so those layers keep its forward.
fn conv2d_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return conv.forward(x),
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    burn_compress_core::conv::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|bias| bias.val()),
        options,
    )
}

/// A [`Linear`] whose input passes through an [`ActivationQuantizer`].
#[derive(Module, Debug)]
pub struct QLinear {
    /// Quantizer of the layer's input.
    pub input_quant: ActivationQuantizer,
    /// The stock linear layer.
    pub linear: Linear,
}

impl QLinear {
    /// Wraps a linear layer.
    pub fn new(linear: Linear) -> Self {
        let device = linear.weight.lazy_device();
        Self {
            input_quant: ActivationQuantizer::new(&device),
            linear,
        }
    }

    /// `linear(quantize(x))`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.linear.forward(self.input_quant.forward(x))
    }
}
