//! The fake-quantize operation: OpenVINO `FakeQuantize` forward, NNCF 3.4's learnable-range
//! backward, and NNCF's range safety (`|s| + eps`, TuneRange).
//!
//! `q = round(clamp((x - il) / r, 0, 1) * (L - 1)) / (L - 1) * r + il`, the exact operation order
//! of OpenVINO's reference (`input_low = output_low = il`, `input_high = output_high = il + r`),
//! rounding half to even. In inference mode (plain tensors) the op sequence is exactly: `Sub, Div,
//! Clamp(0,1), MulScalar(L-1), Round, DivScalar(L-1), Mul, Add`, which the OpenVINO exporter
//! recognises; everything that computes `il` and `r` from a quantizer's parameters uses only ops
//! that fold into constants (arithmetic, `abs`, `clamp`, `round`).
//!
//! On autodiff tensors ([`fake_quantize_trainable`]) the value is exactly the inference chain's
//! and the gradients are the ones NNCF's code computes (`reference.py`,
//! `quantize_functions.py`), written with `detach` and no custom backward:
//!
//! | w.r.t. | x inside | x above | x below |
//! |---|---|---|---|
//! | x | g | 0 | 0 |
//! | range (asymmetric) or scale (symmetric) | g·(q − x)/r | g | g·level_low/level_high (0 for asymmetric) |
//! | input_low (asymmetric) | 0 | g | g |
//!
//! The inside term divides by the range `r`, also for a symmetric scale (`r ≈ 2s` on a signed
//! grid): NNCF's formula, not the exact derivative of the forward.

use burn::tensor::activation::relu;
use burn::tensor::Tensor;

use crate::fused;

/// NNCF's `eps`, added to `|scale|` and `|range|` so a range is never empty or negative.
pub const RANGE_EPS: f32 = 1e-16;

/// Fake-quantizes `x` onto `levels` evenly spaced values spanning `[input_low, input_low + range]`
/// with OpenVINO's operation order (the chain the exporter recognises), on any tensors: no
/// gradient flows through the rounding. Quantizers train through [`fake_quantize_trainable`].
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
    level_index(x, input_low.clone(), range.clone(), steps)
        .div_scalar(steps)
        .mul(range)
        .add(input_low)
}

/// `k = round(clamp((x − il)/r, 0, 1)·steps)`: the level both forms start from.
fn level_index<const D: usize>(
    x: Tensor<D>,
    input_low: Tensor<D>,
    range: Tensor<D>,
    steps: f32,
) -> Tensor<D> {
    x.sub(input_low)
        .div(range)
        .clamp(0.0, 1.0)
        .mul_scalar(steps)
        .round()
}

/// Fake-quantizes `x` as an integer grid times a step, `(k − zp)·step` with
/// `k = round(clamp((x − il)/r, 0, 1)·(L − 1))`, `zp = round(−il/r·(L − 1))`, `step = r/(L − 1)`:
/// what a quantized weight computes in the exported IR (`Convert(i8) → Multiply(step)`) and what
/// NNCF's forward computes. 0.0 stays exactly 0.0 when `il` is aligned to the grid (symmetric
/// grids, tuned asymmetric ones). No gradient flows through the rounding.
///
/// On plain tensors the op sequence is `Sub, Div, Clamp(0,1), MulScalar(L-1), Round,
/// Sub(zp), Mul(step)`, which the OpenVINO exporter recognises as a quantized weight.
pub fn fake_quantize_integer<const D: usize>(
    x: Tensor<D>,
    input_low: Tensor<D>,
    range: Tensor<D>,
    levels: u32,
) -> Tensor<D> {
    let steps = (levels - 1) as f32;
    let zero_point = input_low
        .clone()
        .neg()
        .div(range.clone())
        .mul_scalar(steps)
        .round();
    let step = range.clone().div_scalar(steps);
    level_index(x, input_low, range, steps)
        .sub(zero_point)
        .mul(step)
}

