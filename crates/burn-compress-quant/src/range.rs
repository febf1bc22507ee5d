//! Range initialisers: from calibration statistics (or weight values) to quantizer ranges.

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};
use burn_compress_core::calibration::Observation;
use burn_compress_core::fake_quant::host;
use burn_compress_core::{QuantMode, ResolvedSpec};

/// Smallest range width a quantizer is given (dead channels would otherwise get none).
pub const MIN_RANGE: f32 = 1e-6;

/// How activation ranges are computed from calibration statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RangeInit {
    /// Global minimum and maximum over all batches.
    MinMax,
    /// Mean over batches of each batch's minimum and maximum (NNCF's default).
    MeanMinMax,
    /// Percentiles of the sampled values, in percent (e.g. 0.1 and 99.9).
    Percentile {
        /// Lower percentile, 0 to 100.
        min_percentile: f32,
        /// Upper percentile, above `min_percentile`, up to 100.
        max_percentile: f32,
    },
    /// The min-max range shrunk by the factor (0.3 to 1.0) that minimises the mean squared
    /// quantization error on the sampled values.
    MseSearch,
}

impl RangeInit {
    /// Checks the initialiser's parameters; the error names the field at fault.
    pub fn validate(&self) -> Result<()> {
        if let RangeInit::Percentile {
            min_percentile,
            max_percentile,
        } = self
        {
            let ok = (0.0..=100.0).contains(min_percentile)
                && (0.0..=100.0).contains(max_percentile)
                && min_percentile < max_percentile;
            if !ok {
                return Err(QuantError::InvalidSpec {
                    field: "range_init.min_percentile/max_percentile",
                    value: format!("{min_percentile}/{max_percentile}"),
                    reason: "need 0 <= min_percentile < max_percentile <= 100".into(),
                });
            }
        }
        Ok(())
    }

    /// Per-channel `(mins, maxs)` of the observed values (one channel when `per_channel` is false).
    pub fn statistics(
        &self,
        observation: &Observation,
        per_channel: bool,
        path: &str,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if observation.non_finite > 0 {
            return Err(QuantError::Calibration(format!(
                "the input of `{path}` holds {} NaN or infinite values",
                observation.non_finite
            )));
        }
        if observation.batch_mins.is_empty() {
            return Err(QuantError::Calibration(format!(
                "no calibration batch reached `{path}`"
            )));
        }
        let collapse = |per_batch: &[Vec<f32>], is_min: bool| -> Vec<Vec<f32>> {
            if per_channel {
                per_batch.to_vec()
            } else {
                per_batch.iter().map(|c| vec![fold(c, is_min)]).collect()
            }
        };
        let mins = collapse(&observation.batch_mins, true);
        let maxs = collapse(&observation.batch_maxs, false);
        let channels = mins[0].len();
        let over_batches = |per_batch: &[Vec<f32>], pick: fn(f32, f32) -> f32, mean: bool| {
            (0..channels)
                .map(|c| {
                    let values = per_batch.iter().map(|b| b[c]);
                    if mean {
                        values.sum::<f32>() / per_batch.len() as f32
                    } else {
                        values.reduce(pick).unwrap_or(0.0)
                    }
                })
                .collect::<Vec<f32>>()
        };
        match self {
            RangeInit::MinMax => Ok((
                over_batches(&mins, f32::min, false),
                over_batches(&maxs, f32::max, false),
            )),
            RangeInit::MeanMinMax => Ok((
                over_batches(&mins, f32::min, true),
                over_batches(&maxs, f32::max, true),
            )),
            RangeInit::Percentile {
                min_percentile,
                max_percentile,
            } => {
                per_tensor_only(per_channel, "percentile", path)?;
                let mut sorted = observation.samples.clone();
                sorted.sort_by(f32::total_cmp);
                Ok((
                    vec![percentile(&sorted, *min_percentile)],
                    vec![percentile(&sorted, *max_percentile)],
                ))
            }
            RangeInit::MseSearch => {
                per_tensor_only(per_channel, "mse_search", path)?;
                Ok((
                    over_batches(&mins, f32::min, false),
                    over_batches(&maxs, f32::max, false),
                ))
            }
        }
    }
}

fn fold(channels: &[f32], is_min: bool) -> f32 {
    let pick = if is_min { f32::min } else { f32::max };
    channels.iter().copied().reduce(pick).unwrap_or(0.0)
}

fn per_tensor_only(per_channel: bool, name: &str, path: &str) -> Result<()> {
    if per_channel {
        return Err(QuantError::InvalidSpec {
            field: "range_init.type",
            value: name.into(),
            reason: format!(
                "supports per-tensor activation quantizers only (`{path}` is per-channel)"
            ),
        });
    }
    Ok(())
}

/// Linear-interpolated percentile (in percent) of sorted values.
fn percentile(sorted: &[f32], percent: f32) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = percent / 100.0 * (sorted.len() - 1) as f32;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let weight = position - below as f32;
    sorted[below] * (1.0 - weight) + sorted[above] * weight
}

/// The quantizer range `(input_lows, input_highs)` for observed per-channel `(mins, maxs)`.
///
/// Symmetric: `high = max(|min|, |max|)` (signed) or `max` (unsigned), `low = high·ll/lh`.
/// Asymmetric: the range is widened to hold 0 and shifted so that 0.0 falls exactly on a level.
pub fn grid_range(spec: &ResolvedSpec, mins: &[f32], maxs: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let ratio = spec.level_low as f32 / spec.level_high as f32;
    let steps = (spec.level_high - spec.level_low) as f32;
    mins.iter()
        .zip(maxs)
        .map(|(&min, &max)| match spec.mode {
            QuantMode::Symmetric => {
                let high = if spec.is_signed() {
                    min.abs().max(max.abs())
                } else {
                    max.max(0.0)
                }
                .max(MIN_RANGE);
                (high * ratio, high)
            }
            QuantMode::Asymmetric => {
                let low = min.min(0.0);
                let range = (max.max(0.0) - low).max(MIN_RANGE);
                let step = range / steps;
                let low = -host::zero_point(low, range, spec.levels()) * step;
                (low, low + range)
            }
        })
        .unzip()
}

/// Shrinks a per-tensor `(low, high)` range by the factor in 0.3..=1.0 that minimises the mean
/// squared quantization error of `samples`.
pub fn mse_search(spec: &ResolvedSpec, low: f32, high: f32, samples: &[f32]) -> (f32, f32) {
    let levels = spec.levels();
    let error = |low: f32, high: f32| -> f64 {
        let range = high - low;
        samples
            .iter()
            .map(|&x| {
                let q = host::fake_quantize(x, low, range, levels);
                ((q - x) as f64).powi(2)
            })
            .sum()
    };
    let mut best = (error(low, high), low, high);
    for step in 0..35 {
        let factor = 0.3 + step as f32 * 0.02;
        let (candidate_low, candidate_high) = (low * factor, high * factor);
        let candidate = error(candidate_low, candidate_high);
        if candidate < best.0 {
            best = (candidate, candidate_low, candidate_high);
        }
    }
    (best.1, best.2)
}
