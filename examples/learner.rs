//! Compression under burn-train's `Learner`: the reference CNN is trained in FP32 by a
//! `Learner`, compressed from an NNCF-style config (magnitude sparsity to 50 % + INT8), wrapped
//! in `Compressed` (which adds the compression loss and steps the controller after every
//! optimizer step), fine-tuned by a second `Learner`, exported to an INT8 OpenVINO IR.
//!
//! `cargo run --example learner` (one flex device) or
//! `cargo run --example learner -- --two-devices` (burn-train's data-parallel strategy on the
//! flex and ndarray CPU devices; on a GPU machine list its devices instead).
//!
//! The model's `TrainStep` / `InferenceStep` are the usual burn-train ones: see
//! `crates/burn-compress-recipes/src/learner.rs` for the reference CNN's.

use std::fmt::Display;
use std::path::Path;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, ExecutionStrategy, InferenceStep, Learner, MultiDeviceOptim,
    SupervisedTraining, TrainStep,
};
use burn_compress::prelude::*;
use burn_compress_recipes::{accuracy, mnist_loader, Mnist, MnistBatch, ReferenceCnn};
use burn_compress_train::Compressed;

const BATCH: usize = 64;

/// One epoch of `model` on the MNIST train split, validated on the test split.
fn fit<M>(model: M, learning_rate: f64, data: &Mnist, devices: &[Device], dir: &Path) -> M
where
    M: TrainStep<Input = MnistBatch, Output = ClassificationOutput>
        + InferenceStep<Input = MnistBatch, Output = ClassificationOutput>
        + Module
        + Display
        + 'static,
{
    let strategy = match devices {
        [device] => ExecutionStrategy::single(device.clone()),
        _ => ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice),
    };
    SupervisedTraining::new(
        dir,
        mnist_loader(&data.train, BATCH, Some(42)),
        mnist_loader(&data.test, 256, None),
    )
    .num_epochs(1)
    .metric_train_numeric(LossMetric::new())
    .metric_valid_numeric(AccuracyMetric::new())
    .with_training_strategy(strategy.into())
    .launch(Learner::new(model, AdamConfig::new().init(), learning_rate))
    .model
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = Mnist::load(&burn_compress_recipes::mnist::default_dir())?;
    #[allow(deprecated)] // burn names ndarray's one device this way
    let devices = match std::env::args().any(|arg| arg == "--two-devices") {
        true => vec![Device::flex().autodiff(), Device::ndarray().autodiff()],
        false => vec![Device::flex().autodiff()],
    };
    let main_device = &devices[0];
    let out = std::env::temp_dir().join("burn-compress-examples/learner");

    // FP32 training; the Learner returns the model in eval mode.
    let fp32 = fit(
        ReferenceCnn::new(main_device),
        1e-3,
        &data,
        &devices,
        &out.join("fp32"),
    );
    let fp32 = fp32.fold_batch_norms()?.train().fork(main_device);
    println!("FP32: {:.2} %", accuracy(&fp32, &data.test, main_device));

    // Compression from a config; `steps_per_epoch` counts optimizer steps (burn-train splits
    // each epoch's data across the devices).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = CompressionConfig::from_file(&root.join("configs/mnist_magnitude50_int8.json"))?;
    let calibration = (0..5)
        .map(|i| {
            let indices: Vec<usize> = (i * BATCH..(i + 1) * BATCH).collect();
            data.train.batch(&indices, main_device).0
        })
        .collect::<Vec<_>>();
    let (model, compression) = compress(fp32)
        .config(&config)
        .steps_per_epoch((data.train.len() / devices.len()).div_ceil(BATCH))
        .build(|m: &ReferenceCnn, x| m.forward(x), calibration)?;

    let model = fit(
        Compressed::new(model, compression),
        1e-4,
        &data,
        &devices,
        &out.join("compressed"),
    );
    println!("{}", model.statistics());
    let model = model.finish()?;
    println!(
        "compressed: {:.2} %",
        accuracy(&model, &data.test, main_device)
    );

    let xml = out.join("model.xml");
    let report = export(
        &model.valid(),
        [1, 1, 28, 28],
        |m, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )?;
    println!(
        "exported {} ({} layers, {} bytes of weights)",
        xml.display(),
        report.layers,
        report.bin_bytes
    );
    Ok(())
}
