//! NNCF's own sample configs parse unchanged with NNCF's meaning; every kind of bad value is
//! refused with its JSON path.

use std::path::Path;

use burn_compress_config::{Algorithm, CompressionConfig, LrSchedule, OptimizerKind, Pretrained};
use burn_compress_core::{QuantMode, Schedule};
use burn_compress_pruning::{Criterion, Ranking};
use burn_compress_quant::{Granularity, RangeInit, Signedness};
use burn_compress_sparsity::{LevelMode, SparsityMethod};

fn sample(name: &str) -> CompressionConfig {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nncf")
        .join(name);
    CompressionConfig::from_file(&file).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn nncf_quantization_sample() {
    let config = sample("resnet50_imagenet_int8.json");
    assert_eq!(config.input_info[0].sample_size, [1, 3, 224, 224]);
    assert_eq!(config.target_device, "ANY");
    let training = &config.training;
    assert_eq!(training.model.as_deref(), Some("resnet50"));
    assert_eq!(training.pretrained, Pretrained::Yes);
    assert_eq!((training.batch_size, training.epochs), (85, 1));
    assert_eq!(training.optimizer.kind, OptimizerKind::Adam);
    assert_eq!(training.optimizer.base_lr, 1e-5);
    assert_eq!(training.without_effect, ["multiprocessing_distributed"]);
    let quant = config.quantization().unwrap();
    assert_eq!(quant.init_samples, 850);
    // NNCF's defaults: mixed_min_max (the mean of per-batch extremes), symmetric everything
    // under the `performance` preset, 8 bits, BatchNorm adaptation on 2000 samples.
    assert_eq!(quant.config.range_init, RangeInit::MeanMinMax);
    assert_eq!(quant.bn_adaptation_samples, 2000);
    let weights = quant.config.weights.as_ref().unwrap();
    assert_eq!((weights.bits, weights.mode), (8, QuantMode::Symmetric));
    assert_eq!(weights.signedness, Signedness::Signed);
    let activations = quant.config.activations.as_ref().unwrap();
    assert_eq!(activations.mode, QuantMode::Symmetric);
    assert_eq!(activations.granularity, Granularity::PerTensor);
    assert_eq!(activations.signedness, Signedness::Auto);
}

#[test]
fn nncf_magnitude_sparsity_and_quantization_sample() {
    let config = sample("resnet34_cifar_rb_sparsity_int8.json");
    assert_eq!(config.algorithms.len(), 2);
    assert!(matches!(config.algorithms[0], Algorithm::Sparsity(_)));
    assert!(matches!(config.algorithms[1], Algorithm::Quantization(_)));
    let sparsity = config.sparsity().unwrap();
    let SparsityMethod::Magnitude(magnitude) = &sparsity.method else {
        panic!("{:?}", sparsity.method);
    };
    assert_eq!(magnitude.level_setting, LevelMode::Global);
    let schedule = &magnitude.schedule;
    assert_eq!(
        schedule.schedule,
        Schedule::Multistep {
            steps: vec![5.0, 10.0, 20.0, 30.0, 40.0],
            levels: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    );
    assert_eq!((schedule.init, schedule.target), (0.1, 0.6));
    assert_eq!(schedule.level_at(0.0), 0.1);
    assert_eq!(schedule.level_at(10.0), 0.3);
    assert_eq!(schedule.freeze_epoch, Some(100.0));
    let optimizer = &config.training.optimizer;
    assert_eq!(optimizer.kind, OptimizerKind::Sgd);
    assert_eq!((optimizer.base_lr, optimizer.weight_decay), (0.001, 1e-4));
    assert_eq!(
        optimizer.schedule,
        LrSchedule::MultiStep {
            steps: vec![50, 60],
            gamma: 0.1
        }
    );
    assert!((optimizer.learning_rate(55) - 1e-4).abs() < 1e-12);
    assert_eq!(config.training.dataset.as_deref(), Some("CIFAR100"));
    assert_eq!(config.training.num_classes, Some(100));
}

#[test]
fn nncf_filter_pruning_sample() {
    let config = sample("resnet50_imagenet_pruning_geometric_median.json");
    let pruning = config.pruning().unwrap();
    let settings = &pruning.pruning;
    assert_eq!(settings.criterion, Criterion::GeometricMedian);
    assert_eq!(settings.ranking, Ranking::Local);
    assert_eq!(settings.round_to, 8);
    assert!(!settings.prune_first_conv && !settings.prune_downsample_convs);
    // `exponential` from 0.1 to 0.4 over pruning_steps − 1 = 14 epochs, frozen at 15.
    let schedule = &settings.schedule;
    assert_eq!(schedule.schedule, Schedule::Exponential);
    assert_eq!((schedule.init, schedule.target), (0.1, 0.4));
    assert_eq!(
        (schedule.target_epoch, schedule.freeze_epoch),
        (14.0, Some(15.0))
    );
    assert!((schedule.level_at(1.0) - 0.126).abs() < 1e-3);
    assert_eq!(schedule.level_at(14.0), 0.4);
    let optimizer = &config.training.optimizer;
    assert_eq!((optimizer.momentum, optimizer.nesterov), (0.9, true));
}

#[test]
fn presets_scopes_and_burn_compress_extensions() {
    let config = CompressionConfig::from_json(
        r#"{
        "ignored_scopes": ["head"],
        "compression": [
            {"algorithm": "quantization", "preset": "mixed",
             "ignored_scopes": "{re}layer[0-9]\\.downsample"},
            {"algorithm": "n_m_sparsity", "n": 2, "m": 4, "training": "fixed"},
            {"algorithm": "filter_pruning", "pruning_init": 0.1,
             "params": {"schedule": "exponential_with_bias", "pruning_target": 0.5,
                        "num_init_steps": 1, "pruning_steps": 20, "round_to": 1,
                        "all_weights": true}}
        ]
    }"#,
    )
    .unwrap();
    let quant = config.quantization().unwrap();
    assert_eq!(
        quant.config.activations.as_ref().unwrap().mode,
        QuantMode::Asymmetric
    );
    assert_eq!(
        quant.config.ignored_scopes,
        ["re:.*(?:layer[0-9]\\.downsample).*", "head"]
    );
    assert_eq!(config.sparsity().unwrap().ignored_scopes, ["head"]);
    let pruning = &config.pruning().unwrap().pruning;
    assert_eq!(pruning.ranking, Ranking::Global);
    assert_eq!(pruning.schedule.level_at(0.5), 0.0);
    assert!((pruning.schedule.level_at(1.0) - 0.1).abs() < 1e-12);
    assert_eq!(pruning.schedule.freeze_epoch, Some(21.0));
}

#[test]
fn bad_values_name_their_json_path() {
    let cases = [
        (
            r#"{"compression": {"algorithm": "quantization", "weights": {"bits": "8"}}}"#,
            "compression.weights.bits",
            "expected a number",
        ),
        (
            r#"{"compression": [{"algorithm": "quantization", "weights": {"bitz": 8}}]}"#,
            "compression[0].weights.bitz",
            "unknown key",
        ),
        (
            r#"{"compression": [{"algorithm": "hawq"}]}"#,
            "compression[0].algorithm",
            "unknown algorithm `hawq`",
        ),
        (
            r#"{"compression": [{"algorithm": "magnitude_sparsity", "params": {"sparsity_target": 1.5}}]}"#,
            "compression[0].params.sparsity_target",
            "outside [0, 1)",
        ),
        (
            r#"{"compression": {"algorithm": "magnitude_sparsity", "params": {"schedule": "cosine"}}}"#,
            "compression.params.schedule",
            "unknown value `cosine`",
        ),
        (
            r#"{"compression": {"algorithm": "filter_pruning", "params": {"filter_importance": "L3"}}}"#,
            "compression.params.filter_importance",
            "unknown value `L3`",
        ),
        (
            r#"{"compression": {"algorithm": "filter_pruning", "params": {"pruning_target": 0.5, "pruning_flops_target": 0.3}}}"#,
            "compression.params.pruning_flops_target",
            "not both",
        ),
        (
            r#"{"compression": {"algorithm": "filter_pruning", "pruning_init": -0.1}}"#,
            "compression.pruning_init",
            "outside [0, 1)",
        ),
        (
            r#"{"compression": {"algorithm": "filter_pruning", "params": {"zero_grad": true}}}"#,
            "compression.params.zero_grad",
            "unknown key",
        ),
        (
            r#"{"compression": {"algorithm": "quantization", "initializer": {"precision": {"type": "hawq"}}}}"#,
            "compression.initializer.precision",
            "not supported",
        ),
        (
            r#"{"compression": {"algorithm": "quantization", "initializer": {"range": {"type": "threshold"}}}}"#,
            "compression.initializer.range.type",
            "unknown value `threshold`",
        ),
        (
            r#"{"compression": [{"algorithm": "quantization"}, {"algorithm": "quantization"}]}"#,
            "compression[1].algorithm",
            "second algorithm",
        ),
        (
            r#"{"compression": {"algorithm": "rb_sparsity", "initializer": {}}}"#,
            "compression.initializer",
            "unknown key",
        ),
        (
            r#"{"input_info": {"sample_size": [1, 3, -2]}}"#,
            "input_info.sample_size[2]",
            "not a whole number",
        ),
        (
            r#"{"target_device": "TPU"}"#,
            "target_device",
            "unknown value `TPU`",
        ),
        (
            r#"{"optimizer": {"type": "LBFGS"}}"#,
            "optimizer.type",
            "unknown optimizer",
        ),
        (
            r#"{"optimizer": {"base_lr": 0}}"#,
            "optimizer.base_lr",
            "not a positive number",
        ),
        (
            r#"{"accuracy_aware_training": {"mode": "early_exit"}}"#,
            "accuracy_aware_training",
            "not supported",
        ),
        (
            r#"{"compression": "quantization"}"#,
            "compression",
            "an object or an array",
        ),
        (
            r#"{"compression": {"algorithm": "quantization", "target_scopes": ["conv1"]}}"#,
            "compression.target_scopes",
            "not supported",
        ),
        (
            r#"{"compression": {"algorithm": "n_m_sparsity", "n": 4, "m": 4}}"#,
            "compression.n",
            "4:4",
        ),
    ];
    for (json, path, reason) in cases {
        let error = CompressionConfig::from_json(json).expect_err(json);
        assert_eq!(error.path, path, "{json}: {error}");
        assert!(error.reason.contains(reason), "{json}: {error}");
        assert!(error.to_string().contains(&format!("`{path}`")), "{error}");
    }
    let error = CompressionConfig::from_json("{\"compression\": [").unwrap_err();
    assert!(error.reason.contains("not valid JSON"), "{error}");
    let missing = Path::new("/nonexistent/config.json");
    let error = CompressionConfig::from_file(missing).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/config.json"),
        "{error}"
    );
}

#[test]
fn every_shipped_recipe_parses() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut count = 0;
    for entry in std::fs::read_dir(configs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let config = CompressionConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.algorithms.is_empty(), "{}", path.display());
            count += 1;
        }
    }
    assert!(count >= 4);
}
