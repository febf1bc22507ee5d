//! Time of the first convolution's input gradient on flex (autodiff), release:
//! `cargo bench --bench conv_input_gradient`.
//!
//! The reference CNN's first convolution (batch 64, 1 → 32 channels, 3×3, 28×28 input): only the
//! input is tracked, as the input quantizer makes it in QAT (the weight untracked, so the
//! backward computes the input's gradient alone). Times `sum(conv2d(x, w)·g)` forward and
//! backward through `burn_compress::shared::conv::conv2d` with its own input-gradient kernel
//! and with it turned off (Flex's transposed convolution), interleaved, and the forward alone;
//! prints the medians and each backward (the product's and sum's backward, the same both ways,
//! and the input gradient). Env: `CONV_BENCH_ITERS` (per round, default
//! 200), `CONV_BENCH_ROUNDS` (default 5), `BURN_COMPRESS_ALLOCATOR` (`mimalloc`, the default,
//! or `system`).

use std::time::Instant;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use burn_compress::shared::conv;

#[allow(dead_code)] // the OpenVINO helpers serve the other benches
mod common;
use common::{env, median};

/// The training binaries' allocator (mimalloc; `BURN_COMPRESS_ALLOCATOR=system` for the
/// platform's), as in the CLI.
#[global_allocator]
static ALLOCATOR: burn_compress_recipes::TrainingAllocator =
    burn_compress_recipes::TrainingAllocator;

/// `[forward and backward, forward alone]` in seconds, with this crate's kernel on or off.
fn step(x: &Tensor<4>, weight: &Tensor<4>, g: &Tensor<4>, ours: bool) -> [f64; 2] {
    conv::set_enabled(ours);
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let forward = || conv::conv2d(x.clone(), weight.clone(), None, options.clone());
    let started = Instant::now();
    let y = forward();
    let forward_alone = started.elapsed().as_secs_f64();
    drop(y);
    let started = Instant::now();
    let grads = forward().mul(g.clone()).sum().backward();
    let both = started.elapsed().as_secs_f64();
    assert!(x.grad(&grads).is_some(), "the input has a gradient");
    [both, forward_alone]
}

fn main() {
    burn_compress_recipes::check_allocator_var().unwrap_or_else(|e| panic!("{e}"));
    let iters = env("CONV_BENCH_ITERS", 200);
    let rounds = env("CONV_BENCH_ROUNDS", 5);
    println!(
        "allocator {}, {rounds} rounds of {iters} steps each way",
        burn_compress_recipes::allocator_name()
    );
    let device = Device::flex().autodiff();
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([64, 1, 28, 28], normal, &device).require_grad();
    let weight = Tensor::<4>::random([32, 1, 3, 3], normal, &device);
    let g = Tensor::<4>::random([64, 32, 26, 26], normal, &device);
    let (mut ours, mut flex) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..iters {
            ours.push(step(&x, &weight, &g, true));
            flex.push(step(&x, &weight, &g, false));
        }
    }
    conv::set_enabled(true);
    let part = |times: &[[f64; 2]], k: usize| {
        median(&times.iter().map(|t| t[k]).collect::<Vec<_>>()) * 1e3
    };
    let (ours_both, flex_both) = (part(&ours, 0), part(&flex, 0));
    let forward = part(&ours, 1).min(part(&flex, 1));
    println!(
        "first convolution 64x1x28x28 -> 32x26x26 (3x3), sum(conv(x)·g) forward + backward: \
         ours {ours_both:.3} ms, Flex's {flex_both:.3} ms ({:.2}x); forward alone {forward:.3} ms, \
         so the backward (product, sum and the input gradient) about {:.3} ms against {:.3} ms",
        ours_both / flex_both,
        ours_both - forward,
        flex_both - forward,
    );
}
