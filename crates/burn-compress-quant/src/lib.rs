//! Quantization-aware training for Burn: fake-quantize with OpenVINO semantics and NNCF's
//! learnable-range gradients, weight quantizers attached by reparameterization, activation
//! quantizer layers, range initialisation from calibration batches, and BatchNorm folding.
//!
//! ```ignore
//! let model = burn_compress_quant::quantize(model)
//!     .weights(QuantSpec::int8_weights())
//!     .activations(QuantSpec::int8_activations())
//!     .ignore("fc2")
//!     .init_ranges(RangeInit::MeanMinMax, calibration_batches, |m, x| { m.forward(x); })?;
//! ```

pub mod activation;
pub mod bn;
pub mod calibration;
pub mod config;
pub mod error;
pub mod fake_quant;
pub mod prepare;
pub mod quantizer;
pub mod range;
pub mod scope;
pub mod spec;

pub use activation::{ActivationQuantizer, QConv1d, QConv2d, QLinear};
pub use bn::{adapt_batch_norm, fold_batch_norm};
pub use config::QuantConfig;
pub use error::{QuantError, Result};
pub use fake_quant::{fake_quantize, symmetric_low_and_range};
pub use prepare::{quantize, quantizer_sites, QuantizeBuilder, QuantizerKind, QuantizerSite};
pub use quantizer::FakeQuantizer;
pub use range::RangeInit;
pub use scope::Scope;
pub use spec::{Granularity, QuantMode, QuantSpec, ResolvedSpec, Signedness};
