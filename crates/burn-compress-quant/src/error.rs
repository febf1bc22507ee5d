//! Errors of the quantization crate: each names the spec field, module path or input at fault.

use burn_compress_core::CoreError;

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
    /// Scopes, ranges, weights and transforms (named by the core's error).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Calibration data is unusable.
    #[error("calibration data: {0}")]
    Calibration(String),
    /// A checkpoint cannot be loaded into the model.
    #[error("checkpoint `{file}`: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        file: String,
        /// What does not fit (the parameters are named).
        reason: String,
    },
    /// The model has nothing to quantize.
    #[error("nothing to quantize: {0}")]
    NothingToQuantize(String),
}

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, QuantError>;
