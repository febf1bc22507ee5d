//! The root keys of a config beyond NNCF's schema: the training recipe, as NNCF's sample
//! scripts read it (`model`, `batch_size`, `epochs`, `optimizer`, ...) plus burn-compress's own
//! (`dataset_dir`, `pretraining`, `fold_batch_norm`).

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::json::{Field, Object};

/// The optimizer family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Adam.
    Adam,
    /// Stochastic gradient descent (with `momentum` from `optimizer_params`).
    Sgd,
}

/// How the learning rate changes over epochs (NNCF samples' `schedule_type`).
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `gamma` at each epoch of `steps`.
    MultiStep {
        /// Epochs at which the rate drops.
        steps: Vec<usize>,
        /// Factor per drop.
        gamma: f64,
    },
    /// Multiplied by `gamma` every `step` epochs.
    Step {
        /// Epochs between drops.
        step: usize,
        /// Factor per drop.
        gamma: f64,
    },
}

impl LrSchedule {
    /// The rate factor during `epoch` (counted from 0).
    pub fn factor(&self, epoch: usize) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::MultiStep { steps, gamma } => {
                gamma.powi(steps.iter().filter(|&&s| s <= epoch).count() as i32)
            }
            LrSchedule::Step { step, gamma } => gamma.powi((epoch / step) as i32),
        }
    }
}

/// The optimizer of a training phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    /// Adam or SGD.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub base_lr: f64,
    /// L2 weight decay (0: none).
    pub weight_decay: f64,
    /// SGD momentum (0: none).
    pub momentum: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Learning-rate schedule over epochs.
    pub schedule: LrSchedule,
}

impl Optimizer {
    /// Adam at `base_lr`, constant, no weight decay.
    pub fn adam(base_lr: f64) -> Self {
        Self {
            kind: OptimizerKind::Adam,
            base_lr,
            weight_decay: 0.0,
            momentum: 0.0,
            nesterov: false,
            schedule: LrSchedule::Constant,
        }
    }

    /// The learning rate during `epoch`.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        self.base_lr * self.schedule.factor(epoch)
    }
}

/// Reads an `optimizer` object (NNCF samples' keys; `weight_decay` defaults to 0 here).
pub fn optimizer(field: &Field<'_>, default_lr: f64) -> Result<Optimizer, ConfigError> {
    let mut object = field.object()?;
    let kind = object.read_or("type", OptimizerKind::Adam, |f| {
        match f.str()?.to_ascii_lowercase().as_str() {
            "adam" => Ok(OptimizerKind::Adam),
            "sgd" => Ok(OptimizerKind::Sgd),
            other => Err(f.error(format!(
                "unknown optimizer `{other}` (expected Adam or SGD)"
            ))),
        }
    })?;
    let base_lr = object.read_or("base_lr", default_lr, |f| f.positive())?;
    let weight_decay = object.read_or("weight_decay", 0.0, |f| f.non_negative())?;
    let (mut momentum, mut nesterov) = (0.0, false);
    if let Some(params) = object.take("optimizer_params") {
        let mut params = params.object()?;
        momentum = params.read_or("momentum", 0.0, |f| f.non_negative())?;
        nesterov = params.read_or("nesterov", false, |f| f.bool())?;
        params.finish()?;
        if kind == OptimizerKind::Adam && (momentum > 0.0 || nesterov) {
            return Err(object.error("optimizer_params", "momentum applies to SGD only"));
        }
    }
    let gamma = object.read_or("gamma", 0.1, |f| f.positive())?;
    let schedule = match object.read("schedule_type", |f| f.choice(&["multistep", "step"]))? {
        None => LrSchedule::Constant,
        Some("multistep") => LrSchedule::MultiStep {
            steps: object
                .require("steps")?
                .items()?
                .iter()
                .map(Field::count)
                .collect::<Result<_, _>>()?,
            gamma,
        },
        Some(_) => LrSchedule::Step {
            step: object.read_or("step", 30, |f| f.count())?.max(1),
            gamma,
        },
    };
    object.finish()?;
    Ok(Optimizer {
        kind,
        base_lr,
        weight_decay,
        momentum,
        nesterov,
        schedule,
    })
}

/// FP32 training before compression, when no pretrained checkpoint is given
/// (burn-compress's `pretraining` key).
#[derive(Clone, Debug, PartialEq)]
pub struct Pretraining {
    /// Epochs.
    pub epochs: usize,
    /// Optimizer.
    pub optimizer: Optimizer,
}

