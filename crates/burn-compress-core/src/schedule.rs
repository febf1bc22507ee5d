//! Compression-level schedules (sparsity and pruning levels over training), as NNCF's legacy
//! schedulers define them, plus Zhu & Gupta's cubic schedule.
//!
//! Time is counted in epochs, fractional when the level is updated per optimizer step:
//! `e = epoch + step_in_epoch / steps_per_epoch`. The level for epoch `e` is the one in force
//! while epoch `e` trains (NNCF's `epoch_step()` at the start of an epoch), so training starts
//! at the level for `e = 0`.
//!
//! | schedule | level at time `e` (`p = clamp(e / target_epoch, 0, 1)`) |
//! |---|---|
//! | `constant` | `target` |
//! | `polynomial`, concave | `target − (target − init)·(1 − p)^power` |
//! | `polynomial`, convex | `init + (target − init)·p^power` |
//! | `exponential` | `min(1 − d, target)`, density `d = max(d0·(dT/d0)^(e/target_epoch), dT)`, `d0 = 1 − init`, `dT = 1 − target` |
//! | `exponential_with_bias` | `min(a·exp(−k·e) + b, target)`: `init` at 0, `target` at `target_epoch`, 75 % of `target` at `target_epoch / 8` (NNCF pruning) |
//! | `multistep` | `levels[i]`, `i` = number of `steps` that are `<= e` |
//! | `cubic` (Zhu & Gupta) | `target + (init − target)·(1 − (t − begin)/(target_epoch − begin))³`, `t = e` rounded down to `begin + k·frequency` |
//! | `adaptive` | starts at `init`; after each epoch whose achieved level is `>= level − eps` (`patience` times in a row) adds `step`, up to `target` |

use serde::{Deserialize, Serialize};

/// A schedule's shape; [`LevelSchedule`] adds the levels and epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The target level from the start (NNCF pruning's `baseline`).
    Constant,
    /// Polynomial ramp from `init` to `target` at `target_epoch`.
    Polynomial {
        /// Exponent (NNCF default 0.9).
        #[serde(default = "default_power")]
        power: f64,
        /// Concave (fast start, NNCF default) or convex (slow start).
        #[serde(default = "default_true")]
        concave: bool,
    },
    /// Density decays exponentially from `1 − init` to `1 − target` at `target_epoch`.
    Exponential,
    /// NNCF filter pruning's `exponential_with_bias` (arXiv 1808.07471): `a·exp(−k·e) + b`
    /// through `init` at 0 and `target` at `target_epoch`, reaching 75 % of `target` after an
    /// eighth of that span: a fast start that saturates.
    ExponentialWithBias,
    /// Piecewise constant: `levels[0]` before `steps[0]`, `levels[i]` from `steps[i − 1]` on.
    Multistep {
        /// Epochs at which the level changes, ascending.
        steps: Vec<f64>,
        /// One level more than `steps`.
        levels: Vec<f64>,
    },
    /// Raises the level by `step` after `patience` epochs that reached the current level
    /// (within `eps`); for methods whose achieved level lags (RB sparsity).
    Adaptive {
        /// Epochs at the current level before raising it.
        #[serde(default = "default_patience")]
        patience: usize,
        /// Increment.
        #[serde(default = "default_adaptive_step")]
        step: f64,
        /// Tolerance on the achieved level.
        #[serde(default = "default_adaptive_eps")]
        eps: f64,
    },
    /// Zhu & Gupta (2017): cubic ramp from `begin` to `target_epoch`, updated every `frequency`
    /// epochs (0: continuously).
    Cubic {
        /// Epoch at which pruning starts.
        #[serde(default)]
        begin: f64,
        /// Epochs between updates; 0 updates at every step.
        #[serde(default)]
        frequency: f64,
    },
}

fn default_power() -> f64 {
    0.9
}
fn default_true() -> bool {
    true
}
fn default_patience() -> usize {
    1
}
fn default_adaptive_step() -> f64 {
    0.05
}
fn default_adaptive_eps() -> f64 {
    0.03
}

impl Schedule {
    /// NNCF's default polynomial schedule (power 0.9, concave).
    pub fn polynomial() -> Self {
        Schedule::Polynomial {
            power: default_power(),
            concave: true,
        }
    }

