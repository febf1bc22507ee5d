//! The fused fake-quantize used in training: one autodiff operation whose forward is one pass
//! over the input and whose backward is NNCF's formulas in one pass, instead of the ~25 tracked
//! tensor operations of [`fake_quantize_trainable_unfused`](crate::fake_quant::fake_quantize_trainable_unfused).
//!
//! It is a Burn backend extension ([`FusedFakeQuantize`]) implemented for the Flex CPU backend
//! (a hand-written kernel, [`kernel`]) and, with the `wgpu` feature, for the CubeCL backends
//! (wgpu, CUDA, ...: the backend's primitive operations, [`primitive`]), each with its autodiff
//! decorator. [`supports`] says when it applies (autodiff tensors on one of those devices,
//! `f32`, range parameters per tensor or along one axis);
//! [`fake_quantize_trainable`](crate::fake_quant::fake_quantize_trainable) takes it then and the
//! unfused chain otherwise (other devices, dtypes and broadcasts): the two give the same values
//! bit for bit and the same per-element gradients (tests).

pub mod kernel;
pub mod primitive;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, DispatchDevice, Flex};
use burn::tensor::{DType, Shape, Tensor, TensorData};

use crate::fake_quant::{Form, Operands};
use kernel::{ChannelLayout, Grid};

