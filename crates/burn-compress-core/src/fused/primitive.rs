//! The fused fake-quantize written with a backend's primitive tensor operations, for backends
//! without a hand-written kernel (the CubeCL backends: wgpu, CUDA, ...).
//!
//! It is still one autodiff operation: the forward is the inference chain (the same primitive
//! operations, in the same order, as [`fake_quantize`](crate::fake_quant::fake_quantize) and
//! [`fake_quantize_integer`](crate::fake_quant::fake_quantize_integer)), and the backward is
//! NNCF's formulas (see [`crate::fake_quant`]) as a handful of element-wise operations and one
//! sum per broadcast axis, which a fusing backend compiles into a few kernels, instead of the
//! ~25 tracked operations of the unfused chain and their backward steps.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{get_device_settings, Backend, Scalar, TensorMetadata};

/// The fake-quantized value of `x` over `[input_low, input_low + range]` on `levels` levels, in
/// OpenVINO's form or (`integer`) the integer form: the plain chain's operations one for one.
pub fn forward<B: Backend>(
    x: FloatTensor<B>,
    input_low: FloatTensor<B>,
    range: FloatTensor<B>,
    levels: u32,
    integer: bool,
) -> FloatTensor<B> {
    let steps = Scalar::from((levels - 1) as f32);
    // k = round(clamp((x − il)/r, 0, 1)·steps)
    let level = B::float_round(B::float_mul_scalar(
        B::float_clamp(
            B::float_div(B::float_sub(x, input_low.clone()), range.clone()),
            Scalar::from(0.0f32),
            Scalar::from(1.0f32),
        ),
        steps,
    ));
    if integer {
        // (k − round(−il/r·steps))·(r/steps)
        let zero_point = B::float_round(B::float_mul_scalar(
            B::float_div(B::float_neg(input_low), range.clone()),
            steps,
        ));
        let step = B::float_div_scalar(range, steps);
        B::float_mul(B::float_sub(level, zero_point), step)
    } else {
        // k/steps·r + il
        B::float_add(
            B::float_mul(B::float_div_scalar(level, steps), range),
            input_low,
        )
    }
}

/// The backward step of the primitive fused op: NNCF's gradients from the saved input, range
/// and quantized value.
#[derive(Debug, Default)]
pub struct PrimitiveBackward;

/// What the backward step keeps: the input, `input_low`, `range` and the quantized value.
pub type State<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
);

impl<B: Backend> Backward<B, 4> for PrimitiveBackward {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, input_low, range, quantized) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let bool_dtype = get_device_settings::<B>(&x.device()).bool_dtype;
        let high = B::float_add(input_low.clone(), range.clone());
        let above = B::float_greater(x.clone(), high, bool_dtype);
        let outside = B::bool_or(
            B::float_lower(x.clone(), input_low, bool_dtype),
            above.clone(),
        );
        // Masks are strict, as NNCF's: x == input_low or x == high counts as inside.
        let only = |values: FloatTensor<B>, where_: BoolTensor<B>| {
            B::float_mask_fill(values, B::bool_not(where_), Scalar::from(0.0f32))
        };
        let except = |values: FloatTensor<B>, where_: BoolTensor<B>| {
            B::float_mask_fill(values, where_, Scalar::from(0.0f32))
        };
        let param_shape = range.shape();
        let x_shape = x.shape();
        // Sums a gradient over the axes the range parameters are broadcast along.
        let to_params = |values: FloatTensor<B>| {
            (0..x_shape.num_dims())
                .filter(|&axis| param_shape[axis] == 1 && x_shape[axis] != 1)
                .fold(values, |values, axis| B::float_sum_dim(values, axis))
        };
        let [x_parent, low_parent, range_parent, learned_parent] = ops.parents;
        if let Some(node) = learned_parent {
            // g·((q − x)/r) inside, 0 outside.
            let term = B::float_mul(
                grad.clone(),
                B::float_div(B::float_sub(quantized, x), range),
            );
            grads.register::<B>(node.id, to_params(except(term, outside.clone())));
        }
        if let Some(node) = range_parent {
            grads.register::<B>(node.id, to_params(only(grad.clone(), above)));
        }
        if let Some(node) = low_parent {
            grads.register::<B>(node.id, to_params(only(grad.clone(), outside.clone())));
        }
        if let Some(node) = x_parent {
            grads.register::<B>(node.id, except(grad, outside));
        }
    }
}
