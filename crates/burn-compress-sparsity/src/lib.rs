//! Sparsity for Burn models: magnitude (`abs`, `normed_abs`; global or local levels), learned
//! RB sparsity, and N:M semi-structured sparsity (fixed masks or SR-STE), with NNCF's level
//! schedules. Masks are the first stage of each weight's
//! [`WeightTransform`](burn_compress_core::WeightTransform), so they compose with fake-quantizers
//! in either order: `w' = FQ(mask ⊙ w)`.
//!
//! ```no_run
//! # use burn::module::Module;
//! # fn demo<M: Module>(model: M) -> burn_compress_sparsity::Result<M> {
//! use burn_compress_core::{LevelSchedule, Schedule};
//! use burn_compress_sparsity::{sparsify, Sparsity};
//! let (mut model, mut controller) = sparsify(model)
//!     .magnitude(Sparsity::scheduled(LevelSchedule::new(Schedule::polynomial(), 0.0, 0.5, 3.0)))
//!     .ignore("fc2")
//!     .steps_per_epoch(125)
//!     .build()?;
//! // in the training loop, after each optimizer step:
//! controller.step(&mut model);
//! # Ok(model) }
//! ```

#![warn(missing_docs)]

pub mod controller;
pub mod error;
pub mod magnitude;
pub mod method;
pub mod nm;

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use burn_compress_core::scope::{check_scopes_match, Scope};
use burn_compress_core::site::{effective_weights, weight_sites, WeightSite};
use burn_compress_core::{attach, Attachment, MaskGradient, Scheduler, WeightMask};

pub use controller::{MaskedWeight, SparsityController, SparsityStatistics};
pub use error::{Result, SparsityError};
pub use magnitude::{Importance, LevelMode};
pub use method::{NmSparsity, NmTraining, RbInit, RbSparsity, Sparsity, SparsityMethod};

/// Starts sparsifying `model`'s Conv/Linear weights; choose one method, then
/// [`build`](SparsifyBuilder::build).
pub fn sparsify<M: Module>(model: M) -> SparsifyBuilder<M> {
    SparsifyBuilder {
        model,
        method: None,
        ignored: Vec::new(),
        steps_per_epoch: None,
    }
}

/// Collects the sparsity settings for one model; see [`sparsify`].
pub struct SparsifyBuilder<M> {
    model: M,
    method: Option<SparsityMethod>,
    ignored: Vec<String>,
    steps_per_epoch: Option<usize>,
}

impl<M: Module> SparsifyBuilder<M> {
    /// Magnitude sparsity.
    pub fn magnitude(mut self, sparsity: Sparsity) -> Self {
        self.method = Some(SparsityMethod::Magnitude(sparsity));
        self
    }

    /// Regularization-based (learned) sparsity; add the controller's loss to the task loss.
    pub fn rb(mut self, sparsity: RbSparsity) -> Self {
        self.method = Some(SparsityMethod::Rb(sparsity));
        self
    }

    /// N:M semi-structured sparsity.
    pub fn n_m(mut self, nm: NmSparsity) -> Self {
        self.method = Some(SparsityMethod::NM(nm));
        self
    }

    /// Any method, e.g. read from a config.
    pub fn method(mut self, method: SparsityMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Leaves the weights under `scope` dense: a module path (`fc2`, which also covers
    /// `fc2.linear`) or a regular expression written `re:<regex>`.
    pub fn ignore(mut self, scope: impl Into<String>) -> Self {
        self.ignored.push(scope.into());
        self
    }

    /// Optimizer steps per epoch: epochs then advance with
    /// [`SparsityController::step`], and per-step schedules work.
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// Attaches the masks at the level of epoch 0 and returns the model with its controller.
    /// Every setting is checked first; on error the model is dropped unchanged and the error
    /// names the setting or layer at fault.
    pub fn build(self) -> Result<(M, SparsityController)> {
        let method = self.method.ok_or_else(|| SparsityError::Setting {
            setting: "method",
            reason: "choose magnitude, rb or n_m".into(),
        })?;
        let sites = weight_sites(&self.model);
        let selected = select(&sites, &self.ignored)?;
        let scheduler = check_method(&method, &selected, self.steps_per_epoch)?;
        let mut controller = SparsityController {
            method,
            weights: selected
                .iter()
                .map(|site| MaskedWeight {
                    param: site.param.clone(),
                    dims: site.dims.clone(),
                    input_axis: site.kind.input_axis(),
                })
                .collect(),
            scheduler,
            frozen: false,
        };
        let attachments = initial_masks(&self.model, &controller, &selected);
        let mut model = attach(self.model, attachments)?;
        if let Some(tick) = controller.scheduler.as_ref().map(Scheduler::start) {
            controller.frozen = tick.frozen;
        }
        let level = controller.level();
        controller.write(&mut model, level);
        Ok((model, controller))
    }
}

/// The weights outside the `ignored` scopes; every scope must match a layer.
fn select<'s>(sites: &'s [WeightSite], ignored: &[String]) -> Result<Vec<&'s WeightSite>> {
    let scopes = ignored
        .iter()
        .map(|text| Scope::parse(text))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let layers: Vec<String> = sites.iter().map(|s| s.layer.clone()).collect();
    check_scopes_match(&scopes, &layers)?;
    let selected: Vec<&WeightSite> = sites
        .iter()
        .filter(|site| !scopes.iter().any(|scope| scope.matches(&site.layer)))
        .collect();
    if selected.is_empty() {
        return Err(SparsityError::NothingToSparsify(
            "no Conv/Linear weight outside the ignored scopes".into(),
        ));
    }
    Ok(selected)
}

