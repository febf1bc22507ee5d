//! The wgpu path end to end (with the `wgpu` feature; `scripts/test-wgpu.sh` runs it on Mesa's
//! lavapipe where there is no GPU): masks and quantizers attached, calibrated and fine-tuned on
//! a wgpu device export to an INT8 IR that OpenVINO runs like Burn does there, and the CLI's
//! recipe runs on `--device wgpu`.
#![cfg(feature = "wgpu")]

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use burn::module::Module;
use burn::tensor::{Device, DeviceKind, Tensor};
use burn_compress::openvino::{compare, ElementType};
use burn_compress::prelude::*;
use burn_compress_recipes::train::predict;
use burn_compress_recipes::{mnist, Mnist, ReferenceCnn, Trainer};

fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// 50 % magnitude sparsity reached within the one epoch (masks rewritten every step), then
/// INT8 quantizers.
const MASKS_AND_INT8: &str = r#"{"compression": [
    {"algorithm": "magnitude_sparsity", "sparsity_init": 0.0, "params": {
        "schedule": "polynomial", "sparsity_target": 0.5, "sparsity_target_epoch": 1,
        "update_per_optimizer_step": true}},
    {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 128}}}
]}"#;

#[test]
fn wgpu_masks_and_qat_fine_tune_and_export_in_agreement_with_openvino() {
    let device = Device::wgpu(DeviceKind::Cpu).autodiff();
    device.seed(5);
    let data = Mnist::load(&mnist::default_dir()).unwrap();
    let train = data.train.take(512);
    let batches = train.batch_indices(64, Some(3));
    let calibration: Vec<Tensor<4>> = batches[..2]
        .iter()
        .map(|b| train.batch(b, &device).0)
        .collect();
    let fp32 = ReferenceCnn::new(&device).fold_batch_norms().unwrap();
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let config = CompressionConfig::from_json(MASKS_AND_INT8).unwrap();
    let (mut model, mut compression) = compress(fp32)
        .config(&config)
        .steps_per_epoch(batches.len())
        .build(forward, calibration)
        .unwrap();
    let mut trainer = Trainer::adam(1e-3);
    for batch in &batches {
        let (images, labels) = train.batch(batch, &device);
        let (next, loss) = trainer.step(model, images, labels, &mut compression);
        assert!(loss.is_finite(), "loss {loss}");
        model = next;
    }
    let stats = ModelStats::of(&model);
    assert!(
        (stats.masked_sparsity() - 0.5).abs() < 1e-3,
        "masks after one epoch on wgpu: {stats}"
    );

    let model = model.valid();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("wgpu.xml");
    let report = export(
        &model,
        [1, 1, 28, 28],
        forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.weights.len(), 4, "{report:?}");
    for weight in &report.weights {
        assert_eq!(weight.element, ElementType::I8, "{weight:?}");
        // Every weight that is zero in Burn (masked, or rounded to 0) is a zero of the int8
        // constant.
        let in_burn = stats.weights.iter().find(|w| w.param == weight.param);
        let in_burn = in_burn.unwrap_or_else(|| panic!("{weight:?} in {stats}"));
        assert_eq!(weight.zeros, in_burn.zeros, "{weight:?} vs {in_burn:?}");
    }
    let burn_logits = predict(&model, &data.test, 250, &model.fc1.linear.weight.device());
    let (images, _) = data
        .test
        .batch(&(0..data.test.len()).collect::<Vec<_>>(), &Device::flex());
    let ir_logits = eval(&xml, &images.into_data(), Precision::F32)
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap();
    let agreement = compare(&burn_logits, &ir_logits, 10);
    println!(
        "wgpu: masks + QAT reference CNN vs OpenVINO INT8 on {} test images: top-1 agreement \
         {:.4}, max logit difference {:.4}",
        agreement.rows, agreement.top1_agreement, agreement.max_abs_diff
    );
    assert!(agreement.top1_agreement >= 0.999, "{agreement:?}");
}

/// The first `count` images of the repository's MNIST-10k, written as IDX files into `dir`.
fn write_mnist_subset(dir: &Path, count: usize) {
    for (name, header, item) in [
        ("t10k-images-idx3-ubyte.gz", 16, 28 * 28),
        ("t10k-labels-idx1-ubyte.gz", 8, 1),
    ] {
        let source = std::fs::File::open(mnist::default_dir().join(name)).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(source)
            .read_to_end(&mut bytes)
            .unwrap();
        bytes.truncate(header + count * item);
        bytes[4..8].copy_from_slice(&(count as u32).to_be_bytes());
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        gz.finish().unwrap();
    }
}

/// `--device wgpu` runs the QAT recipe end to end (640 images, one epoch per phase) and prints
/// the summary with the OpenVINO row.
#[test]
fn wgpu_device_runs_the_qat_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    write_mnist_subset(&data, 640);
    let config = std::fs::read_to_string(repository().join("configs/mnist_qat.json"))
        .unwrap()
        .replace("\"epochs\": 5", "\"epochs\": 1")
        .replace("\"num_init_samples\": 300", "\"num_init_samples\": 64");
    let config_path = dir.path().join("qat.json");
    std::fs::write(&config_path, config).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_burn-compress"))
        .args(["run", config_path.to_str().unwrap(), "--device", "wgpu"])
        .args(["--data", data.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .current_dir(repository())
        .env("CUBECL_WGPU_DEFAULT_DEVICE", "Cpu")
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("| compressed IR in OpenVINO |"), "{stdout}");
    assert!(out.join("compressed.xml").exists() && out.join("summary.json").exists());
}
