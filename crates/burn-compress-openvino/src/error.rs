//! Errors of export and of running an IR.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong while exporting or running an IR.
#[derive(Debug, Error)]
pub enum ExportError {
    /// Capturing or preparing the graph failed.
    #[error(transparent)]
    Graph(#[from] burn_compress_graph::GraphError),
    /// An operation cannot be expressed in the IR.
    #[error("cannot lower `{op}` (from module `{path}`) to OpenVINO: {reason}")]
    Lowering {
        /// The graph operation.
        op: String,
        /// Nearest module path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A quantizer the model carries would not be in the IR as a quantizer.
    #[error("quantizer of `{path}` cannot be exported: {reason}")]
    MissingQuantizer {
        /// Parameter path of the quantized weight or activation quantizer.
        path: String,
        /// Why.
        reason: String,
    },
    /// An export option is invalid for this model.
    #[error("export option `{option}`: {reason}")]
    Option {
        /// The option (`input_names`, `output_names`).
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Writing the files failed (nothing is left behind).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The OpenVINO C library could not be found or loaded.
    #[error("OpenVINO runtime not available: {0}")]
    Library(String),
    /// OpenVINO failed to read, compile or run the IR.
    #[error("OpenVINO failed to {action}: {message}")]
    Runtime {
        /// What was being done.
        action: String,
        /// OpenVINO's message.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ExportError>;
