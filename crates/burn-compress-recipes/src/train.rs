//! A plain Burn training loop (with hooks for compression methods) and evaluation for image
//! classifiers, with progress bars.

use burn::module::{Module, ParamId};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::Compression;
use burn_compress_config::{Optimizer, OptimizerKind};
use burn_compress_core::state::mask_logit_ids;
use indicatif::{ProgressBar, ProgressStyle};

use crate::mnist::MnistSplit;

/// A model that maps `[n, 1, 28, 28]` images to `[n, classes]` logits.
pub trait Classifier: Module {
    /// The logits.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
}

impl Classifier for crate::model::ReferenceCnn {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

/// A progress bar for `len` steps labelled `label` (hidden when not on a terminal).
pub fn progress_bar(len: usize, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// What a compression method adds to each training step: a term of the loss, parameters that
/// train at their own learning rate (RB mask logits), and work after the optimizer step
/// (schedules, mask updates).
pub trait StepHook<M> {
    /// A term added to the task loss.
    fn extra_loss(&self, _model: &M) -> Option<Tensor<1>> {
        None
    }

    /// Parameters updated with the trainer's mask learning rate instead of the main one.
    fn mask_parameters(&self, _model: &M) -> Vec<ParamId> {
        Vec::new()
    }

    /// Called after every optimizer step.
    fn after_step(&mut self, _model: &mut M) {}
}

/// Plain training: no extra loss, nothing after the step.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct NoHook;

impl<M> StepHook<M> for NoHook {}

impl<M: Module> StepHook<M> for Compression {
    fn extra_loss(&self, model: &M) -> Option<Tensor<1>> {
        self.loss(model)
    }

    fn mask_parameters(&self, model: &M) -> Vec<ParamId> {
        mask_logit_ids(model)
    }

    fn after_step(&mut self, model: &mut M) {
        self.step(model);
    }
}

/// Adam optimizers and learning rates of one training phase.
pub struct Trainer {
    optimizer: ModuleOptimizer,
    mask_optimizer: ModuleOptimizer,
    /// Learning rate of the model's parameters (and quantizer ranges).
    pub learning_rate: f64,
    /// Learning rate of mask parameters (RB logits); the main one when `None`.
    pub mask_learning_rate: Option<f64>,
    /// Optimizer steps left before [`epoch`](Self::epoch) stops early (a time budget; tests
    /// use it to interrupt a run mid-epoch); `None`: no limit.
    pub steps_left: Option<usize>,
    /// Cross-entropy of every optimizer step so far (the training curve).
    pub losses: Vec<f32>,
}

impl Trainer {
    /// Adam (default settings) at `learning_rate`.
    pub fn adam(learning_rate: f64) -> Self {
        Self::new(&Optimizer::adam(learning_rate))
    }

    /// The optimizer a config describes, at its base learning rate (set
    /// [`learning_rate`](Self::learning_rate) per epoch for a schedule). Mask logits train
    /// with Adam.
    pub fn new(settings: &Optimizer) -> Self {
        let decay = (settings.weight_decay > 0.0)
            .then(|| WeightDecayConfig::new(settings.weight_decay as f32));
        let optimizer = match settings.kind {
            OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
            OptimizerKind::Sgd => {
                let momentum = (settings.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(settings.momentum)
                        .with_nesterov(settings.nesterov)
                });
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay)
                    .init()
            }
        };
        Self {
            optimizer,
            mask_optimizer: AdamConfig::new().init(),
            learning_rate: settings.base_lr,
            mask_learning_rate: None,
            steps_left: None,
            losses: Vec::new(),
        }
    }

    /// Whether the step budget ran out (the last epoch stopped early).
    pub fn interrupted(&self) -> bool {
        self.steps_left == Some(0)
    }

    /// Saves both optimizers' state into `dir` (`optimizer.bpk`, `mask_optimizer.bpk`).
    pub fn save_optimizers(&self, dir: &std::path::Path) -> Result<(), String> {
        self.optimizer
            .save(dir.join("optimizer.bpk"))
            .map_err(|e| e.to_string())?;
        self.mask_optimizer
            .save(dir.join("mask_optimizer.bpk"))
            .map_err(|e| e.to_string())
    }

