//! Compression recipes on MNIST-10k with the reference CNN: FP32 training -> (BatchNorm
//! folding) -> sparsity masks and/or quantizer range initialisation -> fine-tuning.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_compress_config::{
    CompressionConfig, ConfigError, Optimizer, Pretrained, Pretraining, PruningAlgorithm,
    QuantizationAlgorithm, SparsityAlgorithm,
};
use burn_compress_core::ModelStats;
use burn_compress_pruning::PruningStatistics;
use burn_compress_quant::adapt_batch_norm;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::Checkpoints;
use crate::mnist::{self, Mnist, MnistSplit};
use crate::model::ReferenceCnn;
use crate::train::{accuracy, NoHook, StepHook, Trainer};

/// Errors of a recipe run; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The config cannot be read, parsed or used (the error names the file and JSON path).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting is out of range.
    #[error("config key `{key}`: {reason}")]
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Quantization failed.
    #[error(transparent)]
    Quant(#[from] burn_compress_quant::QuantError),
    /// A shared compression step (BatchNorm adaptation, transforms) failed.
    #[error(transparent)]
    Core(#[from] burn_compress_core::CoreError),
    /// Sparsity could not be attached.
    #[error(transparent)]
    Sparsity(#[from] burn_compress_sparsity::SparsityError),
    /// Pruning could not be attached or the model not shrunk.
    #[error(transparent)]
    Pruning(#[from] burn_compress_pruning::PruningError),
    /// Compression could not be attached or finished.
    #[error(transparent)]
    Compress(#[from] burn_compress::Error),
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] crate::mnist::DatasetError),
    /// The step budget ran out (`stop_after_steps`); the last complete epoch is checkpointed.
    #[error("stopped in epoch {} of `{phase}` (step budget spent); run again with resume", epoch + 1)]
    Interrupted {
        /// The phase (`fp32` or `finetune`).
        phase: &'static str,
        /// The epoch that was cut short (from 0).
        epoch: usize,
    },
    /// An output could not be written.
    #[error("cannot write `{path}`: {reason}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
}

/// One training phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Passes over the training split.
    pub epochs: usize,
    /// Optimizer, learning rate and its schedule.
    pub optimizer: Optimizer,
}

/// A compression recipe on MNIST-10k with the reference CNN, read from an NNCF-style config
/// (`configs/*.json`): FP32 training (or a pretrained checkpoint), optional BatchNorm folding,
/// sparsity, pruning and/or quantization, fine-tuning.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// Seed of parameter initialisation and batch shuffling.
    pub seed: u64,
    /// Batch size of training and calibration.
    pub batch_size: usize,
    /// FP32 training (when no pretrained checkpoint is given).
    pub fp32: Phase,
    /// FP32 checkpoint to start from instead of training (stock or wrapped layers).
    pub pretrained: Option<PathBuf>,
    /// Fine-tuning with compression attached.
    pub finetune: Phase,
    /// Fold BatchNorm into the convolutions before compressing.
    pub fold_batch_norm: bool,
    /// What to sparsify and how.
    pub sparsity: Option<SparsityAlgorithm>,
    /// Which channels to prune and how; the fine-tuned model is then shrunk.
    pub pruning: Option<PruningAlgorithm>,
    /// What to quantize and how (with the calibration size and BatchNorm adaptation).
    pub quantization: Option<QuantizationAlgorithm>,
    /// Folder of the MNIST files, when the config names one.
    pub dataset_dir: Option<PathBuf>,
    /// Output directory, when the config names one (`log_dir`).
    pub log_dir: Option<PathBuf>,
}

impl Recipe {
    /// Reads a recipe from an NNCF-style JSON config; errors name the file and JSON path.
    pub fn from_file(path: &Path) -> Result<Self, RecipeError> {
        let config = CompressionConfig::from_file(path)?;
        Self::from_config(&config).map_err(|error| match error {
            RecipeError::Config(error) => RecipeError::Config(error.in_file(path)),
            other => other,
        })
    }

