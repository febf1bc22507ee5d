//! Compress your own model with the builders: 50 % magnitude sparsity and INT8 quantization,
//! a few fine-tuning steps driven by the controller, statistics, and an OpenVINO IR.
//!
//! `cargo run --example compress_with_builders`

mod common;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use burn_compress::prelude::*;

use common::{batch, Net};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    let model = Net::new(&device);

    // Masks first (ramped to 50 % over the first epoch of 20 steps), then quantizers whose
    // ranges come from four calibration batches.
    let schedule = LevelSchedule::new(Schedule::polynomial(), 0.0, 0.5, 1.0).with_per_step(true);
    let (model, mut sparsity) = sparsify(model)
        .magnitude(Sparsity::scheduled(schedule))
        .ignore("head")
        .steps_per_epoch(20)
        .build()?;
    let calibration: Vec<_> = (0..4).map(|i| batch(16, i, &device).0).collect();
    let mut model = quantize(model)
        .weights(QuantSpec::int8_weights())
        .activations(QuantSpec::int8_activations())
        .init_ranges(RangeInit::MeanMinMax, calibration, |m, x| {
            m.valid().forward(x);
        })?;

    // Your training loop; the controller steps after every optimizer step.
    let mut optimizer = AdamConfig::new().init();
    for step in 0..40 {
        let (images, labels) = batch(16, 100 + step, &device);
        let loss = CrossEntropyLoss::new(None, &device).forward(model.forward(images), labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
        sparsity.step(&mut model);
    }
    println!("{}", sparsity.statistics(&model));

    let xml = std::env::temp_dir().join("burn-compress-examples/builders.xml");
    std::fs::create_dir_all(xml.parent().expect("a folder"))?;
    let report = export(
        &model.valid(),
        [1, 3, 16, 16],
        |m, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )?;
    println!(
        "{}: {} int8 weights, {} activation FakeQuantize layers",
        report.xml.display(),
        report.quantized_weights().len(),
        report.activation_quantizers.len()
    );
    Ok(())
}
