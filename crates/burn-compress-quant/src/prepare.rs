//! The one-call API: [`quantize`] a model, then [`QuantizeBuilder::init_ranges`] attaches weight
//! and activation quantizers with ranges from calibration batches.
//!
//! Weight quantizers become the quantizer stage of each weight's
//! [`WeightTransform`](burn_compress_core::WeightTransform) (after a mask, if sparsity was
//! attached first); activation quantizers are the reparameterization of an
//! [`ActivationQuantizer`](crate::ActivationQuantizer)'s slot.

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleVisitor, Param, ParamId, Reparameterization, Reparameterizer};
use burn::tensor::Tensor;
use burn_compress_core::calibration::{channel_min_max, CalibrationSession, Observation};
use burn_compress_core::scope::{check_scopes_match, Scope};
use burn_compress_core::site::{effective_weights, LayerKind};
use burn_compress_core::{
    attach, Attachment, CoreError, FakeQuantizer, ResolvedSpec, WeightTransform,
};

use crate::error::{QuantError, Result};
use crate::range::{grid_range, mse_search, RangeInit};
use crate::spec::{Granularity, OverflowFix, QuantSpec};

/// Starts quantizing `model`: 8-bit symmetric per-channel weights and 8-bit per-tensor
/// activations unless told otherwise.
pub fn quantize<M: Module>(model: M) -> QuantizeBuilder<M> {
    QuantizeBuilder {
        model,
        weights: Some(QuantSpec::int8_weights()),
        activations: Some(QuantSpec::int8_activations()),
        ignored: Vec::new(),
        overflow_fix: OverflowFix::default(),
    }
}

/// Collects the quantization settings for one model; see [`quantize`].
pub struct QuantizeBuilder<M> {
    model: M,
    weights: Option<QuantSpec>,
    activations: Option<QuantSpec>,
    ignored: Vec<String>,
    overflow_fix: OverflowFix,
}

/// What kind of tensor a quantizer sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantizerKind {
    /// A Conv1d/Conv2d/Conv3d/ConvTranspose/Linear weight; `axis` is its output-channel axis.
    Weight {
        /// Output-channel axis of the weight.
        axis: usize,
    },
    /// An [`ActivationQuantizer`](crate::ActivationQuantizer) slot.
    Activation,
}

/// A place in a model where a quantizer can be attached.
#[derive(Clone, Debug)]
pub struct QuantizerSite {
    /// Path of the quantizer: the layer for weights (`conv1.conv`), the activation
    /// quantizer module for activations (`conv1.input_quant`).
    pub path: String,
    /// Full path of the parameter that carries it.
    pub param_path: String,
    /// Id of that parameter.
    pub param_id: ParamId,
    /// Weight or activation.
    pub kind: QuantizerKind,
    /// Whether a quantizer is attached already.
    pub attached: bool,
}

/// Lists every place of `model` where a quantizer can sit (weights of stock Conv1d, Conv2d,
/// Conv3d, ConvTranspose1d/2d/3d and Linear layers, and activation quantizer slots), in module
/// order, attached or not.
pub fn quantizer_sites<M: Module>(model: &M) -> Vec<QuantizerSite> {
    let mut survey = Survey::default();
    model.visit(&mut survey);
    survey.sites
}

#[derive(Default)]
struct Survey {
    path: Vec<String>,
    containers: Vec<String>,
    sites: Vec<QuantizerSite>,
}

impl ModuleVisitor for Survey {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (Some(name), Some(container)) = (self.path.last(), self.containers.last()) else {
            return;
        };
        if let Some(at) = self
            .containers
            .iter()
            .position(|c| c == "Reparameterization")
        {
            // State of a reparameterization of the parameter visited just before.
            let owner = self.path[..at].join(".");
            let reparameterization = self.path[at].as_str();
            let quantizes = match reparameterization {
                FakeQuantizer::NAME => true,
                WeightTransform::NAME => {
                    self.path.get(at + 1).map(String::as_str) == Some("quantizer")
                }
                _ => false,
            };
            if let Some(site) = self.sites.last_mut() {
                site.attached |= quantizes && site.param_path == owner;
            }
            return;
        }
        let kind = match (name.as_str(), container.as_str()) {
            ("weight", layer) => match LayerKind::from_container(layer) {
                Some(layer) => QuantizerKind::Weight {
                    axis: layer.output_axis(),
                },
                None => return,
            },
            ("slot", "Struct:ActivationQuantizer") => QuantizerKind::Activation,
            _ => return,
        };
        let param_path = self.path.join(".");
        let path = self.path[..self.path.len() - 1].join(".");
        self.sites.push(QuantizerSite {
            path,
            param_path,
            param_id: param.id,
            kind,
            attached: false,
        });
    }
}

