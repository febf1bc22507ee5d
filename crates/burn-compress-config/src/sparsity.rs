//! The `magnitude_sparsity`, `rb_sparsity` and (burn-compress's own) `n_m_sparsity` sections.

use burn_compress_core::{LevelSchedule, Schedule};
use burn_compress_sparsity::{
    Importance, LevelMode, NmSparsity, NmTraining, RbSparsity, Sparsity, SparsityMethod,
};

use crate::error::ConfigError;
use crate::json::Object;
use burn_compress_sparsity::method::RB_LOSS_SCALE;

use crate::common::{adaptation_initializer, ignored_scopes};

/// Sparsity as a config asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct SparsityAlgorithm {
    /// The method and its schedule.
    pub method: SparsityMethod,
    /// Layers left dense.
    pub ignored_scopes: Vec<String>,
    /// `params.steps_per_epoch`, when the config gives it (else the training loop's).
    pub steps_per_epoch: Option<usize>,
    /// Samples of BatchNorm adaptation after the masks are attached.
    pub bn_adaptation_samples: usize,
    /// Learning rate of RB mask logits (burn-compress's `mask_learning_rate`); the fine-tuning
    /// rate when absent.
    pub mask_learning_rate: Option<f64>,
}

/// Reads NNCF's common sparsity `params` into a level schedule, the level-setting mode and the
/// steps per epoch. `default_schedule` is the algorithm's (`polynomial` for magnitude,
/// `exponential` for RB).
fn schedule(
    params: &mut Object<'_>,
    init: f64,
    default_schedule: &'static str,
) -> Result<(LevelSchedule, LevelMode, Option<usize>), ConfigError> {
    let name = params.read_or("schedule", default_schedule, |f| {
        f.choice(&["polynomial", "exponential", "adaptive", "multistep"])
    })?;
    let target = params.read_or("sparsity_target", 0.5, |f| f.level())?;
    let target_epoch = params.read_or("sparsity_target_epoch", 90.0, |f| f.non_negative())?;
    let freeze_epoch = params.read_or("sparsity_freeze_epoch", 100.0, |f| f.non_negative())?;
    let per_step = params.read_or("update_per_optimizer_step", false, |f| f.bool())?;
    let steps_per_epoch = params.read("steps_per_epoch", |f| f.count())?;
    let power = params.read_or("power", 0.9, |f| f.f64())?;
    let concave = params.read_or("concave", true, |f| f.bool())?;
    let patience = params.read_or("patience", 1, |f| f.count())?;
    let steps = params.read_or("multistep_steps", vec![90.0], |f| f.numbers())?;
    let levels = params.read_or("multistep_sparsity_levels", vec![0.1, 0.5], |f| f.numbers())?;
    let mode = params.read_or("sparsity_level_setting_mode", LevelMode::Global, |f| {
        Ok(match f.choice(&["global", "local"])? {
            "global" => LevelMode::Global,
            _ => LevelMode::Local,
        })
    })?;
    let (shape, target) = match name {
        "polynomial" => (Schedule::Polynomial { power, concave }, target),
        "exponential" => (Schedule::Exponential, target),
        "adaptive" => (
            Schedule::Adaptive {
                patience,
                step: 0.05,
                eps: 0.03,
            },
            target,
        ),
        _ => {
            let last = *levels.last().unwrap_or(&target);
            (Schedule::Multistep { steps, levels }, last)
        }
    };
    let schedule = LevelSchedule::new(shape, init, target, target_epoch)
        .with_freeze_epoch(freeze_epoch)
        .with_per_step(per_step);
    schedule
        .validate()
        .map_err(|e| ConfigError::at(params.path(), e.to_string()))?;
    Ok((schedule, mode, steps_per_epoch))
}

