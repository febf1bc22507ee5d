//! What a user asks of channel pruning.

use burn_compress_core::LevelSchedule;
use serde::{Deserialize, Serialize};

use crate::criterion::Criterion;

/// How channels are ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    /// Every group loses the level of its channels.
    #[default]
    Local,
    /// One threshold over all groups' channels (importance normalised per layer), so groups
    /// lose different shares (NNCF's `all_weights`).
    Global,
}

/// Channel pruning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pruning {
    /// Pruned share of the prunable channels over training (with `flops_target`: of the MACs).
    pub schedule: LevelSchedule,
    /// Filter importance.
    #[serde(default)]
    pub criterion: Criterion,
    /// Local or global ranking.
    #[serde(default)]
    pub ranking: Ranking,
    /// Kept channels of each group are rounded up to a multiple of this (NNCF rounds to 8).
    #[serde(default = "default_round_to")]
    pub round_to: usize,
    /// Prune until this share of the MACs is gone instead of a share of channels; the schedule's
    /// levels then count MACs.
    #[serde(default)]
    pub flops_target: Option<f64>,
    /// Prune the output channels of the first convolution (NNCF's `prune_first_conv`, off
    /// there by default).
    #[serde(default = "default_true")]
    pub prune_first_conv: bool,
    /// Prune the output channels of convolutions with a stride above 1 (NNCF's
    /// `prune_downsample_convs`, off there by default).
    #[serde(default = "default_true")]
    pub prune_downsample_convs: bool,
}

fn default_true() -> bool {
    true
}

fn default_round_to() -> usize {
    1
}

impl Pruning {
    /// `level` of the prunable channels from the first step on (L2, local, no rounding).
    pub fn target(level: f64) -> Self {
        Self::scheduled(LevelSchedule::constant(level))
    }

    /// A scheduled level.
    pub fn scheduled(schedule: LevelSchedule) -> Self {
        Self {
            schedule,
            criterion: Criterion::default(),
            ranking: Ranking::default(),
            round_to: default_round_to(),
            flops_target: None,
            prune_first_conv: true,
            prune_downsample_convs: true,
        }
    }

    /// Filter importance.
    pub fn criterion(mut self, criterion: Criterion) -> Self {
        self.criterion = criterion;
        self
    }

    /// Whether the first convolution's output channels may be pruned.
    pub fn prune_first_conv(mut self, prune: bool) -> Self {
        self.prune_first_conv = prune;
        self
    }

    /// Whether the output channels of strided (downsampling) convolutions may be pruned.
    pub fn prune_downsample_convs(mut self, prune: bool) -> Self {
        self.prune_downsample_convs = prune;
        self
    }

    /// Local or global ranking.
    pub fn ranking(mut self, ranking: Ranking) -> Self {
        self.ranking = ranking;
        self
    }

    /// Round kept channels up to a multiple of `round_to`.
    pub fn round_to(mut self, round_to: usize) -> Self {
        self.round_to = round_to;
        self
    }

    /// Prune for a share of the MACs: the schedule's target becomes `target`.
    pub fn flops_target(mut self, target: f64) -> Self {
        self.flops_target = Some(target);
        self.schedule.target = target;
        self
    }
}