/// Scalar counterparts of [`fake_quantize`] and [`fake_quantize_integer`] for values on the host
/// (range search, weight lowering): the same operation order and rounding (half to even), so
/// host and tensor code land on the same level for every input.
pub mod host {
    /// `k = round(clamp((x − low)/range, 0, 1)·(levels − 1))`.
    #[inline(always)]
    pub fn level(x: f32, low: f32, range: f32, levels: u32) -> f32 {
        round_level(((x - low) / range).clamp(0.0, 1.0) * (levels - 1) as f32)
    }

    /// Rounds `v` half to even, for `v` in `[0, 2^22]` or NaN (a clamped level): adding and
    /// subtracting `1.5·2^23` leaves the nearest integer, ties to even, exactly as
    /// `f32::round_ties_even`; the sign is copied back so `−0.0` stays `−0.0`. Unlike
    /// `round_ties_even` (a library call on baseline x86-64) this vectorises.
    #[inline(always)]
    pub fn round_level(v: f32) -> f32 {
        const SHIFT: f32 = 12_582_912.0; // 1.5·2^23
        ((v + SHIFT) - SHIFT).copysign(v)
    }

    /// The integer form's value of level `level`: `(level − zero_point)·step`, with
    /// `step = range/(levels − 1)`.
    #[inline(always)]
    pub fn integer_value(level: f32, zero_point: f32, step: f32) -> f32 {
        (level - zero_point) * step
    }

    /// OpenVINO's form: `k/(levels − 1)·range + low`.
    #[inline(always)]
    pub fn fake_quantize(x: f32, low: f32, range: f32, levels: u32) -> f32 {
        level(x, low, range, levels) / (levels - 1) as f32 * range + low
    }

    /// The grid's zero point, `round(−low/range·(levels − 1))`: level `zp` is 0.0 when `low` is
    /// aligned to the grid.
    pub fn zero_point(low: f32, range: f32, levels: u32) -> f32 {
        (-low / range * (levels - 1) as f32).round_ties_even()
    }
}

/// Which arithmetic a fake-quantizer's value follows; both land on the same grid points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// OpenVINO's `FakeQuantize` formula ([`fake_quantize`]): activations, exported as
    /// `FakeQuantize` layers.
    FakeQuantize,
    /// Integer level times step ([`fake_quantize_integer`]): weights, exported as integer
    /// constants.
    Integer,
}

impl Form {
    /// Fake-quantizes `x` in this form (plain op chain, no gradient through the rounding).
    pub fn apply<const D: usize>(
        self,
        x: Tensor<D>,
        input_low: Tensor<D>,
        range: Tensor<D>,
        levels: u32,
    ) -> Tensor<D> {
        match self {
            Form::FakeQuantize => fake_quantize(x, input_low, range, levels),
            Form::Integer => fake_quantize_integer(x, input_low, range, levels),
        }
    }
}

/// `(input_low, range)` of a symmetric grid `[level_low, level_high]` with scale `scale`, as NNCF
/// computes them: `input_low = scale·level_low/level_high`, `range = scale − input_low`.
pub fn symmetric_low_and_range<const D: usize>(
    scale: Tensor<D>,
    level_low: i32,
    level_high: i32,
) -> (Tensor<D>, Tensor<D>) {
    let low = scale
        .clone()
        .mul_scalar(level_low as f32 / level_high as f32);
    let range = scale.sub(low.clone());
    (low, range)
}

/// The tensors a trainable fake-quantize reads: the input, the range `[input_low, input_low +
/// range]` (broadcast against `x`), and the parameter that gets NNCF's inside term.
#[derive(Clone, Debug)]
pub struct Operands<const D: usize> {
    /// The input.
    pub x: Tensor<D>,
    /// The low end of the range.
    pub input_low: Tensor<D>,
    /// The range's width (positive).
    pub range: Tensor<D>,
    /// The scale of a symmetric grid, the range of an asymmetric one.
    pub learned: Tensor<D>,
}

