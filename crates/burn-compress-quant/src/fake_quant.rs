//! The fake-quantize operation: OpenVINO `FakeQuantize` forward, NNCF learnable-range backward.
//!
//! `q = round(clamp((x - il) / r, 0, 1) * (L - 1)) / (L - 1) * r + il`, the exact operation order
//! of OpenVINO's reference (`input_low = output_low = il`, `input_high = output_high = il + r`),
//! rounding half to even. On autodiff tensors the rounding is a straight-through estimator, so
//! the gradients are NNCF's without a custom backward:
//!
//! | w.r.t. | x inside | x above | x below |
//! |---|---|---|---|
//! | x | g | 0 | 0 |
//! | r | g·(q − x)/r | g | 0 |
//! | il | 0 | g | g |
//!
//! and, for a symmetric grid parameterised by a scale `s` (`il = s·ll/lh`, `r = s·(lh−ll)/lh`):
//! `g·(q − x)/s` inside, `g` above, `g·ll/lh` below.
//!
//! In inference mode (plain tensors) the op sequence is exactly: `Sub, Div, Clamp(0,1),
//! MulScalar(L-1), Round, DivScalar(L-1), Mul, Add`. The OpenVINO exporter recognises that chain.

use burn::tensor::Tensor;

/// Fake-quantizes `x` onto `levels` evenly spaced values spanning `[input_low, input_low + range]`.
///
/// `input_low` and `range` broadcast against `x` (shape `[1, .., 1]` or one axis of size C).
/// `range` must be positive. `levels` is between 2 and 256.
pub fn fake_quantize<const D: usize>(
    x: Tensor<D>,
    input_low: Tensor<D>,
    range: Tensor<D>,
    levels: u32,
) -> Tensor<D> {
    let steps = (levels - 1) as f32;
    let scaled = x
        .sub(input_low.clone())
        .div(range.clone())
        .clamp(0.0, 1.0)
        .mul_scalar(steps);
    let rounded = if scaled.is_autodiff() {
        // Straight-through rounding: forward value round(v), gradient of v.
        let correction = scaled.clone().round().sub(scaled.clone()).detach();
        scaled.add(correction)
    } else {
        scaled.round()
    };
    rounded.div_scalar(steps).mul(range).add(input_low)
}

/// `(input_low, range)` of a symmetric grid `[level_low, level_high]` with scale `scale`:
/// `input_low = scale·level_low/level_high`, `range = scale·(level_high − level_low)/level_high`.
pub fn symmetric_low_and_range<const D: usize>(
    scale: Tensor<D>,
    level_low: i32,
    level_high: i32,
) -> (Tensor<D>, Tensor<D>) {
    let low_ratio = level_low as f32 / level_high as f32;
    let range_ratio = (level_high - level_low) as f32 / level_high as f32;
    (
        scale.clone().mul_scalar(low_ratio),
        scale.mul_scalar(range_ratio),
    )
}
