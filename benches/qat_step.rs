//! Training-step time of the reference CNN (batch 64, flex CPU) in three variants, measured
//! interleaved in one run: FP32, QAT (INT8 fake-quantize), and 50 % magnitude masks + QAT.
//! Prints each variant's median and the ratios QAT / FP32 and masks+QAT / QAT, per round and
//! over all rounds. Run: `cargo bench --bench qat_step`.
//!
//! Env: `QAT_BENCH_STEPS` (timed steps per variant and round, default 30), `QAT_BENCH_ROUNDS`
//! (rounds, default 3).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use burn_compress::prelude::*;
use burn_compress_recipes::{mnist, Mnist, NoHook, ReferenceCnn, Trainer};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let steps = env("QAT_BENCH_STEPS", 30);
    let rounds = env("QAT_BENCH_ROUNDS", 3);
    let device = Device::flex().autodiff();
    device.seed(7);
    let data = Mnist::load(&mnist::default_dir()).expect("dataset");
    let batches = data.train.batch_indices(64, Some(1));

    let mut fp32 = ReferenceCnn::new(&device).fold_batch_norms().expect("fold");
    let calibration: Vec<_> = batches[..5]
        .iter()
        .map(|b| data.train.batch(b, &device).0)
        .collect();
    let quantized = |model: ReferenceCnn| {
        quantize(model)
            .init_ranges(RangeInit::MeanMinMax, calibration.clone(), |m, x| {
                m.valid().forward(x);
            })
            .expect("quantize")
    };
    let mut qat = quantized(fp32.clone());
    // 50 % magnitude sparsity from the first step (a one-level multistep schedule).
    let config = CompressionConfig::from_json(
        r#"{"compression": {"algorithm": "magnitude_sparsity", "params": {
            "schedule": "multistep", "multistep_steps": [], "multistep_sparsity_levels": [0.5]}}}"#,
    )
    .expect("config");
    let (sparse, mut controller) = compress(fp32.clone())
        .config(&config)
        .steps_per_epoch(batches.len())
        .build(|m: &ReferenceCnn, x| m.forward(x), calibration.clone())
        .expect("sparsify");
    let mut sparse_qat = quantized(sparse);
    let (mut fp32_trainer, mut qat_trainer, mut sparse_trainer) = (
        Trainer::adam(1e-3),
        Trainer::adam(1e-4),
        Trainer::adam(1e-4),
    );

    println!(
        "reference CNN, batch 64, flex CPU: {rounds} rounds of {steps} interleaved steps per \
         variant (after 5 warm-up steps)"
    );
    let (mut all_fp32, mut all_qat, mut all_sparse) = (Vec::new(), Vec::new(), Vec::new());
    let mut step = 0;
    for round in 0..rounds {
        let (mut fp32_times, mut qat_times, mut sparse_times) =
            (Vec::new(), Vec::new(), Vec::new());
        let warmup = if round == 0 { 5 } else { 0 };
        for i in 0..steps + warmup {
            let (images, labels) = data.train.batch(&batches[step % batches.len()], &device);
            step += 1;
            let started = Instant::now();
            (fp32, _) = fp32_trainer.step(fp32, images.clone(), labels.clone(), &mut NoHook);
            let fp32_time = started.elapsed().as_secs_f64();
            let started = Instant::now();
            (qat, _) = qat_trainer.step(qat, images.clone(), labels.clone(), &mut NoHook);
            let qat_time = started.elapsed().as_secs_f64();
            let started = Instant::now();
            (sparse_qat, _) = sparse_trainer.step(sparse_qat, images, labels, &mut controller);
            let sparse_time = started.elapsed().as_secs_f64();
            if i >= warmup {
                fp32_times.push(fp32_time);
                qat_times.push(qat_time);
                sparse_times.push(sparse_time);
            }
        }
        let (f, q, s) = (
            median(fp32_times.clone()),
            median(qat_times.clone()),
            median(sparse_times.clone()),
        );
        println!(
            "round {}: FP32 {:.1} ms, QAT {:.1} ms, masks+QAT {:.1} ms | QAT/FP32 {:.2}x, masks+QAT/QAT {:.2}x",
            round + 1,
            f * 1e3,
            q * 1e3,
            s * 1e3,
            q / f,
            s / q
        );
        all_fp32.extend(fp32_times);
        all_qat.extend(qat_times);
        all_sparse.extend(sparse_times);
    }
    let (f, q, s) = (median(all_fp32), median(all_qat), median(all_sparse));
    println!(
        "all rounds: FP32 {:.1} ms, QAT {:.1} ms, masks+QAT {:.1} ms (medians)",
        f * 1e3,
        q * 1e3,
        s * 1e3
    );
    println!(
        "QAT / FP32: {:.2}x (PyTorch+NNCF on these machines: ~1.8x); masks+QAT / QAT: {:.2}x \
         (target <= 1.10x)",
        q / f,
        s / q
    );
}