/// Fake-quantizes `x` over `[input_low, input_low + range]` in `form`, with NNCF's gradients.
///
/// The value is exactly the plain chain's. Gradients: `x` gets `g` inside the range and 0
/// outside; `input_low` gets `g` below, `input_low + range` gets `g` above (through whatever
/// `input_low` and `range` are computed from); and `learned` (the scale of a symmetric grid, the
/// range of an asymmetric one) gets NNCF's inside term `g·(q − x)/range`, computed directly as
/// NNCF does. On plain tensors this is the plain chain.
///
/// On autodiff tensors it is one fused operation where [`fused::supports`] holds (Flex, or a
/// CubeCL device such as wgpu with the `wgpu` feature; `f32`; per-tensor or per-axis ranges) and
/// [`fake_quantize_trainable_unfused`] elsewhere; both give the same values bit for bit and the
/// same per-element gradients.
pub fn fake_quantize_trainable<const D: usize>(
    x: Tensor<D>,
    input_low: Tensor<D>,
    range: Tensor<D>,
    learned: Tensor<D>,
    levels: u32,
    form: Form,
) -> Tensor<D> {
    let operands = Operands {
        x,
        input_low,
        range,
        learned,
    };
    if fused::supports(&operands) {
        return fused::fake_quantize(operands, levels, form);
    }
    fake_quantize_trainable_unfused(operands, levels, form)
}

/// [`fake_quantize_trainable`] composed of Burn tensor operations (with `detach`, no custom
/// backward): what runs on devices without the fused operation, and its reference.
pub fn fake_quantize_trainable_unfused<const D: usize>(
    operands: Operands<D>,
    levels: u32,
    form: Form,
) -> Tensor<D> {
    let Operands {
        x,
        input_low,
        range,
        learned,
    } = operands;
    let autodiff = x.is_autodiff() || range.is_autodiff() || input_low.is_autodiff();
    if !autodiff {
        return form.apply(x, input_low, range, levels);
    }
    let (xd, low_d, range_d) = (
        x.clone().detach(),
        input_low.clone().detach(),
        range.clone().detach(),
    );
    let q = form.apply(xd.clone(), low_d.clone(), range_d.clone(), levels);
    // clamp(x, low, high) written with ReLUs: its gradient is 1 for x inside, 1 for low below,
    // 1 for high above (NNCF's masks are strict: x == low or x == high counts as inside).
    let high = input_low.clone().add(range);
    let clamped = x
        .clone()
        .sub(relu(x.clone().sub(high)))
        .add(relu(input_low.sub(x)));
    let high_d = low_d.clone().add(range_d.clone());
    let outside = xd
        .clone()
        .lower(low_d.expand(xd.dims()))
        .bool_or(xd.clone().greater(high_d.expand(xd.dims())));
    let inside_term = q.clone().sub(xd).div(range_d).mask_fill(outside, 0.0);
    // Both added terms are exactly zero in value.
    let through_clamp = clamped.clone().sub(clamped.detach());
    let through_learned = learned.clone().sub(learned.detach()).mul(inside_term);
    q.add(through_clamp).add(through_learned)
}

/// Fake-quantizes `x` in `form` on the symmetric grid `[level_low, level_high]` with scale
/// `scale` (already made safe, see [`safe_magnitude`]), as NNCF does: `input_low = s·ll/lh`, `range = s − input_low`;
/// on autodiff tensors the scale gets `g·(q − x)/range` inside, `g` above, `g·ll/lh` below.
pub fn fake_quantize_symmetric<const D: usize>(
    x: Tensor<D>,
    scale: Tensor<D>,
    level_low: i32,
    level_high: i32,
    form: Form,
) -> Tensor<D> {
    let levels = (level_high - level_low + 1) as u32;
    let (low, range) = symmetric_low_and_range(scale.clone(), level_low, level_high);
    fake_quantize_trainable(x, low, range, scale, levels, form)
}

