//! Errors of graph capture and graph passes.

use thiserror::Error;

/// What went wrong while capturing or transforming a graph.
#[derive(Debug, Error)]
pub enum GraphError {
    /// Burn's capture backend rejected the scope.
    #[error("graph capture failed: {0}")]
    Capture(String),
    /// The forward recorded an operation the exporter does not support.
    #[error("unsupported operation `{op}` (from module `{path}`)")]
    Unsupported {
        /// The Burn operation, as Burn's IR names it.
        op: String,
        /// Module path of the parameters the operation or its nearest neighbours consume.
        path: String,
    },
    /// A tensor of an element type the graph does not model (only f32 is).
    #[error("unsupported element type {dtype} for tensor `{tensor}` (from module `{path}`)")]
    DType {
        /// The element type, as Burn prints it.
        dtype: String,
        /// The tensor at fault.
        tensor: String,
        /// Nearest module path.
        path: String,
    },
    /// The batch dimension could not be made dynamic.
    #[error("cannot make the batch dimension dynamic: {0}; export with a static shape instead")]
    DynamicBatch(String),
    /// A recognised fake-quantizer has a range that cannot be exported.
    #[error("fake-quantizer `{quantizer}`: {reason}")]
    InvalidQuantizer {
        /// The parameter holding the quantizer's range (or the quantized tensor).
        quantizer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pass found a graph it cannot handle.
    #[error("invalid graph: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, GraphError>;
