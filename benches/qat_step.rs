//! QAT training-step time over FP32 training-step time for the reference CNN, batch 64, on
//! flex (CPU), measured interleaved in one run. Run: `cargo bench --bench qat_step`.
//!
//! Env: `QAT_BENCH_STEPS` (timed steps per variant, default 40).

use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn_compress::prelude::*;
use burn_compress_recipes::{mnist, train_step, Mnist, ReferenceCnn};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let steps: usize = std::env::var("QAT_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let device = Device::flex().autodiff();
    device.seed(7);
    let data = Mnist::load(&mnist::default_dir()).expect("dataset");
    let batches = data.train.batch_indices(64, Some(1));

    let mut fp32 = ReferenceCnn::new(&device).fold_batch_norms().expect("fold");
    let calibration: Vec<_> = batches[..5]
        .iter()
        .map(|b| data.train.batch(b, &device).0)
        .collect();
    let mut qat = quantize(fp32.clone())
        .init_ranges(RangeInit::MeanMinMax, calibration, |m, x| {
            m.valid().forward(x);
        })
        .expect("quantize");
    let mut fp32_optimizer = AdamConfig::new().init();
    let mut qat_optimizer = AdamConfig::new().init();

    let (mut fp32_times, mut qat_times) = (Vec::new(), Vec::new());
    for step in 0..steps + 5 {
        let (images, labels) = data.train.batch(&batches[step % batches.len()], &device);
        let started = Instant::now();
        (fp32, _) = train_step(
            fp32,
            &mut fp32_optimizer,
            1e-3,
            images.clone(),
            labels.clone(),
        );
        let fp32_time = started.elapsed().as_secs_f64();
        let started = Instant::now();
        (qat, _) = train_step(qat, &mut qat_optimizer, 1e-4, images, labels);
        let qat_time = started.elapsed().as_secs_f64();
        if step >= 5 {
            fp32_times.push(fp32_time);
            qat_times.push(qat_time);
        }
    }
    let (fp32_median, qat_median) = (median(fp32_times), median(qat_times));
    println!("reference CNN, batch 64, flex CPU, {steps} interleaved steps each (after 5 warm-up)");
    println!("FP32 train step median: {:.1} ms", fp32_median * 1e3);
    println!("QAT  train step median: {:.1} ms", qat_median * 1e3);
    println!(
        "QAT / FP32 step time: {:.2}x (target <= 1.30x; PyTorch+NNCF here: ~1.9x)",
        qat_median / fp32_median
    );
}
