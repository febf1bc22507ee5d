//! [`PruningController`]: chooses the pruned channels of every group at the scheduled level,
//! keeps the masks of the pruned weights up to date from the training loop, reports statistics
//! and shrinks the model.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress_core::site::host_values;
use burn_compress_core::state::{weight_tensors, write_masks};
use burn_compress_core::{remove_masks, Scheduler};
use serde::{Deserialize, Serialize};

use crate::criterion::{filter_importance, filters, Criterion};
use crate::deps::Dependencies;
use crate::error::Result;
use crate::plan::ShrinkPlan;
use crate::settings::{Pruning, Ranking};
use crate::shrink::{apply_plan, apply_plan_regrouped};

/// Drives channel pruning. Call [`step`](Self::step) after every optimizer step (or
/// [`epoch_step`](Self::epoch_step) at epoch ends when the steps per epoch are unknown), then
/// [`shrink`](Self::shrink) the fine-tuned model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruningController {
    /// The settings.
    pub pruning: Pruning,
    /// Channel groups of the model.
    pub dependencies: Dependencies,
    /// Dimensions of every parameter of the unshrunk model.
    pub dims: HashMap<String, Vec<usize>>,
    /// Multiply-accumulates per Conv/Linear weight (unshrunk model, batch 1).
    pub macs: Vec<(String, u64)>,
    /// The weights that carry pruning masks.
    pub masked: Vec<String>,
    /// The level schedule.
    pub scheduler: Scheduler,
    /// Pruned channels, per group.
    pub pruned: Vec<BTreeSet<usize>>,
    /// Masks no longer change.
    pub frozen: bool,
}

impl PruningController {
    /// The level the schedule asks for now (of channels, or of MACs with a FLOPs target).
    pub fn level(&self) -> f64 {
        self.scheduler.level()
    }

    /// The plan that removes the currently pruned channels.
    pub fn plan(&self) -> ShrinkPlan {
        ShrinkPlan::new(&self.dependencies, &self.pruned, &self.dims)
    }

    /// Call after every optimizer step: advances the schedule and, when it says so, re-chooses
    /// the pruned channels from the current weights and updates the masks.
    pub fn step<M: Module>(&mut self, model: &mut M) {
        let tick = self.scheduler.step(|| 0.0);
        self.apply(model, tick.update, tick.frozen);
    }

    /// Call at the end of each epoch when the controller does not know the steps per epoch.
    pub fn epoch_step<M: Module>(&mut self, model: &mut M) {
        let tick = self.scheduler.epoch_step(|| 0.0);
        self.apply(model, tick.update, tick.frozen);
    }

    fn apply<M: Module>(&mut self, model: &mut M, update: bool, freeze: bool) {
        if self.frozen {
            return;
        }
        if update {
            self.update(model);
        }
        self.frozen = freeze;
    }

    /// Chooses the pruned channels for the current level and writes the masks.
    pub(crate) fn update<M: Module>(&mut self, model: &mut M) {
        let importance = self.importance(model);
        self.pruned = match self.pruning.flops_target {
            None => self.choose(&importance, self.level()),
            Some(_) => self.choose_for_macs(&importance, self.level()),
        };
        let plan = self.plan();
        let paths = self.masked.clone();
        let tensors = weight_tensors(model, &paths);
        let masks = paths
            .iter()
            .filter_map(|param| {
                let device = tensors.get(param)?.weight.device();
                let values = plan
                    .mask(param)
                    .unwrap_or_else(|| vec![1.0; self.dims[param].iter().product()]);
                let n = values.len();
                let mask = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
                Some((param.clone(), mask))
            })
            .collect();
        *model = write_masks(model.clone(), &masks, &[]);
    }