    /// The schedule named `name` with default parameters (`constant`, `polynomial`,
    /// `exponential`, `adaptive`, `cubic`; `multistep` needs its steps and levels).
    pub fn by_name(name: &str) -> Result<Self, ScheduleError> {
        Ok(match name {
            "constant" | "baseline" => Schedule::Constant,
            "polynomial" => Schedule::polynomial(),
            "exponential" => Schedule::Exponential,
            "exponential_with_bias" => Schedule::ExponentialWithBias,
            "adaptive" => Schedule::Adaptive {
                patience: default_patience(),
                step: default_adaptive_step(),
                eps: default_adaptive_eps(),
            },
            "cubic" => Schedule::Cubic {
                begin: 0.0,
                frequency: 0.0,
            },
            other => {
                return Err(ScheduleError {
                    field: "schedule",
                    reason: format!(
                        "unknown schedule `{other}` (known: constant, polynomial, exponential, \
                         exponential_with_bias, multistep, adaptive, cubic)"
                    ),
                })
            }
        })
    }
}

/// A level that changes over training: from `init` to `target` by `schedule`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSchedule {
    /// The schedule's shape.
    pub schedule: Schedule,
    /// Level at the start, in [0, 1).
    #[serde(default)]
    pub init: f64,
    /// Final level, in [0, 1).
    pub target: f64,
    /// Epoch at which the target is reached.
    #[serde(default)]
    pub target_epoch: f64,
    /// Epoch from which the level and masks stop changing; `None`: never.
    #[serde(default)]
    pub freeze_epoch: Option<f64>,
    /// Update the level after every optimizer step (fractional epochs) instead of once per
    /// epoch.
    #[serde(default)]
    pub per_step: bool,
    /// Epochs at level 0 before the schedule starts (NNCF pruning's `num_init_steps`); the
    /// schedule's own epochs (`target_epoch`, multistep `steps`, cubic `begin`) count from
    /// there, `freeze_epoch` from the start of training.
    #[serde(default)]
    pub warmup_epochs: f64,
}

/// A schedule setting that is out of range; `field` names it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("schedule `{field}`: {reason}")]
pub struct ScheduleError {
    /// The setting at fault (`target`, `multistep.levels`, ...).
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Checks that `level` lies in [0, 1).
pub fn check_level(level: f64, field: &'static str) -> Result<(), ScheduleError> {
    if (0.0..1.0).contains(&level) {
        Ok(())
    } else {
        Err(ScheduleError {
            field,
            reason: format!("{level} is outside [0, 1)"),
        })
    }
}

impl LevelSchedule {
    /// `target` from the first step on.
    pub fn constant(target: f64) -> Self {
        Self {
            schedule: Schedule::Constant,
            init: 0.0,
            target,
            target_epoch: 0.0,
            freeze_epoch: None,
            per_step: false,
            warmup_epochs: 0.0,
        }
    }

    /// From `init` to `target` at `target_epoch` by `schedule`.
    pub fn new(schedule: Schedule, init: f64, target: f64, target_epoch: f64) -> Self {
        Self {
            schedule,
            init,
            target,
            target_epoch,
            freeze_epoch: None,
            per_step: false,
            warmup_epochs: 0.0,
        }
    }

    /// The same schedule, freezing at `epoch`.
    pub fn with_freeze_epoch(mut self, epoch: f64) -> Self {
        self.freeze_epoch = Some(epoch);
        self
    }

    /// The same schedule, updated after every optimizer step.
    pub fn with_per_step(mut self, per_step: bool) -> Self {
        self.per_step = per_step;
        self
    }

    /// The same schedule, starting after `epochs` at level 0.
    pub fn with_warmup(mut self, epochs: f64) -> Self {
        self.warmup_epochs = epochs;
        self
    }

    /// The final level (for `multistep`, its last level).
    pub fn final_level(&self) -> f64 {
        match &self.schedule {
            Schedule::Multistep { levels, .. } => levels.last().copied().unwrap_or(self.target),
            _ => self.target,
        }
    }

