//! The reference QAT recipe: FP32 training -> (BatchNorm folding) -> range initialisation ->
//! quantization-aware fine-tuning, on MNIST-10k with the reference CNN.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Tensor};
use burn_compress_quant::{adapt_batch_norm, QuantConfig};
use serde::{Deserialize, Serialize};

use crate::mnist::{Mnist, MnistSplit};
use crate::model::ReferenceCnn;
use crate::train::{accuracy, train_epoch};

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

/// The QAT recipe's settings (`configs/mnist_qat.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QatRecipe {
    /// Seed of parameter initialisation and batch shuffling.
    pub seed: u64,
    /// Batch size of training and calibration.
    pub batch_size: usize,
    /// FP32 training.
    pub fp32: Phase,
    /// Quantization-aware fine-tuning.
    pub qat: Phase,
    /// Training images used to initialise activation ranges.
    pub calibration_samples: usize,
    /// Fold BatchNorm into the convolutions before attaching quantizers.
    pub fold_batch_norm: bool,
    /// Batches of BatchNorm adaptation after quantizers are attached (unfolded BN only).
    #[serde(default)]
    pub bn_adaptation_batches: usize,
    /// What to quantize and how.
    pub quantization: QuantConfig,
}

impl QatRecipe {
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
        for (key, phase) in [
            ("fp32.learning_rate", &self.fp32),
            ("qat.learning_rate", &self.qat),
        ] {
            if !(phase.learning_rate.is_finite() && phase.learning_rate > 0.0) {
                return Err(setting(key, "must be a positive number"));
            }
        }
        Ok(())
    }
}

/// What a recipe run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecipeSummary {
    /// Test-split top-1 (%) of the FP32 model.
    pub fp32_accuracy: f64,
    /// Test-split top-1 (%) after BatchNorm folding (equals FP32 up to rounding).
    pub folded_accuracy: Option<f64>,
    /// Test-split top-1 (%) with quantizers attached and ranges initialised, before fine-tuning.
    pub init_accuracy: f64,
    /// Test-split top-1 (%) after quantization-aware fine-tuning.
    pub qat_accuracy: f64,
    /// Seconds of FP32 training.
    pub fp32_seconds: f64,
    /// Seconds of QAT fine-tuning.
    pub qat_seconds: f64,
    /// Train / test split sizes.
    pub split: (usize, usize),
}

/// The models a recipe run produced, on the training device.
pub struct RecipeModels {
    /// The trained FP32 model (BatchNorm folded if the recipe says so).
    pub fp32: ReferenceCnn,
    /// The fine-tuned quantized model.
    pub qat: ReferenceCnn,
}

fn calibration_batches(data: &MnistSplit, recipe: &QatRecipe, device: &Device) -> Vec<Tensor<4>> {
    let subset = data.take(recipe.calibration_samples);
    subset
        .batch_indices(recipe.batch_size, None)
        .iter()
        .map(|indices| subset.batch(indices, device).0)
        .collect()
}

/// Runs the recipe on `data` (FP32 training, folding, range init, QAT). Saves checkpoints and
/// `summary.json` into `out_dir` when given.
pub fn run_qat(
    recipe: &QatRecipe,
    data: &Mnist,
    out_dir: Option<&Path>,
) -> Result<(RecipeModels, RecipeSummary), RecipeError> {
    recipe.validate()?;
    let device = Device::flex().autodiff();
    device.seed(recipe.seed);
    let eval_device = Device::flex();

    let started = Instant::now();
    let mut model = ReferenceCnn::new(&device);
    let mut optimizer = AdamConfig::new().init();
    for epoch in 0..recipe.fp32.epochs {
        let label = format!("fp32 {}/{}", epoch + 1, recipe.fp32.epochs);
        (model, _) = train_epoch(
            model,
            &mut optimizer,
            recipe.fp32.learning_rate,
            &data.train,
            recipe.batch_size,
            recipe.seed + epoch as u64,
            &device,
            &label,
        );
    }
    let fp32_seconds = started.elapsed().as_secs_f64();
    let fp32_accuracy = accuracy(&model.valid(), &data.test, &eval_device);
    println!("FP32 test accuracy: {fp32_accuracy:.2} %");

    let mut folded_accuracy = None;
    if recipe.fold_batch_norm {
        model = model.fold_batch_norms()?;
        let folded = accuracy(&model.valid(), &data.test, &eval_device);
        println!("after BatchNorm folding: {folded:.2} %");
        folded_accuracy = Some(folded);
    }
    if let Some(dir) = out_dir {
        save_atomically(model.clone(), &dir.join("fp32.bpk"))?;
    }

    let calibration = calibration_batches(&data.train, recipe, &device);
    let quantized = recipe.quantization.builder(model.clone()).init_ranges(
        recipe.quantization.range_init.clone(),
        calibration.clone(),
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
        adapt_batch_norm(&quantized, batches, |m, x| {
            m.forward(x);
        })?;
    }
    let init_accuracy = accuracy(&quantized.valid(), &data.test, &eval_device);
    println!("after range initialisation: {init_accuracy:.2} %");

    let started = Instant::now();
    let mut qat = quantized;
    let mut optimizer = AdamConfig::new().init();
    for epoch in 0..recipe.qat.epochs {
        let label = format!("qat {}/{}", epoch + 1, recipe.qat.epochs);
        (qat, _) = train_epoch(
            qat,
            &mut optimizer,
            recipe.qat.learning_rate,
            &data.train,
            recipe.batch_size,
            recipe.seed + 1000 + epoch as u64,
            &device,
            &label,
        );
    }
    let qat_seconds = started.elapsed().as_secs_f64();
    let qat_accuracy = accuracy(&qat.valid(), &data.test, &eval_device);
    println!("QAT test accuracy: {qat_accuracy:.2} %");

    let summary = RecipeSummary {
        fp32_accuracy,
        folded_accuracy,
        init_accuracy,
        qat_accuracy,
        fp32_seconds,
        qat_seconds,
        split: (data.train.len(), data.test.len()),
    };
    if let Some(dir) = out_dir {
        save_atomically(qat.clone(), &dir.join("qat.bpk"))?;
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomically(&dir.join("summary.json"), json.as_bytes())?;
    }
    Ok((RecipeModels { fp32: model, qat }, summary))
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
