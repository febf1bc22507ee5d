//! Training-step time of the reference CNN (batch 64) on flex CPU, and with `--features wgpu`
//! on wgpu too, in five variants measured interleaved in one run per device: FP32, QAT (INT8,
//! fused fake-quantize), the same QAT with the unfused chain of tensor ops, 50 % magnitude masks
//! alone (FP32), and the masks + QAT. The variants take turns (rotating which goes first), each
//! turn a few steps of one variant on the same batches as the others': its first step untimed
//! (it pays for what the variant before left behind: memory returned to the system, sleeping
//! threads), the rest timed, as steps follow one another in training. Prints each variant's
//! median and its ratio to FP32, per round and over all rounds, and the median and quartiles of
//! the per-step ratios (a step number is the same batch for every variant). Run:
//! `cargo bench --bench qat_step`.
//!
//! Env: `QAT_BENCH_STEPS` (timed steps per variant and round, default 100: with 30, QAT's ratio
//! moved between 1.05x and 1.12x over six runs on one machine, with 100 between 1.06x and
//! 1.09x over five), `QAT_BENCH_ROUNDS` (rounds, default 3), `QAT_BENCH_BLOCK` (timed steps per
//! turn, default 5),
//! `QAT_BENCH_DEVICES` (`flex`, `wgpu` or `flex,wgpu`; default all built),
//! `QAT_BENCH_VARIANTS` (names to time, e.g. `FP32,masks` for a profiler; default all; ratios
//! are to the first one timed), `QAT_BENCH_CSV` (a file to append every timed step to),
//! `BURN_COMPRESS_ALLOCATOR` (`mimalloc`, the default, as in the CLI; `system` for the
//! platform's `malloc`).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use burn_compress::prelude::*;
use burn_compress::shared::fused;
use burn_compress_recipes::{mnist, Mnist, NoHook, ReferenceCnn, Trainer};

#[allow(dead_code)] // the OpenVINO helpers serve the other benches
mod common;
use common::{env, median};

/// The training binaries' allocator (mimalloc; `BURN_COMPRESS_ALLOCATOR=system` for the
/// platform's), as in the CLI.
#[global_allocator]
static ALLOCATOR: burn_compress_recipes::TrainingAllocator =
    burn_compress_recipes::TrainingAllocator;

fn main() {
    burn_compress_recipes::check_allocator_var().unwrap_or_else(|e| panic!("{e}"));
    let steps = env("QAT_BENCH_STEPS", 100);
    let rounds = env("QAT_BENCH_ROUNDS", 3);
    for (name, device) in devices() {
        bench_device(name, device, steps, rounds);
    }
    println!(
        "targets on flex: QAT / FP32 <= 1.10x, masks+QAT / FP32 <= 1.15x. PyTorch + NNCF on a \
         2-core AMD EPYC (DESIGN.md): FP32 11.6 ms, QAT 21.2 ms (1.83x)"
    );
}

