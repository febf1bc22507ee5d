//! OpenVINO throughput of 50 %-channel-pruned INT8 IRs over unpruned ones, release:
//! `cargo bench --bench pruning`.
//!
//! For the reference CNN and the CIFAR ResNet-18 of `shared/data/nncf-resnet18` (random
//! weights; BatchNorm folded; every prunable group pruned 50 % by L2, the classifier kept;
//! INT8 quantizers with ranges from random data), exports the dense and the shrunk INT8 IRs and
//! measures images per second at batch 64 (one synchronous request, OpenVINO's defaults and the
//! f32 hint), interleaved in rounds; the NNCF IRs of the ResNet-18 (dense, and pruned by
//! Torch-Pruning) run in the same rounds when found.
//!
//! Env: `BENCH_ROUNDS` (default 5), `BENCH_SECONDS` (per IR and round, default 2),
//! `NNCF_RESNET18_DIR` (default `../shared/data/nncf-resnet18`), `PRUNING_BENCH_OUT` (keep the
//! IRs in this folder).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use burn_compress::openvino::ExportOptions;
use burn_compress::prelude::*;
use burn_compress_recipes::resnet::CifarResNet18;
use burn_compress_recipes::ReferenceCnn;

mod common;
use common::{compare, env};

/// Quantizes `model` with ranges from two random batches of `shape`.
fn int8<M: Module>(model: M, shape: [usize; 4], forward: impl Fn(&M, Tensor<4>) -> Tensor<2>) -> M {
    let device = Device::flex();
    let batches: Vec<Tensor<4>> = (0..2)
        .map(|_| Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device))
        .collect();
    quantize(model)
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            forward(m, x);
        })
        .expect("quantize")
}

/// `model` with every prunable group pruned 50 % (L2) and shrunk.
fn pruned<M: Module>(
    model: M,
    shape: [usize; 4],
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
) -> M {
    let (masked, controller) = prune(model)
        .channels(Pruning::target(0.5))
        .build(forward, shape)
        .expect("prune");
    let stats = controller.statistics();
    println!(
        "  pruned: parameters {} -> {}, MACs {} -> {} ({:.2}x fewer)",
        stats.params_before,
        stats.params_after,
        stats.macs_before,
        stats.macs_after,
        stats.macs_before as f64 / stats.macs_after as f64
    );
    controller.shrink(masked).expect("shrink")
}

/// Exports the INT8 IR of `model`.
fn export_int8<M: Module>(
    model: &M,
    shape: [usize; 4],
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
    xml: &Path,
) {
    burn_compress::export(model, shape, forward, xml, &ExportOptions::default()).expect("export");
}

/// Writes `<name>_dense.xml` (INT8) and `<name>_pruned.xml` (pruned 50 %, shrunk, then INT8)
/// into `dir`; returns both paths.
fn dense_and_pruned<M: Module>(
    model: M,
    shape: [usize; 4],
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2> + Copy,
    dir: &Path,
    name: &str,
) -> (PathBuf, PathBuf) {
    let dense_xml = dir.join(format!("{name}_dense.xml"));
    let pruned_xml = dir.join(format!("{name}_pruned.xml"));
    export_int8(
        &int8(model.clone(), shape, forward),
        shape,
        forward,
        &dense_xml,
    );
    let small = int8(pruned(model, shape, forward), shape, forward);
    export_int8(&small, shape, forward, &pruned_xml);
    (dense_xml, pruned_xml)
}

fn main() {
    let device = Device::flex();
    let temporary = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("PRUNING_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("output folder");

    println!("reference CNN (batch 64, input 1x28x28)");
    device.seed(3);
    let cnn = ReferenceCnn::new(&device).fold_batch_norms().expect("fold");
    let cnn_forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let (dense_xml, pruned_xml) = dense_and_pruned(cnn, [2, 1, 28, 28], cnn_forward, &dir, "cnn");
    compare(
        "reference CNN",
        &[("dense INT8", dense_xml), ("pruned INT8", pruned_xml)],
        [1, 28, 28],
        &[(1, 0, "pruned/dense")],
    );

    println!("CIFAR ResNet-18 (batch 64, input 3x32x32)");
    device.seed(4);
    let resnet = CifarResNet18::new(&device)
        .fold_batch_norms()
        .expect("fold");
    let forward = |m: &CifarResNet18, x: Tensor<4>| m.forward(x);
    let (dense_xml, pruned_xml) = dense_and_pruned(resnet, [2, 3, 32, 32], forward, &dir, "resnet");
    let mut irs = vec![("ours dense", dense_xml), ("ours pruned", pruned_xml)];
    let mut ratios = vec![(1, 0, "ours pruned/dense")];
    let nncf = PathBuf::from(env(
        "NNCF_RESNET18_DIR",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/nncf-resnet18")
            .display()
            .to_string(),
    ));
    if nncf.join("pruned_int8.xml").is_file() {
        irs.push(("NNCF dense", nncf.join("dense_int8.xml")));
        irs.push(("Torch-Pruning+NNCF pruned", nncf.join("pruned_int8.xml")));
        ratios.push((3, 2, "their pruned/dense"));
        ratios.push((1, 3, "ours pruned/their pruned"));
        ratios.push((0, 2, "ours dense/NNCF dense"));
    } else {
        println!(
            "(NNCF IRs not found in {}: set NNCF_RESNET18_DIR)",
            nncf.display()
        );
    }
    compare("CIFAR ResNet-18", &irs, [3, 32, 32], &ratios);
}