    /// Importance of every channel of every prunable group (empty for blocked groups): the sum
    /// over its sources, each normalised by its L2 norm for global ranking.
    fn importance<M: Module>(&self, model: &M) -> Vec<Vec<f32>> {
        let producers: Vec<String> = self
            .dependencies
            .sources
            .iter()
            .map(|s| s.producer.clone())
            .chain(
                self.dependencies
                    .sources
                    .iter()
                    .filter_map(|s| s.batch_norm_scale.clone()),
            )
            .collect();
        let values = base_values(model, &producers);
        self.dependencies
            .groups
            .iter()
            .map(|group| {
                if !group.prunable() {
                    return Vec::new();
                }
                let mut total = vec![0.0f32; group.channels];
                for &s in &group.sources {
                    let source = &self.dependencies.sources[s];
                    let mut imp = match (self.pruning.criterion, &source.batch_norm_scale) {
                        (Criterion::BnScale, Some(gamma)) => {
                            values[gamma].iter().map(|g| g.abs()).collect()
                        }
                        (criterion, _) => {
                            let dims = &self.dims[&source.producer];
                            let f = filters(&values[&source.producer], dims, source.axis);
                            filter_importance(&f, criterion)
                        }
                    };
                    if self.pruning.ranking == Ranking::Global {
                        let norm = imp.iter().map(|v| v * v).sum::<f32>().sqrt();
                        if norm > 0.0 {
                            imp.iter_mut().for_each(|v| *v /= norm);
                        }
                    }
                    for (t, v) in total.iter_mut().zip(imp) {
                        *t += v;
                    }
                }
                total
            })
            .collect()
    }

    /// Channels kept of `channels` at `level`: `channels − ⌊channels·level⌋`, rounded up to a
    /// multiple of `round_to`, at least one.
    fn kept_count(&self, channels: usize, level: f64) -> usize {
        let keep = channels - (channels as f64 * level).floor() as usize;
        let r = self.pruning.round_to.max(1);
        keep.div_ceil(r).saturating_mul(r).clamp(1, channels)
    }

    /// The pruned channels of each group at channel level `level`.
    fn choose(&self, importance: &[Vec<f32>], level: f64) -> Vec<BTreeSet<usize>> {
        // Blocked groups have no importance and lose nothing.
        let lowest = |imp: &[f32], count: usize| -> BTreeSet<usize> {
            let mut order: Vec<usize> = (0..imp.len()).collect();
            order.sort_by(|a, b| imp[*a].total_cmp(&imp[*b]).then(a.cmp(b)));
            order.into_iter().take(count).collect()
        };
        match self.pruning.ranking {
            Ranking::Local => importance
                .iter()
                .map(|imp| match imp.len() {
                    0 => BTreeSet::new(),
                    n => lowest(imp, n - self.kept_count(n, level)),
                })
                .collect(),
            Ranking::Global => {
                // One threshold over all prunable channels, then each group's count rounded.
                let mut all: Vec<(f32, usize, usize)> = importance
                    .iter()
                    .enumerate()
                    .flat_map(|(g, imp)| imp.iter().enumerate().map(move |(c, v)| (*v, g, c)))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
                let remove = (all.len() as f64 * level).floor() as usize;
                let mut counts = vec![0usize; importance.len()];
                for (_, g, _) in all.iter().take(remove) {
                    counts[*g] += 1;
                }
                importance
                    .iter()
                    .zip(counts)
                    .map(|(imp, count)| {
                        if imp.is_empty() {
                            return BTreeSet::new();
                        }
                        let level = count as f64 / imp.len() as f64;
                        lowest(imp, imp.len() - self.kept_count(imp.len(), level))
                    })
                    .collect()
            }
        }
    }

    /// The pruned channels that remove (at least) a fraction `macs_level` of the MACs: the
    /// smallest channel level that does, by bisection.
    fn choose_for_macs(&self, importance: &[Vec<f32>], macs_level: f64) -> Vec<BTreeSet<usize>> {
        let (before, _) = self.macs_before_after(&ShrinkPlan::default());
        let goal = before as f64 * (1.0 - macs_level);
        let reduced = |level: f64| {
            let pruned = self.choose(importance, level);
            let plan = ShrinkPlan::new(&self.dependencies, &pruned, &self.dims);
            (self.macs_before_after(&plan).1 as f64, pruned)
        };
        let (mut low, mut high) = (0.0, 0.999);
        for _ in 0..30 {
            let mid = (low + high) / 2.0;
            if reduced(mid).0 <= goal {
                high = mid;
            } else {
                low = mid;
            }
        }
        reduced(high).1
    }

    /// MACs of the model before and after `plan`.
    pub fn macs_before_after(&self, plan: &ShrinkPlan) -> (u64, u64) {
        self.macs
            .iter()
            .fold((0, 0), |(before, after), (param, macs)| {
                let fraction: f64 = plan
                    .params
                    .get(param)
                    .into_iter()
                    .flatten()
                    .map(|s| s.kept.len() as f64 / s.original as f64)
                    .product();
                (
                    before + macs,
                    after + (*macs as f64 * fraction).round() as u64,
                )
            })
    }