impl<M: Module> QuantizeBuilder<M> {
    /// Spec for Conv/Linear weights.
    pub fn weights(mut self, spec: QuantSpec) -> Self {
        self.weights = Some(spec);
        self
    }

    /// Leaves weights in floating point.
    pub fn no_weights(mut self) -> Self {
        self.weights = None;
        self
    }

    /// Spec for activation quantizers.
    pub fn activations(mut self, spec: QuantSpec) -> Self {
        self.activations = Some(spec);
        self
    }

    /// Leaves activations in floating point.
    pub fn no_activations(mut self) -> Self {
        self.activations = None;
        self
    }

    /// Leaves the layers under `scope` unquantized: a module path (`fc2`, which also covers
    /// `fc2.linear`) or a regular expression written `re:<regex>`.
    pub fn ignore(mut self, scope: impl Into<String>) -> Self {
        self.ignored.push(scope.into());
        self
    }

    /// Which 8-bit weights use the half range that CPUs without VNNI run exactly
    /// ([`OverflowFix::Enable`] unless told otherwise).
    pub fn overflow_fix(mut self, fix: OverflowFix) -> Self {
        self.overflow_fix = fix;
        self
    }

    /// Attaches the quantizers. Activation ranges (and the signedness of `Auto` specs) come from
    /// running `forward` over `batches` with quantizers disabled; weight ranges are the
    /// per-channel min/max of the weights (masked, if sparsity is attached). Every quantizer is
    /// built before any is attached: on error the model is dropped unchanged.
    pub fn init_ranges<B>(
        self,
        init: RangeInit,
        batches: impl IntoIterator<Item = B>,
        mut forward: impl FnMut(&M, B),
    ) -> Result<M> {
        for spec in self.weights.iter().chain(&self.activations) {
            spec.validate()?;
        }
        init.validate()?;
        let scopes = self
            .ignored
            .iter()
            .map(|text| Scope::parse(text))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let sites = quantizer_sites(&self.model);
        if let Some(site) = sites.iter().find(|site| site.attached) {
            return Err(QuantError::NothingToQuantize(format!(
                "`{}` already has a quantizer; quantize the floating-point model",
                site.path
            )));
        }
        let paths: Vec<String> = sites.iter().map(|site| site.path.clone()).collect();
        check_scopes_match(&scopes, &paths)?;
        let selected: Vec<&QuantizerSite> = sites
            .iter()
            .filter(|site| !scopes.iter().any(|scope| scope.matches(&site.path)))
            .filter(|site| match site.kind {
                QuantizerKind::Weight { .. } => self.weights.is_some(),
                QuantizerKind::Activation => self.activations.is_some(),
            })
            .collect();
        if selected.is_empty() {
            return Err(QuantError::NothingToQuantize(
                "the model has no Conv/Linear weight or activation quantizer slot outside the \
                 ignored scopes"
                    .into(),
            ));
        }

        let activation_ids: HashSet<ParamId> = selected
            .iter()
            .filter(|site| site.kind == QuantizerKind::Activation)
            .map(|site| site.param_id)
            .collect();
        let observations = if activation_ids.is_empty() {
            HashMap::new()
        } else {
            let session = CalibrationSession::start();
            let mut count = 0usize;
            for batch in batches {
                forward(&self.model, batch);
                count += 1;
            }
            if count == 0 {
                return Err(QuantError::Calibration(
                    "the calibration set is empty: give at least one batch".into(),
                ));
            }
            session.finish()
        };

        let device = self
            .model
            .devices()
            .into_iter()
            .next()
            .unwrap_or_else(burn::tensor::Device::flex);
        let weights = effective_weights(&self.model);
        let first_conv = sites
            .iter()
            .find(|site| site.kind == QuantizerKind::Weight { axis: 0 })
            .map(|site| site.param_path.clone());
        let half_range = |site: &QuantizerSite| match self.overflow_fix {
            OverflowFix::Enable => true,
            OverflowFix::FirstLayer => first_conv.as_deref() == Some(site.param_path.as_str()),
            OverflowFix::Disable => false,
        };
        let mut weight_quantizers = HashMap::new();
        let mut activation_quantizers = HashMap::new();
        for site in &selected {
            match (site.kind, &self.weights, &self.activations) {
                (QuantizerKind::Weight { axis }, Some(spec), _) => {
                    let (dims, values) = &weights[&site.param_path];
                    let grid = spec.resolve_grid(true, axis, dims.len(), half_range(site))?;
                    let quantizer = weight_quantizer(grid, site, dims, values, &device)?;
                    weight_quantizers.insert(
                        site.param_path.clone(),
                        Attachment {
                            mask: None,
                            quantizer: Some(quantizer),
                        },
                    );
                }
                (QuantizerKind::Activation, _, Some(spec)) => {
                    let observation = observations.get(&site.param_id).ok_or_else(|| {
                        QuantError::Calibration(format!(
                            "no calibration batch reached `{}`: is it used in the forward pass?",
                            site.path
                        ))
                    })?;
                    let quantizer =
                        activation_quantizer(spec, init.clone(), site, observation, &device)?;
                    activation_quantizers.insert(site.param_path.clone(), quantizer);
                }
                _ => {}
            }
        }
        let model = attach(self.model, weight_quantizers)?;
        Ok(model.apply_reparameterization(&mut SlotAttacher {
            quantizers: activation_quantizers,
        }))
    }
}

