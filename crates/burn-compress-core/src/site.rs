//! Site discovery: the Conv/Linear weights of any Burn module, by path, with what their
//! [`WeightTransform`] already holds, and their effective values.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::transform::WeightTransform;

/// The kind of layer a weight belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// `Conv1d`, weight `[out, in/groups, k]`.
    Conv1d,
    /// `Conv2d`, weight `[out, in/groups, kh, kw]`.
    Conv2d,
    /// `Conv3d`, weight `[out, in/groups, kd, kh, kw]`.
    Conv3d,
    /// `Linear`, weight `[d_input, d_output]`.
    Linear,
    /// `ConvTranspose1d` / `ConvTranspose2d` / `ConvTranspose3d`, weight
    /// `[in, out/groups, k..]`.
    ConvTranspose,
}

impl LayerKind {
    /// The layer of a Burn container type (`Struct:Conv2d`), if it is one with a weight.
    pub fn from_container(container: &str) -> Option<Self> {
        Some(match container {
            "Struct:Conv1d" => LayerKind::Conv1d,
            "Struct:Conv2d" => LayerKind::Conv2d,
            "Struct:Conv3d" => LayerKind::Conv3d,
            "Struct:Linear" => LayerKind::Linear,
            "Struct:ConvTranspose1d" | "Struct:ConvTranspose2d" | "Struct:ConvTranspose3d" => {
                LayerKind::ConvTranspose
            }
            _ => return None,
        })
    }

    /// Axis of the weight that indexes output channels.
    pub fn output_axis(self) -> usize {
        match self {
            LayerKind::Linear | LayerKind::ConvTranspose => 1,
            _ => 0,
        }
    }

    /// Axis of the weight that indexes input channels (or input features).
    pub fn input_axis(self) -> usize {
        match self {
            LayerKind::Linear | LayerKind::ConvTranspose => 0,
            _ => 1,
        }
    }
}

/// What a weight's reparameterization holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransformState {
    /// The weight carries a [`WeightTransform`] (possibly with no stage left).
    pub attached: bool,
    /// Name of a reparameterization that is not a [`WeightTransform`], if any.
    pub foreign: Option<String>,
    /// The transform has a mask stage.
    pub mask: bool,
    /// The transform has a quantizer stage.
    pub quantizer: bool,
}

impl TransformState {
    /// Whether the weight carries a [`WeightTransform`], with or without stages.
    pub fn present(&self) -> bool {
        self.attached
    }
}

/// One Conv/Linear weight of a model.
#[derive(Clone, Debug)]
pub struct WeightSite {
    /// Module path of the layer (`conv1`).
    pub layer: String,
    /// Parameter path of the weight (`conv1.weight`).
    pub param: String,
    /// The weight's parameter id.
    pub id: ParamId,
    /// The layer type.
    pub kind: LayerKind,
    /// The weight's dimensions.
    pub dims: Vec<usize>,
    /// What its transform holds.
    pub transform: TransformState,
}

impl WeightSite {
    /// Number of weight elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the weight has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every Conv1d/Conv2d/Conv3d/ConvTranspose/Linear weight of `model`, in module order.
pub fn weight_sites<M: Module>(model: &M) -> Vec<WeightSite> {
    let mut survey = Survey::default();
    model.visit(&mut survey);
    survey.sites
}

/// Effective weight values (`base ⊙ mask` where a mask is attached, before quantization) of
/// every Conv/Linear weight, keyed by parameter path: `(dims, row-major values)`.
pub fn effective_weights<M: Module>(model: &M) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let mut survey = Survey {
        read_values: true,
        ..Survey::default()
    };
    model.visit(&mut survey);
    let masks = survey.masks;
    survey
        .values
        .into_iter()
        .map(|(path, (dims, mut values))| {
            if let Some(keep) = masks.get(&path) {
                for (value, keep) in values.iter_mut().zip(keep) {
                    *value *= keep;
                }
            }
            (path, (dims, values))
        })
        .collect()
}

/// Reads a tensor to the host as f32.
pub fn host_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

#[derive(Default)]
struct Survey {
    path: Vec<String>,
    containers: Vec<String>,
    sites: Vec<WeightSite>,
    /// Depth at which the reparameterization of the last site starts, while inside it.
    reparameterization_at: Option<usize>,
    read_values: bool,
    values: HashMap<String, (Vec<usize>, Vec<f32>)>,
    masks: HashMap<String, Vec<f32>>,
}

impl ModuleVisitor for Survey {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == "Reparameterization" && self.reparameterization_at.is_none() {
            self.reparameterization_at = Some(self.path.len());
            if let Some(site) = self
                .sites
                .last_mut()
                .filter(|site| site.param == self.path.join("."))
            {
                if name == WeightTransform::NAME {
                    site.transform.attached = true;
                } else {
                    site.transform.foreign = Some(name.to_string());
                }
            }
        }
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
        if self.reparameterization_at == Some(self.path.len()) {
            self.reparameterization_at = None;
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(at) = self.reparameterization_at {
            // State of the transform of the weight at `path[..at]`.
            let owner = self.path[..at].join(".");
            let Some(site) = self.sites.last_mut().filter(|site| site.param == owner) else {
                return;
            };
            if site.transform.foreign.is_some() {
                return;
            }
            let inner: Vec<&str> = self.path[at + 1..].iter().map(String::as_str).collect();
            match inner.as_slice() {
                ["mask", "keep"] => {
                    site.transform.mask = true;
                    if self.read_values {
                        self.masks.insert(owner, host_values(param.val()));
                    }
                }
                ["mask", ..] => site.transform.mask = true,
                ["quantizer", ..] => site.transform.quantizer = true,
                _ => {}
            }
            return;
        }
        let (Some(name), Some(container)) = (self.path.last(), self.containers.last()) else {
            return;
        };
        let Some(kind) = LayerKind::from_container(container).filter(|_| name == "weight") else {
            return;
        };
        let param_path = self.path.join(".");
        if self.read_values {
            self.values.insert(
                param_path.clone(),
                (param.dims().to_vec(), host_values(param.val())),
            );
        }
        self.sites.push(WeightSite {
            layer: self.path[..self.path.len() - 1].join("."),
            param: param_path,
            id: param.id,
            kind,
            dims: param.dims().to_vec(),
            transform: TransformState::default(),
        });
    }
}
