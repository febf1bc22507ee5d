//! burn-compress: training-time model compression for Burn.
//!
//! Quantization-aware training with fake-quantize layers (OpenVINO `FakeQuantize` semantics,
//! NNCF's learnable-range gradients), then export to OpenVINO IR.
//!
//! ```ignore
//! use burn_compress::prelude::*;
//! let model = burn_compress::quantize(model)
//!     .weights(QuantSpec::int8_weights())
//!     .activations(QuantSpec::int8_activations())
//!     .ignore("fc2")
//!     .init_ranges(RangeInit::MeanMinMax, calibration_batches, |m, x| { m.forward(x); })?;
//! // ... fine-tune with any Burn training loop ...
//! ```

pub use burn_compress_graph as graph;
pub use burn_compress_openvino as openvino;
pub use burn_compress_quant as quant;
pub use burn_compress_quant::quantize;

/// The names most programs need.
pub mod prelude {
    pub use burn_compress_quant::{
        adapt_batch_norm, fold_batch_norm, quantize, ActivationQuantizer, FakeQuantizer,
        Granularity, QConv1d, QConv2d, QLinear, QuantConfig, QuantMode, QuantSpec, RangeInit,
        Signedness,
    };
}
