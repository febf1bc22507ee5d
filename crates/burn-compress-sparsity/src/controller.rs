//! [`SparsityController`]: drives a sparsified model's masks from the training loop (schedules,
//! mask updates, freezing), gives the method's loss term, and reports statistics.

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress_core::site::{effective_weights, host_values};
use burn_compress_core::state::{weight_tensors, write_masks};
use burn_compress_core::{ModelStats, Scheduler, Tick};
use serde::{Deserialize, Serialize};

use crate::magnitude::{importance, magnitude_masks};
use crate::method::{NmTraining, SparsityMethod};
use crate::nm::nm_mask;

/// A sparsified weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskedWeight {
    /// Parameter path (`conv1.weight`).
    pub param: String,
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Axis of input channels (N:M groups run along it).
    pub input_axis: usize,
}

/// Drives the masks of a sparsified model. Call [`step`](Self::step) after every optimizer step
/// (and [`epoch_step`](Self::epoch_step) at the end of each epoch if the controller was not told
/// the steps per epoch); add [`loss`](Self::loss) to the task loss for RB sparsity and SR-STE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityController {
    /// The method and its settings.
    pub method: SparsityMethod,
    /// The sparsified weights.
    pub weights: Vec<MaskedWeight>,
    /// The level schedule (`None` for N:M, whose level is fixed by the pattern).
    pub scheduler: Option<Scheduler>,
    /// Masks no longer change.
    pub frozen: bool,
}

impl SparsityController {
    /// The level the schedule asks for now (N:M: `1 − n/m`).
    pub fn level(&self) -> f64 {
        match (&self.method, &self.scheduler) {
            (SparsityMethod::NM(nm), _) => nm.level(),
            (_, Some(scheduler)) => scheduler.level(),
            _ => 0.0,
        }
    }

    /// Computes the masks the method asks for now from the model's weights (magnitude, N:M);
    /// `None` for RB, whose masks are learned.
    pub(crate) fn masks_for<M: Module>(
        &self,
        model: &M,
        level: f64,
    ) -> Option<HashMap<String, Vec<f32>>> {
        let values = base_weights(model, &self.weights);
        match &self.method {
            SparsityMethod::Magnitude(sparsity) => {
                let importances: Vec<Vec<f32>> = self
                    .weights
                    .iter()
                    .map(|w| importance(&values[&w.param], sparsity.importance))
                    .collect();
                let masks = magnitude_masks(&importances, level, sparsity.level_setting);
                Some(
                    self.weights
                        .iter()
                        .map(|w| w.param.clone())
                        .zip(masks)
                        .collect(),
                )
            }
            SparsityMethod::NM(nm) => Some(
                self.weights
                    .iter()
                    .map(|w| {
                        let mask = nm_mask(&values[&w.param], &w.dims, w.input_axis, nm.n, nm.m);
                        (w.param.clone(), mask)
                    })
                    .collect(),
            ),
            SparsityMethod::Rb(_) => None,
        }
    }

    /// Call after every optimizer step: advances the schedule and updates the masks when the
    /// schedule says so (every step for per-step schedules and SR-STE, at epoch ends otherwise;
    /// never once frozen). RB masks are refreshed from their logits.
    pub fn step<M: Module>(&mut self, model: &mut M) {
        let weights = &self.weights;
        let achieved = || achieved_level(model, weights);
        let tick = self.scheduler.as_mut().map(|s| s.step(achieved));
        let every_step = matches!(
            self.method,
            SparsityMethod::NM(nm) if matches!(nm.training, NmTraining::SrSte { .. })
        );
        self.apply_tick(model, tick, every_step);
    }

    /// Call at the end of each epoch when the controller does not know the steps per epoch.
    pub fn epoch_step<M: Module>(&mut self, model: &mut M) {
        let weights = &self.weights;
        let achieved = || achieved_level(model, weights);
        let tick = self.scheduler.as_mut().map(|s| s.epoch_step(achieved));
        self.apply_tick(model, tick, false);
    }

    /// Stops all mask changes from now on (RB logits stop training).
    pub fn freeze<M: Module>(&mut self, model: &mut M) {
        self.refresh_learned(model, true);
        self.frozen = true;
    }

    fn apply_tick<M: Module>(&mut self, model: &mut M, tick: Option<Tick>, every_step: bool) {
        if self.frozen {
            return;
        }
        let (level, update, freeze) = match tick {
            Some(tick) => (tick.level, tick.update, tick.frozen),
            None => (self.level(), every_step, false),
        };
        if let SparsityMethod::Rb(_) = self.method {
            self.refresh_learned(model, freeze);
        } else if update || every_step {
            self.write(model, level);
        }
        if freeze {
            self.frozen = true;
        }
    }

    /// Sets the masks for `level` now (magnitude, N:M).
    pub(crate) fn write<M: Module>(&self, model: &mut M, level: f64) {
        let Some(masks) = self.masks_for(model, level) else {
            return;
        };
        let device = mask_device(model, &self.weights);
        let tensors = masks
            .into_iter()
            .map(|(path, values)| {
                let n = values.len();
                (
                    path,
                    Tensor::from_data(TensorData::new(values, [n]), &device),
                )
            })
            .collect();
        *model = write_masks(model.clone(), &tensors, &[]);
    }

