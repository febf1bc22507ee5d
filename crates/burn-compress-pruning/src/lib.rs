//! Structured channel pruning for Burn models.
//!
//! [`prune`] captures the model's forward, finds which parameter axes follow each Conv/Linear
//! layer's output channels ([`deps`]: BatchNorm, biases, consumers' input channels, flattens into
//! a Linear, concat offsets, channels coupled by residual adds), and attaches a mask to every
//! affected weight (the mask stage of its
//! [`WeightTransform`](burn_compress_core::WeightTransform), so it composes with
//! fake-quantizers). The [`PruningController`] re-chooses the pruned channels as its schedule
//! says; [`PruningController::shrink`] then removes them: a model of the same type with smaller
//! tensors, equal in output to the masked one.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::Tensor;
//! # fn demo<M: Module>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>)
//! #     -> burn_compress_pruning::Result<M> {
//! use burn_compress_pruning::{prune, Criterion, Pruning};
//! let (mut model, mut controller) = prune(model)
//!     .channels(Pruning::target(0.5).criterion(Criterion::GeometricMedian))
//!     .build(forward, [2, 3, 32, 32])?;
//! // fine-tune; after each optimizer step:
//! controller.step(&mut model);
//! let small = controller.shrink(model)?;
//! # Ok(small) }
//! ```

#![warn(missing_docs)]

pub mod controller;
pub mod criterion;
pub mod deps;
pub mod error;
pub mod plan;
pub mod settings;
pub mod shrink;

use std::collections::{BTreeSet, HashMap};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn_compress_core::scope::{check_scopes_match, Scope};
use burn_compress_core::{attach, Attachment, MaskGradient, Scheduler, WeightMask};
use burn_compress_graph::{capture, fold_constants, CaptureOptions, Graph, Op};

pub use controller::{GroupStats, PruningController, PruningStatistics};
pub use criterion::Criterion;
pub use deps::{analyse, blocked_reasons, Dependencies, DepthwiseConv, Follower, Group, Source};
pub use error::{PruningError, Result};
pub use plan::{AxisSlice, GroupChange, ShrinkPlan};
pub use settings::{Pruning, Ranking};
pub use shrink::{apply_plan, apply_plan_regrouped};

/// Starts pruning `model`'s channels; choose the settings, then
/// [`build`](PruneBuilder::build).
pub fn prune<M: Module>(model: M) -> PruneBuilder<M> {
    PruneBuilder {
        model,
        pruning: None,
        ignored: Vec::new(),
        steps_per_epoch: None,
    }
}

/// Collects the pruning settings for one model; see [`prune`].
pub struct PruneBuilder<M> {
    model: M,
    pruning: Option<Pruning>,
    ignored: Vec<String>,
    steps_per_epoch: Option<usize>,
}

impl<M: Module> PruneBuilder<M> {
    /// Output-channel pruning.
    pub fn channels(mut self, pruning: Pruning) -> Self {
        self.pruning = Some(pruning);
        self
    }

    /// Never prunes the output channels of the layers under `scope` (a module path or
    /// `re:<regex>`).
    pub fn ignore(mut self, scope: impl Into<String>) -> Self {
        self.ignored.push(scope.into());
        self
    }

    /// Optimizer steps per epoch: epochs then advance with [`PruningController::step`].
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// Analyses the channels of `forward` on an input of `input_shape` (use a batch of at least
    /// 2), attaches the masks at the level of epoch 0, and returns the model with its
    /// controller. Every setting is checked before anything is attached.
    pub fn build<const D: usize, const O: usize>(
        self,
        forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
        input_shape: [usize; D],
    ) -> Result<(M, PruningController)> {
        let pruning = self.pruning.ok_or_else(|| PruningError::Setting {
            setting: "channels",
            reason: "give the pruning settings with `.channels(..)`".into(),
        })?;
        check(&pruning)?;
        let scheduler = Scheduler::new(pruning.schedule.clone(), self.steps_per_epoch)?;
        let dims = param_dims(&self.model);
        let graph = plain_graph(&self.model, forward, input_shape)?;
        let mut dependencies = analyse(&graph, &dims);
        ignore(&mut dependencies, &self.ignored)?;
        keep_convolutions(&mut dependencies, &pruning);
        if pruning.criterion == Criterion::BnScale {
            require_batch_norms(&dependencies)?;
        }
        if !dependencies.groups.iter().any(|g| g.prunable()) {
            let reasons: Vec<String> = dependencies
                .groups
                .iter()
                .flat_map(|g| g.blocked.first().cloned())
                .collect();
            return Err(PruningError::NothingToPrune(reasons.join("; ")));
        }
        let masked = masked_weights(&self.model, &dependencies);
        let macs = macs(&graph);
        let attachments = masked
            .iter()
            .map(|param| {
                let n: usize = dims[param].iter().product();
                let device = controller::model_device(&self.model);
                let mask = WeightMask::fixed(Tensor::ones([n], &device), MaskGradient::Zero);
                (
                    param.clone(),
                    Attachment {
                        mask: Some(mask),
                        quantizer: None,
                    },
                )
            })
            .collect();
        let mut model = attach(self.model, attachments)?;
        let groups = dependencies.groups.len();
        let mut controller = PruningController {
            pruning,
            dependencies,
            dims,
            macs,
            masked,
            frozen: scheduler.frozen(),
            scheduler,
            pruned: vec![BTreeSet::new(); groups],
        };
        controller.update(&mut model);
        Ok((model, controller))
    }
}

