//! Compression recipes on MNIST-10k with the reference CNN: FP32 training -> (BatchNorm
//! folding) -> sparsity masks and/or quantizer range initialisation -> fine-tuning.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_compress_core::ModelStats;
use burn_compress_pruning::{Pruning, PruningStatistics};
use burn_compress_quant::{adapt_batch_norm, QuantConfig};
use burn_compress_sparsity::SparsityMethod;
use serde::{Deserialize, Serialize};

use crate::mnist::{self, Mnist, MnistSplit};
use crate::model::ReferenceCnn;
use crate::train::{accuracy, NoHook, Trainer};

/// Errors of a recipe run; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The config file cannot be read or parsed.
    #[error("config `{path}`: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (serde names the key at fault).
        reason: String,
    },
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
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] crate::mnist::DatasetError),
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Passes over the training split.
    pub epochs: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
}

/// The sparsity part of a recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparsityConfig {
    /// The method and its settings (`{"algorithm": "magnitude" | "rb" | "n_m", ...}`).
    pub method: SparsityMethod,
    /// Module paths (or `re:` regular expressions) left dense.
    #[serde(default)]
    pub ignored_scopes: Vec<String>,
    /// Adam learning rate of learned mask logits (RB); the fine-tuning rate when absent.
    #[serde(default)]
    pub mask_learning_rate: Option<f64>,
}

/// The channel-pruning part of a recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruningConfig {
    /// Level, criterion, ranking, rounding, FLOPs target.
    pub channels: Pruning,
    /// Layers whose output channels are never pruned.
    #[serde(default)]
    pub ignored_scopes: Vec<String>,
}

/// A compression recipe on MNIST-10k with the reference CNN (`configs/*.json`): FP32 training,
/// optional BatchNorm folding, sparsity and/or quantization, fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Seed of parameter initialisation and batch shuffling.
    pub seed: u64,
    /// Batch size of training and calibration.
    pub batch_size: usize,
    /// FP32 training.
    pub fp32: Phase,
    /// Fine-tuning with compression attached (`qat` in older configs).
    #[serde(alias = "qat")]
    pub finetune: Phase,
    /// Training images used to initialise activation ranges.
    pub calibration_samples: usize,
    /// Fold BatchNorm into the convolutions before compressing.
    pub fold_batch_norm: bool,
    /// Batches of BatchNorm adaptation after quantizers are attached (unfolded BN only).
    #[serde(default)]
    pub bn_adaptation_batches: usize,
    /// What to sparsify and how; `null` for none.
    #[serde(default)]
    pub sparsity: Option<SparsityConfig>,
    /// Which channels to prune and how; the fine-tuned model is then shrunk. `null` for none.
    #[serde(default)]
    pub pruning: Option<PruningConfig>,
    /// What to quantize and how; `null` for none.
    #[serde(default)]
    pub quantization: Option<QuantConfig>,
}

