//! What a user asks for: the sparsity method and its settings, built in code or read from JSON.

use burn_compress_core::{LevelSchedule, MaskGradient, Schedule};
use serde::{Deserialize, Serialize};

use crate::magnitude::{Importance, LevelMode};

/// Magnitude or RB sparsity at a scheduled level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sparsity {
    /// The level over training.
    pub schedule: LevelSchedule,
    /// Weight importance (magnitude sparsity).
    #[serde(default)]
    pub importance: Importance,
    /// One level over all layers, or the level in each layer.
    #[serde(default)]
    pub level_setting: LevelMode,
    /// Gradient of removed weights (magnitude sparsity).
    #[serde(default)]
    pub gradient: MaskGradient,
}

impl Sparsity {
    /// `level` from the first step on: global, `normed_abs`, zero gradient for removed weights.
    pub fn target(level: f64) -> Self {
        Self::scheduled(LevelSchedule::constant(level))
    }

    /// A scheduled level.
    pub fn scheduled(schedule: LevelSchedule) -> Self {
        Self {
            schedule,
            importance: Importance::default(),
            level_setting: LevelMode::default(),
            gradient: MaskGradient::default(),
        }
    }

    /// The same target, reached by `schedule` from `init` at `target_epoch`.
    pub fn schedule(mut self, schedule: Schedule, init: f64, target_epoch: f64) -> Self {
        self.schedule.schedule = schedule;
        self.schedule.init = init;
        self.schedule.target_epoch = target_epoch;
        self
    }

    /// Masks stop changing from `epoch` on.
    pub fn freeze_at(mut self, epoch: f64) -> Self {
        self.schedule.freeze_epoch = Some(epoch);
        self
    }

    /// Update the level after every optimizer step (needs the steps per epoch).
    pub fn per_step(mut self) -> Self {
        self.schedule.per_step = true;
        self
    }

    /// Importance measure.
    pub fn importance(mut self, importance: Importance) -> Self {
        self.importance = importance;
        self
    }

    /// Each layer gets the level.
    pub fn local(mut self) -> Self {
        self.level_setting = LevelMode::Local;
        self
    }

    /// One level over all layers.
    pub fn global(mut self) -> Self {
        self.level_setting = LevelMode::Global;
        self
    }

    /// Gradient of removed weights.
    pub fn gradient(mut self, gradient: MaskGradient) -> Self {
        self.gradient = gradient;
        self
    }
}

/// How an N:M mask is trained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NmTraining {
    /// The mask is chosen once, from the starting weights; removed weights get no gradient.
    Fixed,
    /// SR-STE (Zhou et al. 2021): the mask is recomputed from the dense weights after every
    /// step; every weight gets the straight-through gradient plus `lambda·(1 − M) ⊙ w`.
    SrSte {
        /// Decay of removed weights (2e-4 in the paper).
        #[serde(default = "default_lambda")]
        lambda: f64,
    },
}

fn default_lambda() -> f64 {
    2e-4
}

impl NmTraining {
    /// SR-STE with the paper's `lambda` = 2e-4.
    pub fn sr_ste() -> Self {
        NmTraining::SrSte {
            lambda: default_lambda(),
        }
    }
}

/// N:M semi-structured sparsity (2:4 by default).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NmSparsity {
    /// Weights kept per group.
    pub n: usize,
    /// Group size along the input dimension.
    pub m: usize,
    /// Fixed mask or SR-STE.
    pub training: NmTraining,
}

impl NmSparsity {
    /// `n` of every `m` weights kept, with a fixed mask.
    pub fn new(n: usize, m: usize) -> Self {
        Self {
            n,
            m,
            training: NmTraining::Fixed,
        }
    }

    /// The same pattern trained with SR-STE.
    pub fn sr_ste(mut self) -> Self {
        self.training = NmTraining::sr_ste();
        self
    }

    /// The level the pattern gives: `1 − n/m`.
    pub fn level(&self) -> f64 {
        1.0 - self.n as f64 / self.m as f64
    }
}

/// RB sparsity's default loss scale `p` (NNCF's 0.05): the loss is
/// `((density − target density) / p)²`.
pub const RB_LOSS_SCALE: f64 = 0.05;
/// Starting probability of keeping a weight under RB sparsity (NNCF: logit(0.99)).
pub const RB_INITIAL_KEEP: f64 = 0.99;

/// Where RB mask logits start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RbInit {
    /// Every logit at `logit(0.99)` (NNCF). All logits then move together under Adam, so the
    /// density tends to swing past the target; NNCF trains for dozens of epochs.
    Constant,
    /// `logit(0.99)·2q`, `q` the weight's `normed_abs` importance quantile over the sparsified
    /// weights (in (0, 1]): the same mean, but weights cross the threshold in order of magnitude
    /// as the loss lowers the logits, so the density follows the target smoothly; the task loss
    /// still reorders them.
    #[default]
    Magnitude,
}

/// Regularization-based (learned) sparsity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbSparsity {
    /// The target level over training (the loss pulls the density towards `1 − level`).
    pub schedule: LevelSchedule,
    /// `p` of the loss `((density − (1 − level)) / p)²`; smaller pulls harder against the task
    /// loss (NNCF: 0.05).
    #[serde(default = "default_rb_loss_scale")]
    pub loss_scale: f64,
    /// Where the mask logits start.
    #[serde(default)]
    pub init: RbInit,
}

fn default_rb_loss_scale() -> f64 {
    RB_LOSS_SCALE
}

impl RbSparsity {
    /// `level` as the loss's target from the first step on, NNCF's loss scale.
    pub fn target(level: f64) -> Self {
        Self::scheduled(LevelSchedule::constant(level))
    }

    /// A scheduled target level.
    pub fn scheduled(schedule: LevelSchedule) -> Self {
        Self {
            schedule,
            loss_scale: RB_LOSS_SCALE,
            init: RbInit::default(),
        }
    }

    /// Where the mask logits start.
    pub fn init(mut self, init: RbInit) -> Self {
        self.init = init;
        self
    }

    /// The loss scale `p`.
    pub fn loss_scale(mut self, p: f64) -> Self {
        self.loss_scale = p;
        self
    }

    /// Masks stop changing from `epoch` on.
    pub fn freeze_at(mut self, epoch: f64) -> Self {
        self.schedule.freeze_epoch = Some(epoch);
        self
    }
}

/// One sparsity method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
pub enum SparsityMethod {
    /// Remove the weights of smallest magnitude.
    Magnitude(Sparsity),
    /// Regularization-based: learn the masks with a loss that drives the density to the
    /// scheduled level.
    Rb(RbSparsity),
    /// N:M semi-structured sparsity.
    NM(NmSparsity),
}

impl SparsityMethod {
    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            SparsityMethod::Magnitude(_) => "magnitude",
            SparsityMethod::Rb(_) => "rb",
            SparsityMethod::NM(_) => "n:m",
        }
    }
}