/// The quantizer of a weight on grid `resolved`, its range the per-channel min/max of `values`.
fn weight_quantizer(
    resolved: ResolvedSpec,
    site: &QuantizerSite,
    dims: &[usize],
    values: &[f32],
    device: &burn::tensor::Device,
) -> Result<FakeQuantizer> {
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::InvalidRange {
            path: site.path.clone(),
            reason: format!("weight element {index} is {}", values[index]),
        }
        .into());
    }
    let (mins, maxs) = channel_min_max(values, dims, resolved.axis);
    let (lows, highs) = grid_range(&resolved, &mins, &maxs);
    Ok(FakeQuantizer::new(
        resolved, &lows, &highs, &site.path, device,
    )?)
}

/// The quantizer of an activation slot, its range from the calibration statistics.
fn activation_quantizer(
    spec: &QuantSpec,
    init: RangeInit,
    site: &QuantizerSite,
    observation: &Observation,
    device: &burn::tensor::Device,
) -> Result<FakeQuantizer> {
    let per_channel = matches!(spec.granularity, Granularity::PerChannel { .. });
    let (mins, maxs) = init.statistics(observation, per_channel, &site.path)?;
    let signed = mins.iter().any(|&min| min < 0.0);
    // Activation statistics are per tensor, or per channel on axis 1 of a rank >= 2 input.
    let rank = if per_channel { 2 } else { 1 };
    let resolved = spec.resolve(signed, 1, rank)?;
    let (mut lows, mut highs) = grid_range(&resolved, &mins, &maxs);
    if init == RangeInit::MseSearch {
        let (low, high) = mse_search(&resolved, lows[0], highs[0], &observation.samples);
        (lows, highs) = (vec![low], vec![high]);
    }
    Ok(FakeQuantizer::new(
        resolved, &lows, &highs, &site.path, device,
    )?)
}

/// Attaches prepared quantizers to activation slots, by slot parameter path.
struct SlotAttacher {
    quantizers: HashMap<String, FakeQuantizer>,
}

impl Reparameterizer for &mut SlotAttacher {
    type Reparam = FakeQuantizer;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<FakeQuantizer>) {
        let quantizer = self.quantizers.remove(path);
        (param, quantizer)
    }
}

/// Checks the state of every compression stage of `model` (quantizer scales and lows, masks):
/// each value must be finite. Training can drive them to NaN or infinity; the error names the
/// module path of the quantizer or layer and the parameter.
pub fn check_quantizers<M: Module>(model: &M) -> Result<()> {
    let mut check = StateCheck::default();
    model.visit(&mut check);
    match check.error {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

#[derive(Default)]
struct StateCheck {
    path: Vec<String>,
    /// Depth of `path` at which the current reparameterization state starts.
    state_at: Option<usize>,
    error: Option<CoreError>,
}

impl ModuleVisitor for StateCheck {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == "Reparameterization"
            && matches!(name, FakeQuantizer::NAME | WeightTransform::NAME)
            && self.state_at.is_none()
        {
            self.state_at = Some(self.path.len());
        }
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        if self.state_at == Some(self.path.len()) {
            self.state_at = None;
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (Some(at), None) = (self.state_at, &self.error) else {
            return;
        };
        let values = param.val().into_data().convert::<f32>();
        let values = values.as_slice::<f32>().unwrap_or(&[]);
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            // `conv.weight` + `compress` + `quantizer.scale`: the stage sits on layer `conv`.
            let owner = self.path[..at.saturating_sub(1)].join(".");
            let name = self.path[at + 1..].join(".");
            self.error = Some(CoreError::InvalidRange {
                path: owner,
                reason: format!(
                    "its `{name}` holds {} at index {index} (training diverged?)",
                    values[index]
                ),
            });
        }
    }
}
