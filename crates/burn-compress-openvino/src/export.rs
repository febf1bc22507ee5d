//! One-call export: capture a Burn module, prepare the graph, lower it, write the IR atomically.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress_graph::{capture, prepare, CaptureOptions, Graph};

use crate::error::{ExportError, Result};
use crate::ir::{ElementType, IrModel};
use crate::lower::lower;
use crate::write::write_pair;
use crate::xml::to_xml;

/// Export settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Batch dimension dynamic (`-1`) in the IR; `false` keeps the traced shape.
    pub dynamic_batch: bool,
    /// Model name written in the IR.
    pub name: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dynamic_batch: true,
            name: "burn_model".into(),
        }
    }
}

/// What an export produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The `.xml` file.
    pub xml: PathBuf,
    /// The `.bin` file.
    pub bin: PathBuf,
    /// Size of the `.bin`.
    pub bin_bytes: usize,
    /// Activation `FakeQuantize` layers written.
    pub activation_quantizers: usize,
    /// Weights written as 8-bit integer constants.
    pub quantized_weights: usize,
    /// IR layers written.
    pub layers: usize,
    /// Time from capture to files on disk.
    pub elapsed: Duration,
}

/// Captures `forward(model, x)` for an input of `input_shape` and writes the OpenVINO IR to
/// `path` (`.xml`; the `.bin` goes next to it). Fake-quantizers become `FakeQuantize` layers
/// (activations) or i8/u8 weight constants with their dequantization. Nothing is written on
/// error.
pub fn export<M, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportReport>
where
    M: Module,
{
    let start = Instant::now();
    let graph = capture(
        model,
        input_shape,
        forward,
        &CaptureOptions {
            dynamic_batch: options.dynamic_batch,
        },
    )?;
    let mut report = export_graph(graph, path, options)?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Lowers a captured graph to an in-memory IR (after [`prepare`]).
pub fn graph_to_ir(mut graph: Graph, options: &ExportOptions) -> Result<IrModel> {
    prepare(&mut graph)?;
    lower(&graph, &options.name)
}

/// Prepares, lowers and writes an already captured graph.
pub fn export_graph(
    graph: Graph,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportReport> {
    let start = Instant::now();
    let ir = graph_to_ir(graph, options)?;
    let xml = to_xml(&ir).map_err(|source| ExportError::Io {
        path: path.as_ref().to_path_buf(),
        source,
    })?;
    let (xml_path, bin_path) = write_pair(path.as_ref(), &xml, &ir.bin)?;
    let count = |kind: &str| ir.layers.iter().filter(|l| l.kind == kind).count();
    let quantized_weights = ir
        .layers
        .iter()
        .filter(|l| {
            l.kind == "Const" && matches!(l.outputs[0].element, ElementType::I8 | ElementType::U8)
        })
        .count();
    Ok(ExportReport {
        xml: xml_path,
        bin: bin_path,
        bin_bytes: ir.bin.len(),
        activation_quantizers: count("FakeQuantize"),
        quantized_weights,
        layers: ir.layers.len(),
        elapsed: start.elapsed(),
    })
}
