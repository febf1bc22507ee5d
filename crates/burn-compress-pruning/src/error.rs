//! Errors of the pruning crate; each names the layer, parameter or setting at fault.

use burn_compress_core::{CoreError, ScheduleError};

/// What can go wrong while pruning or shrinking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PruningError {
    /// Scopes, weights or transforms (named by the core's error).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The forward could not be captured or analysed.
    #[error("cannot analyse the model's channels: {0}")]
    Graph(String),
    /// A schedule setting is out of range.
    #[error("pruning schedule: {0}")]
    Schedule(#[from] ScheduleError),
    /// A setting is out of range or does not fit the model.
    #[error("pruning setting `{setting}`: {reason}")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No channel group can be pruned; the reasons say why.
    #[error("nothing to prune: {0}")]
    NothingToPrune(String),
    /// A parameter cannot be shrunk as planned.
    #[error("cannot shrink `{param}`: {reason}")]
    Shrink {
        /// The parameter path.
        param: String,
        /// Why.
        reason: String,
    },
    /// A depthwise convolution's `groups` must change and nothing set it.
    #[error(
        "cannot shrink `{layer}`: it is a depthwise convolution whose groups go from {from} to \
         {to}, and Burn keeps `groups` outside the parameters; shrink with a function that sets \
         `{layer}.groups = {to}` (`shrink_regrouped` / `apply_plan_regrouped`)"
    )]
    Regroup {
        /// The convolution's module path.
        layer: String,
        /// Groups before.
        from: usize,
        /// Groups after.
        to: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = core::result::Result<T, PruningError>;
