//! Compress your own model from an NNCF 2.x-style config: filter pruning and INT8 quantization
//! attached by `compress`, one controller driven from the training loop, the pruned channels
//! removed at the end, and the smaller model exported.
//!
//! `cargo run --example compress_from_config`

mod common;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use burn_compress::prelude::*;

use common::{batch, Net};

/// An NNCF config as NNCF's users write it (a file works the same:
/// `CompressionConfig::from_file`); `round_to` is burn-compress's own key.
const CONFIG: &str = r#"{
    "input_info": {"sample_size": [1, 3, 16, 16]},
    "compression": [
        {"algorithm": "filter_pruning", "pruning_init": 0.25,
         "params": {"schedule": "baseline", "pruning_target": 0.5, "prune_first_conv": true,
                    "filter_importance": "geometric_median", "round_to": 4}},
        {"algorithm": "quantization",
         "initializer": {"range": {"num_init_samples": 64, "type": "mean_min_max"}}}
    ]
}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = CompressionConfig::from_json(CONFIG)?;
    let device = Device::flex().autodiff();
    let calibration: Vec<_> = (0..4).map(|i| batch(16, i, &device).0).collect();
    let (mut model, mut compression) = compress(Net::new(&device))
        .config(&config)
        .steps_per_epoch(20)
        .build(|m: &Net, x| m.forward(x), calibration)?;

    let mut optimizer = AdamConfig::new().init();
    for step in 0..40 {
        let (images, labels) = batch(16, 100 + step, &device);
        let mut loss = CrossEntropyLoss::new(None, &device).forward(model.forward(images), labels);
        if let Some(extra) = compression.loss(&model) {
            loss = loss.add(extra);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
        compression.step(&mut model);
    }
    let model = compression.finish(model)?; // pruned channels removed
    println!("{}", compression.statistics(&model));

    let xml = std::env::temp_dir().join("burn-compress-examples/from_config.xml");
    std::fs::create_dir_all(xml.parent().expect("a folder"))?;
    export(
        &model.valid(),
        [1, 3, 16, 16],
        |m, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )?;
    println!("exported {}", xml.display());
    Ok(())
}
