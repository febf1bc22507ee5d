//! Time of the fused fake-quantize alone on flex (autodiff), release:
//! `cargo bench --bench fused_kernel`.
//!
//! For the layouts the reference CNN trains (an activation per tensor, a convolution weight per
//! output channel, a Linear weight per output feature), times `sum(FQ(x)·g)` forward and backward
//! and the same without the fake-quantize (`sum(x·g)`), interleaved, and prints the difference
//! per element: what one fake-quantize costs a training step. Env: `FUSED_BENCH_ITERS` (per
//! round, default 200), `FUSED_BENCH_ROUNDS` (default 5), `BURN_COMPRESS_ALLOCATOR` (`mimalloc`,
//! the default, or `system`).

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use burn_compress::quant::{fake_quantize_trainable, Form};

#[allow(dead_code)] // the OpenVINO helpers serve the other benches
mod common;
use common::{env, median};

/// `FQ(x)` with the range parameters `params` (`x` itself without a form).
fn fake_quantize(x: &Tensor<4>, params: &[Tensor<4>; 3], form: Option<Form>) -> Tensor<4> {
    match form {
        Some(form) => fake_quantize_trainable(
            x.clone(),
            params[0].clone(),
            params[1].clone(),
            params[2].clone(),
            256,
            form,
        ),
        None => x.clone(),
    }
}

/// One timed step: `sum(FQ(x)·g)` (or `sum(x·g)`) and its backward; and the time of `FQ(x)`
/// alone.
fn step(x: &Tensor<4>, params: &[Tensor<4>; 3], g: &Tensor<4>, form: Option<Form>) -> [f64; 2] {
    let started = Instant::now();
    let y = fake_quantize(x, params, form);
    let forward = started.elapsed().as_secs_f64();
    drop(y);
    let started = Instant::now();
    let y = fake_quantize(x, params, form);
    let grads = y.mul(g.clone()).sum().backward();
    let seconds = started.elapsed().as_secs_f64();
    drop(grads);
    [seconds, forward]
}

/// The training binaries' allocator (mimalloc; `BURN_COMPRESS_ALLOCATOR=system` for the
/// platform's), as in the CLI.
#[global_allocator]
static ALLOCATOR: burn_compress_recipes::TrainingAllocator =
    burn_compress_recipes::TrainingAllocator;

fn main() {
    burn_compress_recipes::check_allocator_var().unwrap_or_else(|e| panic!("{e}"));
    println!("allocator {}", burn_compress_recipes::allocator_name());
    let iters = env("FUSED_BENCH_ITERS", 200);
    let rounds = env("FUSED_BENCH_ROUNDS", 5);
    let device = Device::flex().autodiff();
    let cases: [(&str, [usize; 4], [usize; 4], Form); 3] = [
        (
            "activation 64x32x13x13, per tensor",
            [64, 32, 13, 13],
            [1, 1, 1, 1],
            Form::FakeQuantize,
        ),
        (
            "conv weight 64x32x3x3, per channel",
            [64, 32, 3, 3],
            [64, 1, 1, 1],
            Form::Integer,
        ),
        (
            "linear weight 1600x128, per feature",
            [1, 1, 1600, 128],
            [1, 1, 1, 128],
            Form::Integer,
        ),
    ];
    for (name, shape, param_shape, form) in cases {
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let g = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let param = |value: f32| Tensor::<4>::full(param_shape, value, &device).require_grad();
        let params = [param(-2.0), param(4.0), param(4.0)];
        let elements: usize = shape.iter().product();
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for _ in 0..iters {
                with.push(step(&x, &params, &g, Some(form)));
                without.push(step(&x, &params, &g, None));
            }
        }
        let part =
            |times: &[[f64; 2]], k: usize| median(&times.iter().map(|t| t[k]).collect::<Vec<_>>());
        let (with, without, forward) = (part(&with, 0), part(&without, 0), part(&with, 1));
        println!(
            "{name}: FQ forward + backward {:.1} us ({:.2} ns/element; sum(FQ(x)·g) {:.1} us, \
             sum(x·g) {:.1} us), FQ forward alone {:.1} us ({:.2} ns/element)",
            (with - without) * 1e6,
            (with - without) * 1e9 / elements as f64,
            with * 1e6,
            without * 1e6,
            forward * 1e6,
            forward * 1e9 / elements as f64,
        );
    }
}
