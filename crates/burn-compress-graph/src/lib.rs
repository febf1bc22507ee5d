//! burn-compress-graph: a Burn module's forward captured as a small, named, typed dataflow graph.
//!
//! [`capture`] records the forward with Burn's capture device and converts it into a [`Graph`]
//! whose parameters are constants named by their module path (`conv1.weight`). [`prepare`] then
//! recognises fake-quantize computations ([`Op::FakeQuantize`]), folds constant subgraphs and
//! removes identities. The graph knows nothing of any export format.

#![warn(missing_docs)]

pub mod capture;
pub mod diagnose;
pub mod dynamic;
pub mod error;
pub mod fake_quant;
pub mod fold;
pub mod graph;
pub mod passes;
pub mod tensor;

pub use capture::{capture, CaptureInput, CaptureOptions};
pub use diagnose::{float_inputs, FloatInput};
pub use error::{GraphError, Result};
pub use fake_quant::{match_fake_quantize, FakeQuantMatch};
pub use fold::{eval_const, fold_constants};
pub use graph::{
    Comparison, ConvAttrs, ElementKind, Graph, InterpolateMode, MathFn, Node, Op, PadMode,
    PoolAttrs, Reduction, SliceRange, Value, ValueId, ValueKind,
};
pub use passes::{prepare, PrepareReport};
pub use tensor::ConstTensor;