    /// The recipe a parsed config describes. The recipe trains the reference CNN on MNIST:
    /// `model`, `dataset` and `input_info` must agree when given.
    pub fn from_config(config: &CompressionConfig) -> Result<Self, RecipeError> {
        let training = &config.training;
        if let Some(model) = training.model.as_deref().filter(|m| *m != "reference_cnn") {
            return Err(ConfigError::at(
                "model",
                format!("unknown model `{model}` (the recipes train `reference_cnn`)"),
            )
            .into());
        }
        if let Some(dataset) = training.dataset.as_deref() {
            if !dataset.eq_ignore_ascii_case("mnist") {
                return Err(ConfigError::at(
                    "dataset",
                    format!("unknown dataset `{dataset}` (the recipes train on `mnist`)"),
                )
                .into());
            }
        }
        for (index, input) in config.input_info.iter().enumerate() {
            let image = [1, mnist::SIDE, mnist::SIDE];
            if input.sample_size.len() != 4 || input.sample_size[1..] != image {
                return Err(ConfigError::at(
                    &format!("input_info[{index}].sample_size"),
                    format!(
                        "{:?} is not an MNIST batch [n, 1, 28, 28]",
                        input.sample_size
                    ),
                )
                .into());
            }
        }
        let pretraining = training.pretraining.clone().unwrap_or(Pretraining {
            epochs: 5,
            optimizer: Optimizer::adam(1e-3),
        });
        let recipe = Self {
            seed: training.seed,
            batch_size: training.batch_size,
            fp32: Phase {
                epochs: pretraining.epochs,
                optimizer: pretraining.optimizer,
            },
            pretrained: match &training.pretrained {
                Pretrained::No => None,
                Pretrained::Checkpoint(path) => Some(path.clone()),
                Pretrained::Yes => {
                    return Err(ConfigError::at(
                        "pretrained",
                        "`true` names no weights: give the path of an FP32 checkpoint (.bpk)",
                    )
                    .into())
                }
            },
            finetune: Phase {
                epochs: training.epochs,
                optimizer: training.optimizer.clone(),
            },
            fold_batch_norm: training.fold_batch_norm,
            sparsity: config.sparsity().cloned(),
            pruning: config.pruning().cloned(),
            quantization: config.quantization().cloned(),
            dataset_dir: training.dataset_dir.clone(),
            log_dir: training.log_dir.clone(),
        };
        recipe.validate()?;
        Ok(recipe)
    }

