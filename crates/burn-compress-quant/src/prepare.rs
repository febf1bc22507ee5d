//! The one-call API: [`quantize`] a model, then [`QuantizeBuilder::init_ranges`] attaches weight
//! and activation quantizers with ranges from calibration batches.

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleVisitor, Param, ParamId, Reparameterizer};
use burn::tensor::Tensor;

use crate::calibration::{channel_min_max, CalibrationSession, Observation};
use crate::error::{QuantError, Result};
use crate::quantizer::FakeQuantizer;
use crate::range::{grid_range, mse_search, RangeInit};
use crate::scope::{check_scopes_match, Scope};
use crate::spec::{Granularity, QuantSpec};

/// Starts quantizing `model`: 8-bit symmetric per-channel weights and 8-bit per-tensor
/// activations unless told otherwise.
pub fn quantize<M: Module>(model: M) -> QuantizeBuilder<M> {
    QuantizeBuilder {
        model,
        weights: Some(QuantSpec::int8_weights()),
        activations: Some(QuantSpec::int8_activations()),
        ignored: Vec::new(),
    }
}

/// Collects the quantization settings for one model; see [`quantize`].
pub struct QuantizeBuilder<M> {
    model: M,
    weights: Option<QuantSpec>,
    activations: Option<QuantSpec>,
    ignored: Vec<String>,
}

/// What kind of tensor a quantizer sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantizerKind {
    /// A Conv1d/Conv2d/Linear weight; `axis` is its output-channel axis.
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

/// Lists every place of `model` where a quantizer can sit (weights of stock Conv1d, Conv2d and
/// Linear layers, and activation quantizer slots), attached or not.
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
        if self.containers.iter().any(|c| c == "Reparameterization") {
            // The state of a reparameterization: its base parameter was visited just before.
            let path = self.path.join(".");
            if let Some(site) = self.sites.last_mut() {
                site.attached |= path.starts_with(&format!("{}.", site.param_path));
            }
            return;
        }
        let kind = match (name.as_str(), container.as_str()) {
            ("weight", "Struct:Conv2d" | "Struct:Conv1d") => QuantizerKind::Weight { axis: 0 },
            ("weight", "Struct:Linear") => QuantizerKind::Weight { axis: 1 },
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

    /// Attaches the quantizers. Activation ranges (and the signedness of `Auto` specs) come from
    /// running `forward` over `batches` with quantizers disabled; weight ranges are the
    /// per-channel min/max of the weights.
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
            .collect::<Result<Vec<_>>>()?;
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
                "the model has no Conv1d/Conv2d/Linear weight or activation quantizer slot \
                 outside the ignored scopes"
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

        let mut attacher = Attacher {
            weights: self.weights.clone(),
            activations: self.activations.clone(),
            init,
            sites: selected
                .iter()
                .map(|site| (site.param_path.clone(), (*site).clone()))
                .collect(),
            observations,
            error: None,
        };
        let model = self.model.apply_reparameterization(&mut attacher);
        match attacher.error {
            Some(error) => Err(error),
            None => Ok(model),
        }
    }
}

/// Builds a [`FakeQuantizer`] for each selected parameter as the model is mapped.
struct Attacher {
    weights: Option<QuantSpec>,
    activations: Option<QuantSpec>,
    init: RangeInit,
    sites: HashMap<String, QuantizerSite>,
    observations: HashMap<ParamId, Observation>,
    error: Option<QuantError>,
}

impl Attacher {
    fn weight_quantizer<const D: usize>(
        &self,
        spec: &QuantSpec,
        axis: usize,
        site: &QuantizerSite,
        param: &Param<Tensor<D>>,
    ) -> Result<FakeQuantizer> {
        let resolved = spec.resolve(true, axis, D)?;
        let weight = param.val();
        let dims = weight.dims();
        let data = weight.into_data().convert::<f32>();
        let values = data.as_slice::<f32>().unwrap_or(&[]);
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(QuantError::InvalidRange {
                path: site.path.clone(),
                reason: format!("weight element {index} is {}", values[index]),
            });
        }
        let (mins, maxs) = channel_min_max(values, &dims, resolved.axis);
        let (lows, highs) = grid_range(&resolved, &mins, &maxs);
        FakeQuantizer::new(resolved, &lows, &highs, &site.path, &param.lazy_device())
    }

    fn activation_quantizer<const D: usize>(
        &self,
        spec: &QuantSpec,
        site: &QuantizerSite,
        param: &Param<Tensor<D>>,
    ) -> Result<FakeQuantizer> {
        let observation = self.observations.get(&site.param_id).ok_or_else(|| {
            QuantError::Calibration(format!(
                "no calibration batch reached `{}`: is it used in the forward pass?",
                site.path
            ))
        })?;
        let per_channel = matches!(spec.granularity, Granularity::PerChannel { .. });
        let (mins, maxs) = self.init.statistics(observation, per_channel, &site.path)?;
        let signed = mins.iter().any(|&min| min < 0.0);
        let rank = observation_rank(per_channel);
        let resolved = spec.resolve(signed, 1, rank)?;
        let (mut lows, mut highs) = grid_range(&resolved, &mins, &maxs);
        if self.init == RangeInit::MseSearch {
            let (low, high) = mse_search(&resolved, lows[0], highs[0], &observation.samples);
            (lows, highs) = (vec![low], vec![high]);
        }
        FakeQuantizer::new(resolved, &lows, &highs, &site.path, &param.lazy_device())
    }
}

/// Activation statistics are per tensor, or per channel on axis 1 of a rank >= 2 input.
fn observation_rank(per_channel: bool) -> usize {
    if per_channel {
        2
    } else {
        1
    }
}

impl Reparameterizer for &mut Attacher {
    type Reparam = FakeQuantizer;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<FakeQuantizer>) {
        if self.error.is_some() {
            return (param, None);
        }
        let Some(site) = self.sites.get(path) else {
            return (param, None);
        };
        let quantizer = match (site.kind, &self.weights, &self.activations) {
            (QuantizerKind::Weight { axis }, Some(spec), _) => {
                self.weight_quantizer(spec, axis, site, &param)
            }
            (QuantizerKind::Activation, _, Some(spec)) => {
                self.activation_quantizer(spec, site, &param)
            }
            _ => return (param, None),
        };
        match quantizer {
            Ok(quantizer) => (param, Some(quantizer)),
            Err(error) => {
                self.error = Some(error);
                (param, None)
            }
        }
    }
}
