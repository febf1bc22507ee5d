//! Compression configs in the JSON that NNCF 2.x users already have.
//!
//! The root keys of NNCF's schema (`input_info`, `target_device`, `compression` as one object
//! or a list, `log_dir`) and its algorithm sections (`quantization`, `magnitude_sparsity`,
//! `rb_sparsity`, `filter_pruning`) are read unchanged, with NNCF's defaults; burn-compress
//! adds `n_m_sparsity` and the training keys of NNCF's sample scripts (`model`, `dataset`,
//! `batch_size`, `epochs`, `optimizer`, `seed`, `pretrained`) plus its own (`dataset_dir`,
//! `pretraining`, `fold_batch_norm`; `round_to` in `filter_pruning.params`;
//! `mask_learning_rate` in `rb_sparsity`).
//!
//! Every value is checked where it is read: a wrong type, a value out of range, an unknown key
//! or a key NNCF knows but burn-compress does not implement is an error naming its JSON path
//! (`compression[1].params.schedule`). Nothing is ignored silently.
//!
//! ```
//! let config = burn_compress_config::CompressionConfig::from_json(r#"{
//!     "input_info": {"sample_size": [1, 1, 28, 28]},
//!     "compression": [
//!         {"algorithm": "magnitude_sparsity", "params": {"sparsity_target": 0.5}},
//!         {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 300}}}
//!     ]
//! }"#).unwrap();
//! assert_eq!(config.quantization().unwrap().init_samples, 300);
//!
//! let error = burn_compress_config::CompressionConfig::from_json(
//!     r#"{"compression": {"algorithm": "quantization", "weights": {"bits": "8"}}}"#,
//! ).unwrap_err();
//! assert_eq!(error.path, "compression.weights.bits");
//! ```

#![warn(missing_docs)]

mod common;
mod error;
mod json;
mod pruning;
mod quantization;
mod sparsity;
mod training;

use std::path::Path;

pub use error::ConfigError;
pub use pruning::PruningAlgorithm;
pub use quantization::QuantizationAlgorithm;
pub use sparsity::SparsityAlgorithm;
pub use training::{LrSchedule, Optimizer, OptimizerKind, Pretrained, Pretraining, Training};

use json::{Field, Object};

/// One model input (`input_info`).
#[derive(Clone, Debug, PartialEq)]
pub struct InputInfo {
    /// Example shape, batch first (`[1, 3, 224, 224]`).
    pub sample_size: Vec<usize>,
    /// Element type: `float` (default) or `long`.
    pub element: String,
}

/// One compression algorithm, in the order the config lists them.
#[derive(Clone, Debug, PartialEq)]
pub enum Algorithm {
    /// `quantization`.
    Quantization(QuantizationAlgorithm),
    /// `magnitude_sparsity`, `rb_sparsity` or `n_m_sparsity`.
    Sparsity(SparsityAlgorithm),
    /// `filter_pruning`.
    Pruning(PruningAlgorithm),
}

/// A parsed config: the inputs, the algorithms and the training recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressionConfig {
    /// The model's inputs.
    pub input_info: Vec<InputInfo>,
    /// NNCF's `target_device` (`ANY` by default); burn-compress exports for OpenVINO's CPU
    /// plugin either way.
    pub target_device: String,
    /// The algorithms.
    pub algorithms: Vec<Algorithm>,
    /// The training recipe.
    pub training: Training,
}

const ALGORITHMS: [&str; 5] = [
    "quantization",
    "magnitude_sparsity",
    "rb_sparsity",
    "n_m_sparsity",
    "filter_pruning",
];

fn input_info(field: &Field<'_>) -> Result<Vec<InputInfo>, ConfigError> {
    field
        .one_or_many()?
        .iter()
        .map(|item| {
            let mut object = item.object()?;
            let sample_size = object
                .require("sample_size")?
                .items()?
                .iter()
                .map(Field::count)
                .collect::<Result<Vec<_>, _>>()?;
            let element = object.read_or("type", "float".to_string(), |f| {
                Ok(f.choice(&["float", "long"])?.to_string())
            })?;
            if let Some(filler) = object.take("filler") {
                filler.choice(&["ones", "zeros", "random"])?;
            }
            object.unsupported(
                "keyword",
                "the forward closure given to burn-compress takes the input",
            )?;
            object.finish()?;
            Ok(InputInfo {
                sample_size,
                element,
            })
        })
        .collect()
}

