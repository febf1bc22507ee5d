//! burn-compress-core: what every compression method shares.
//!
//! - [`WeightTransform`]: the one reparameterization a compressed Conv/Linear weight carries,
//!   `w' = FQ(mask ⊙ w)`, to which sparsity, pruning and quantization each [`attach`] a stage;
//! - the stages' numerics: [`fake_quant`] (OpenVINO's `FakeQuantize` forward, NNCF's gradients),
//!   [`FakeQuantizer`], [`WeightMask`];
//! - [`scope`]s, [`site`] discovery and transform [`state`] by module path;
//! - [`calibration`] sessions, BatchNorm folding and adaptation ([`bn`]);
//! - level [`schedule`]s and model [`stats`].

#![warn(missing_docs)]

pub mod bn;
pub mod calibration;
pub mod conv;
pub mod error;
pub mod fake_quant;
pub mod fused;
pub mod grid;
mod isa;
pub mod mask;
pub mod quantizer;
pub mod schedule;
pub mod scope;
pub mod site;
pub mod state;
pub mod stats;
pub mod transform;

pub use bn::{adapt_batch_norm, fold_batch_norm};
pub use error::{CoreError, Result};
pub use fake_quant::{
    fake_quantize, fake_quantize_integer, fake_quantize_symmetric, fake_quantize_trainable,
    fake_quantize_trainable_unfused, safe_magnitude, symmetric_low_and_range, tune_range, Form,
    Operands, RANGE_EPS,
};
pub use grid::{QuantMode, ResolvedSpec};
pub use mask::{MaskGradient, WeightMask};
pub use quantizer::FakeQuantizer;
pub use schedule::{LevelSchedule, Schedule, ScheduleError, Scheduler, Tick};
pub use scope::Scope;
pub use site::{weight_sites, LayerKind, WeightSite};
pub use stats::{ModelStats, WeightStats};
pub use transform::{attach, remove_masks, Attachment, Stage, WeightTransform};
