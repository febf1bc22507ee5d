//! The `filter_pruning` section.

use burn_compress_core::{LevelSchedule, Schedule};
use burn_compress_pruning::{Criterion, Pruning, Ranking};

use crate::common::{adaptation_initializer, ignored_scopes};
use crate::error::ConfigError;
use crate::json::Object;

/// Filter pruning as a config asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct PruningAlgorithm {
    /// Level schedule, criterion, ranking, rounding, first/downsampling convolutions.
    pub pruning: Pruning,
    /// Layers whose output channels are never pruned.
    pub ignored_scopes: Vec<String>,
    /// Samples of BatchNorm adaptation after the masks are attached.
    pub bn_adaptation_samples: usize,
}

/// Reads a `filter_pruning` section. NNCF counts `num_init_steps` and `pruning_steps` in
/// epochs: level 0 for `num_init_steps` epochs, then the schedule from `pruning_init` reaches
/// the target `pruning_steps − 1` epochs later, and the masks freeze at
/// `num_init_steps + pruning_steps` (`baseline`: at `num_init_steps`, at the target at once).
pub fn read(section: &mut Object<'_>) -> Result<PruningAlgorithm, ConfigError> {
    let init = section.read_or("pruning_init", 0.0, |f| f.level())?;
    let mut params = match section.take("params") {
        Some(params) => params.object()?,
        None => Object::empty(&format!("{}.params", section.path())),
    };
    let name = params.read_or("schedule", "exponential", |f| {
        f.choice(&["exponential", "exponential_with_bias", "baseline"])
    })?;
    let level_target = params.read("pruning_target", |f| f.level())?;
    let flops_target = params.read("pruning_flops_target", |f| f.level())?;
    if level_target.is_some() && flops_target.is_some() {
        return Err(params.error(
            "pruning_flops_target",
            "give `pruning_target` or `pruning_flops_target`, not both",
        ));
    }
    let target = flops_target.or(level_target).unwrap_or(0.5);
    let steps = params.read_or("pruning_steps", 100.0, |f| f.count().map(|c| c as f64))?;
    let warmup = params.read_or("num_init_steps", 0.0, |f| f.count().map(|c| c as f64))?;
    let criterion = params.read_or("filter_importance", Criterion::L2, |f| {
        Ok(match f.choice(&["L2", "L1", "geometric_median"])? {
            "L1" => Criterion::L1,
            "L2" => Criterion::L2,
            _ => Criterion::GeometricMedian,
        })
    })?;
    let global = params.read_or("all_weights", false, |f| f.bool())?;
    let first_conv = params.read_or("prune_first_conv", false, |f| f.bool())?;
    let downsample = params.read_or("prune_downsample_convs", false, |f| f.bool())?;
    if let Some(batch_norms) = params.take("prune_batch_norms") {
        if !batch_norms.bool()? {
            return Err(batch_norms.error(
                "is not supported as `false`: a BatchNorm always follows its producer's channels",
            ));
        }
    }
    if let Some(ranking) = params.take("interlayer_ranking_type") {
        if ranking.choice(&["unweighted_ranking", "learned_ranking"])? == "learned_ranking" {
            return Err(ranking.error("`learned_ranking` (LeGR) is not supported"));
        }
    }
    params.unsupported("legr_params", "LeGR ranking is not supported")?;
    params.unsupported("save_ranking_coeffs_path", "LeGR ranking is not supported")?;
    params.unsupported("load_ranking_coeffs_path", "LeGR ranking is not supported")?;
    // burn-compress's own: levels updated after every optimizer step (fractional epochs), and
    // kept channels rounded up to a multiple (NNCF rounds to 8).
    let per_step = params.read_or("update_per_optimizer_step", false, |f| f.bool())?;
    let round_to = params.read_or("round_to", 8, |f| f.count())?;
    if round_to == 0 {
        return Err(params.error("round_to", "must be at least 1"));
    }
    let params_path = params.path().to_string();
    params.finish()?;

    let (shape, span, freeze) = match name {
        "baseline" => (Schedule::Constant, 0.0, warmup),
        "exponential" => (
            Schedule::Exponential,
            (steps - 1.0).max(0.0),
            warmup + steps,
        ),
        _ => (
            Schedule::ExponentialWithBias,
            (steps - 1.0).max(0.0),
            warmup + steps,
        ),
    };
    let schedule = LevelSchedule::new(shape, init, target, span)
        .with_warmup(warmup)
        .with_freeze_epoch(freeze)
        .with_per_step(per_step);
    schedule
        .validate()
        .map_err(|e| ConfigError::at(&params_path, e.to_string()))?;
    let mut pruning = Pruning::scheduled(schedule)
        .criterion(criterion)
        .ranking(if global {
            Ranking::Global
        } else {
            Ranking::Local
        })
        .round_to(round_to)
        .prune_first_conv(first_conv)
        .prune_downsample_convs(downsample);
    pruning.flops_target = flops_target;

    let bn_adaptation_samples = adaptation_initializer(section)?;
    Ok(PruningAlgorithm {
        pruning,
        ignored_scopes: ignored_scopes(section)?,
        bn_adaptation_samples,
    })
}