    /// RB: `keep = [logits > 0]`; with `freeze`, the logits stop training.
    fn refresh_learned<M: Module>(&self, model: &mut M, freeze: bool) {
        let paths: Vec<String> = self.weights.iter().map(|w| w.param.clone()).collect();
        let tensors = weight_tensors(model, &paths);
        let keep: HashMap<String, Tensor<1>> = tensors
            .into_iter()
            .filter_map(|(path, t)| {
                let keep = t.logits?.detach().greater_elem(0.0).float();
                Some((path, keep))
            })
            .collect();
        if keep.is_empty() {
            return;
        }
        let frozen = if freeze { paths } else { Vec::new() };
        *model = write_masks(model.clone(), &keep, &frozen);
    }

    /// The sparsity the model has reached over the sparsified weights.
    pub fn achieved_level<M: Module>(&self, model: &M) -> f64 {
        achieved_level(model, &self.weights)
    }

    /// The method's loss term, to add to the task loss: RB's `((density − (1 − level)) / 0.05)²`
    /// (its density from the deterministic masks `[σ(s) > ½]`, straight-through), or SR-STE's
    /// `λ/2·Σ‖(1 − M) ⊙ w‖²`. `None` for methods without one or once frozen.
    pub fn loss<M: Module>(&self, model: &M) -> Option<Tensor<1>> {
        let with_loss = match &self.method {
            SparsityMethod::Rb(_) => true,
            SparsityMethod::NM(nm) => matches!(nm.training, NmTraining::SrSte { .. }),
            SparsityMethod::Magnitude(_) => false,
        };
        if self.frozen || !with_loss {
            return None;
        }
        let paths: Vec<String> = self.weights.iter().map(|w| w.param.clone()).collect();
        let tensors = weight_tensors(model, &paths);
        match &self.method {
            SparsityMethod::Rb(rb) => {
                let mut kept: Option<Tensor<1>> = None;
                let mut total = 0usize;
                for path in &paths {
                    let t = tensors.get(path)?;
                    let logits = t.logits.clone()?;
                    total += logits.shape().num_elements();
                    let probability = burn::tensor::activation::sigmoid(logits);
                    let hard = probability.clone().greater_elem(0.5).float();
                    let sum = probability
                        .clone()
                        .add(hard.sub(probability).detach())
                        .sum();
                    kept = Some(match kept {
                        Some(k) => k.add(sum),
                        None => sum,
                    });
                }
                let density = kept?.div_scalar(total.max(1) as f64);
                let target_density = 1.0 - self.level();
                Some(
                    density
                        .sub_scalar(target_density)
                        .div_scalar(rb.loss_scale)
                        .powi_scalar(2),
                )
            }
            SparsityMethod::NM(nm) => {
                let NmTraining::SrSte { lambda } = nm.training else {
                    return None;
                };
                let mut penalty: Option<Tensor<1>> = None;
                for path in &paths {
                    let t = tensors.get(path)?;
                    let removed = t.keep.clone()?.neg().add_scalar(1.0);
                    let term = t.weight.clone().mul(removed).powi_scalar(2).sum();
                    penalty = Some(match penalty {
                        Some(p) => p.add(term),
                        None => term,
                    });
                }
                Some(penalty?.mul_scalar(lambda / 2.0))
            }
            SparsityMethod::Magnitude(_) => None,
        }
    }

    /// Statistics of the model: per-weight sparsity and parameter counts.
    pub fn statistics<M: Module>(&self, model: &M) -> SparsityStatistics {
        SparsityStatistics {
            method: self.method.name().to_string(),
            level: self.level(),
            frozen: self.frozen,
            model: ModelStats::of(model),
        }
    }
}

/// Fraction of zeros of the sparsified weights, masks applied.
fn achieved_level<M: Module>(model: &M, weights: &[MaskedWeight]) -> f64 {
    let values = effective_weights(model);
    let (zeros, total) = weights.iter().fold((0, 0), |(z, t), w| {
        let v = &values[&w.param].1;
        (z + v.iter().filter(|&&x| x == 0.0).count(), t + v.len())
    });
    zeros as f64 / total.max(1) as f64
}

/// The dense (base) values of the sparsified weights: importance is measured on them, so a
/// removed weight that would matter again comes back when masks are recomputed.
fn base_weights<M: Module>(model: &M, weights: &[MaskedWeight]) -> HashMap<String, Vec<f32>> {
    let paths: Vec<String> = weights.iter().map(|w| w.param.clone()).collect();
    weight_tensors(model, &paths)
        .into_iter()
        .map(|(path, t)| (path, host_values(t.weight)))
        .collect()
}

/// The device masks live on: that of the first sparsified weight.
fn mask_device<M: Module>(model: &M, weights: &[MaskedWeight]) -> Device {
    let paths: Vec<String> = weights.iter().take(1).map(|w| w.param.clone()).collect();
    weight_tensors(model, &paths)
        .into_values()
        .next()
        .map(|t| t.weight.device())
        .unwrap_or_else(Device::flex)
}

/// What a sparsified model looks like now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SparsityStatistics {
    /// The method.
    pub method: String,
    /// The scheduled level now.
    pub level: f64,
    /// Whether masks are frozen.
    pub frozen: bool,
    /// Per-weight sparsity and parameter counts.
    pub model: ModelStats,
}

impl std::fmt::Display for SparsityStatistics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} sparsity, scheduled level {:.2}%{}",
            self.method,
            100.0 * self.level,
            if self.frozen { " (frozen)" } else { "" }
        )?;
        write!(f, "{}", self.model)
    }
}
