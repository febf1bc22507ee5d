//! NNCF's own sample configs, unchanged, applied to a user's model through `compress`: the
//! masks and quantizers they ask for are attached, a hand-written training loop drives the
//! controller, and the result exports to an INT8 IR that OpenVINO runs like Burn.

use std::path::Path;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use burn_compress::prelude::*;

use burn_compress_recipes::ReferenceCnn;

use crate::common::models::ResNet;
use crate::common::{burn_forward, data, dev, ov_forward};

fn nncf_sample(name: &str) -> CompressionConfig {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/burn-compress-config/tests/data/nncf")
        .join(name);
    CompressionConfig::from_file(&file).unwrap()
}

/// `steps` Adam steps on random data (`shape`, 4 labels) with the controller stepped after each.
fn train<M: Module>(
    mut model: M,
    compression: &mut Compression,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
    shape: [usize; 4],
    steps: u64,
) -> M {
    let device = dev().autodiff();
    let mut optimizer = AdamConfig::new().init();
    for step in 0..steps {
        let x = Tensor::<4>::from_data(data(&shape, 40 + step), &device);
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3, 5, 7], [4]), &device);
        let loss = CrossEntropyLoss::new(None, &device).forward(forward(&model, x), labels);
        let loss = match compression.loss(&model) {
            Some(extra) => loss.add(extra),
            None => loss,
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
        compression.step(&mut model);
    }
    model
}

fn calibration(shape: [usize; 4]) -> Vec<Tensor<4>> {
    (0..2)
        .map(|i| Tensor::from_data(data(&shape, 70 + i), &dev().autodiff()))
        .collect()
}

#[test]
fn nncf_magnitude_and_quantization_sample_runs_on_a_user_model() {
    let config = nncf_sample("resnet34_cifar_rb_sparsity_int8.json");
    let model = ResNet::new().to_device(&dev().autodiff()).train();
    let forward = |m: &ResNet, x: Tensor<4>| m.forward(x);
    let (model, mut compression) = compress(model)
        .config(&config)
        .steps_per_epoch(3)
        .build(forward, calibration([4, 3, 16, 16]))
        .unwrap();
    assert!(compression.quantized() && compression.sparsity().is_some());
    let model = train(model, &mut compression, forward, [4, 3, 16, 16], 3);
    // Multistep: 0.1 before epoch 5 (`multistep_sparsity_levels[0]`).
    let stats = compression.statistics(&model);
    assert!(
        (stats.model.masked_sparsity() - 0.1).abs() < 0.01,
        "{stats}"
    );
    assert!(stats.model.weights.iter().all(|w| w.quantized), "{stats}");

    let model = compression.finish(model).unwrap().valid();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("resnet.xml");
    let report = export(
        &model,
        [1, 3, 16, 16],
        forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.quantized_weights().len(), stats.model.weights.len());
    let input = data(&[2, 3, 16, 16], 5);
    let burn = burn_forward(&model, &input, &forward);
    let ov = ov_forward(&xml, &input);
    let scale = burn.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = burn
        .iter()
        .zip(&ov)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "IR differs by {diff} (scale {scale})"
    );
}

#[test]
fn nncf_filter_pruning_sample_shrinks_a_user_model() {
    let config = nncf_sample("resnet50_imagenet_pruning_geometric_median.json");
    let model = ReferenceCnn::new(&dev().autodiff())
        .fold_batch_norms()
        .unwrap();
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let (model, mut compression) = compress(model)
        .config(&config)
        .steps_per_epoch(1)
        .build(forward, calibration([4, 1, 28, 28]))
        .unwrap();
    // `exponential` from pruning_init 0.1 reaches 0.4 at epoch pruning_steps − 1 = 14 and
    // freezes at 15: fifteen one-step epochs.
    let model = train(model, &mut compression, forward, [4, 1, 28, 28], 15);
    let statistics = compression.pruning().unwrap().statistics();
    assert!(
        (statistics.level - 0.4).abs() < 1e-9 && statistics.frozen,
        "{statistics}"
    );
    let pruned = |producer: &str| {
        let group = statistics
            .groups
            .iter()
            .find(|g| g.producers.iter().any(|p| p == producer))
            .unwrap();
        (group.pruned, group.blocked.clone())
    };
    // NNCF's defaults: the first convolution stays whole; kept channels round up to 8
    // (64 · 0.6 = 38.4 -> 40, 128 · 0.6 = 76.8 -> 80).
    assert!(pruned("conv1.conv.weight").1[0].contains("first convolution"));
    assert_eq!(pruned("conv2.conv.weight").0, 24);
    assert_eq!(pruned("fc1.linear.weight").0, 48);
    let shrunk = compression.finish(model).unwrap();
    assert_eq!(shrunk.conv2.conv.weight.dims(), [40, 32, 3, 3]);
    assert_eq!(shrunk.fc1.linear.weight.dims(), [40 * 25, 80]);
}
