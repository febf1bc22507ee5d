//! Applying a compression config to any Burn model: sparsity masks, channel-pruning masks and
//! quantizers attached in that order (so ranges are initialised on the masked weights), and one
//! [`Compression`] controller that the training loop drives.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::Tensor;
//! # fn demo<M: Module>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
//! #                   calibration: Vec<Tensor<4>>) -> Result<(), burn_compress::Error> {
//! use burn_compress::config::CompressionConfig;
//! let config = CompressionConfig::from_file("configs/mnist_prune50_int8.json".as_ref())?;
//! let (model, mut compression) = burn_compress::compress(model)
//!     .config(&config)
//!     .steps_per_epoch(125)
//!     .build(forward, calibration)?;
//! // per optimizer step: loss = task + compression.loss(&model); optimizer step; then
//! // compression.step(&mut model);
//! let model = compression.finish(model)?; // shrinks a pruned model
//! # Ok(()) }
//! ```

use std::fmt;

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress_config::{
    CompressionConfig, PruningAlgorithm, QuantizationAlgorithm, SparsityAlgorithm,
};
use burn_compress_core::ModelStats;
use burn_compress_pruning::{PruningController, PruningStatistics};
use burn_compress_sparsity::SparsityController;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Starts compressing `model`: give the algorithms ([`config`](CompressBuilder::config) or one
/// by one), then [`build`](CompressBuilder::build).
pub fn compress<M: Module>(model: M) -> CompressBuilder<M> {
    CompressBuilder {
        model,
        sparsity: None,
        pruning: None,
        quantization: None,
        steps_per_epoch: None,
    }
}

/// The algorithms to attach to one model; see [`compress`].
pub struct CompressBuilder<M> {
    model: M,
    sparsity: Option<SparsityAlgorithm>,
    pruning: Option<PruningAlgorithm>,
    quantization: Option<QuantizationAlgorithm>,
    steps_per_epoch: Option<usize>,
}

impl<M: Module> CompressBuilder<M> {
    /// Every algorithm of a parsed config.
    pub fn config(mut self, config: &CompressionConfig) -> Self {
        self.sparsity = config.sparsity().cloned();
        self.pruning = config.pruning().cloned();
        self.quantization = config.quantization().cloned();
        self
    }

    /// Sparsity masks.
    pub fn sparsity(mut self, sparsity: SparsityAlgorithm) -> Self {
        self.sparsity = Some(sparsity);
        self
    }

    /// Channel pruning.
    pub fn pruning(mut self, pruning: PruningAlgorithm) -> Self {
        self.pruning = Some(pruning);
        self
    }

    /// Quantizers.
    pub fn quantization(mut self, quantization: QuantizationAlgorithm) -> Self {
        self.quantization = Some(quantization);
        self
    }

    /// Optimizer steps per epoch, for schedules updated per step (a sparsity section's own
    /// `steps_per_epoch` wins).
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// Attaches sparsity masks, then pruning masks (the channel dependencies of `forward` are
    /// traced on the shape of the first calibration batch, batch at least 2), then quantizers
    /// whose ranges are initialised from `calibration` (at most the section's
    /// `num_init_samples` samples, run through the model in eval mode). Each step checks its
    /// settings before it attaches anything.
    pub fn build<const D: usize, const O: usize>(
        self,
        forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
        calibration: impl IntoIterator<Item = Tensor<D>>,
    ) -> Result<(M, Compression), Error> {
        let mut model = self.model;
        let mut compression = Compression::default();
        let mut calibration = calibration.into_iter().peekable();
        let example_shape = calibration.peek().map(|batch| {
            let mut shape = batch.dims();
            shape[0] = shape[0].max(2);
            shape
        });

        if let Some(sparsity) = self.sparsity {
            let mut builder = burn_compress_sparsity::sparsify(model).method(sparsity.method);
            if let Some(steps) = sparsity.steps_per_epoch.or(self.steps_per_epoch) {
                builder = builder.steps_per_epoch(steps);
            }
            for scope in sparsity.ignored_scopes {
                builder = builder.ignore(scope);
            }
            let (masked, controller) = builder.build()?;
            model = masked;
            compression.sparsity = Some(controller);
        }
        if let Some(pruning) = self.pruning {
            let shape = example_shape.ok_or(Error::Calibration(
                "channel pruning traces the forward pass: give at least one calibration batch",
            ))?;
            let mut builder = burn_compress_pruning::prune(model).channels(pruning.pruning);
            if let Some(steps) = self.steps_per_epoch {
                builder = builder.steps_per_epoch(steps);
            }
            for scope in pruning.ignored_scopes {
                builder = builder.ignore(scope);
            }
            let (masked, controller) = builder.build(&forward, shape)?;
            model = masked;
            compression.pruning = Some(controller);
        }
        if let Some(quantization) = self.quantization {
            let mut taken = 0;
            let batches: Vec<Tensor<D>> = calibration
                .take_while(|batch| {
                    let keep = taken < quantization.init_samples;
                    taken += batch.dims()[0];
                    keep
                })
                .collect();
            // Calibration runs the model in eval mode: BatchNorm uses (and keeps) its running
            // statistics, and no autodiff graph is built.
            model = quantization.config.builder(model).init_ranges(
                quantization.config.range_init.clone(),
                batches,
                |m, x| {
                    forward(&m.valid(), x);
                },
            )?;
            compression.quantized = true;
        }
        Ok((model, compression))
    }
}

/// The controller of everything [`compress`] attached: drive it from the training loop. It
/// serialises (schedule positions, chosen channels) for checkpoints; the masks and quantizer
/// ranges themselves are saved with the model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Compression {
    sparsity: Option<SparsityController>,
    pruning: Option<PruningController>,
    quantized: bool,
}

