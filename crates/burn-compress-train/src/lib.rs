//! burn-compress under burn-train's `Learner`.
//!
//! [`Compressed`] holds the user's model and the [`Compression`] controller that
//! [`burn_compress::compress`] returned, and is itself the `Learner`'s model: its
//! `TrainStep` runs the model's own step and adds the gradients of the compression loss (RB
//! sparsity, SR-STE), and after every optimizer step it advances the schedules and updates the
//! masks. The controller travels inside the module, so with the multi-device strategy every
//! replica is a fork of the same state.
//!
//! ```no_run
//! # use burn::module::Module;
//! # use burn::tensor::Tensor;
//! # use burn::train::{InferenceStep, TrainStep};
//! # fn demo<M>(model: M, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>, calibration: Vec<Tensor<4>>,
//! #     optimizer: burn::optim::ModuleOptimizer)
//! #     -> Result<(), burn_compress::Error>
//! # where M: TrainStep + InferenceStep + Module + burn::module::ModuleDisplay + 'static {
//! use burn::train::Learner;
//! use burn_compress::config::CompressionConfig;
//! use burn_compress_train::Compressed;
//!
//! let config = CompressionConfig::from_file("configs/mnist_magnitude50_int8.json".as_ref())?;
//! let (model, compression) = burn_compress::compress(model)
//!     .config(&config)
//!     .steps_per_epoch(250) // optimizer steps per epoch, for per-step schedules
//!     .build(forward, calibration)?;
//! let learner = Learner::new(Compressed::new(model, compression), optimizer, 1e-4);
//! // SupervisedTraining::new(dir, train_loader, valid_loader).launch(learner) ...
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_compress::{Compression, CompressionStatistics, Error};

/// A model with compression attached, trained by burn-train's `Learner`: see the crate docs.
#[derive(Module, Debug)]
pub struct Compressed<M> {
    /// The model, with its masks and quantizers.
    pub model: M,
    /// The controller: schedule positions and chosen channels (masks and ranges are in `model`).
    #[module(skip)]
    compression: Compression,
}

impl<M: Module> Compressed<M> {
    /// Pairs a model with the controller [`burn_compress::compress`] returned for it.
    pub fn new(model: M, compression: Compression) -> Self {
        Self { model, compression }
    }

    /// The controller.
    pub fn compression(&self) -> &Compression {
        &self.compression
    }

    /// Per-weight sparsity, quantizers and parameters now, and the pruning groups.
    pub fn statistics(&self) -> CompressionStatistics {
        self.compression.statistics(&self.model)
    }

    /// The model and its controller, apart.
    pub fn into_parts(self) -> (M, Compression) {
        (self.model, self.compression)
    }

    /// The model after training: shrunk to the kept channels when pruned.
    pub fn finish(self) -> Result<M, Error> {
        self.compression.finish(self.model)
    }

    /// The compression loss's gradients added to `grads`.
    fn with_compression_loss(&self, grads: GradientsParams) -> GradientsParams {
        let Some(loss) = self.compression.loss(&self.model) else {
            return grads;
        };
        let extra = GradientsParams::from_grads(loss.backward(), &self.model);
        let mut sum = GradientsAccumulator::new();
        sum.accumulate(&self.model, grads);
        sum.accumulate(&self.model, extra);
        sum.grads()
    }

    /// Runs `optimize` on the model, then steps the controller (schedules, masks).
    fn optimized(self, optimize: impl FnOnce(M) -> M) -> Self {
        let Self {
            model,
            mut compression,
        } = self;
        let mut model = optimize(model);
        compression.step(&mut model);
        Self { model, compression }
    }
}

impl<M: TrainStep + Module> TrainStep for Compressed<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> TrainOutput<Self::Output> {
        let TrainOutput { grads, item } = self.model.step(item);
        TrainOutput {
            grads: self.with_compression_loss(grads),
            item,
        }
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        self.optimized(|model| model.optimize(optim, lr_module, grads))
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        self.optimized(|model| model.optimize_multi(optim, lr_module, grads))
    }
}

impl<M: InferenceStep + Module> InferenceStep for Compressed<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> Self::Output {
        self.model.step(item)
    }
}
