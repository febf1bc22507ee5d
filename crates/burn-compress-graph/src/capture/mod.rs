//! Capture of a Burn module's forward with Burn's non-executing capture device, converted into a
//! [`Graph`] whose parameters carry their module paths: tracing here, the conversion of Burn's
//! recorded operations in [`convert`].

use std::collections::HashMap;

use burn::backend::capture::{CaptureBackend, TensorId};
use burn::backend::Flex;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::kind::Basic;
use burn::tensor::{Device, Float, Int, Tensor};

use crate::dynamic::{mark_dynamic, same_structure};
use crate::error::{GraphError, Result};
use crate::graph::Graph;

mod convert;

pub use convert::convert;
use convert::Converter;

/// How to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Mark axis 0 of the input (and every dimension that follows it) as dynamic. Needs a second
    /// trace at another batch size.
    pub dynamic_batch: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            dynamic_batch: true,
        }
    }
}

/// Captures `forward(model, x)` for an input of `input_shape` into a [`Graph`].
///
/// The forward runs on Burn's capture device over placeholders of the model's parameters (the
/// model and its training state are untouched, its weights are not copied there); parameters
/// become constants named by their module path (`conv1.weight`), their values read once from
/// the model. With `options.dynamic_batch`, the forward is traced a second time with
/// another batch size and every dimension that changed with it is marked dynamic; where Burn
/// records other operations at the other batch size (it picks some kernels by shape), the
/// graph is traced at the first two neighbouring batch sizes above both that record the same.
pub fn capture<M, K, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: impl Fn(&M, Tensor<D, K>) -> Tensor<O>,
    options: &CaptureOptions,
) -> Result<Graph>
where
    M: Module,
    K: CaptureInput,
{
    if !options.dynamic_batch {
        let graph = trace(model, input_shape, &forward, Constants::Values)?;
        graph.check_supported()?;
        return Ok(graph);
    }
    if D == 0 {
        return Err(GraphError::DynamicBatch("the input is a scalar".into()));
    }
    let with_batch = |batch| with_batch(input_shape, batch);
    // The trace at another batch size only shows which dimensions follow the batch: it keeps no
    // constant values.
    let batch = input_shape[0];
    let other_batch = if batch == 2 { 3 } else { 2 };
    let other = trace(
        model,
        with_batch(other_batch),
        &forward,
        Constants::ShapesOnly,
    )?;
    let mut graph = trace(model, input_shape, &forward, Constants::Values)?;
    if !same_structure(&graph, &other) {
        // Burn picks some kernels by shape (a Linear over `[batch, rows, features]` folds the
        // batch into the rows when that makes its matmul squarer), so the recorded operations
        // can differ between two batch sizes while every batch computes the same function.
        // Look for two neighbouring batch sizes that record the same operations and trace
        // there; report the first difference if none do.
        match stable_batches(model, input_shape, &forward, batch.max(other_batch) + 1)? {
            Some((first, second)) => {
                graph = trace(model, with_batch(first), &forward, Constants::Values)?;
                mark_dynamic(&mut graph, &second)?;
            }
            None => mark_dynamic(&mut graph, &other)?,
        }
    } else {
        mark_dynamic(&mut graph, &other)?;
    }
    graph.check_supported()?;
    Ok(graph)
}

/// Batch sizes tried by [`stable_batches`] after the first.
const BATCH_SEARCH: usize = 6;

/// The first batch size from `start` on whose shapes-only trace records the same operations as
/// the trace at the next batch size, with that next trace; `None` if no such pair is found
/// among [`BATCH_SEARCH`] sizes.
fn stable_batches<M, K, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: &impl Fn(&M, Tensor<D, K>) -> Tensor<O>,
    start: usize,
) -> Result<Option<(usize, Graph)>>
where
    M: Module,
    K: CaptureInput,
{
    let shapes_at = |batch| {
        trace(
            model,
            with_batch(input_shape, batch),
            forward,
            Constants::ShapesOnly,
        )
    };
    let mut previous = shapes_at(start)?;
    for batch in start + 1..=start + BATCH_SEARCH {
        let next = shapes_at(batch)?;
        if same_structure(&previous, &next) {
            return Ok(Some((batch - 1, next)));
        }
        previous = next;
    }
    Ok(None)
}

/// `shape` with `batch` on its first axis.
fn with_batch<const D: usize>(mut shape: [usize; D], batch: usize) -> [usize; D] {
    shape[0] = batch;
    shape
}

/// What a trace keeps of its constants.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Constants {
    /// Their values.
    Values,
    /// Their shapes only (the data is left empty).
    ShapesOnly,
}