/// The training recipe around the compression algorithms.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    /// Model name (the CLI knows `reference_cnn`).
    pub model: Option<String>,
    /// Dataset name (the CLI knows `mnist`).
    pub dataset: Option<String>,
    /// Folder of the dataset files.
    pub dataset_dir: Option<PathBuf>,
    /// Classes of the classifier.
    pub num_classes: Option<usize>,
    /// Where the FP32 weights come from.
    pub pretrained: Pretrained,
    /// FP32 training when `pretrained` is absent.
    pub pretraining: Option<Pretraining>,
    /// Seed of initialisation, shuffling and RB sampling.
    pub seed: u64,
    /// Batch size of fine-tuning and calibration.
    pub batch_size: usize,
    /// Fine-tuning epochs with compression attached.
    pub epochs: usize,
    /// Fine-tuning optimizer.
    pub optimizer: Optimizer,
    /// Output directory (NNCF's `log_dir`).
    pub log_dir: Option<PathBuf>,
    /// Fold BatchNorm into convolutions before compressing.
    pub fold_batch_norm: bool,
    /// Keys of NNCF's sample scripts that were read but do nothing here
    /// (`multiprocessing_distributed`, `workers`, ...), for the caller to report.
    pub without_effect: Vec<String>,
}

/// Where the FP32 weights come from (`pretrained`).
#[derive(Clone, Debug, PartialEq)]
pub enum Pretrained {
    /// Train from scratch (`false` or absent).
    No,
    /// `true`, as NNCF's samples write it: weights the caller provides (a library user's model
    /// is already trained; the CLI needs a path).
    Yes,
    /// A `.bpk` checkpoint of the stock-layer or the wrapped model.
    Checkpoint(PathBuf),
}

/// Keys of NNCF's sample scripts that configure their runtime, not the compression or the
/// recipe: accepted with any value and reported as without effect.
const SAMPLE_RUNTIME_KEYS: [&str; 7] = [
    "multiprocessing_distributed",
    "workers",
    "print_freq",
    "batch_size_val",
    "batch_size_init",
    "mixed_precision",
    "export_to_ir_via_onnx",
];

/// Reads the training keys of the root object.
pub fn read(root: &mut Object<'_>) -> Result<Training, ConfigError> {
    let pretrained = match root.take("pretrained") {
        None => Pretrained::No,
        Some(field) => match field.bool() {
            Ok(false) => Pretrained::No,
            Ok(true) => Pretrained::Yes,
            Err(_) => Pretrained::Checkpoint(PathBuf::from(
                field
                    .str()
                    .map_err(|_| field.error("expected a checkpoint path or a boolean"))?,
            )),
        },
    };
    let mut without_effect = Vec::new();
    for key in SAMPLE_RUNTIME_KEYS {
        if root.take(key).is_some() {
            without_effect.push(key.to_string());
        }
    }
    if let Some(field) = root.take("eval_only") {
        if field.bool()? {
            return Err(field.error("is not supported: use `burn-compress eval`"));
        }
        without_effect.push("eval_only".to_string());
    }
    let pretraining = root.read("pretraining", |f| {
        let mut object = f.object()?;
        let epochs = object.read_or("epochs", 5, |f| f.count())?;
        let optimizer = match object.take("optimizer") {
            Some(field) => optimizer(&field, 1e-3)?,
            None => Optimizer::adam(1e-3),
        };
        object.finish()?;
        Ok(Pretraining { epochs, optimizer })
    })?;
    let batch_size = root.read_or("batch_size", 64, |f| f.count())?;
    if batch_size == 0 {
        return Err(root.error("batch_size", "must be at least 1"));
    }
    Ok(Training {
        model: root.read("model", |f| f.str().map(str::to_string))?,
        dataset: root.read("dataset", |f| f.str().map(str::to_string))?,
        dataset_dir: root.read("dataset_dir", |f| f.str().map(PathBuf::from))?,
        num_classes: root.read("num_classes", |f| f.count())?,
        pretrained,
        pretraining,
        seed: root.read_or("seed", 42, |f| f.count())? as u64,
        batch_size,
        epochs: root.read_or("epochs", 1, |f| f.count())?,
        optimizer: match root.take("optimizer") {
            Some(field) => optimizer(&field, 1e-4)?,
            None => Optimizer::adam(1e-4),
        },
        log_dir: root.read("log_dir", |f| f.str().map(PathBuf::from))?,
        fold_batch_norm: root.read_or("fold_batch_norm", false, |f| f.bool())?,
        without_effect,
    })
}
