//! A 2-D convolution for layers whose input is fake-quantized in training: Burn's `conv2d`, with
//! a faster input gradient on Flex where the input has few channels.
//!
//! Quantization-aware training gives a network's first convolution a tracked input: the input
//! quantizer's trainable range needs the gradient with respect to the quantized images. Flex
//! computes a convolution's input gradient as a transposed convolution (a matrix product per
//! sample, then a scatter), which for 1–3 input channels is a product with a few rows and costs
//! the QAT step about as much as all its fake-quantizes together, a cost FP32 training never pays.
//! [`conv2d`] is Burn's operation with one change in its backward on Flex: for stride 1 and at
//! most [`FEW_CHANNELS`] input channels, the input gradient comes from a kernel of its own (per
//! kernel tap, the weighted sum of the output channels' gradients, read once and in order with
//! the sums of nine taps in registers, explicit AVX-512 where the CPU has it; then each tap's
//! sums added to the padded input at its shift); the forward and the weight and bias gradients
//! are Burn's.

mod input_gradient;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, DispatchDevice, Flex, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

use input_gradient::Geometry;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns this module's convolution on (the default) or off for the whole process; off,
/// [`conv2d`] is Burn's everywhere.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether this module's convolution is turned on (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Up to this many input channels (per group), the input gradient on Flex is this module's;
/// above, Flex's own (its matrix products are then wide enough).
pub const FEW_CHANNELS: usize = 4;

/// The convolution as a backend operation (see the module docs). Two methods, with and without
/// a bias, because the backend-extension macro does not pass optional tensors.
#[backend_extension(Flex, Autodiff)]
pub trait QuantizedInputConv2d: burn::backend::Backend {
    /// `conv2d(x, weight, bias, options)`.
    fn quantized_input_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `conv2d(x, weight, None, options)`.
    fn quantized_input_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl QuantizedInputConv2d for Flex {
    fn quantized_input_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        Flex::conv2d(x, weight, Some(bias), options)
    }

    fn quantized_input_conv2d_no_bias(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        Flex::conv2d(x, weight, None, options)
    }
}

impl<C: CheckpointStrategy> QuantizedInputConv2d for Autodiff<Flex, C> {
    fn quantized_input_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        tracked_conv2d::<C>(x, weight, Some(bias), options)
    }

    fn quantized_input_conv2d_no_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        tracked_conv2d::<C>(x, weight, None, options)
    }
}

/// Flex's convolution, with [`ConvState::register`] as the backward step of the tracked
/// operands.
fn tracked_conv2d<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: Option<FloatTensor<Autodiff<Flex, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let (x, x_node) = x.into_parts();
    let (weight, weight_node) = weight.into_parts();
    let (bias, bias_node) = match bias.map(|bias| bias.into_parts()) {
        Some((bias, node)) => (Some(bias), Some(node)),
        None => (None, None),
    };
    let output = Flex::conv2d(x.clone(), weight.clone(), bias.clone(), options.clone());
    let state = ConvState {
        x,
        weight,
        bias,
        options,
    };
    match bias_node {
        Some(bias_node) => match WithBias
            .prepare::<C>([x_node, weight_node, bias_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        },
        None => match NoBias
            .prepare::<C>([x_node, weight_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        },
    }
}

/// What the backward step keeps: the convolution's operands.
#[derive(Debug, Clone)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
}

impl ConvState {
    /// Registers the gradients of the tracked parents: Burn's, but the input's from this
    /// module's kernel (Flex's for shapes the kernel does not take, which [`conv2d`] keeps
    /// away).
    fn register(
        self,
        grad: FlexTensor,
        [x_parent, weight_parent, bias_parent]: [Option<NodeId>; 3],
        grads: &mut Gradients,
    ) {
        let Self {
            x,
            weight,
            bias,
            options,
        } = self;
        if let Some(id) = x_parent {
            let x_grad = match Geometry::of(&x, &weight, &grad, &options) {
                Some(geometry) if geometry.in_per_group() <= FEW_CHANNELS => {
                    let (grad, weight) = (grad.to_contiguous(), weight.to_contiguous());
                    let values = input_gradient::compute(
                        grad.as_slice::<f32>().expect("convolution: f32 gradient"),
                        weight.as_slice::<f32>().expect("convolution: f32 weight"),
                        &geometry,
                    );
                    FlexTensor::from_data(TensorData::new(values, x.shape()))
                }
                _ => Flex::conv2d_x_backward(
                    x.clone(),
                    weight.clone(),
                    grad.clone(),
                    options.clone(),
                ),
            };
            grads.register::<Flex>(id, x_grad);
        }
        if let Some(id) = weight_parent {
            let w_grad = Flex::conv2d_weight_backward(x.clone(), weight, grad.clone(), options);
            grads.register::<Flex>(id, w_grad);
        }
        if let (Some(id), Some(bias)) = (bias_parent, bias) {
            grads.register::<Flex>(id, Flex::conv2d_bias_backward(x, bias, grad));
        }
    }
}

/// The backward step with a bias.
#[derive(Debug)]
struct WithBias;

impl Backward<Flex, 3> for WithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        ops.state.register(grad, parents, grads);
    }
}

/// The backward step without a bias.
#[derive(Debug)]
struct NoBias;

impl Backward<Flex, 2> for NoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [x, weight] = ops.parents.map(|p| p.map(|node| node.id));
        ops.state.register(grad, [x, weight, None], grads);
    }
}

/// `conv2d(x, weight, bias, options)`: on Flex with autodiff, where `x` is tracked and `f32`,
/// the stride 1 and the input channels per group at most [`FEW_CHANNELS`], the operation of the
/// module docs (while [`is_enabled`]); Burn's `conv2d` everywhere else.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let on_flex = |t: &Tensor<4>| {
        t.is_autodiff()
            && t.dtype() == burn::tensor::DType::F32
            && matches!(
                t.device().as_dispatch().clone().inner(),
                DispatchDevice::Flex(_)
            )
    };
    let few_channels = x.dims()[1] / options.groups.max(1) <= FEW_CHANNELS;
    let applies = options.stride == [1, 1] && few_channels && x.is_tracked();
    if !is_enabled() || !applies || !on_flex(&x) || !on_flex(&weight) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    type Op = burn::backend::Dispatch;
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => Op::quantized_input_conv2d(x, weight, bias.into_dispatch(), options),
        None => Op::quantized_input_conv2d_no_bias(x, weight, options),
    })
}
