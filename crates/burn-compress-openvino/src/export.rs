//! One-call export: capture a Burn module, prepare the graph, lower it, write the IR atomically.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress_graph::{capture, prepare, CaptureOptions, Graph};

use crate::error::{ExportError, Result};
use crate::ir::{ElementType, IrModel, WeightSummary};
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
    /// Quantizers that must survive into the IR; checked before anything is written.
    pub expect: ExpectedQuantizers,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dynamic_batch: true,
            name: "burn_model".into(),
            expect: ExpectedQuantizers::default(),
        }
    }
}

/// Quantizers the model carries, which the IR must show (no silent fallback to floating point).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedQuantizers {
    /// Parameter paths of weights that must be written as 8-bit integer constants.
    pub integer_weights: Vec<String>,
    /// Parameter path prefixes (`conv1.input_quant.slot`) of activation quantizers that must each
    /// become at least one `FakeQuantize` layer.
    pub activation_quantizers: Vec<String>,
}

impl ExpectedQuantizers {
    /// Checks `ir` against the expectations; the error names the first quantizer missing.
    pub fn check(&self, ir: &IrModel) -> Result<()> {
        for param in &self.integer_weights {
            let written = ir.weights.iter().find(|w| &w.param == param);
            match written {
                Some(w) if matches!(w.element, ElementType::I8 | ElementType::U8) => {}
                Some(w) => {
                    return Err(ExportError::MissingQuantizer {
                        path: param.clone(),
                        reason: format!(
                            "its weight quantizer was not recognised: the weight would be \
                             written as {}",
                            w.element.name()
                        ),
                    })
                }
                None => {
                    return Err(ExportError::MissingQuantizer {
                        path: param.clone(),
                        reason: "the quantized weight does not reach the IR (is the layer used \
                                 by the exported forward?)"
                            .into(),
                    })
                }
            }
        }
        for prefix in &self.activation_quantizers {
            let inside = format!("{prefix}.");
            if !ir
                .activation_quantizers
                .iter()
                .any(|source| source.starts_with(&inside))
            {
                return Err(ExportError::MissingQuantizer {
                    path: prefix.clone(),
                    reason: "the activation quantizer produced no FakeQuantize layer (is it \
                             used by the exported forward?)"
                        .into(),
                });
            }
        }
        Ok(())
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
    /// Activation `FakeQuantize` layers written: the parameter each range came from.
    pub activation_quantizers: Vec<String>,
    /// Every Convolution / MatMul weight: element type and zeros.
    pub weights: Vec<WeightSummary>,
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

/// Lowers a captured graph to an in-memory IR (after [`prepare`]) and checks it against
/// `options.expect`.
pub fn graph_to_ir(mut graph: Graph, options: &ExportOptions) -> Result<IrModel> {
    prepare(&mut graph)?;
    let ir = lower(&graph, &options.name)?;
    options.expect.check(&ir)?;
    Ok(ir)
}

impl ExportReport {
    /// Parameter paths of the weights written as 8-bit integers.
    pub fn quantized_weights(&self) -> Vec<&str> {
        self.weights
            .iter()
            .filter(|w| matches!(w.element, ElementType::I8 | ElementType::U8))
            .map(|w| w.param.as_str())
            .collect()
    }
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
    Ok(ExportReport {
        xml: xml_path,
        bin: bin_path,
        bin_bytes: ir.bin.len(),
        activation_quantizers: ir.activation_quantizers.clone(),
        weights: ir.weights.clone(),
        layers: ir.layers.len(),
        elapsed: start.elapsed(),
    })
}
