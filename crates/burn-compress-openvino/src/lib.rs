//! burn-compress-openvino: lowering of a captured Burn graph to an OpenVINO IR v11 pair
//! (`model.xml` + `model.bin`), and running it from Rust.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::{Tensor, TensorData};
//! # fn demo<M: Module>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
//! #     input_data: TensorData) -> burn_compress_openvino::Result<()> {
//! use burn_compress_openvino::{eval, export, ExportOptions, Precision};
//! let report = export(&model, [1, 1, 28, 28], forward, "model.xml", &ExportOptions::default())?;
//! let logits = eval("model.xml", &input_data, Precision::F32)?;
//! # Ok(()) }
//! ```
//!
//! Fake-quantize computations recognised in the graph become `FakeQuantize` layers
//! (activations) or i8/u8 constants followed by `Convert` -> (`Subtract` zero point) ->
//! `Multiply` scale (weights): the pattern OpenVINO's CPU plugin runs on INT8 kernels.

#![warn(missing_docs)]

pub mod compare;
pub mod error;
pub mod export;
pub mod ir;
pub mod lower;
pub mod runtime;
pub mod weights;
pub mod write;
pub mod xml;

pub use compare::{compare, Comparison};
pub use error::{ExportError, Result};
pub use export::{
    export, export_graph, graph_to_ir, ExpectedQuantizers, ExportOptions, ExportReport,
};
pub use ir::{ElementType, IrModel, WeightSummary};
pub use lower::{lower, lower_consuming, lower_into};
pub use runtime::{eval, find_library, CompiledIr, Precision, Runtime};
pub use xml::to_xml;