    /// Shrinks `model` to the currently pruned channels (same type, smaller tensors) and drops
    /// the pruning masks, which keep everything that is left: the shrunk model's record holds
    /// just its parameters (and any quantizer state).
    ///
    /// Pruning through a depthwise convolution changes its `groups`, which this cannot set: use
    /// [`shrink_regrouped`](Self::shrink_regrouped) then (the error names the layer).
    pub fn shrink<M: Module>(&self, model: M) -> Result<M> {
        let shrunk = apply_plan(model, &self.plan())?;
        Ok(remove_masks(shrunk, &self.masked))
    }

    /// [`shrink`](Self::shrink) for models whose depthwise convolutions lose channels:
    /// `set_groups(model, layer, groups)` sets the `groups` field of the convolution at module
    /// path `layer` and returns whether it knew the layer (see
    /// [`apply_plan_regrouped`](crate::apply_plan_regrouped)).
    pub fn shrink_regrouped<M: Module>(
        &self,
        model: M,
        set_groups: impl FnMut(&mut M, &str, usize) -> bool,
    ) -> Result<M> {
        let shrunk = apply_plan_regrouped(model, &self.plan(), set_groups)?;
        Ok(remove_masks(shrunk, &self.masked))
    }

    /// Pruned channels per group, parameters and MACs before and after.
    pub fn statistics(&self) -> PruningStatistics {
        let plan = self.plan();
        let (params_before, params_after) = plan.param_counts();
        let (macs_before, macs_after) = self.macs_before_after(&plan);
        let groups = self
            .dependencies
            .groups
            .iter()
            .zip(&self.pruned)
            .map(|(group, pruned)| GroupStats {
                producers: group
                    .sources
                    .iter()
                    .map(|&s| self.dependencies.sources[s].producer.clone())
                    .collect(),
                channels: group.channels,
                pruned: pruned.len(),
                blocked: group.blocked.clone(),
            })
            .collect();
        PruningStatistics {
            level: self.level(),
            frozen: self.frozen,
            groups,
            params_before,
            params_after,
            macs_before,
            macs_after,
        }
    }
}

/// Host values of `params` (base weights and BatchNorm scales), by path.
fn base_values<M: Module>(model: &M, params: &[String]) -> HashMap<String, Vec<f32>> {
    weight_tensors(model, params)
        .into_iter()
        .map(|(path, t)| (path, host_values(t.weight)))
        .collect()
}

/// One channel group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupStats {
    /// The weights whose output channels form the group.
    pub producers: Vec<String>,
    /// Channels of the group.
    pub channels: usize,
    /// Channels pruned.
    pub pruned: usize,
    /// Why the group is not pruned, if it is not.
    pub blocked: Vec<String>,
}

/// What pruning does to a model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PruningStatistics {
    /// The scheduled level now.
    pub level: f64,
    /// Whether masks are frozen.
    pub frozen: bool,
    /// Every channel group.
    pub groups: Vec<GroupStats>,
    /// Parameters before shrinking.
    pub params_before: usize,
    /// Parameters after shrinking.
    pub params_after: usize,
    /// Multiply-accumulates of the Conv/Linear layers before (batch 1).
    pub macs_before: u64,
    /// ... and after shrinking.
    pub macs_after: u64,
}

impl fmt::Display for PruningStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| group (producers) | channels | pruned | note |")?;
        writeln!(f, "|---|---|---|---|")?;
        for g in &self.groups {
            let note = g.blocked.first().cloned().unwrap_or_default();
            writeln!(
                f,
                "| {} | {} | {} | {} |",
                g.producers.join(", "),
                g.channels,
                g.pruned,
                note
            )?;
        }
        writeln!(
            f,
            "parameters {} -> {} ({:.2}x fewer); MACs {} -> {} ({:.2}x fewer); level {:.1} %{}",
            self.params_before,
            self.params_after,
            self.params_before as f64 / self.params_after.max(1) as f64,
            self.macs_before,
            self.macs_after,
            self.macs_before as f64 / self.macs_after.max(1) as f64,
            100.0 * self.level,
            if self.frozen { " (frozen)" } else { "" }
        )
    }
}

/// The device a model's first parameter lives on.
pub(crate) fn model_device<M: Module>(model: &M) -> Device {
    model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex)
}
