//! One-call export: capture a Burn module, prepare the graph, lower it, write the IR atomically.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress_graph::{
    capture, float_inputs, prepare, CaptureInput, CaptureOptions, FloatInput, Graph,
};

use crate::error::{ExportError, Result};
use crate::ir::{ElementType, IrModel, WeightSummary};
use crate::lower::lower_into;
use crate::write::{bin_path, bin_temp_file, finish_pair};
use crate::xml::to_xml;

/// Export settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Batch dimension dynamic (`-1`) in the IR; `false` keeps the traced shape.
    pub dynamic_batch: bool,
    /// Model name written in the IR.
    pub name: String,
    /// Names of the IR's inputs, in order (empty: `input`, or `input0`, `input1`, ..).
    pub input_names: Vec<String>,
    /// Names of the IR's outputs, in order (empty: `output`, or `output0`, ..).
    pub output_names: Vec<String>,
    /// Quantizers that must survive into the IR; checked before anything is written.
    pub expect: ExpectedQuantizers,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dynamic_batch: true,
            name: "burn_model".into(),
            input_names: Vec::new(),
            output_names: Vec::new(),
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

/// The names of `count` inputs or outputs: `given` (checked: one per value, distinct, not empty)
/// or `default` (numbered when there are several).
fn io_names(
    option: &'static str,
    given: &[String],
    count: usize,
    default: &str,
) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(match count {
            1 => vec![default.to_string()],
            _ => (0..count).map(|k| format!("{default}{k}")).collect(),
        });
    }
    let reason = if given.len() != count {
        format!("{} names given, the model has {count}", given.len())
    } else if let Some(empty) = given.iter().position(|n| n.trim().is_empty()) {
        format!("name {empty} is empty")
    } else if let Some(k) = (1..given.len()).find(|&k| given[..k].contains(&given[k])) {
        format!("`{}` is given twice", given[k])
    } else {
        return Ok(given.to_vec());
    };
    Err(ExportError::Option { option, reason })
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
    /// Convolutions / MatMuls whose weight is quantized but whose input has no quantizer:
    /// OpenVINO runs them in floating point (see [`ExportReport::float_input_advice`]).
    pub float_inputs: Vec<FloatInput>,
    /// IR layers written.
    pub layers: usize,
    /// Time from capture to files on disk.
    pub elapsed: Duration,
}

/// Captures `forward(model, x)` for an input of `input_shape` and writes the OpenVINO IR to
/// `path` (`.xml`; the `.bin` goes next to it). Fake-quantizers become `FakeQuantize` layers
/// (activations) or i8/u8 weight constants with their dequantization. Nothing is written on
/// error.
pub fn export<M, K, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: impl Fn(&M, Tensor<D, K>) -> Tensor<O>,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportReport>
where
    M: Module,
    K: CaptureInput,
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
pub fn graph_to_ir(graph: Graph, options: &ExportOptions) -> Result<IrModel> {
    graph_into_ir(graph, options, IrModel::new(&options.name))
}

/// [`graph_to_ir`] into `ir`, an empty model.
fn graph_into_ir(mut graph: Graph, options: &ExportOptions, ir: IrModel) -> Result<IrModel> {
    prepare(&mut graph)?;
    let output_names = io_names(
        "output_names",
        &options.output_names,
        graph.outputs.len(),
        "output",
    )?;
    let input_names = io_names(
        "input_names",
        &options.input_names,
        graph.inputs.len(),
        "input",
    )?;
    for (input, name) in graph.inputs.clone().into_iter().zip(input_names) {
        graph.values[input.0].name = name;
    }
    let float = float_inputs(&graph);
    let mut ir = lower_into(graph, ir, &output_names)?;
    ir.float_inputs = float;
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

    /// One line per layer of [`float_inputs`](Self::float_inputs): what OpenVINO will do with
    /// it and how to fix it.
    pub fn float_input_advice(&self) -> Vec<String> {
        self.float_inputs
            .iter()
            .map(|f| {
                format!(
                    "`{}` ({}): its weight is quantized but its input is not, so OpenVINO runs it \
                     in floating point; quantize the input: wrap the layer (QConv1d, QConv2d, \
                     QConvTranspose1d, QConvTranspose2d, QLinear) or put an ActivationQuantizer before it",
                    f.layer, f.op
                )
            })
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
    let path = path.as_ref();
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    // The blob goes to its temporary file while the graph is lowered: the weights are not held
    // twice, and the disk works while the lowering does.
    let bin_file = bin_temp_file(path)?;
    let sink = bin_file.as_file().try_clone().map_err(io)?;
    let flusher = bin_file.as_file().try_clone().map_err(io)?;
    let lowered = AtomicBool::new(false);
    let (ir, xml) = std::thread::scope(|scope| {
        // Hands what is written of the blob to the disk while the rest is produced, so that the
        // final sync has little left to wait for (errors surface there).
        let syncing = scope.spawn(|| {
            while !lowered.load(Ordering::Acquire) {
                let _ = flusher.sync_data();
                std::thread::park_timeout(Duration::from_millis(20));
            }
        });
        let ir = graph_into_ir(graph, options, IrModel::streaming_to(&options.name, sink));
        lowered.store(true, Ordering::Release);
        syncing.thread().unpark();
        let mut ir = ir?;
        let xml = to_xml(&ir).map_err(io)?;
        ir.finish_bin().map_err(|source| ExportError::Io {
            path: bin_path(path),
            source,
        })?;
        Ok::<_, ExportError>((ir, xml))
    })?;
    let (xml_path, bin_path) = finish_pair(path, &xml, bin_file)?;
    Ok(ExportReport {
        xml: xml_path,
        bin: bin_path,
        bin_bytes: ir.bin_len(),
        activation_quantizers: ir.activation_quantizers.clone(),
        weights: ir.weights.clone(),
        float_inputs: ir.float_inputs.clone(),
        layers: ir.layers.len(),
        elapsed: start.elapsed(),
    })
}