impl Compression {
    /// The term to add to the task loss (RB sparsity, SR-STE), if any.
    pub fn loss<M: Module>(&self, model: &M) -> Option<Tensor<1>> {
        self.sparsity.as_ref()?.loss(model)
    }

    /// Call after every optimizer step: schedules advance, masks follow.
    pub fn step<M: Module>(&mut self, model: &mut M) {
        if let Some(sparsity) = &mut self.sparsity {
            sparsity.step(model);
        }
        if let Some(pruning) = &mut self.pruning {
            pruning.step(model);
        }
    }

    /// The sparsity controller, if sparsity is attached.
    pub fn sparsity(&self) -> Option<&SparsityController> {
        self.sparsity.as_ref()
    }

    /// The pruning controller, if channel pruning is attached.
    pub fn pruning(&self) -> Option<&PruningController> {
        self.pruning.as_ref()
    }

    /// Whether quantizers are attached.
    pub fn quantized(&self) -> bool {
        self.quantized
    }

    /// The model after training: shrunk to the kept channels when pruned (use the pruning
    /// controller's `shrink_regrouped` for depthwise convolutions), else unchanged.
    pub fn finish<M: Module>(&self, model: M) -> Result<M, Error> {
        match &self.pruning {
            Some(pruning) => Ok(pruning.shrink(model)?),
            None => Ok(model),
        }
    }

    /// Per-weight sparsity and parameter counts, and the pruning groups when pruned.
    pub fn statistics<M: Module>(&self, model: &M) -> CompressionStatistics {
        CompressionStatistics {
            model: ModelStats::of(model),
            pruning: self.pruning.as_ref().map(PruningController::statistics),
        }
    }
}

/// What [`Compression::statistics`] reports.
#[derive(Clone, Debug)]
pub struct CompressionStatistics {
    /// Per-weight shapes, sparsity, masks and quantizers; parameter counts.
    pub model: ModelStats,
    /// Pruned channels per group, parameters and MACs before and after shrinking.
    pub pruning: Option<PruningStatistics>,
}

impl fmt::Display for CompressionStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.model)?;
        if let Some(pruning) = &self.pruning {
            write!(f, "{pruning}")?;
        }
        Ok(())
    }
}