    /// Checks every setting; the error names the one at fault.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let bad = |field, reason: String| Err(ScheduleError { field, reason });
        check_level(self.init, "init")?;
        check_level(self.target, "target")?;
        if !(self.target_epoch.is_finite() && self.target_epoch >= 0.0) {
            return bad("target_epoch", format!("{} is not >= 0", self.target_epoch));
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return bad(
                "warmup_epochs",
                format!("{} is not >= 0", self.warmup_epochs),
            );
        }
        if let Some(freeze) = self.freeze_epoch {
            if !(freeze.is_finite() && freeze >= 0.0) {
                return bad("freeze_epoch", format!("{freeze} is not >= 0"));
            }
        }
        match &self.schedule {
            Schedule::Polynomial { power, .. } if !(power.is_finite() && *power > 0.0) => {
                bad("polynomial.power", format!("{power} is not > 0"))
            }
            Schedule::Multistep { steps, levels } => {
                if levels.len() != steps.len() + 1 {
                    return bad(
                        "multistep.levels",
                        format!(
                            "{} levels for {} steps: give one level more than steps",
                            levels.len(),
                            steps.len()
                        ),
                    );
                }
                if steps.windows(2).any(|w| w[0] > w[1]) || steps.iter().any(|s| *s < 0.0) {
                    return bad(
                        "multistep.steps",
                        format!("{steps:?} is not ascending from 0"),
                    );
                }
                for level in levels {
                    check_level(*level, "multistep.levels")?;
                }
                Ok(())
            }
            Schedule::ExponentialWithBias if self.init * 7.0 >= self.target * 5.0 => bad(
                "exponential_with_bias.init",
                format!(
                    "init {} is not below 5/7 of target {}: no such curve reaches 75 % of the \
                     target at an eighth of the span",
                    self.init, self.target
                ),
            ),
            Schedule::Adaptive { step, eps, .. } => {
                if !(*step > 0.0 && *step < 1.0) {
                    return bad("adaptive.step", format!("{step} is outside (0, 1)"));
                }
                if !(*eps >= 0.0 && *eps < 1.0) {
                    return bad("adaptive.eps", format!("{eps} is outside [0, 1)"));
                }
                Ok(())
            }
            Schedule::Cubic { begin, frequency } => {
                if !(*begin >= 0.0 && *begin <= self.target_epoch) {
                    return bad(
                        "cubic.begin",
                        format!(
                            "{begin} is not in [0, target_epoch = {}]",
                            self.target_epoch
                        ),
                    );
                }
                if !(*frequency >= 0.0 && frequency.is_finite()) {
                    return bad("cubic.frequency", format!("{frequency} is not >= 0"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The level at time `epoch` (fractional for per-step schedules). `adaptive` returns its
    /// starting level here; its later levels depend on training ([`Scheduler`]).
    pub fn level_at(&self, epoch: f64) -> f64 {
        if epoch < self.warmup_epochs {
            return 0.0;
        }
        let epoch = epoch - self.warmup_epochs;
        let (init, target, end) = (self.init, self.target, self.target_epoch);
        let progress = if end > 0.0 {
            (epoch / end).clamp(0.0, 1.0)
        } else {
            1.0
        };
        match &self.schedule {
            Schedule::Constant => target,
            Schedule::Polynomial { power, concave } => {
                if *concave {
                    target - (target - init) * (1.0 - progress).powf(*power)
                } else {
                    init + (target - init) * progress.powf(*power)
                }
            }
            Schedule::Exponential => {
                let (d0, dt) = (1.0 - init, 1.0 - target);
                let density = if end > 0.0 {
                    (d0 * (dt / d0).powf(epoch / end)).max(dt)
                } else {
                    dt
                };
                (1.0 - density).min(target)
            }
            Schedule::ExponentialWithBias => {
                if end <= 0.0 {
                    return target;
                }
                let (a, b, k) = exponential_with_bias(init, target, end);
                (a * (-k * epoch.min(end)).exp() + b).min(target)
            }
            Schedule::Multistep { steps, levels } => {
                let passed = steps.iter().filter(|&&s| s <= epoch).count();
                levels[passed]
            }
            Schedule::Adaptive { .. } => init,
            Schedule::Cubic { begin, frequency } => {
                if epoch < *begin {
                    return init;
                }
                let t = if *frequency > 0.0 {
                    begin + ((epoch - begin) / frequency).floor() * frequency
                } else {
                    epoch
                };
                let span = end - begin;
                let p = if span > 0.0 {
                    ((t - begin) / span).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                target + (init - target) * (1.0 - p).powi(3)
            }
        }
    }

    /// Whether masks are frozen at time `epoch`.
    pub fn is_frozen(&self, epoch: f64) -> bool {
        self.freeze_epoch.is_some_and(|freeze| epoch >= freeze)
    }
}

/// `(a, b, k)` of `a·exp(−k·e) + b` with value `init` at 0, `target` at `end` and
/// `0.75·target` at `end / 8` (NNCF's `_init_exp` with factor 0.125).
///
/// With `y = exp(−k·end)` and `c = (0.75·target − init) / (target − init)`, the conditions
/// reduce to `f(y) = y^(1/8) − c·y + c − 1 = 0`. For `init < 5/7·target`, `c` lies in
/// (1/8, 1): `f` is `c − 1 < 0` at 0 and positive just below the trivial root `y = 1`, so the
/// root in (0, 1) is found by bisection.
fn exponential_with_bias(init: f64, target: f64, end: f64) -> (f64, f64, f64) {
    let c = (0.75 * target - init) / (target - init);
    let f = |y: f64| y.powf(0.125) - c * y + c - 1.0;
    let (mut low, mut high) = (0.0_f64, 1.0 - 1e-9);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if f(mid) < 0.0 {
            low = mid;
        } else {
            high = mid;
        }
    }
    let y = 0.5 * (low + high);
    let k = -y.ln() / end;
    let a = (target - init) / (y - 1.0);
    (a, init - a, k)
}

/// What a clock tick asks of the method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// The level now in force.
    pub level: f64,
    /// Whether masks should be recomputed for it (false between updates and once frozen).
    pub update: bool,
    /// Whether masks are frozen from now on.
    pub frozen: bool,
}

/// A [`LevelSchedule`] driven by a training loop: counts optimizer steps and epochs, keeps the
/// adaptive schedule's state, and says when masks must be updated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    /// The schedule.
    pub schedule: LevelSchedule,
    /// Optimizer steps per epoch, when known: epochs then advance with [`Scheduler::step`].
    pub steps_per_epoch: Option<usize>,
    /// Completed optimizer steps in the current epoch.
    pub step_in_epoch: usize,
    /// Completed epochs.
    pub epoch: usize,
    /// Current level of an adaptive schedule.
    adaptive_level: f64,
    /// Epochs in a row that reached the adaptive level.
    good_epochs: usize,
}

impl Scheduler {
    /// A scheduler at epoch 0. `steps_per_epoch` is needed for per-step schedules.
    pub fn new(
        schedule: LevelSchedule,
        steps_per_epoch: Option<usize>,
    ) -> Result<Self, ScheduleError> {
        schedule.validate()?;
        if schedule.per_step && steps_per_epoch.is_none_or(|n| n == 0) {
            return Err(ScheduleError {
                field: "per_step",
                reason: "a per-step schedule needs the number of steps per epoch".into(),
            });
        }
        Ok(Self {
            adaptive_level: schedule.init,
            schedule,
            steps_per_epoch,
            step_in_epoch: 0,
            epoch: 0,
            good_epochs: 0,
        })
    }

    /// Time in epochs: fractional for per-step schedules.
    pub fn time(&self) -> f64 {
        match (self.schedule.per_step, self.steps_per_epoch) {
            (true, Some(n)) => self.epoch as f64 + self.step_in_epoch as f64 / n as f64,
            _ => self.epoch as f64,
        }
    }

    /// The level in force now.
    pub fn level(&self) -> f64 {
        match self.schedule.schedule {
            Schedule::Adaptive { .. } => self.adaptive_level,
            _ => self.schedule.level_at(self.time()),
        }
    }

    /// Whether masks are frozen now.
    pub fn frozen(&self) -> bool {
        self.schedule.is_frozen(self.time())
    }

    /// The state at the start of training: masks are set for the level of epoch 0.
    pub fn start(&self) -> Tick {
        Tick {
            level: self.level(),
            update: true,
            frozen: self.frozen(),
        }
    }

    /// One optimizer step done; crosses into the next epoch after `steps_per_epoch` steps.
    /// `achieved` gives the level the model has reached (asked by `adaptive` at epoch ends).
    /// Masks freeze (as NNCF does) before the level of the freeze epoch is applied.
    pub fn step(&mut self, achieved: impl FnOnce() -> f64) -> Tick {
        self.step_in_epoch += 1;
        if self.steps_per_epoch == Some(self.step_in_epoch) {
            return self.end_epoch(achieved);
        }
        let frozen = self.frozen();
        Tick {
            level: self.level(),
            update: self.schedule.per_step && !frozen,
            frozen,
        }
    }

    /// One epoch done (call this when `steps_per_epoch` is unknown).
    pub fn epoch_step(&mut self, achieved: impl FnOnce() -> f64) -> Tick {
        self.end_epoch(achieved)
    }

    fn end_epoch(&mut self, achieved: impl FnOnce() -> f64) -> Tick {
        let was_frozen = self.frozen();
        self.epoch += 1;
        self.step_in_epoch = 0;
        if let Schedule::Adaptive {
            patience,
            step,
            eps,
        } = self.schedule.schedule
        {
            if !was_frozen && achieved() >= self.adaptive_level - eps {
                self.good_epochs += 1;
                if self.good_epochs >= patience {
                    self.good_epochs = 0;
                    self.adaptive_level = (self.adaptive_level + step).min(self.schedule.target);
                }
            }
        }
        let frozen = self.frozen();
        Tick {
            level: self.level(),
            update: !frozen,
            frozen,
        }
    }
}