/// Checks the method's settings against the selected weights; returns its level scheduler
/// (`None` for N:M, whose level the pattern fixes).
fn check_method(
    method: &SparsityMethod,
    selected: &[&WeightSite],
    steps_per_epoch: Option<usize>,
) -> Result<Option<Scheduler>> {
    let schedule = match method {
        SparsityMethod::Magnitude(sparsity) => &sparsity.schedule,
        SparsityMethod::Rb(rb) => {
            if !(rb.loss_scale.is_finite() && rb.loss_scale > 0.0) {
                return Err(SparsityError::Setting {
                    setting: "loss_scale",
                    reason: format!("{} is not a positive number", rb.loss_scale),
                });
            }
            &rb.schedule
        }
        SparsityMethod::NM(nm) => {
            for site in selected {
                nm::check_pattern(nm.n, nm.m, &site.dims, site.kind.input_axis()).map_err(
                    |error| SparsityError::Pattern {
                        layer: site.param.clone(),
                        error,
                    },
                )?;
            }
            return Ok(None);
        }
    };
    let scheduler = Scheduler::new(schedule.clone(), steps_per_epoch).map_err(|error| {
        SparsityError::Schedule {
            method: method.name(),
            layers: selected
                .iter()
                .map(|s| s.param.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            error,
        }
    })?;
    Ok(Some(scheduler))
}

/// Mask stages for the selected weights: all-ones masks (set for the starting level right
/// after attaching), or RB logits (see [`RbInit`]).
fn initial_masks<M: Module>(
    model: &M,
    controller: &SparsityController,
    selected: &[&WeightSite],
) -> HashMap<String, Attachment> {
    let mut rb_logits = match &controller.method {
        SparsityMethod::Rb(rb) => Some(rb_initial_logits(model, selected, rb.init)),
        _ => None,
    };
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(burn::tensor::Device::flex);
    let gradient = match &controller.method {
        SparsityMethod::Magnitude(s) => s.gradient,
        SparsityMethod::Rb(_) => MaskGradient::Zero,
        SparsityMethod::NM(nm) => match nm.training {
            NmTraining::Fixed => MaskGradient::Zero,
            NmTraining::SrSte { .. } => MaskGradient::StraightThrough,
        },
    };
    selected
        .iter()
        .map(|site| {
            let n = site.len();
            let mask = match rb_logits.as_mut() {
                Some(logits) => {
                    let logits = logits.remove(&site.param).expect("a logit per weight");
                    WeightMask::learned(Tensor::from_data(TensorData::new(logits, [n]), &device))
                }
                None => WeightMask::fixed(Tensor::ones([n], &device), gradient),
            };
            (
                site.param.clone(),
                Attachment {
                    mask: Some(mask),
                    quantizer: None,
                },
            )
        })
        .collect()
}

/// Starting RB logits per weight: `logit(0.99)` everywhere, or spread by importance quantile.
fn rb_initial_logits<M: Module>(
    model: &M,
    selected: &[&WeightSite],
    init: RbInit,
) -> HashMap<String, Vec<f32>> {
    let start = (method::RB_INITIAL_KEEP / (1.0 - method::RB_INITIAL_KEEP)).ln() as f32;
    if init == RbInit::Constant {
        return selected
            .iter()
            .map(|site| (site.param.clone(), vec![start; site.len()]))
            .collect();
    }
    let values = effective_weights(model);
    let importances: Vec<Vec<f32>> = selected
        .iter()
        .map(|site| magnitude::importance(&values[&site.param].1, Importance::NormedAbs))
        .collect();
    // Global quantile of each value: its rank among all (ties in order), scaled to (0, 1].
    let mut order: Vec<(usize, usize)> = importances
        .iter()
        .enumerate()
        .flat_map(|(l, layer)| (0..layer.len()).map(move |i| (l, i)))
        .collect();
    order.sort_by(|a, b| importances[a.0][a.1].total_cmp(&importances[b.0][b.1]));
    let total = order.len() as f32;
    let mut logits: Vec<Vec<f32>> = importances.iter().map(|l| vec![0.0; l.len()]).collect();
    for (rank, (l, i)) in order.into_iter().enumerate() {
        logits[l][i] = start * 2.0 * (rank + 1) as f32 / total;
    }
    selected
        .iter()
        .map(|site| site.param.clone())
        .zip(logits)
        .collect()
}
