//! The facade's error: whatever a step of compressing or exporting refused, named by the step's
//! own error (config key, module path, layer, file).

use burn_compress_config::ConfigError;
use burn_compress_openvino::ExportError;
use burn_compress_pruning::PruningError;
use burn_compress_quant::QuantError;
use burn_compress_sparsity::SparsityError;

/// What can go wrong in [`compress`](crate::compress) and [`export`](crate::export).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config cannot be read or used (file and JSON path named).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Quantizers cannot be attached, or a quantizer's state is unusable (module path named).
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Sparsity masks cannot be attached.
    #[error(transparent)]
    Sparsity(#[from] SparsityError),
    /// Channel pruning cannot be attached, or the model not shrunk.
    #[error(transparent)]
    Pruning(#[from] PruningError),
    /// Calibration data is missing.
    #[error("calibration: {0}")]
    Calibration(&'static str),
    /// Capture, lowering or writing failed, or a quantizer would not reach the IR.
    #[error(transparent)]
    Export(#[from] ExportError),
}