    /// Checks value ranges that the types do not.
    pub fn validate(&self) -> Result<(), RecipeError> {
        let setting = |key, reason: &str| RecipeError::Setting {
            key,
            reason: reason.to_string(),
        };
        if self.batch_size == 0 {
            return Err(setting("batch_size", "must be at least 1"));
        }
        if self
            .quantization
            .as_ref()
            .is_some_and(|q| q.init_samples == 0)
        {
            return Err(setting(
                "initializer.range.num_init_samples",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// What a recipe run measured.
#[derive(Clone, Debug, Serialize)]
pub struct RecipeSummary {
    /// Test-split top-1 (%) of the FP32 model.
    pub fp32_accuracy: f64,
    /// Test-split top-1 (%) after BatchNorm folding (equals FP32 up to rounding).
    pub folded_accuracy: Option<f64>,
    /// Test-split top-1 (%) with compression attached (masks at their starting level, ranges
    /// initialised), before fine-tuning.
    pub init_accuracy: f64,
    /// Test-split top-1 (%) after fine-tuning.
    pub compressed_accuracy: f64,
    /// Sparsity of the masked weights after fine-tuning, when sparsity was applied.
    pub sparsity: Option<f64>,
    /// Per-weight sparsity and parameter counts of the fine-tuned model (shrunk, if pruned).
    pub stats: ModelStats,
    /// Pruned channels per group, parameters and MACs before and after, when pruned.
    pub pruning: Option<PruningStatistics>,
    /// Seconds of FP32 training.
    pub fp32_seconds: f64,
    /// Seconds of fine-tuning.
    pub finetune_seconds: f64,
    /// Cross-entropy of every FP32 training step (empty when the FP32 model was given).
    pub fp32_losses: Vec<f32>,
    /// Cross-entropy of every fine-tuning step.
    pub finetune_losses: Vec<f32>,
    /// Train / test split sizes.
    pub split: (usize, usize),
}

/// The models a recipe run produced, on the training device.
pub struct RecipeModels {
    /// The trained FP32 model (BatchNorm folded if the recipe says so).
    pub fp32: ReferenceCnn,
    /// The fine-tuned compressed model.
    pub compressed: ReferenceCnn,
}

/// The first `samples` training images in batches of the recipe's size (one batch at least).
fn calibration_batches(
    data: &MnistSplit,
    samples: usize,
    batch_size: usize,
    device: &Device,
) -> Vec<Tensor<4>> {
    let subset = data.take(samples.max(1));
    subset
        .batch_indices(batch_size, None)
        .iter()
        .map(|indices| subset.batch(indices, device).0)
        .collect()
}

/// Trains `model` through the epochs of `phase` (from the newest checkpoint of `name` when
/// resuming), saving a checkpoint after every epoch when `checkpoints` is given. Each epoch
/// shuffles with `seed + epoch` and reseeds the device with it, so an epoch computes the same
/// whether or not the run was resumed before it.
#[allow(clippy::too_many_arguments)]
fn train_phase<H: StepHook<ReferenceCnn> + Serialize + DeserializeOwned>(
    name: &'static str,
    phase: &Phase,
    seed: u64,
    batch_size: usize,
    data: &Mnist,
    device: &Device,
    mut model: ReferenceCnn,
    trainer: &mut Trainer,
    hook: &mut H,
    checkpoints: Option<&Checkpoints>,
    resume: bool,
) -> Result<ReferenceCnn, RecipeError> {
    let mut start = 0;
    if let Some((_, path)) = checkpoints.filter(|_| resume).and_then(|c| c.latest(name)) {
        let (loaded, done, state) = Checkpoints::load(&path, model, trainer)?;
        println!("{name}: resuming after epoch {done} ({})", path.display());
        (model, start, *hook) = (loaded, done, state);
    }
    for epoch in start..phase.epochs {
        let epoch_seed = seed + epoch as u64;
        device.seed(epoch_seed);
        trainer.learning_rate = phase.optimizer.learning_rate(epoch);
        let label = format!("{name} {}/{}", epoch + 1, phase.epochs);
        (model, _) = trainer.epoch(
            model,
            &data.train,
            batch_size,
            epoch_seed,
            device,
            &label,
            hook,
        );
        if trainer.interrupted() {
            return Err(RecipeError::Interrupted { phase: name, epoch });
        }
        if let Some(checkpoints) = checkpoints {
            checkpoints.save(name, epoch + 1, &model, trainer, hook)?;
        }
    }
    Ok(model)
}

/// Trains the reference CNN in FP32 as `recipe` says (and folds its BatchNorms if asked);
/// prints the test accuracy. Returns the model and `(accuracy, folded accuracy, seconds)`.
pub fn train_fp32(
    recipe: &Recipe,
    data: &Mnist,
    device: &Device,
) -> (ReferenceCnn, f64, Option<f64>, f64) {
    let trained = fp32_phase(recipe, data, device, None, false, &mut None)
        .expect("FP32 training without checkpoints or a step budget cannot fail");
    (
        trained.model,
        trained.accuracy,
        trained.folded_accuracy,
        trained.seconds,
    )
}

/// The FP32 phase's result.
struct TrainedFp32 {
    model: ReferenceCnn,
    accuracy: f64,
    folded_accuracy: Option<f64>,
    seconds: f64,
    losses: Vec<f32>,
}

impl TrainedFp32 {
    /// An FP32 model trained elsewhere, evaluated here.
    fn given(model: ReferenceCnn, data: &Mnist, eval: &Device) -> Self {
        let accuracy = accuracy_of(&model, data, eval);
        Self {
            model,
            accuracy,
            folded_accuracy: None,
            seconds: 0.0,
            losses: Vec::new(),
        }
    }
}

/// [`train_fp32`] with checkpoints, resuming and a step budget (what is left is written back).
fn fp32_phase(
    recipe: &Recipe,
    data: &Mnist,
    device: &Device,
    checkpoints: Option<&Checkpoints>,
    resume: bool,
    budget: &mut Option<usize>,
) -> Result<TrainedFp32, RecipeError> {
    device.seed(recipe.seed);
    let started = Instant::now();
    let model = ReferenceCnn::new(device);
    let mut trainer = Trainer::new(&recipe.fp32.optimizer);
    trainer.steps_left = *budget;
    let trained = train_phase(
        "fp32",
        &recipe.fp32,
        recipe.seed,
        recipe.batch_size,
        data,
        device,
        model,
        &mut trainer,
        &mut NoHook,
        checkpoints,
        resume,
    );
    *budget = trainer.steps_left;
    let mut model = trained?;
    let seconds = started.elapsed().as_secs_f64();
    let eval = device.clone().inner();
    let accuracy = accuracy(&model.valid(), &data.test, &eval);
    println!("FP32 test accuracy: {accuracy:.2} %");
    let mut folded = None;
    if recipe.fold_batch_norm {
        model = model.fold_batch_norms()?;
        let after = accuracy_of(&model, data, &eval);
        println!("after BatchNorm folding: {after:.2} %");
        folded = Some(after);
    }
    Ok(TrainedFp32 {
        model,
        accuracy,
        folded_accuracy: folded,
        seconds,
        losses: trainer.losses,
    })
}

fn accuracy_of(model: &ReferenceCnn, data: &Mnist, eval: &Device) -> f64 {
    accuracy(&model.valid(), &data.test, eval)
}

/// How a recipe runs: device, outputs, resuming, a step budget.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Device to train on (its autodiff form) and evaluate on.
    pub device: Device,
    /// Folder for checkpoints (`fp32.bpk`, `compressed.bpk`, `checkpoints/`) and
    /// `summary.json`; nothing is saved without it.
    pub out_dir: Option<PathBuf>,
    /// Continue from the newest checkpoint in `out_dir` (a killed run ends as an uninterrupted
    /// one would: same seed, same weights).
    pub resume: bool,
    /// Stop after this many optimizer steps in all (a time budget), with
    /// [`RecipeError::Interrupted`].
    pub stop_after_steps: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            device: Device::flex(),
            out_dir: None,
            resume: false,
            stop_after_steps: None,
        }
    }
}

/// Runs `recipe` on `data`: FP32 training (or `fp32` when given, already trained and folded as
/// the recipe says), sparsity, range initialisation, fine-tuning. Saves checkpoints and
/// `summary.json` into `out_dir` when given.
pub fn run_recipe(
    recipe: &Recipe,
    data: &Mnist,
    fp32: Option<ReferenceCnn>,
    out_dir: Option<&Path>,
) -> Result<(RecipeModels, RecipeSummary), RecipeError> {
    let options = RunOptions {
        out_dir: out_dir.map(Path::to_path_buf),
        ..RunOptions::default()
    };
    run_recipe_with(recipe, data, fp32, &options)
}

/// [`run_recipe`] with a device, per-epoch checkpoints, resuming and a step budget.
pub fn run_recipe_with(
    recipe: &Recipe,
    data: &Mnist,
    fp32: Option<ReferenceCnn>,
    options: &RunOptions,
) -> Result<(RecipeModels, RecipeSummary), RecipeError> {
    recipe.validate()?;
    let eval_device = options.device.clone();
    let device = options.device.clone().autodiff();
    let out_dir = options.out_dir.as_deref();
    let checkpoints = out_dir.map(|dir| Checkpoints::new(&dir.join("checkpoints")));
    let mut budget = options.stop_after_steps;
    let saved_fp32 = out_dir
        .map(|dir| dir.join("fp32.bpk"))
        .filter(|path| options.resume && path.is_file());
    let trained = match (fp32, saved_fp32) {
        (Some(model), _) => {
            // Moving keeps the parameters leaves of the autodiff graph (`fork`); a model already
            // on the training device stays as it is.
            let model = if model.devices().iter().all(|d| *d == device) {
                model
            } else {
                model.fork(&device)
            };
            TrainedFp32::given(model.train(), data, &eval_device)
        }
        (None, Some(path)) => {
            let mut template = ReferenceCnn::new(&device);
            if recipe.fold_batch_norm {
                template = template.fold_batch_norms()?;
            }
            let model = template
                .try_load_file(&path)
                .map_err(|e| RecipeError::Output {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            println!("fp32: resuming from {}", path.display());
            TrainedFp32::given(model, data, &eval_device)
        }
        (None, None) => fp32_phase(
            recipe,
            data,
            &device,
            checkpoints.as_ref(),
            options.resume,
            &mut budget,
        )?,
    };
    let model = trained.model.clone();
    if let Some(dir) = out_dir {
        save_atomically(model.clone(), &dir.join("fp32.bpk"))?;
    }
    device.seed(recipe.seed + 1);

    let steps_per_epoch = data.train.batch_indices(recipe.batch_size, None).len();
    let samples = recipe
        .quantization
        .as_ref()
        .map_or(recipe.batch_size, |q| q.init_samples);
    let calibration = calibration_batches(&data.train, samples, recipe.batch_size, &device);
    let mut builder = burn_compress::compress(model.clone()).steps_per_epoch(steps_per_epoch);
    if let Some(sparsity) = &recipe.sparsity {
        builder = builder.sparsity(sparsity.clone());
    }
    if let Some(pruning) = &recipe.pruning {
        builder = builder.pruning(pruning.clone());
    }
    if let Some(quantization) = &recipe.quantization {
        builder = builder.quantization(quantization.clone());
    }
    let (mut compressed, mut compression) =
        builder.build(|m: &ReferenceCnn, x| m.forward(x), calibration)?;
    if let Some(sparsity) = compression.sparsity() {
        println!(
            "sparsity attached: {} at level {:.1} %",
            sparsity.method.name(),
            100.0 * sparsity.level()
        );
    }
    if let Some(pruning) = compression.pruning() {
        println!("pruning attached at level {:.1} %", 100.0 * pruning.level());
    }
    if let Some(quantization) = &recipe.quantization {
        let batches = quantization
            .bn_adaptation_samples
            .div_ceil(recipe.batch_size);
        if !recipe.fold_batch_norm && batches > 0 {
            let batches = data
                .train
                .batch_indices(recipe.batch_size, Some(recipe.seed))
                .into_iter()
                .take(batches)
                .map(|indices| data.train.batch(&indices, &device).0);
            adapt_batch_norm(&compressed, batches, |m, x| {
                m.forward(x);
            })?;
        }
    }
    let init_accuracy = accuracy_of(&compressed, data, &eval_device);
    println!("with compression attached: {init_accuracy:.2} %");

    let started = Instant::now();
    let mask_rate = recipe.sparsity.as_ref().and_then(|s| s.mask_learning_rate);
    let mut trainer = Trainer::new(&recipe.finetune.optimizer).with_mask_learning_rate(mask_rate);
    trainer.steps_left = budget;
    compressed = train_phase(
        "finetune",
        &recipe.finetune,
        recipe.seed + 1000,
        recipe.batch_size,
        data,
        &device,
        compressed,
        &mut trainer,
        &mut compression,
        checkpoints.as_ref(),
        options.resume,
    )?;
    let finetune_seconds = started.elapsed().as_secs_f64();
    let pruning = compression.pruning().map(|p| p.statistics());
    if let (Some(dir), Some(pruner)) = (out_dir, compression.pruning()) {
        let plan = serde_json::to_vec_pretty(&pruner.plan()).expect("plans serialise");
        write_atomically(&dir.join("plan.json"), &plan)?;
    }
    if let Some(statistics) = &pruning {
        println!("{statistics}");
    }
    compressed = compression.finish(compressed)?;
    let compressed_accuracy = accuracy_of(&compressed, data, &eval_device);
    println!("after fine-tuning: {compressed_accuracy:.2} %");
    let stats = ModelStats::of(&compressed.valid());
    let sparsity = compression.sparsity().map(|_| stats.masked_sparsity());
    if let Some(level) = sparsity {
        println!("sparsity of the masked weights: {:.2} %", 100.0 * level);
    }

    let summary = RecipeSummary {
        fp32_accuracy: trained.accuracy,
        folded_accuracy: trained.folded_accuracy,
        fp32_seconds: trained.seconds,
        fp32_losses: trained.losses,
        finetune_losses: trainer.losses.clone(),
        init_accuracy,
        compressed_accuracy,
        sparsity,
        stats,
        pruning,
        finetune_seconds,
        split: (data.train.len(), data.test.len()),
    };
    if let Some(dir) = out_dir {
        save_atomically(compressed.clone(), &dir.join("compressed.bpk"))?;
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomically(&dir.join("summary.json"), json.as_bytes())?;
    }
    Ok((
        RecipeModels {
            fp32: model,
            compressed,
        },
        summary,
    ))
}

/// The compressed model a run of `recipe` saved in `out_dir` (`compressed.bpk`, with
/// `plan.json` when pruned): the reference CNN rebuilt with the recipe's structure (folded,
/// shrunk by the plan, masks and quantizers attached) and the checkpoint's values loaded.
pub fn load_compressed(
    recipe: &Recipe,
    data: &Mnist,
    out_dir: &Path,
    device: &Device,
) -> Result<ReferenceCnn, RecipeError> {
    let unreadable = |path: &Path, reason: String| RecipeError::Output {
        path: path.to_path_buf(),
        reason: format!("cannot read: {reason}"),
    };
    let mut model = ReferenceCnn::new(device);
    if recipe.fold_batch_norm {
        model = model.fold_batch_norms()?;
    }
    if recipe.pruning.is_some() {
        let path = out_dir.join("plan.json");
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e.to_string()))?;
        let plan = serde_json::from_str(&text).map_err(|e| unreadable(&path, e.to_string()))?;
        model = burn_compress_pruning::apply_plan(model, &plan)?;
    }
    let calibration =
        calibration_batches(&data.train, recipe.batch_size, recipe.batch_size, device);
    let mut builder = burn_compress::compress(model);
    if let Some(sparsity) = &recipe.sparsity {
        builder = builder.sparsity(sparsity.clone());
    }
    if let Some(quantization) = &recipe.quantization {
        builder = builder.quantization(quantization.clone());
    }
    let (model, _) = builder.build(|m: &ReferenceCnn, x| m.forward(x), calibration)?;
    let path = out_dir.join("compressed.bpk");
    model
        .try_load_file(&path)
        .map_err(|e| unreadable(&path, e.to_string()))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn finish(temporary: &Path, path: &Path, result: Result<(), String>) -> Result<(), RecipeError> {
    let result = result.and_then(|()| std::fs::rename(temporary, path).map_err(|e| e.to_string()));
    result.map_err(|reason| {
        let _ = std::fs::remove_file(temporary);
        RecipeError::Output {
            path: path.to_path_buf(),
            reason,
        }
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RecipeError> {
    let temporary = temporary_path(path);
    finish(
        &temporary,
        path,
        std::fs::write(&temporary, bytes).map_err(|e| e.to_string()),
    )
}

/// Saves a module's record to `path` through a temporary file and a rename.
pub fn save_atomically<M: Module>(model: M, path: &Path) -> Result<(), RecipeError> {
    let temporary = temporary_path(path);
    finish(
        &temporary,
        path,
        model.save_file(&temporary).map_err(|e| e.to_string()),
    )
}