/// The fused fake-quantize as a backend operation (see the module docs). `learned` is the
/// parameter that gets NNCF's inside term (the scale of a symmetric grid, the range of an
/// asymmetric one); `integer` picks [`Form::Integer`] over [`Form::FakeQuantize`].
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait FusedFakeQuantize: Backend {
    /// Fake-quantizes `x` over `[input_low, input_low + range]`; on an autodiff backend the
    /// result carries NNCF's gradients to all four inputs.
    fn fused_fake_quantize(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        learned: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> FloatTensor<Self>;
}

impl FusedFakeQuantize for Flex {
    fn fused_fake_quantize(
        x: FlexTensor,
        input_low: FlexTensor,
        range: FlexTensor,
        _learned: FlexTensor,
        levels: u32,
        integer: bool,
    ) -> FlexTensor {
        let grid = grid(&input_low, &range, levels, integer);
        flex_forward(&x, input_low.layout().shape(), &grid)
    }
}

/// A backend with a fused fake-quantize forward: it computes the output and the state its
/// backward step needs; [`FusedFakeQuantize`] for `Autodiff<Self>` follows from it.
pub(crate) trait FusedForward: Backend {
    /// The backward step (NNCF's gradients).
    type Step: Backward<Self, 4> + Default;

    /// The fake-quantized `x` and the backward step's state.
    fn forward_with_state(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> (FloatTensor<Self>, <Self::Step as Backward<Self, 4>>::State);
}

impl FusedForward for Flex {
    type Step = FakeQuantizeBackward;

    fn forward_with_state(
        x: FlexTensor,
        input_low: FlexTensor,
        range: FlexTensor,
        levels: u32,
        integer: bool,
    ) -> (FlexTensor, BackwardState) {
        let grid = grid(&input_low, &range, levels, integer);
        let param_shape = input_low.layout().shape().clone();
        let output = flex_forward(&x, &param_shape, &grid);
        let state = BackwardState {
            x,
            quantized: output.clone(),
            grid,
            param_shape,
        };
        (output, state)
    }
}

#[cfg(feature = "wgpu")]
impl FusedFakeQuantize for burn::backend::Cube {
    fn fused_fake_quantize(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        _learned: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> FloatTensor<Self> {
        primitive::forward::<Self>(x, input_low, range, levels, integer)
    }
}

#[cfg(feature = "wgpu")]
impl FusedForward for burn::backend::Cube {
    type Step = primitive::PrimitiveBackward;

    fn forward_with_state(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> (FloatTensor<Self>, primitive::State<Self>) {
        let output = primitive::forward::<Self>(
            x.clone(),
            input_low.clone(),
            range.clone(),
            levels,
            integer,
        );
        (output.clone(), (x, input_low, range, output))
    }
}

/// The fused op on an autodiff backend: the inner backend's forward, with its backward step
/// registered for the four operands (`x`, `input_low`, `range`, `learned`) as parents.
impl<B: FusedForward, C: CheckpointStrategy> FusedFakeQuantize for Autodiff<B, C> {
    fn fused_fake_quantize(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        learned: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> FloatTensor<Self> {
        let [(x, x_node), (input_low, low_node), (range, range_node), (_, learned_node)] =
            [x, input_low, range, learned].map(|t| t.into_parts());
        let (output, state) = B::forward_with_state(x, input_low, range, levels, integer);
        match B::Step::default()
            .prepare::<C>([x_node, low_node, range_node, learned_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused operation on (the default) or off for the whole process; off, training runs
/// the unfused chain everywhere (for comparison: `cargo bench --bench qat_step` times both).
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused operation is turned on (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the fused operation applies to these operands: it is turned on, the operands are
/// autodiff tensors on a Flex device (or, with the `wgpu` feature, a CubeCL device), all `f32`, and `input_low`, `range` and `learned` have one
/// shape that is all ones or matches `x` on exactly one axis.
pub fn supports<const D: usize>(operands: &Operands<D>) -> bool {
    let Operands {
        x,
        input_low,
        range,
        learned,
    } = operands;
    let on_fused_autodiff = |t: &Tensor<D>| t.is_autodiff() && has_fused_op(&t.device());
    let all = [x, input_low, range, learned];
    let param_shape = input_low.shape();
    is_enabled()
        && all.iter().all(|t| t.dtype() == DType::F32)
        && all.iter().all(|t| on_fused_autodiff(t))
        && all.iter().all(|t| t.device().inner() == x.device().inner())
        && range.shape() == param_shape
        && learned.shape() == param_shape
        && channel_layout(&x.shape(), &param_shape).is_some()
}

/// Whether `device`'s backend has the fused operation: Flex, and the CubeCL backends when this
/// crate is built with the `wgpu` feature.
fn has_fused_op(device: &burn::tensor::Device) -> bool {
    match device.as_dispatch().clone().inner() {
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "wgpu")]
        DispatchDevice::Cube(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Fake-quantizes `operands.x` in `form` with the fused operation; call only where
/// [`supports`] holds.
pub fn fake_quantize<const D: usize>(operands: Operands<D>, levels: u32, form: Form) -> Tensor<D> {
    let Operands {
        x,
        input_low,
        range,
        learned,
    } = operands;
    Tensor::from_dispatch(
        <burn::backend::Dispatch as FusedFakeQuantize>::fused_fake_quantize(
            x.into_dispatch(),
            input_low.into_dispatch(),
            range.into_dispatch(),
            learned.into_dispatch(),
            levels,
            form == Form::Integer,
        ),
    )
}

/// The backward step on Flex: NNCF's gradients from [`kernel::backward`].
#[derive(Debug, Default)]
pub(crate) struct FakeQuantizeBackward;

/// What the Flex backward step keeps from the forward.
#[derive(Clone, Debug)]
pub(crate) struct BackwardState {
    /// The input.
    x: FlexTensor,
    /// The forward's output (shared with the next operation, which keeps it too in training).
    quantized: FlexTensor,
    grid: Grid,
    /// The range parameters' shape.
    param_shape: Shape,
}

impl Backward<Flex, 4> for FakeQuantizeBackward {
    type State = BackwardState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let BackwardState {
            x,
            quantized,
            grid,
            param_shape,
        } = ops.state;
        // The upstream gradient becomes the input's, overwritten in place.
        let mut grad = owned_contiguous(grads.consume::<Flex>(&ops.node));
        let (x, quantized) = (x.to_contiguous(), quantized.to_contiguous());
        let x_values = x.as_slice::<f32>().expect("fused fake-quantize: f32 input");
        let q_values = quantized
            .as_slice::<f32>()
            .expect("fused fake-quantize: f32 output");
        let shape = x.layout().shape().clone();
        let layout = channel_layout(&shape, &param_shape).expect("checked by `supports`");
        let grad_values = grad.storage_mut::<f32>();
        let computed = kernel::backward(x_values, q_values, grad_values, &grid, layout);
        let tensor = |values: Vec<f32>, shape: &Shape| {
            FlexTensor::from_data(TensorData::new(values, shape.clone()))
        };
        let [x_parent, low_parent, range_parent, learned_parent] = ops.parents;
        if let Some(node) = x_parent {
            grads.register::<Flex>(node.id, grad);
        }
        if let Some(node) = low_parent {
            grads.register::<Flex>(node.id, tensor(computed.low, &param_shape));
        }
        if let Some(node) = range_parent {
            grads.register::<Flex>(node.id, tensor(computed.range, &param_shape));
        }
        if let Some(node) = learned_parent {
            grads.register::<Flex>(node.id, tensor(computed.learned, &param_shape));
        }
    }
}

/// `t` (f32) as a uniquely owned, contiguous tensor whose storage holds exactly its elements, so
/// it can be overwritten in place: moved when it already is one, copied otherwise.
fn owned_contiguous(t: FlexTensor) -> FlexTensor {
    let shape = t.layout().shape().clone();
    let exact = t.is_unique()
        && t.layout().is_contiguous()
        && t.layout().start_offset() == 0
        && t.storage::<f32>().len() == shape.num_elements();
    if exact {
        return t;
    }
    let values = t
        .to_contiguous()
        .as_slice::<f32>()
        .expect("fused fake-quantize: f32 gradient")
        .to_vec();
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Reads the per-channel grid from the range parameters.
fn grid(input_low: &FlexTensor, range: &FlexTensor, levels: u32, integer: bool) -> Grid {
    let values = |t: &FlexTensor| {
        t.to_contiguous()
            .as_slice::<f32>()
            .expect("fused fake-quantize: f32 range parameters")
            .to_vec()
    };
    Grid {
        low: values(input_low),
        range: values(range),
        levels,
        form: if integer {
            Form::Integer
        } else {
            Form::FakeQuantize
        },
    }
}

/// The forward on Flex: `param_shape` is the range parameters' shape (it gives the channel
/// axis).
fn flex_forward(x: &FlexTensor, param_shape: &Shape, grid: &Grid) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let layout = channel_layout(&shape, param_shape).expect("checked by `supports`");
    let values = x.as_slice::<f32>().expect("fused fake-quantize: f32 input");
    FlexTensor::from_data(TensorData::new(
        kernel::forward(values, grid, layout),
        shape,
    ))
}

/// The layout of parameters of shape `param` against an input of shape `input`: per tensor
/// (all ones) or along exactly one axis of the input's size; `None` for any other broadcast.
fn channel_layout(input: &Shape, param: &Shape) -> Option<ChannelLayout> {
    if input.num_dims() != param.num_dims() {
        return None;
    }
    let axes: Vec<usize> = (0..param.num_dims())
        .filter(|&a| param.as_slice()[a] != 1)
        .collect();
    match axes.as_slice() {
        [] => Some(ChannelLayout {
            channels: 1,
            inner: input.num_elements().max(1),
        }),
        [axis] if param.as_slice()[*axis] == input.as_slice()[*axis] => Some(ChannelLayout {
            channels: param.as_slice()[*axis],
            inner: input.as_slice()[axis + 1..]
                .iter()
                .product::<usize>()
                .max(1),
        }),
        _ => None,
    }
}