/// The devices to time: flex, and with the `wgpu` feature the best adapter wgpu finds (a GPU
/// where there is one). `QAT_BENCH_DEVICES` (e.g. `wgpu`, `flex,wgpu`) picks among them.
fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut all = vec![("flex CPU", "flex", Device::flex())];
    #[cfg(feature = "wgpu")]
    all.push((
        "wgpu",
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    let wanted = std::env::var("QAT_BENCH_DEVICES").ok();
    let built: Vec<&str> = all.iter().map(|(_, key, _)| *key).collect();
    let picked: Vec<_> = all
        .into_iter()
        .filter(|(_, key, _)| {
            wanted
                .as_deref()
                .is_none_or(|list| list.split(',').any(|k| k.trim() == *key))
        })
        .map(|(name, _, device)| (name, device))
        .collect();
    assert!(
        !picked.is_empty(),
        "QAT_BENCH_DEVICES={:?} names none of the devices this build has: {}",
        wanted.unwrap_or_default(),
        built.join(", ")
    );
    picked
}

/// Times the five variants on one device and prints their medians and ratios to FP32.
fn bench_device(name: &str, device: Device, steps: usize, rounds: usize) {
    let device = device.autodiff();
    device.seed(7);
    let data = Mnist::load(&mnist::default_dir()).expect("dataset");
    let batches = data.train.batch_indices(64, Some(1));

    let fp32 = ReferenceCnn::new(&device).fold_batch_norms().expect("fold");
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
    let qat = quantized(fp32.clone());
    // 50 % magnitude sparsity from the first step (a one-level multistep schedule).
    let config = CompressionConfig::from_json(
        r#"{"compression": {"algorithm": "magnitude_sparsity", "params": {
            "schedule": "multistep", "multistep_steps": [], "multistep_sparsity_levels": [0.5]}}}"#,
    )
    .expect("config");
    let sparsified = || {
        compress(fp32.clone())
            .config(&config)
            .steps_per_epoch(batches.len())
            .build(|m: &ReferenceCnn, x| m.forward(x), calibration.clone())
            .expect("sparsify")
    };
    let (sparse, controller) = sparsified();
    let (masked, masks_controller) = sparsified();
    let sparse_qat = quantized(sparse);
    let mut variants = vec![
        Variant::new("FP32", fp32, Trainer::adam(1e-3), None, true),
        Variant::new("QAT", qat.clone(), Trainer::adam(1e-4), None, true),
        Variant::new("QAT unfused", qat, Trainer::adam(1e-4), None, false),
        Variant::new(
            "masks",
            masked,
            Trainer::adam(1e-3),
            Some(masks_controller),
            true,
        ),
        Variant::new(
            "masks+QAT",
            sparse_qat,
            Trainer::adam(1e-4),
            Some(controller),
            true,
        ),
    ];
    if let Ok(wanted) = std::env::var("QAT_BENCH_VARIANTS") {
        variants.retain(|v| wanted.split(',').any(|name| name.trim() == v.name));
        assert!(
            !variants.is_empty(),
            "QAT_BENCH_VARIANTS names none of the variants"
        );
    }

    let timing = Timing::from_env(steps);
    println!(
        "reference CNN, batch 64, {name}: {rounds} rounds of {} steps per variant, in turns of \
         {} timed steps after {SETTLE} untimed (the variants in rotating order, after {WARM_UP} \
         warm-up steps each), allocator {}; QAT runs the fused fake-quantize where the device \
         has it, \"QAT unfused\" the chain of tensor ops it replaces",
        timing.turns * timing.block,
        timing.block,
        burn_compress_recipes::allocator_name()
    );
    let mut next_batch = 0;
    let mut batch = |count: usize| {
        let first = next_batch;
        next_batch += count;
        (first..first + count)
            .map(|b| data.train.batch(&batches[b % batches.len()], &device))
            .collect::<Vec<_>>()
    };
    let warm_up = batch(WARM_UP);
    for variant in &mut variants {
        for (images, labels) in &warm_up {
            variant.step(images.clone(), labels.clone());
        }
    }
    let mut turn = 0;
    for round in 0..rounds {
        let mut round_times = vec![Vec::new(); variants.len()];
        for _ in 0..timing.turns {
            // Every variant trains on the same batches; each turn starts with the next variant.
            let batches = batch(SETTLE + timing.block);
            turn += 1;
            let n = variants.len();
            for k in (0..n).map(|k| (k + turn) % n) {
                for (j, (images, labels)) in batches.iter().enumerate() {
                    let seconds = variants[k].step(images.clone(), labels.clone());
                    if j >= SETTLE {
                        round_times[k].push(seconds);
                    }
                }
            }
        }
        let medians: Vec<f64> = round_times.iter().map(|t| median(t)).collect();
        println!(
            "{name} round {}: {}",
            round + 1,
            summary(&variants, &medians)
        );
        for (variant, times) in variants.iter_mut().zip(round_times) {
            variant.times.extend(times);
        }
    }
    let medians: Vec<f64> = variants.iter().map(|v| median(&v.times)).collect();
    println!("{name} all rounds: {}", summary(&variants, &medians));
    if let Ok(path) = std::env::var("QAT_BENCH_CSV") {
        write_times(&path, name, &variants, timing.block);
    }
    println!("{name} paired: {}", paired_ratios(&variants));
}