fn check(pruning: &Pruning) -> Result<()> {
    pruning.schedule.validate()?;
    if pruning.round_to == 0 {
        return Err(PruningError::Setting {
            setting: "round_to",
            reason: "must be at least 1".into(),
        });
    }
    if let Some(target) = pruning.flops_target {
        if !(target > 0.0 && target < 1.0) {
            return Err(PruningError::Setting {
                setting: "flops_target",
                reason: format!("{target} is outside (0, 1)"),
            });
        }
    }
    Ok(())
}

/// Dimensions of every float parameter (and buffer) of `model` outside compression state.
fn param_dims<M: Module>(model: &M) -> HashMap<String, Vec<usize>> {
    struct Dims {
        path: Vec<String>,
        depth_in_state: usize,
        dims: HashMap<String, Vec<usize>>,
    }
    impl ModuleVisitor for Dims {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            if self.depth_in_state > 0 || container_type == "Reparameterization" {
                self.depth_in_state += 1;
            }
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
            self.depth_in_state = self.depth_in_state.saturating_sub(1);
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.depth_in_state == 0 {
                self.dims.insert(self.path.join("."), param.dims().to_vec());
            }
        }
    }
    let mut visitor = Dims {
        path: Vec::new(),
        depth_in_state: 0,
        dims: HashMap::new(),
    };
    model.visit(&mut visitor);
    visitor.dims
}

/// The forward of `model` with its compression folded into plain weights, captured with a
/// static shape and its constants folded.
fn plain_graph<M: Module, const D: usize, const O: usize>(
    model: &M,
    forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
    input_shape: [usize; D],
) -> Result<Graph> {
    let plain = model.valid().materialize();
    let mut graph = capture(
        &plain,
        input_shape,
        forward,
        &CaptureOptions {
            dynamic_batch: false,
        },
    )
    .map_err(|e| PruningError::Graph(e.to_string()))?;
    fold_constants(&mut graph);
    Ok(graph)
}

/// Blocks the sources produced by layers under the ignored scopes.
fn ignore(dependencies: &mut Dependencies, ignored: &[String]) -> Result<()> {
    let scopes = ignored
        .iter()
        .map(|text| Scope::parse(text))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let layer = |producer: &str| producer.rsplit_once('.').map(|(l, _)| l.to_string());
    let layers: Vec<String> = dependencies
        .sources
        .iter()
        .filter_map(|s| layer(&s.producer))
        .collect();
    check_scopes_match(&scopes, &layers)?;
    for source in &mut dependencies.sources {
        let Some(path) = layer(&source.producer) else {
            continue;
        };
        if let Some(scope) = scopes.iter().find(|scope| scope.matches(&path)) {
            source
                .blocked
                .push(format!("is under the ignored scope `{}`", scope.text()));
        }
    }
    for group in &mut dependencies.groups {
        group.blocked = blocked_reasons(&dependencies.sources, &group.sources);
    }
    Ok(())
}

/// Blocks the first convolution and the strided ones where the settings keep them whole.
fn keep_convolutions(dependencies: &mut Dependencies, pruning: &Pruning) {
    let first = dependencies.sources.iter().position(|s| s.convolution);
    for (index, source) in dependencies.sources.iter_mut().enumerate() {
        if !pruning.prune_first_conv && Some(index) == first {
            source
                .blocked
                .push("is the first convolution (`prune_first_conv` is off)".into());
        }
        if !pruning.prune_downsample_convs && source.downsampling {
            source.blocked.push(
                "is a downsampling convolution (stride > 1; `prune_downsample_convs` is off)"
                    .into(),
            );
        }
    }
    for group in &mut dependencies.groups {
        group.blocked = blocked_reasons(&dependencies.sources, &group.sources);
    }
}

/// The BatchNorm-scale criterion needs a BatchNorm after every source of a prunable group.
fn require_batch_norms(dependencies: &Dependencies) -> Result<()> {
    for group in dependencies.groups.iter().filter(|g| g.prunable()) {
        for &s in &group.sources {
            let source = &dependencies.sources[s];
            if source.batch_norm_scale.is_none() {
                return Err(PruningError::Setting {
                    setting: "criterion",
                    reason: format!(
                        "`bn_scale` needs a BatchNorm after `{}`, which has none",
                        source.producer
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The Conv/Linear weights that follow some prunable group (they carry pruning masks).
fn masked_weights<M: Module>(model: &M, dependencies: &Dependencies) -> Vec<String> {
    let weights: BTreeSet<String> = burn_compress_core::site::weight_sites(model)
        .into_iter()
        .map(|site| site.param)
        .collect();
    let mut masked = BTreeSet::new();
    for group in dependencies.groups.iter().filter(|g| g.prunable()) {
        for &s in &group.sources {
            for follower in &dependencies.sources[s].followers {
                if weights.contains(&follower.param) {
                    masked.insert(follower.param.clone());
                }
            }
        }
    }
    masked.into_iter().collect()
}

/// Multiply-accumulates of each Conv/MatMul with a parameter weight (per batch element).
fn macs(graph: &Graph) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for node in &graph.nodes {
        let weight = node.inputs.get(1).map(|w| graph.value(*w));
        let Some(param) = weight.and_then(|w| w.param.clone()) else {
            continue;
        };
        let w = &weight.expect("checked").shape;
        let y = &graph.value(node.output).shape;
        let per_sample: u64 = match &node.op {
            // Output elements (without batch) times weights per output channel.
            Op::Conv(_) => {
                y[1..].iter().product::<usize>() as u64 * w[1..].iter().product::<usize>() as u64
            }
            Op::MatMul => {
                let batch = y[0].max(1);
                (y.iter().product::<usize>() / batch) as u64 * w[w.len() - 2] as u64
            }
            _ => continue,
        };
        out.push((param, per_sample));
    }
    out
}
