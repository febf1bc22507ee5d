//! Export benchmark, one run, release: `cargo bench --bench export`.
//!
//! Reports the export time (capture + lowering + writing, dynamic batch) of the reference CNN and
//! of a ResNet-18-sized network, and OpenVINO's CPU throughput at batch 64 of the reference CNN's
//! IRs, interleaved in rounds: our INT8 IR (quantized with burn-compress-quant) over our FP32 IR
//! and over NNCF's INT8 IR of the same network (`tests/data/nncf-reference-cnn`), at OpenVINO's
//! defaults and with the f32 hint. Env: `BENCH_ROUNDS` (default 5), `BENCH_SECONDS` (default 2),
//! `EXPORT_BENCH_OUT` (keep the IRs in this folder).

use std::path::Path;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_compress::openvino::{export, ExportOptions};
use burn_compress::quant::RangeInit;
use burn_compress_recipes::{Mnist, ReferenceCnn};

mod common;
use common::compare;

#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    down: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    fn new(i: usize, o: usize, stride: usize, d: &Device) -> Self {
        let c3 = |a, b, s| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(d)
        };
        Self {
            conv1: c3(i, o, stride),
            bn1: BatchNormConfig::new(o).init(d),
            conv2: c3(o, o, 1),
            bn2: BatchNormConfig::new(o).init(d),
            down: (stride != 1 || i != o).then(|| {
                (
                    Conv2dConfig::new([i, o], [1, 1])
                        .with_stride([stride, stride])
                        .with_bias(false)
                        .init(d),
                    BatchNormConfig::new(o).init(d),
                )
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        let skip = match &self.down {
            Some((c, b)) => b.forward(c.forward(x)),
            None => x,
        };
        relu(y + skip)
    }
}

/// ResNet-18 (ImageNet layout, 11.7 M parameters).
#[derive(Module, Debug)]
struct ResNet18 {
    stem: Conv2d,
    bn: BatchNorm,
    pool: MaxPool2d,
    blocks: Vec<Block>,
    avg: AdaptiveAvgPool2d,
    fc: Linear,
}

impl ResNet18 {
    fn new(d: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut c = 64;
        for (o, s) in [(64, 1), (128, 2), (256, 2), (512, 2)] {
            blocks.push(Block::new(c, o, s, d));
            blocks.push(Block::new(o, o, 1, d));
            c = o;
        }
        Self {
            stem: Conv2dConfig::new([3, 64], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .init(d),
            bn: BatchNormConfig::new(64).init(d),
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            blocks,
            avg: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(512, 1000).init(d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self
            .pool
            .forward(relu(self.bn.forward(self.stem.forward(x))));
        for b in &self.blocks {
            x = b.forward(x);
        }
        self.fc.forward(self.avg.forward(x).flatten(1, 3))
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.unwrap())
}

fn main() {
    let device = Device::flex();
    let temporary = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("EXPORT_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("output folder");
    let options = ExportOptions::default();
    let forward = |m: &ReferenceCnn, x| m.forward(x);

    // Reference CNN, FP32 (BN folded) and QAT-quantized (ranges from 300 MNIST samples).
    let fp32 = ReferenceCnn::new(&device).fold_batch_norms().unwrap();
    let data = Mnist::load(&burn_compress_recipes::mnist::default_dir()).expect("MNIST-10k");
    let calib = data.train.take(300);
    let batches: Vec<Tensor<4>> = calib
        .batch_indices(100, None)
        .iter()
        .map(|i| calib.batch(i, &device).0)
        .collect();
    let qat = burn_compress::quantize(fp32.valid())
        .init_ranges(RangeInit::MeanMinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    let fp32_xml = dir.join("cnn_fp32.xml");
    let int8_xml = dir.join("cnn_int8.xml");
    let (t_fp32, r_fp32) = best_of(5, || {
        export(&fp32, [1, 1, 28, 28], forward, &fp32_xml, &options).unwrap()
    });
    let (t_int8, r_int8) = best_of(5, || {
        export(&qat, [1, 1, 28, 28], forward, &int8_xml, &options).unwrap()
    });
    println!(
        "export reference CNN FP32: {:>8.1} ms  ({} layers, {} B)",
        t_fp32.as_secs_f64() * 1e3,
        r_fp32.layers,
        r_fp32.bin_bytes
    );
    println!(
        "export reference CNN INT8: {:>8.1} ms  ({} layers, {} B)",
        t_int8.as_secs_f64() * 1e3,
        r_int8.layers,
        r_int8.bin_bytes
    );

    let resnet = ResNet18::new(&device);
    let resnet_xml = dir.join("resnet18.xml");
    let (t_res, r_res) = best_of(3, || {
        export(
            &resnet,
            [1, 3, 224, 224],
            |m: &ResNet18, x| m.forward(x),
            &resnet_xml,
            &options,
        )
        .unwrap()
    });
    println!(
        "export ResNet-18 FP32:     {:>8.1} ms  ({} layers, {:.1} MB)",
        t_res.as_secs_f64() * 1e3,
        r_res.layers,
        r_res.bin_bytes as f64 / 1e6
    );

    // Throughput: ours and NNCF's IRs of the same network (NNCF 3.4 QAT, OpenVINO 2026.4.1;
    // weights do not change the speed), interleaved.
    let nncf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nncf-reference-cnn");
    compare(
        "reference CNN",
        &[
            ("ours FP32", fp32_xml),
            ("ours INT8", int8_xml),
            ("NNCF FP32", nncf.join("peer_fp32.xml")),
            ("NNCF INT8", nncf.join("peer_int8.xml")),
        ],
        [1, 28, 28],
        &[
            (1, 0, "ours INT8/ours FP32"),
            (1, 3, "ours INT8/NNCF INT8"),
            (3, 2, "NNCF INT8/NNCF FP32"),
        ],
    );
}
