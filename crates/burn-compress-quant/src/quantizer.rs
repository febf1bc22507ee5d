//! [`FakeQuantizer`]: the trainable state of one quantizer (scale or low/range) and its grid.

use burn::module::{Module, Param, Reparameterization};
use burn::tensor::{Device, Shape, Tensor, TensorData};

use crate::error::{QuantError, Result};
use crate::fake_quant::{fake_quantize, symmetric_low_and_range};
use crate::spec::{QuantMode, ResolvedSpec};

/// The state of one fake quantizer.
///
/// Symmetric grids learn `scale` (the upper end of the range); asymmetric grids learn
/// `input_low` and `scale`, which then holds the range width (NNCF's parameterisation).
/// Per-channel quantizers hold one value per channel of `spec.axis`.
///
/// Attached to a weight it is a Burn [`Reparameterization`] (the layer reads the quantized
/// weight through `weight.val()`); attached to an [`ActivationQuantizer`](crate::ActivationQuantizer)
/// it quantizes that layer's input.
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

    /// The broadcastable `(input_low, range)` tensors for an input of rank `D`.
    pub fn low_and_range<const D: usize>(&self) -> (Tensor<D>, Tensor<D>) {
        let mut dims = [1usize; D];
        if let Some(axis) = self.spec.axis {
            dims[axis] = self.scale.shape()[0];
        }
        let scale: Tensor<D> = self.scale.val().reshape(dims);
        match (&self.spec.mode, &self.input_low) {
            (QuantMode::Asymmetric, Some(low)) => (low.val().reshape(dims), scale),
            _ => symmetric_low_and_range(scale, self.spec.level_low, self.spec.level_high),
        }
    }

    /// Fake-quantizes `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (low, range) = self.low_and_range::<D>();
        fake_quantize(x, low, range, self.levels())
    }

    /// The current `(input_low, input_high)` per channel, read back to the host.
    pub fn range_values(&self) -> (Vec<f32>, Vec<f32>) {
        let read = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        let scale = read(self.scale.val());
        match &self.input_low {
            Some(low) => {
                let low = read(low.val());
                let high = low.iter().zip(&scale).map(|(l, r)| l + r).collect();
                (low, high)
            }
            None => {
                let ratio = self.spec.level_low as f32 / self.spec.level_high as f32;
                (scale.iter().map(|s| s * ratio).collect(), scale)
            }
        }
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
    let bad = |reason: String| QuantError::InvalidRange {
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
