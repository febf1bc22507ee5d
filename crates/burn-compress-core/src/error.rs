//! Errors of the shared core: each names the parameter, module path or scope at fault.

/// What can go wrong in the shared core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// An ignored/target scope matched no candidate module.
    #[error("scope `{scope}` matches no module (candidates: {candidates})")]
    UnmatchedScope {
        /// The scope as the user wrote it.
        scope: String,
        /// The paths that could have matched.
        candidates: String,
    },
    /// A scope is not a valid regular expression.
    #[error("scope `{scope}` is not a valid regular expression: {reason}")]
    InvalidScope {
        /// The scope as the user wrote it.
        scope: String,
        /// The regex parser's message.
        reason: String,
    },
    /// A quantization range is negative, zero, infinite or NaN.
    #[error("invalid quantization range for `{path}`: {reason}")]
    InvalidRange {
        /// Module path of the quantizer.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path does not name a Conv/Linear weight.
    #[error("`{param}` is not a Conv1d/Conv2d/Conv3d/Linear weight (weights: {candidates})")]
    UnknownWeight {
        /// The parameter path asked for.
        param: String,
        /// The weights the model has.
        candidates: String,
    },
    /// A weight carries a reparameterization that burn-compress did not attach.
    #[error(
        "`{param}` already carries the reparameterization `{name}`; burn-compress keeps one \
         transform per weight and will not replace it"
    )]
    ForeignReparameterization {
        /// The parameter path.
        param: String,
        /// Name of its reparameterization.
        name: String,
    },
    /// A weight already has the stage being added.
    #[error("`{param}` already has {stage}")]
    AlreadyAttached {
        /// The parameter path.
        param: String,
        /// The stage (`a mask`, `a quantizer`).
        stage: &'static str,
    },
    /// A batch norm cannot be folded.
    #[error("batch norm of `{path}`: {reason}")]
    BatchNorm {
        /// Module path of the convolution.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Calibration or adaptation data is unusable.
    #[error("calibration data: {0}")]
    Calibration(String),
    /// A stage could not be attached to a weight.
    #[error("`{param}`: the stage was not attached (Burn kept another reparameterization)")]
    NotAttached {
        /// The parameter path.
        param: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = core::result::Result<T, CoreError>;
