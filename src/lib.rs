//! burn-compress: training-time model compression for Burn.
//!
//! Quantization-aware training with fake-quantize layers (OpenVINO `FakeQuantize` semantics,
//! NNCF's learnable-range gradients), sparsity (magnitude, RB, N:M) and structured channel
//! pruning on the user's own Burn modules, composed per weight as `FQ(mask ⊙ w)`, driven by
//! builders or NNCF 2.x-style JSON configs, then export to OpenVINO IR.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::Tensor;
//! # fn demo<M: Module>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2> + Copy,
//! #     calibration_batches: Vec<Tensor<4>>) -> Result<(), burn_compress::Error> {
//! use burn_compress::prelude::*;
//! let model = quantize(model)
//!     .weights(QuantSpec::int8_weights())
//!     .activations(QuantSpec::int8_activations())
//!     .ignore("fc2")
//!     .init_ranges(RangeInit::MeanMinMax, calibration_batches, |m, x| {
//!         forward(&m.valid(), x);
//!     })?;
//! // ... fine-tune with any Burn training loop ...
//! let report = export(&model.valid(), [1, 1, 28, 28], forward, "model.xml",
//!                     &ExportOptions::default())?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod compress;
mod error;
mod export;

pub use burn_compress_config as config;
pub use burn_compress_core as shared;
pub use burn_compress_graph as graph;
pub use burn_compress_openvino as openvino;
pub use burn_compress_pruning as pruning;
pub use burn_compress_pruning::prune;
pub use burn_compress_quant as quant;
pub use burn_compress_quant::quantize;
pub use burn_compress_sparsity as sparsity;
pub use burn_compress_sparsity::sparsify;
pub use compress::{compress, CompressBuilder, Compression, CompressionStatistics};
pub use error::Error;
pub use export::export;

/// The names most programs need.
pub mod prelude {
    pub use crate::{compress, export, Compression, Error};
    pub use burn_compress_config::CompressionConfig;
    pub use burn_compress_core::{
        LevelSchedule, MaskGradient, ModelStats, Schedule, WeightTransform,
    };
    pub use burn_compress_openvino::{eval, ExportOptions, ExportReport, Precision};
    pub use burn_compress_pruning::{prune, Criterion, Pruning, PruningController, Ranking};
    pub use burn_compress_quant::{
        adapt_batch_norm, fold_batch_norm, load_stock_checkpoint, quantize, ActivationQuantizer,
        FakeQuantizer, Granularity, OverflowFix, QConv1d, QConv2d, QLinear, QuantConfig, QuantMode,
        QuantSpec, RangeInit, Signedness,
    };
    pub use burn_compress_sparsity::{
        sparsify, Importance, LevelMode, NmSparsity, NmTraining, RbInit, RbSparsity, Sparsity,
        SparsityController, SparsityMethod,
    };
}