/// NNCF's safe magnitude `|v| + eps` of a scale or range (gradient `sign(v)`).
pub fn safe_magnitude<const D: usize>(value: Tensor<D>) -> Tensor<D> {
    value.abs().add_scalar(RANGE_EPS)
}

/// NNCF's TuneRange: moves an asymmetric range `[input_low, input_low + range]` so that 0.0 is
/// exactly one of its `levels` values, keeping the wider of the two candidate ranges. Returns the
/// tuned `(input_low, range)`; on autodiff tensors their gradients pass straight through to the
/// inputs.
///
/// Written without comparisons (only arithmetic, `clamp` and `round`), so that an exported graph
/// folds it into constants. With `n = L − 1`, `il0 = min(il, 0)`, `ih0 = max(il + r, 0)` and
/// `zp = round(−il0·n/(ih0 − il0))`: candidate 1 keeps `ih0` and sets `il = zp/(zp − n)·ih0`
/// (when `zp < n`), candidate 2 keeps `il0` and sets `ih = (zp − n)/zp·il0` (when `zp > 0`);
/// candidate 1 is wider exactly when rounding moved the zero point up.
pub fn tune_range<const D: usize>(
    input_low: Tensor<D>,
    range: Tensor<D>,
    levels: u32,
) -> (Tensor<D>, Tensor<D>) {
    let autodiff = input_low.is_autodiff() || range.is_autodiff();
    let (low_d, range_d) = if autodiff {
        (input_low.clone().detach(), range.clone().detach())
    } else {
        (input_low.clone(), range.clone())
    };
    let n = (levels - 1) as f32;
    let low0 = low_d.clone().clamp_max(0.0);
    let high0 = low_d.add(range_d).clamp_min(0.0);
    let exact_zero_point = low0
        .clone()
        .neg()
        .mul(high0.clone().sub(low0.clone()).recip().mul_scalar(n));
    let zero_point = exact_zero_point.clone().round();
    // 1 where zp < n (resp. zp > 0), else 0; zp is a whole number in [0, n].
    let below_top = zero_point.clone().neg().add_scalar(n).clamp(0.0, 1.0);
    let above_bottom = zero_point.clone().clamp(0.0, 1.0);
    let keep_low = below_top.clone().neg().add_scalar(1.0);
    let keep_high = above_bottom.clone().neg().add_scalar(1.0);
    // Candidate 1: new low for the kept high (the denominator is nudged where unused).
    let new_low = zero_point
        .clone()
        .div(zero_point.clone().sub_scalar(n).sub(keep_low.clone()))
        .mul(high0.clone())
        .mul(below_top)
        .add(low0.clone().mul(keep_low));
    // Candidate 2: new high for the kept low.
    let new_high = zero_point
        .clone()
        .sub_scalar(n)
        .div(zero_point.clone().add(keep_high.clone()))
        .mul(low0.clone())
        .mul(above_bottom)
        .add(high0.clone().mul(keep_high));
    // 1 when zp > the exact zero point (candidate 1 wider), else 0: round(d + 1/2) with
    // d = zp − exact in [−1/2, 1/2] rounds half to even, so d = 0 gives 0.
    let first = zero_point
        .sub(exact_zero_point)
        .add_scalar(0.5)
        .round()
        .clamp(0.0, 1.0);
    let second = first.clone().neg().add_scalar(1.0);
    let tuned_low = new_low.mul(first.clone()).add(low0.mul(second.clone()));
    let tuned_high = new_high.mul(second).add(high0.mul(first));
    let tuned_range = tuned_high.sub(tuned_low.clone());
    if !autodiff {
        return (tuned_low, tuned_range);
    }
    // Values exactly the tuned ones, gradients those of the untuned inputs.
    let pass =
        |original: Tensor<D>, tuned: Tensor<D>| original.clone().sub(original.detach()).add(tuned);
    (pass(input_low, tuned_low), pass(range, tuned_range))
}