fn algorithm(field: &Field<'_>, global_ignored: &[String]) -> Result<Algorithm, ConfigError> {
    let mut section = field.object()?;
    let name = section.require("algorithm")?;
    let name_text = name.str()?;
    let kind = name.choice(&ALGORITHMS).map_err(|_| {
        name.error(format!(
            "unknown algorithm `{name_text}` (known: {})",
            ALGORITHMS.join(", ")
        ))
    })?;
    let mut algorithm = match kind {
        "quantization" => Algorithm::Quantization(quantization::read(&mut section)?),
        "magnitude_sparsity" => Algorithm::Sparsity(sparsity::magnitude(&mut section)?),
        "rb_sparsity" => Algorithm::Sparsity(sparsity::rb(&mut section)?),
        "n_m_sparsity" => Algorithm::Sparsity(sparsity::n_m(&mut section)?),
        _ => Algorithm::Pruning(pruning::read(&mut section)?),
    };
    section.finish()?;
    let scopes = match &mut algorithm {
        Algorithm::Quantization(q) => &mut q.config.ignored_scopes,
        Algorithm::Sparsity(s) => &mut s.ignored_scopes,
        Algorithm::Pruning(p) => &mut p.ignored_scopes,
    };
    scopes.extend(global_ignored.iter().cloned());
    Ok(algorithm)
}

impl CompressionConfig {
    /// Reads a config file; errors name the file and the JSON path.
    pub fn from_file(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::at("", format!("cannot read: {e}")).in_file(file))?;
        Self::from_json(&text).map_err(|e| e.in_file(file))
    }

    /// Reads a config from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::at("", format!("not valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Reads a config from a parsed JSON document.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let mut root: Object<'_> = Field::root(value).object()?;
        let input_info = root.read_or("input_info", Vec::new(), input_info)?;
        let target_device = root.read_or("target_device", "ANY", |f| {
            f.choice(&["ANY", "CPU", "GPU", "NPU", "VPU", "TRIAL", "CPU_SPR"])
        })?;
        let global_ignored = root
            .read_or("ignored_scopes", Vec::new(), |f| f.strings())?
            .iter()
            .map(|s| common::scope(s))
            .collect::<Vec<_>>();
        root.unsupported(
            "target_scopes",
            "list the layers to leave out in `ignored_scopes`",
        )?;
        let algorithms = match root.take("compression") {
            Some(field) => field
                .one_or_many()?
                .iter()
                .map(|section| algorithm(section, &global_ignored))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        check_combination(&algorithms)?;
        root.unsupported(
            "accuracy_aware_training",
            "accuracy-aware training loops are not implemented",
        )?;
        root.unsupported(
            "compression_lr_multiplier",
            "compression parameters train at the optimizer's learning rate",
        )?;
        root.read("disable_shape_matching", |f| f.bool())?;
        let training = training::read(&mut root)?;
        root.finish()?;
        Ok(Self {
            input_info,
            target_device: target_device.to_string(),
            algorithms,
            training,
        })
    }

    /// The quantization section, if any.
    pub fn quantization(&self) -> Option<&QuantizationAlgorithm> {
        self.algorithms.iter().find_map(|a| match a {
            Algorithm::Quantization(q) => Some(q),
            _ => None,
        })
    }

    /// The sparsity section, if any.
    pub fn sparsity(&self) -> Option<&SparsityAlgorithm> {
        self.algorithms.iter().find_map(|a| match a {
            Algorithm::Sparsity(s) => Some(s),
            _ => None,
        })
    }

    /// The filter-pruning section, if any.
    pub fn pruning(&self) -> Option<&PruningAlgorithm> {
        self.algorithms.iter().find_map(|a| match a {
            Algorithm::Pruning(p) => Some(p),
            _ => None,
        })
    }
}

/// One algorithm of each kind (one sparsity method).
fn check_combination(algorithms: &[Algorithm]) -> Result<(), ConfigError> {
    let mut seen = [false; 3];
    for (index, algorithm) in algorithms.iter().enumerate() {
        let slot = match algorithm {
            Algorithm::Quantization(_) => 0,
            Algorithm::Sparsity(_) => 1,
            Algorithm::Pruning(_) => 2,
        };
        if seen[slot] {
            return Err(ConfigError::at(
                &format!("compression[{index}].algorithm"),
                "a second algorithm of this kind (one quantization, one sparsity method and one \
                 filter pruning at most)",
            ));
        }
        seen[slot] = true;
    }
    Ok(())
}