/// Reads a `magnitude_sparsity` section.
pub fn magnitude(section: &mut Object<'_>) -> Result<SparsityAlgorithm, ConfigError> {
    let init = section.read_or("sparsity_init", 0.0, |f| f.level())?;
    let (sparsity, steps_per_epoch) = match section.take("params") {
        Some(params) => {
            let mut params = params.object()?;
            let (schedule, mode, steps) = schedule(&mut params, init, "polynomial")?;
            let importance = params.read_or("weight_importance", Importance::NormedAbs, |f| {
                Ok(match f.choice(&["normed_abs", "abs"])? {
                    "abs" => Importance::Abs,
                    _ => Importance::NormedAbs,
                })
            })?;
            params.finish()?;
            let mut sparsity = Sparsity::scheduled(schedule).importance(importance);
            sparsity.level_setting = mode;
            (sparsity, steps)
        }
        None => {
            let mut params = empty_params(section);
            let (schedule, _, _) = schedule(&mut params, init, "polynomial")?;
            (Sparsity::scheduled(schedule), None)
        }
    };
    let bn_adaptation_samples = adaptation_initializer(section)?;
    Ok(SparsityAlgorithm {
        method: SparsityMethod::Magnitude(sparsity),
        ignored_scopes: ignored_scopes(section)?,
        steps_per_epoch,
        bn_adaptation_samples,
        mask_learning_rate: None,
    })
}

/// Reads an `rb_sparsity` section.
pub fn rb(section: &mut Object<'_>) -> Result<SparsityAlgorithm, ConfigError> {
    let init = section.read_or("sparsity_init", 0.0, |f| f.level())?;
    let (schedule, mode, steps_per_epoch) = match section.take("params") {
        Some(params) => {
            let mut params = params.object()?;
            let read = schedule(&mut params, init, "exponential")?;
            params.finish()?;
            read
        }
        None => schedule(&mut empty_params(section), init, "exponential")?,
    };
    if mode == LevelMode::Local {
        return Err(section.error(
            "params.sparsity_level_setting_mode",
            "`local` is not supported for RB sparsity: its loss sets one global density",
        ));
    }
    section.unsupported(
        "compression_lr_multiplier",
        "set the mask logits' learning rate with `mask_learning_rate`",
    )?;
    let mask_learning_rate = section.read("mask_learning_rate", |f| f.positive())?;
    // burn-compress's own: `p` of the loss `((density − target) / p)²` (NNCF: 0.05).
    let loss_scale = section.read_or("loss_scale", RB_LOSS_SCALE, |f| f.positive())?;
    Ok(SparsityAlgorithm {
        method: SparsityMethod::Rb(RbSparsity::scheduled(schedule).loss_scale(loss_scale)),
        ignored_scopes: ignored_scopes(section)?,
        steps_per_epoch,
        bn_adaptation_samples: 0,
        mask_learning_rate,
    })
}

/// Reads an `n_m_sparsity` section (burn-compress's own): `n`, `m`, `training`
/// (`fixed` or `sr_ste`) and `lambda` (SR-STE's decay, default 2e-4).
pub fn n_m(section: &mut Object<'_>) -> Result<SparsityAlgorithm, ConfigError> {
    let n = section.read_or("n", 2, |f| f.count())?;
    let m = section.read_or("m", 4, |f| f.count())?;
    if n == 0 || n >= m {
        return Err(section.error("n", format!("{n}:{m} must keep 1 to m − 1 of every m")));
    }
    let training = section.read_or("training", "sr_ste", |f| f.choice(&["fixed", "sr_ste"]))?;
    let lambda = section.read("lambda", |f| f.non_negative())?;
    let training = match (training, lambda) {
        ("fixed", None) => NmTraining::Fixed,
        ("fixed", Some(_)) => {
            return Err(section.error("lambda", "applies to `training: sr_ste` only"));
        }
        (_, lambda) => NmTraining::SrSte {
            lambda: lambda.unwrap_or(2e-4),
        },
    };
    Ok(SparsityAlgorithm {
        method: SparsityMethod::NM(NmSparsity { n, m, training }),
        ignored_scopes: ignored_scopes(section)?,
        steps_per_epoch: None,
        bn_adaptation_samples: 0,
        mask_learning_rate: None,
    })
}

/// An empty `params` object at the right path, to read the defaults through one code path.
fn empty_params<'a>(section: &Object<'_>) -> Object<'a> {
    Object::empty(&format!("{}.params", section.path()))
}
