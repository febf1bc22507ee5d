//! Errors of the sparsity crate; each names the module path or setting at fault.

use burn_compress_core::{CoreError, ScheduleError};

use crate::nm::PatternError;

/// What can go wrong while setting up or driving sparsity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SparsityError {
    /// Scopes, weights or transforms (named by the core's error).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A schedule setting is out of range.
    #[error("{method} sparsity of {layers}: {error}")]
    Schedule {
        /// The method (`magnitude`, `rb`).
        method: &'static str,
        /// The layers it was to apply to.
        layers: String,
        /// The setting at fault.
        error: ScheduleError,
    },
    /// An N:M pattern does not fit a layer.
    #[error("`{layer}`: {error}")]
    Pattern {
        /// The weight's parameter path.
        layer: String,
        /// What does not fit.
        error: PatternError,
    },
    /// A setting outside the schedules is out of range.
    #[error("sparsity setting `{setting}`: {reason}")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No Conv/Linear weight is left to sparsify.
    #[error("nothing to sparsify: {0}")]
    NothingToSparsify(String),
}

/// Result alias of this crate.
pub type Result<T> = core::result::Result<T, SparsityError>;
