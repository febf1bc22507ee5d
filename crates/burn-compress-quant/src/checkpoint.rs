//! Loading a checkpoint saved from the stock-layer version of a model into the same model with
//! quantizer wrappers ([`QConv2d`](crate::QConv2d), [`QConv1d`](crate::QConv1d),
//! [`QConvTranspose1d`](crate::QConvTranspose1d), [`QConvTranspose2d`](crate::QConvTranspose2d),
//! [`QLinear`](crate::QLinear)) and [`ActivationQuantizer`](crate::ActivationQuantizer) slots.
//!
//! A wrapper adds one level to its layer's parameter paths (`conv1.weight` becomes
//! `conv1.conv.weight`) and a quantizer slot that a stock checkpoint does not have. The loader
//! walks the wrapped model, derives each parameter's stock path by dropping the wrapper's inner
//! field, renames the checkpoint's tensors accordingly and leaves the slots as they are. Every
//! other parameter must be in the checkpoint, and every checkpoint tensor must be used.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Bool, Int, Tensor};

use crate::error::{QuantError, Result};

/// The wrapper structs and the field that holds their stock layer.
const WRAPPERS: [(&str, &str); 5] = [
    ("Struct:QConv2d", "conv"),
    ("Struct:QConv1d", "conv"),
    ("Struct:QConvTranspose1d", "conv"),
    ("Struct:QConvTranspose2d", "conv"),
    ("Struct:QLinear", "linear"),
];
/// The container type of an activation-quantizer slot.
const SLOT_CONTAINER: &str = "Struct:ActivationQuantizer";

/// One parameter of the wrapped model: its path there and in a stock-layer checkpoint.
struct ParamPath {
    path: String,
    stock: String,
    slot: bool,
}

/// Collects [`ParamPath`]s while visiting the wrapped model.
#[derive(Default)]
struct PathCollector {
    segments: Vec<(String, bool)>,
    in_slot: usize,
    params: Vec<ParamPath>,
}

impl PathCollector {
    fn record(&mut self) {
        let path = self
            .segments
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let stock = self
            .segments
            .iter()
            .filter(|(_, wrapped)| !wrapped)
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        self.params.push(ParamPath {
            path,
            stock,
            slot: self.in_slot > 0,
        });
    }
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        let wrapped = WRAPPERS
            .iter()
            .any(|&(container, field)| container == container_type && field == name);
        if container_type == SLOT_CONTAINER {
            self.in_slot += 1;
        }
        self.segments.push((name.to_string(), wrapped));
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if container_type == SLOT_CONTAINER {
            self.in_slot -= 1;
        }
        self.segments.pop();
    }

    fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
        self.record();
    }

    fn visit_int<const D: usize>(&mut self, _param: &Param<Tensor<D, Int>>) {
        self.record();
    }

    fn visit_bool<const D: usize>(&mut self, _param: &Param<Tensor<D, Bool>>) {
        self.record();
    }
}

fn checkpoint_error(file: &Path, reason: impl Into<String>) -> QuantError {
    QuantError::Checkpoint {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

/// Loads `file`, a checkpoint saved (with [`Module::save_file`]) from the stock-layer version of
/// `model`'s type, into `model`, whose layers may be wrapped in `QConv2d` / `QConv1d` / `QLinear`
/// and may hold `ActivationQuantizer` slots. A checkpoint of the wrapped model itself loads too.
///
/// Fails, naming the file and the parameters, when a parameter other than a quantizer slot is
/// missing from the checkpoint, a checkpoint tensor matches no parameter, or shapes differ.
///
/// ```no_run
/// # use burn::module::Module;
/// # fn demo<M: Module>(model: M) -> burn_compress_quant::Result<M> {
/// let model = burn_compress_quant::load_stock_checkpoint(model, "fp32_stock.bpk".as_ref())?;
/// # Ok(model) }
/// ```
pub fn load_stock_checkpoint<M: Module>(model: M, file: &Path) -> Result<M> {
    let mut collector = PathCollector::default();
    model.visit(&mut collector);

    let reader =
        burn_pack::Reader::from_file(file).map_err(|e| checkpoint_error(file, e.to_string()))?;
    let mut stored: HashMap<String, burn_pack::Tensor> = reader
        .into_tensors()
        .map_err(|e| checkpoint_error(file, e.to_string()))?
        .into_iter()
        .map(|tensor| (tensor.name.clone(), tensor))
        .collect();

    let mut renamed = Vec::with_capacity(stored.len());
    let mut missing = Vec::new();
    for param in &collector.params {
        let found = stored
            .remove(&param.path)
            .or_else(|| stored.remove(&param.stock));
        match found {
            Some(mut tensor) => {
                tensor.name = param.path.clone();
                renamed.push(tensor);
            }
            None if param.slot => {}
            None => missing.push(param.stock.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(checkpoint_error(
            file,
            format!("no tensor for the model's parameters {missing:?}"),
        ));
    }
    if !stored.is_empty() {
        let mut unused: Vec<_> = stored.into_keys().collect();
        unused.sort();
        return Err(checkpoint_error(
            file,
            format!("tensors {unused:?} match no parameter of the model"),
        ));
    }

    let bytes = burn_pack::Writer::new(renamed)
        .into_bytes()
        .map_err(|e| checkpoint_error(file, e.to_string()))?;
    let record = ModuleRecord::from_bytes(bytes)
        .map_err(|e| checkpoint_error(file, e.to_string()))?
        .allow_partial(true);
    model
        .try_load_record(record)
        .map_err(|e| checkpoint_error(file, e.to_string()))
}
