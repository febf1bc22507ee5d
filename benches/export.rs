//! Export benchmark, one run, release: `cargo bench --bench export`.
//!
//! Reports the export time (capture + lowering + writing, dynamic batch) of the reference CNN and
//! of a ResNet-18-sized network, and OpenVINO's CPU throughput at batch 64 for the reference
//! CNN's INT8 IR (quantized with burn-compress-quant) over its FP32 IR.

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::openvino::{export, ExportOptions, Precision, Runtime};
use burn_compress::quant::RangeInit;
use burn_compress_recipes::{Mnist, ReferenceCnn};

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

/// Images per second at batch 64 with one synchronous request, over about `seconds`.
fn throughput(xml: &std::path::Path, precision: Precision, seconds: f64) -> f64 {
    let mut runtime = Runtime::new().expect("OpenVINO runtime");
    let mut compiled = runtime.compile(xml, precision).expect("compile");
    let values: Vec<f32> = (0..64 * 784)
        .map(|i| ((i * 37 % 255) as f32 / 255.0 - 0.13) / 0.31)
        .collect();
    let input = TensorData::new(values, [64, 1, 28, 28]);
    for _ in 0..10 {
        compiled.infer(&input).expect("infer");
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        compiled.infer(&input).expect("infer");
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
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
    let fp32_xml = dir.path().join("cnn_fp32.xml");
    let int8_xml = dir.path().join("cnn_int8.xml");
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
    let resnet_xml = dir.path().join("resnet18.xml");
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

    for (label, precision) in [
        ("default precision", Precision::Default),
        ("f32 precision hint", Precision::F32),
    ] {
        let f = throughput(&fp32_xml, precision, 3.0);
        let q = throughput(&int8_xml, precision, 3.0);
        println!("OpenVINO CPU, batch 64, {label}: FP32 IR {f:>9.0} img/s, INT8 IR {q:>9.0} img/s, INT8/FP32 {:.2}x", q / f);
    }
}