    /// Restores both optimizers' state from `dir`.
    pub fn load_optimizers(&mut self, dir: &std::path::Path) -> Result<(), String> {
        let take = |optimizer: &mut ModuleOptimizer, name: &str| -> Result<(), String> {
            let current = std::mem::replace(optimizer, AdamConfig::new().init());
            *optimizer = current.load(dir.join(name)).map_err(|e| e.to_string())?;
            Ok(())
        };
        take(&mut self.optimizer, "optimizer.bpk")?;
        take(&mut self.mask_optimizer, "mask_optimizer.bpk")
    }

    /// Mask parameters train at `learning_rate`.
    pub fn with_mask_learning_rate(mut self, learning_rate: Option<f64>) -> Self {
        self.mask_learning_rate = learning_rate;
        self
    }

    /// One training step: forward, cross-entropy (plus the hook's term), backward, optimizer
    /// update(s), then the hook's `after_step`. Returns the cross-entropy.
    pub fn step<M: Classifier>(
        &mut self,
        model: M,
        images: Tensor<4>,
        labels: Tensor<1, burn::tensor::Int>,
        hook: &mut impl StepHook<M>,
    ) -> (M, f32) {
        let device = images.device();
        let logits = model.logits(images);
        let loss = CrossEntropyLoss::new(None, &device).forward(logits, labels);
        let value = loss.clone().into_scalar::<f32>();
        let total = match hook.extra_loss(&model) {
            Some(extra) => loss.add(extra),
            None => loss,
        };
        let mut grads = GradientsParams::from_grads(total.backward(), &model);
        let mut mask_grads = GradientsParams::new();
        if self.mask_learning_rate.is_some() {
            for id in hook.mask_parameters(&model) {
                if let Some(grad) = grads.remove::<1>(id) {
                    mask_grads.register(id, grad);
                }
            }
        }
        let mut model = self.optimizer.step(self.learning_rate, model, grads);
        if let (Some(rate), false) = (self.mask_learning_rate, mask_grads.is_empty()) {
            model = self.mask_optimizer.step(rate, model, mask_grads);
        }
        hook.after_step(&mut model);
        (model, value)
    }

    /// One epoch over `data` in shuffled batches. Returns the model and the mean loss.
    #[allow(clippy::too_many_arguments)]
    pub fn epoch<M: Classifier>(
        &mut self,
        mut model: M,
        data: &MnistSplit,
        batch_size: usize,
        seed: u64,
        device: &Device,
        label: &str,
        hook: &mut impl StepHook<M>,
    ) -> (M, f32) {
        let batches = data.batch_indices(batch_size, Some(seed));
        let bar = progress_bar(batches.len(), label);
        let mut total = 0.0;
        for (step, indices) in batches.iter().enumerate() {
            if self.interrupted() {
                break;
            }
            self.steps_left = self.steps_left.map(|left| left - 1);
            let (images, labels) = data.batch(indices, device);
            let loss;
            (model, loss) = self.step(model, images, labels, hook);
            self.losses.push(loss);
            total += loss;
            bar.set_message(format!("loss {:.4}", total / (step + 1) as f32));
            bar.inc(1);
        }
        bar.finish();
        (model, total / batches.len().max(1) as f32)
    }
}

/// Logits for every image of `data`, row-major `[len, classes]`, computed in eval mode.
pub fn predict<M: Classifier>(
    model: &M,
    data: &MnistSplit,
    batch_size: usize,
    device: &Device,
) -> Vec<f32> {
    let mut logits = Vec::new();
    for indices in data.batch_indices(batch_size, None) {
        let (images, _) = data.batch(&indices, device);
        let out = model.logits(images).into_data().convert::<f32>();
        logits.extend_from_slice(out.as_slice::<f32>().expect("f32 logits"));
    }
    logits
}

/// Index of the largest value of each row of `classes` values.
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    let rows = logits.len() / classes.max(1);
    let logits = TensorData::new(logits.to_vec(), [rows, classes]);
    Tensor::<2>::from_data(logits, &Device::flex())
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|index| index as usize)
        .collect()
}

/// Top-1 accuracy in percent of `[n, 10]` logits against `labels`.
pub fn top1(logits: &[f32], labels: &[u8]) -> f64 {
    let correct = argmax_rows(logits, 10)
        .iter()
        .zip(labels)
        .filter(|(p, &l)| **p == l as usize)
        .count();
    100.0 * correct as f64 / labels.len().max(1) as f64
}

/// Top-1 accuracy in percent of `model` (evaluated in eval mode) on `data`.
pub fn accuracy<M: Classifier>(model: &M, data: &MnistSplit, device: &Device) -> f64 {
    top1(&predict(model, data, 256, device), &data.labels)
}
