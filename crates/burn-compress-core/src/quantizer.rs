//! [`FakeQuantizer`]: the trainable state of one quantizer (scale or low/range) and its grid.

use burn::module::{Module, Param, Reparameterization};
use burn::tensor::{Device, Shape, Tensor, TensorData};

use crate::error::{CoreError, Result};
use crate::fake_quant::{
    fake_quantize_symmetric, fake_quantize_trainable, safe_magnitude, symmetric_low_and_range,
    tune_range, Form,
};
use crate::grid::{QuantMode, ResolvedSpec};

/// The state of one fake quantizer.
///
/// Symmetric grids learn `scale` (the upper end of the range); asymmetric grids learn
/// `input_low` and `scale`, which then holds the range width (NNCF's parameterisation).
/// Per-channel quantizers hold one value per channel of `spec.axis`.
///
/// On a weight it is the quantizer stage of its [`WeightTransform`](crate::WeightTransform) (the
/// layer reads the quantized weight through `weight.val()`); as the Burn [`Reparameterization`]
/// of an activation quantizer slot it quantizes that layer's input.
#[derive(Module, Debug)]
pub struct FakeQuantizer {
    /// Symmetric: the scale `s` (`input_high`). Asymmetric: the range width.
    pub scale: Param<Tensor<1>>,
    /// Asymmetric only: the low end of the range.
    pub input_low: Option<Param<Tensor<1>>>,
    /// The integer grid and channel axis.
    #[module(skip)]
    pub spec: ResolvedSpec,
}

impl FakeQuantizer {
    /// A quantizer with the given grid and initial range `(input_low, input_high)` per channel.
    ///
    /// For symmetric grids the scale is `input_high`; `input_low` must then equal
    /// `input_high·level_low/level_high` (it is not stored). The error names `path`.
    pub fn new(
        spec: ResolvedSpec,
        lows: &[f32],
        highs: &[f32],
        path: &str,
        device: &Device,
    ) -> Result<Self> {
        check_range(lows, highs, path)?;
        let n = highs.len();
        let param =
            |values: Vec<f32>| Param::from_data(TensorData::new(values, Shape::new([n])), device);
        let (scale, input_low) = match spec.mode {
            QuantMode::Symmetric => (param(highs.to_vec()), None),
            QuantMode::Asymmetric => {
                let ranges = lows.iter().zip(highs).map(|(l, h)| h - l).collect();
                (param(ranges), Some(param(lows.to_vec())))
            }
        };
        Ok(Self {
            scale,
            input_low,
            spec,
        })
    }

    /// Number of quantization levels.
    pub fn levels(&self) -> u32 {
        self.spec.levels()
    }

    /// The quantizer's effective `(input_low, range)` per channel, as NNCF computes them from the
    /// parameters at every forward: `|s| + eps` for a symmetric scale (`input_low = s'·ll/lh`,
    /// `range = s' − input_low`); `|r| + eps` then TuneRange for an asymmetric range, so 0.0 is
    /// exactly a level whatever the optimizer did to the parameters.
    pub fn effective_low_and_range(&self) -> (Tensor<1>, Tensor<1>) {
        let magnitude = safe_magnitude(self.scale.val());
        match (&self.spec.mode, &self.input_low) {
            (QuantMode::Asymmetric, Some(low)) => tune_range(low.val(), magnitude, self.levels()),
            _ => symmetric_low_and_range(magnitude, self.spec.level_low, self.spec.level_high),
        }
    }

    /// Shape `[1, .., C, .., 1]` (C on the channel axis) that broadcasts a per-channel range
    /// against an input of rank `D`.
    fn broadcast_dims<const D: usize>(&self) -> [usize; D] {
        let mut dims = [1usize; D];
        if let Some(axis) = self.spec.axis {
            dims[axis] = self.scale.shape()[0];
        }
        dims
    }

    /// Fake-quantizes an activation `x` with OpenVINO's `FakeQuantize` formula (NNCF's
    /// gradients on autodiff tensors).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.quantize(x, Form::FakeQuantize)
    }

    /// Fake-quantizes a weight as integer levels times the step, the value its integer
    /// constant has in the exported IR (NNCF's gradients on autodiff tensors).
    pub fn forward_weight<const D: usize>(&self, weight: Tensor<D>) -> Tensor<D> {
        self.quantize(weight, Form::Integer)
    }

    fn quantize<const D: usize>(&self, x: Tensor<D>, form: Form) -> Tensor<D> {
        let dims = self.broadcast_dims::<D>();
        let levels = self.levels();
        match (&self.spec.mode, &self.input_low) {
            (QuantMode::Asymmetric, Some(_)) => {
                let (low, range) = self.effective_low_and_range();
                let range: Tensor<D> = range.reshape(dims);
                fake_quantize_trainable(x, low.reshape(dims), range.clone(), range, levels, form)
            }
            _ => {
                let scale = safe_magnitude(self.scale.val()).reshape(dims);
                fake_quantize_symmetric(x, scale, self.spec.level_low, self.spec.level_high, form)
            }
        }
    }

    /// The effective `(input_low, input_high)` per channel, read back to the host.
    pub fn range_values(&self) -> (Vec<f32>, Vec<f32>) {
        let read = |t: Tensor<1>| {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        let (low, range) = self.effective_low_and_range();
        let (low, range) = (read(low.detach()), read(range.detach()));
        let high = low.iter().zip(&range).map(|(l, r)| l + r).collect();
        (low, high)
    }

    /// Checks that the effective range of every channel is finite and not empty; the error
    /// names `path`. Training can drive parameters to NaN or infinity; export calls this.
    pub fn check(&self, path: &str) -> Result<()> {
        let (lows, highs) = self.range_values();
        check_range(&lows, &highs, path)
    }
}

impl Reparameterization for FakeQuantizer {
    const NAME: &'static str = "fake_quant";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        self.forward(base)
    }
}

/// Checks that every `(low, high)` pair is finite with `high > low`.
pub(crate) fn check_range(lows: &[f32], highs: &[f32], path: &str) -> Result<()> {
    let bad = |reason: String| CoreError::InvalidRange {
        path: path.to_string(),
        reason,
    };
    if lows.len() != highs.len() || highs.is_empty() {
        return Err(bad(format!(
            "{} low values for {} high values",
            lows.len(),
            highs.len()
        )));
    }
    for (channel, (low, high)) in lows.iter().zip(highs).enumerate() {
        if !low.is_finite() || !high.is_finite() {
            return Err(bad(format!(
                "channel {channel}: [{low}, {high}] is not finite"
            )));
        }
        if high <= low || *high <= 0.0 && *low == 0.0 {
            return Err(bad(format!(
                "channel {channel}: [{low}, {high}] is empty or negative"
            )));
        }
    }
    Ok(())
}
