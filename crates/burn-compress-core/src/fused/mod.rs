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

impl<C: CheckpointStrategy> FusedFakeQuantize for Autodiff<Flex, C> {
    fn fused_fake_quantize(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        learned: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> FloatTensor<Self> {
        let operands = [x, input_low, range, learned];
        tracked::<Flex, C, _>(operands, FakeQuantizeBackward, |x, input_low, range| {
            let grid = grid(&input_low, &range, levels, integer);
            let param_shape = input_low.layout().shape().clone();
            let output = flex_forward(&x, &param_shape, &grid);
            (output, (x, grid, param_shape))
        })
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
impl<C: CheckpointStrategy> FusedFakeQuantize for Autodiff<burn::backend::Cube, C> {
    fn fused_fake_quantize(
        x: FloatTensor<Self>,
        input_low: FloatTensor<Self>,
        range: FloatTensor<Self>,
        learned: FloatTensor<Self>,
        levels: u32,
        integer: bool,
    ) -> FloatTensor<Self> {
        let operands = [x, input_low, range, learned];
        tracked::<burn::backend::Cube, C, _>(
            operands,
            primitive::PrimitiveBackward,
            |x, input_low, range| {
                let output = primitive::forward::<burn::backend::Cube>(
                    x.clone(),
                    input_low.clone(),
                    range.clone(),
                    levels,
                    integer,
                );
                (output.clone(), (x, input_low, range, output))
            },
        )
    }
}

/// The fused op on an autodiff backend: `forward` gets the inner `x`, `input_low` and `range`
/// and returns the output and `backward`'s state; `backward` is registered with the four
/// operands (`x`, `input_low`, `range`, `learned`) as parents.
fn tracked<B, C, O>(
    operands: [FloatTensor<Autodiff<B, C>>; 4],
    backward: O,
    forward: impl FnOnce(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> (FloatTensor<B>, O::State),
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    O: Backward<B, 4>,
{
    let [(x, x_node), (input_low, low_node), (range, range_node), (_, learned_node)] =
        operands.map(|t| t.into_parts());
    let (output, state) = forward(x, input_low, range);
    match backward
        .prepare::<C>([x_node, low_node, range_node, learned_node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
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

/// The backward step: NNCF's gradients from [`kernel::backward`].
#[derive(Debug)]
struct FakeQuantizeBackward;

impl Backward<Flex, 4> for FakeQuantizeBackward {
    /// The input, the grid, and the range parameters' shape.
    type State = (FlexTensor, Grid, Shape);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, grid, param_shape) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let x = x.to_contiguous();
        let (x_values, grad_values) = (
            x.as_slice::<f32>().expect("fused fake-quantize: f32 input"),
            grad.as_slice::<f32>()
                .expect("fused fake-quantize: f32 gradient"),
        );
        let shape = x.layout().shape().clone();
        let layout = channel_layout(&shape, &param_shape).expect("checked by `supports`");
        let computed = kernel::backward(x_values, grad_values, &grid, layout);
        let tensor = |values: Vec<f32>, shape: &Shape| {
            FlexTensor::from_data(TensorData::new(values, shape.clone()))
        };
        let [x_parent, low_parent, range_parent, learned_parent] = ops.parents;
        if let Some(node) = x_parent {
            grads.register::<Flex>(node.id, tensor(computed.input, &shape));
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
    let mut out = vec![0.0f32; values.len()];
    kernel::forward(values, grid, layout, &mut out);
    FlexTensor::from_data(TensorData::new(out, shape))
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
