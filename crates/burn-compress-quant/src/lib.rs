//! Quantization-aware training for Burn: quantizer specs, range initialisation from calibration
//! batches, activation quantizer layers, and the builder that attaches weight quantizers (as the
//! quantizer stage of each weight's [`WeightTransform`]) and activation quantizers.
//!
//! The fake-quantize numerics (OpenVINO's `FakeQuantize` forward, NNCF's gradients) live in
//! [`burn_compress_core`] next to the other weight-transform stages and are re-exported here.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::Tensor;
//! # fn demo<M: Module>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
//! #     calibration_batches: Vec<Tensor<4>>) -> burn_compress_quant::Result<M> {
//! use burn_compress_quant::{QuantSpec, RangeInit};
//! let model = burn_compress_quant::quantize(model)
//!     .weights(QuantSpec::int8_weights())
//!     .activations(QuantSpec::int8_activations())
//!     .ignore("fc2")
//!     .init_ranges(RangeInit::MeanMinMax, calibration_batches, |m, x| {
//!         forward(&m.valid(), x);
//!     })?;
//! # Ok(model) }
//! ```

#![warn(missing_docs)]

pub mod activation;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod prepare;
pub mod range;
pub mod spec;

pub use activation::{
    ActivationQuantizer, QConv1d, QConv2d, QConvTranspose1d, QConvTranspose2d, QLinear,
};
pub use burn_compress_core::{
    adapt_batch_norm, fake_quantize, fake_quantize_integer, fake_quantize_symmetric,
    fake_quantize_trainable, fake_quantize_trainable_unfused, fold_batch_norm, fused,
    safe_magnitude, symmetric_low_and_range, tune_range, FakeQuantizer, Form, Operands, QuantMode,
    ResolvedSpec, Scope, WeightTransform, RANGE_EPS,
};
pub use checkpoint::load_stock_checkpoint;
pub use config::QuantConfig;
pub use error::{QuantError, Result};
pub use prepare::{
    check_quantizers, quantize, quantizer_sites, QuantizeBuilder, QuantizerKind, QuantizerSite,
};
pub use range::RangeInit;
pub use spec::{Granularity, OverflowFix, QuantSpec, Signedness};
