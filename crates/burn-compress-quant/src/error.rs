//! Errors of the quantization crate: each names the spec field, module path or input at fault.

/// Everything that can go wrong while preparing or initialising quantizers.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantError {
    /// A quantizer spec field holds a value out of its allowed range.
    #[error("invalid quantizer spec: `{field}` = {value}: {reason}")]
    InvalidSpec {
        /// Name of the spec field (`bits`, `axis`, ...).
        field: &'static str,
        /// The offending value, as text.
        value: String,
        /// What the allowed values are.
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
    /// An ignored scope matched no quantizable module.
    #[error("ignored scope `{scope}` matches no quantizable module (candidates: {candidates})")]
    UnmatchedScope {
        /// The scope as the user wrote it.
        scope: String,
        /// The paths that could have matched.
        candidates: String,
    },
    /// An ignored scope is not a valid regular expression.
    #[error("ignored scope `{scope}` is not a valid regular expression: {reason}")]
    InvalidScope {
        /// The scope as the user wrote it.
        scope: String,
        /// The regex parser's message.
        reason: String,
    },
    /// Calibration data is unusable.
    #[error("calibration data: {0}")]
    Calibration(String),
    /// The model has nothing to quantize.
    #[error("nothing to quantize: {0}")]
    NothingToQuantize(String),
}

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, QuantError>;