/// Writes every timed step to `path` as CSV (`device,step,variant,position,ms`: `position` is
/// the variant's place in its turn's order, 0 first; a step number is one batch for every
/// variant), appending, for a closer look at the spread than the medians give.
fn write_times(path: &str, device: &str, variants: &[Variant], block: usize) {
    let n = variants.len();
    let mut csv = String::new();
    for (k, variant) in variants.iter().enumerate() {
        for (i, seconds) in variant.times.iter().enumerate() {
            // Timed step i is in turn i / block + 1 (counted from 1), which starts with variant
            // turn mod n.
            let turn = i / block + 1;
            let position = (k + n - turn % n) % n;
            csv += &format!(
                "{device},{i},{},{position},{:.3}\n",
                variant.name,
                seconds * 1e3
            );
        }
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, csv.as_bytes()));
    if let Err(e) = written {
        eprintln!("QAT_BENCH_CSV: cannot write {path}: {e}");
    }
}

/// Untimed steps of each variant before the first timed one.
const WARM_UP: usize = 5;

/// Untimed steps at the start of each turn: the step after another variant's pays for what that
/// one left (freed memory returned to the system, the pool's threads gone to sleep).
const SETTLE: usize = 1;

/// How each round is split: `turns` turns in which every variant trains `block` timed steps.
struct Timing {
    turns: usize,
    block: usize,
}

impl Timing {
    /// `QAT_BENCH_BLOCK` timed steps per turn (default 5), turns enough for `steps` per round.
    fn from_env(steps: usize) -> Self {
        let block = env("QAT_BENCH_BLOCK", 5).max(1);
        Self {
            turns: steps.div_ceil(block).max(1),
            block,
        }
    }
}

/// One model trained step by step, with its timings.
struct Variant {
    name: &'static str,
    model: Option<ReferenceCnn>,
    trainer: Trainer,
    hook: Option<Compression>,
    fused: bool,
    /// Each timed step's seconds.
    times: Vec<f64>,
}

impl Variant {
    fn new(
        name: &'static str,
        model: ReferenceCnn,
        trainer: Trainer,
        hook: Option<Compression>,
        fused: bool,
    ) -> Self {
        Self {
            name,
            model: Some(model),
            trainer,
            hook,
            fused,
            times: Vec::new(),
        }
    }

    /// One training step; returns its wall time in seconds.
    fn step(&mut self, images: Tensor<4>, labels: Tensor<1, Int>) -> f64 {
        fused::set_enabled(self.fused);
        let model = self.model.take().expect("model");
        let started = Instant::now();
        let (model, _) = match &mut self.hook {
            Some(hook) => self.trainer.step(model, images, labels, hook),
            None => self.trainer.step(model, images, labels, &mut NoHook),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.model = Some(model);
        fused::set_enabled(true);
        seconds
    }
}

/// Each variant's median over the steps of its time divided by the first variant's in the same
/// step (same batch, within one round of turns), and the quartiles of those ratios: a ratio
/// that slow swings of the machine's speed, which move both times of a step alike, do not shift.
fn paired_ratios(variants: &[Variant]) -> String {
    let first = &variants[0].times;
    variants
        .iter()
        .map(|v| {
            let mut ratios: Vec<f64> = v.times.iter().zip(first).map(|(t, f)| t / f).collect();
            ratios.sort_by(f64::total_cmp);
            let quartile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
            format!(
                "{} {:.2}x (middle half {:.2}–{:.2}x)",
                v.name,
                median(&ratios),
                quartile(0.25),
                quartile(0.75)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each variant's median and its ratio to the first (FP32 unless `QAT_BENCH_VARIANTS` drops it).
fn summary(variants: &[Variant], medians: &[f64]) -> String {
    variants
        .iter()
        .zip(medians)
        .map(|(v, m)| format!("{} {:.1} ms ({:.2}x)", v.name, m * 1e3, m / medians[0]))
        .collect::<Vec<_>>()
        .join(", ")
}