impl Recipe {
    /// Reads a recipe from a JSON file; unknown or missing keys are named in the error.
    pub fn from_file(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|error| RecipeError::Config {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let recipe: Self = serde_json::from_str(&text).map_err(|error| RecipeError::Config {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
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
        if self.calibration_samples == 0 {
            return Err(setting("calibration_samples", "must be at least 1"));
        }
        let mask_rate = self.sparsity.as_ref().and_then(|s| s.mask_learning_rate);
        for (key, rate) in [
            ("fp32.learning_rate", Some(self.fp32.learning_rate)),
            ("finetune.learning_rate", Some(self.finetune.learning_rate)),
            ("sparsity.mask_learning_rate", mask_rate),
        ] {
            if let Some(rate) = rate {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(setting(key, "must be a positive number"));
                }
            }
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

fn calibration_batches(data: &MnistSplit, recipe: &Recipe, device: &Device) -> Vec<Tensor<4>> {
    let subset = data.take(recipe.calibration_samples);
    subset
        .batch_indices(recipe.batch_size, None)
        .iter()
        .map(|indices| subset.batch(indices, device).0)
        .collect()
}

/// Trains the reference CNN in FP32 as `recipe` says (and folds its BatchNorms if asked);
/// prints the test accuracy. Returns the model and `(accuracy, folded accuracy, seconds)`.
pub fn train_fp32(
    recipe: &Recipe,
    data: &Mnist,
    device: &Device,
) -> (ReferenceCnn, f64, Option<f64>, f64) {
    device.seed(recipe.seed);
    let started = Instant::now();
    let mut model = ReferenceCnn::new(device);
    let mut trainer = Trainer::adam(recipe.fp32.learning_rate);
    for epoch in 0..recipe.fp32.epochs {
        let label = format!("fp32 {}/{}", epoch + 1, recipe.fp32.epochs);
        (model, _) = trainer.epoch(
            model,
            &data.train,
            recipe.batch_size,
            recipe.seed + epoch as u64,
            device,
            &label,
            &mut NoHook,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let eval = Device::flex();
    let accuracy = accuracy(&model.valid(), &data.test, &eval);
    println!("FP32 test accuracy: {accuracy:.2} %");
    let mut folded = None;
    if recipe.fold_batch_norm {
        model = model
            .fold_batch_norms()
            .expect("the reference CNN's batch norms fit its convolutions");
        let after = accuracy_of(&model, data, &eval);
        println!("after BatchNorm folding: {after:.2} %");
        folded = Some(after);
    }
    (model, accuracy, folded, seconds)
}

fn accuracy_of(model: &ReferenceCnn, data: &Mnist, eval: &Device) -> f64 {
    accuracy(&model.valid(), &data.test, eval)
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
    recipe.validate()?;
    let device = Device::flex().autodiff();
    let eval_device = Device::flex();
    let (model, fp32_accuracy, folded_accuracy, fp32_seconds) = match fp32 {
        Some(model) => {
            let model = model.train();
            let accuracy = accuracy_of(&model, data, &eval_device);
            (model, accuracy, None, 0.0)
        }
        None => train_fp32(recipe, data, &device),
    };
    if let Some(dir) = out_dir {
        save_atomically(model.clone(), &dir.join("fp32.bpk"))?;
    }
    device.seed(recipe.seed + 1);

    let steps_per_epoch = data.train.batch_indices(recipe.batch_size, None).len();
    let mut compressed = model.clone();
    let mut controller = None;
    if let Some(sparsity) = &recipe.sparsity {
        let mut builder = burn_compress_sparsity::sparsify(compressed)
            .method(sparsity.method.clone())
            .steps_per_epoch(steps_per_epoch);
        for scope in &sparsity.ignored_scopes {
            builder = builder.ignore(scope.clone());
        }
        let (sparse, sparsity_controller) = builder.build()?;
        println!(
            "sparsity attached: {} at level {:.1} %",
            sparsity_controller.method.name(),
            100.0 * sparsity_controller.level()
        );
        compressed = sparse;
        controller = Some(sparsity_controller);
    }
    let mut pruner = None;
    if let Some(pruning) = &recipe.pruning {
        let mut builder = burn_compress_pruning::prune(compressed)
            .channels(pruning.channels.clone())
            .steps_per_epoch(steps_per_epoch);
        for scope in &pruning.ignored_scopes {
            builder = builder.ignore(scope.clone());
        }
        let (pruned, pruning_controller) =
            builder.build(|m, x| m.forward(x), [2, 1, mnist::SIDE, mnist::SIDE])?;
        println!(
            "pruning attached at level {:.1} %",
            100.0 * pruning_controller.level()
        );
        compressed = pruned;
        pruner = Some(pruning_controller);
    }
    if let Some(quantization) = &recipe.quantization {
        let calibration = calibration_batches(&data.train, recipe, &device);
        compressed = quantization.builder(compressed).init_ranges(
            quantization.range_init.clone(),
            calibration,
            |m, x| {
                m.valid().forward(x);
            },
        )?;
        if !recipe.fold_batch_norm && recipe.bn_adaptation_batches > 0 {
            let batches = data
                .train
                .batch_indices(recipe.batch_size, Some(recipe.seed))
                .into_iter()
                .take(recipe.bn_adaptation_batches)
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
    let mut trainer =
        Trainer::adam(recipe.finetune.learning_rate).with_mask_learning_rate(mask_rate);
    for epoch in 0..recipe.finetune.epochs {
        let label = format!("finetune {}/{}", epoch + 1, recipe.finetune.epochs);
        let seed = recipe.seed + 1000 + epoch as u64;
        (compressed, _) = trainer.epoch(
            compressed,
            &data.train,
            recipe.batch_size,
            seed,
            &device,
            &label,
            &mut (&mut controller, &mut pruner),
        );
    }
    let finetune_seconds = started.elapsed().as_secs_f64();
    let pruning = pruner.as_ref().map(|p| p.statistics());
    if let Some(pruner) = &pruner {
        compressed = pruner.shrink(compressed)?;
        println!("{}", pruning.as_ref().expect("statistics of the pruner"));
    }
    let compressed_accuracy = accuracy_of(&compressed, data, &eval_device);
    println!("after fine-tuning: {compressed_accuracy:.2} %");
    let stats = ModelStats::of(&compressed.valid());
    let sparsity = controller.as_ref().map(|_| stats.masked_sparsity());
    if let Some(level) = sparsity {
        println!("sparsity of the masked weights: {:.2} %", 100.0 * level);
    }

    let summary = RecipeSummary {
        fp32_accuracy,
        folded_accuracy,
        init_accuracy,
        compressed_accuracy,
        sparsity,
        stats,
        pruning,
        fp32_seconds,
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