fn trace<M, K, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: &impl Fn(&M, Tensor<D, K>) -> Tensor<O>,
    constants: Constants,
) -> Result<Graph>
where
    M: Module,
    K: CaptureInput,
{
    let device = Device::capture();
    let mut params = HashMap::new();
    // Both traces run on placeholders of the parameters: the weights are not copied onto the
    // capture device. A trace that keeps values reads each parameter once, by module path, from
    // the model itself (its stored value, before any reparameterization) when converting.
    let mut sources = HashMap::new();
    if constants == Constants::Values {
        model.visit(&mut ParamPaths::new(PathTarget::Values(&mut sources)));
    }
    let captured = device
        .capture_scope(|scope| {
            // Parameters become uninitialised tensors of their shapes; whatever else the model
            // holds (integer and boolean tensors, constants) moves as it is.
            let moved = model
                .valid()
                .map(&mut ShapePlaceholders { device: &device })
                .to_device(&device);
            moved.visit(&mut ParamPaths::new(PathTarget::Ids(&mut params)));
            let x = K::zeros(input_shape, &device);
            let x_id = K::id(&x);
            let y = forward(&moved, x);
            let y_id = Float::id(&y);
            scope.complete([x_id], [y_id])
        })
        .map_err(|e| GraphError::Capture(e.to_string()))?;
    // The recorded values move into the graph's constants (no copy where Burn allows it).
    let mut graph = Converter::new(captured.values, &params, constants)
        .with_sources(sources)
        .run(
            &captured.graph.operations,
            &captured.graph.inputs,
            &captured.graph.outputs,
        )?;
    graph.remove_dead();
    graph.validate()?;
    Ok(graph)
}

/// What a captured forward takes as its input: floats ([`Float`]), or integer ids ([`Int`], for
/// an `Embedding`; the IR's input is then `i64`).
pub trait CaptureInput: Basic + Sized {
    /// Zeros of `shape` on the capture `device`.
    fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D, Self>;
    /// The capture-device id of `t`.
    fn id<const D: usize>(t: &Tensor<D, Self>) -> TensorId;
}

impl CaptureInput for Float {
    fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::<D>::zeros(shape, &Device::flex()).to_device(device)
    }

    fn id<const D: usize>(t: &Tensor<D>) -> TensorId {
        t.clone()
            .try_into_primitive::<CaptureBackend>()
            .expect("tensor lives on the capture device")
            .id()
    }
}

impl CaptureInput for Int {
    fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D, Int> {
        Tensor::<D, Int>::zeros(shape, &Device::flex()).to_device(device)
    }

    fn id<const D: usize>(t: &Tensor<D, Int>) -> TensorId {
        t.clone()
            .try_into_primitive::<CaptureBackend>()
            .expect("tensor lives on the capture device")
            .id()
    }
}

/// Replaces every float parameter (and running state) with an uninitialised tensor of its shape
/// on the capture device.
struct ShapePlaceholders<'a> {
    device: &'a Device,
}

impl ModuleMapper for ShapePlaceholders<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| Tensor::empty(tensor.shape(), self.device))
    }
}

/// What [`ParamPaths`] records for each float parameter under its module path.
enum PathTarget<'a> {
    /// The capture-device tensor id of the parameter's stored value → its path.
    Ids(&'a mut HashMap<TensorId, String>),
    /// Path → the values of the parameter's stored tensor.
    Values(&'a mut HashMap<String, Vec<f32>>),
}

/// Walks a module's float parameters with their module paths (`layer1.0.conv1.weight`).
struct ParamPaths<'a> {
    path: Vec<String>,
    target: PathTarget<'a>,
}

impl<'a> ParamPaths<'a> {
    fn new(target: PathTarget<'a>) -> Self {
        Self {
            path: Vec::new(),
            target,
        }
    }
}

impl ModuleVisitor for ParamPaths<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        match &mut self.target {
            PathTarget::Ids(ids) => {
                if let Ok(primitive) = param.base().try_into_primitive::<CaptureBackend>() {
                    ids.entry(primitive.id()).or_insert(path);
                }
            }
            PathTarget::Values(values) => {
                values
                    .entry(path)
                    .or_insert_with(|| float_values(param.base()));
            }
        }
    }
}

/// The values of `tensor` as `f32`, copied once where the tensor lives in a contiguous `f32`
/// buffer on the CPU (Flex), read through [`TensorData`] otherwise.
fn float_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    if let Ok(primitive) = tensor.clone().try_into_primitive::<Flex>() {
        if let Some(values) = primitive.as_slice::<f32>() {
            return values.to_vec();
        }
    }
    tensor.into_data().iter::<f32>().collect()
}
