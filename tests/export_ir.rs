//! End-to-end export tests: every exported IR is read, compiled and run by OpenVINO's real
//! runtime (through the Rust `openvino` crate and/or `scripts/ov_check.py`) and compared with
//! Burn's own forward on flex.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, LeakyRelu,
    LeakyReluConfig, Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d,
};
use burn::tensor::activation::{gelu, relu, sigmoid, silu, softmax, tanh};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::graph::{capture, prepare, CaptureOptions, Op};
use burn_compress::openvino::{
    compare, eval, export, ExportError, ExportOptions, Precision, Runtime,
};
use burn_compress::quant::RangeInit;
use burn_compress_recipes::{Mnist, ReferenceCnn};

// ---------------------------------------------------------------- helpers

fn dev() -> Device {
    Device::flex()
}

/// Deterministic pseudo-random data in [-2, 2).
fn data(shape: &[usize], seed: u64) -> TensorData {
    let n: usize = shape.iter().product();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    TensorData::new(values, shape.to_vec())
}

fn burn_forward<M: Module, const D: usize, const O: usize>(
    model: &M,
    input: &TensorData,
    forward: &impl Fn(&M, Tensor<D>) -> Tensor<O>,
) -> Vec<f32> {
    let x = Tensor::<D>::from_data(input.clone(), &dev());
    forward(&model.valid(), x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn ov_forward(xml: &Path, input: &TensorData) -> Vec<f32> {
    eval(xml, input, Precision::F32)
        .unwrap_or_else(|e| panic!("OpenVINO could not run {}: {e}", xml.display()))
        .try_to_vec::<f32>()
        .unwrap()
}

/// Exports with a dynamic batch, runs the IR at the traced batch and at another one, and
/// returns the largest relative error (max |ov - burn| / max |burn|).
fn check_fp32<M: Module, const D: usize, const O: usize>(
    name: &str,
    model: &M,
    shape: [usize; D],
    forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
) -> f32 {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join(format!("{name}.xml"));
    let report = export(model, shape, &forward, &xml, &ExportOptions::default())
        .unwrap_or_else(|e| panic!("{name}: export failed: {e}"));
    let mut worst = 0.0f32;
    for (k, batch) in [shape[0], 3].into_iter().enumerate() {
        let mut s = shape;
        s[0] = batch;
        let input = data(&s, 17 + k as u64);
        let reference = burn_forward(model, &input, &forward);
        let actual = ov_forward(&xml, &input);
        let classes = reference.len() / batch;
        let c = compare(&reference, &actual, classes.max(1));
        worst = worst.max(c.max_rel_diff);
    }
    println!(
        "{name}: {} IR layers, export {:?}, max relative error {worst:.3e}",
        report.layers, report.elapsed
    );
    assert!(worst <= 1e-4, "{name}: max relative error {worst} > 1e-4");
    worst
}

fn python() -> PathBuf {
    let path = std::env::var_os("BURN_COMPRESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "the OpenVINO check needs a Python with the `openvino` package at {} \
         (python3 -m venv .venv && .venv/bin/pip install openvino==2026.4.1), \
         or BURN_COMPRESS_PYTHON pointing at one",
        path.display()
    );
    path
}

/// `scripts/ov_check.py` with `args`; its JSON answer.
fn ov_check(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ov_check.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run scripts/ov_check.py");
    assert!(
        out.status.success(),
        "ov_check.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ov_check.py prints JSON")
}

fn randomize_batch_norm(bn: &mut BatchNorm, seed: u64) {
    let c = bn.gamma.dims()[0];
    let t = |s: u64, lo: f32, hi: f32| {
        let d = data(&[c], s).try_to_vec::<f32>().unwrap();
        let v: Vec<f32> = d.iter().map(|x| lo + (x + 2.0) / 4.0 * (hi - lo)).collect();
        Tensor::<1>::from_data(TensorData::new(v, [c]), &dev())
    };
    bn.gamma = Param::from_tensor(t(seed, 0.5, 1.5));
    bn.beta = Param::from_tensor(t(seed + 1, -0.5, 0.5));
    bn.running_mean = RunningState::new(t(seed + 2, -0.3, 0.3));
    bn.running_var = RunningState::new(t(seed + 3, 0.5, 2.0));
}

fn bn(c: usize, seed: u64) -> BatchNorm {
    let mut b = BatchNormConfig::new(c).init(&dev());
    randomize_batch_norm(&mut b, seed);
    b
}

// ---------------------------------------------------------------- models

fn reference_cnn(seed: u64) -> ReferenceCnn {
    dev().seed(seed);
    let mut m = ReferenceCnn::new(&dev());
    randomize_batch_norm(m.bn1.as_mut().unwrap(), 100);
    randomize_batch_norm(m.bn2.as_mut().unwrap(), 200);
    m
}

#[derive(Module, Debug)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    down: Option<Conv2d>,
    down_bn: Option<BatchNorm>,
}

impl BasicBlock {
    fn new(i: usize, o: usize, stride: usize, seed: u64) -> Self {
        let c3 = |a, b, s| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(&dev())
        };
        let (down, down_bn) = if stride != 1 || i != o {
            (
                Some(
                    Conv2dConfig::new([i, o], [1, 1])
                        .with_stride([stride, stride])
                        .init(&dev()),
                ),
                Some(bn(o, seed + 30)),
            )
        } else {
            (None, None)
        };
        Self {
            conv1: c3(i, o, stride),
            bn1: bn(o, seed),
            conv2: c3(o, o, 1),
            bn2: bn(o, seed + 10),
            down,
            down_bn,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        let skip = match (&self.down, &self.down_bn) {
            (Some(d), Some(b)) => b.forward(d.forward(x)),
            _ => x,
        };
        relu(y + skip)
    }
}

#[derive(Module, Debug)]
struct ResNet {
    stem: Conv2d,
    bn: BatchNorm,
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    fc: Linear,
}

impl ResNet {
    fn new() -> Self {
        dev().seed(3);
        Self {
            stem: Conv2dConfig::new([3, 16], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(&dev()),
            bn: bn(16, 1),
            blocks: vec![
                BasicBlock::new(16, 16, 1, 10),
                BasicBlock::new(16, 32, 2, 50),
            ],
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(32, 10).init(&dev()),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.bn.forward(self.stem.forward(x)));
        for b in &self.blocks {
            x = b.forward(x);
        }
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.fc.forward(x)
    }
}

#[derive(Module, Debug)]
struct DepthwiseSeparable {
    dw1: Conv2d,
    pw1: Conv2d,
    dw2: Conv2d,
    pw2: Conv2d,
    dilated: Conv2d,
    grouped: Conv2d,
    avg: AvgPool2d,
    adaptive: AdaptiveAvgPool2d,
    leaky: LeakyRelu,
    fc: Linear,
}

impl DepthwiseSeparable {
    fn new() -> Self {
        dev().seed(5);
        let d = &dev();
        Self {
            dw1: Conv2dConfig::new([8, 8], [3, 3])
                .with_groups(8)
                .with_padding(PaddingConfig2d::Same)
                .init(d),
            pw1: Conv2dConfig::new([8, 16], [1, 1]).init(d),
            dw2: Conv2dConfig::new([16, 16], [3, 3])
                .with_groups(16)
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(d),
            pw2: Conv2dConfig::new([16, 24], [1, 1]).with_bias(false).init(d),
            dilated: Conv2dConfig::new([24, 24], [3, 3])
                .with_dilation([2, 2])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(d),
            grouped: Conv2dConfig::new([24, 16], [3, 3])
                .with_groups(4)
                .with_padding(PaddingConfig2d::Valid)
                .init(d),
            avg: AvgPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_count_include_pad(false)
                .init(),
            adaptive: AdaptiveAvgPool2dConfig::new([3, 3]).init(),
            leaky: LeakyReluConfig::new().with_negative_slope(0.1).init(),
            fc: LinearConfig::new(16 * 9, 7).init(d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.leaky.forward(self.pw1.forward(self.dw1.forward(x)));
        let x = sigmoid(self.pw2.forward(self.dw2.forward(x)));
        let x = tanh(self.dilated.forward(x));
        let x = silu(self.grouped.forward(x));
        let x = self.adaptive.forward(self.avg.forward(x));
        self.fc.forward(x.flatten::<2>(1, 3))
    }
}

#[derive(Module, Debug)]
struct AttentionBlock {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

const HEADS: usize = 2;

impl AttentionBlock {
    fn new() -> Self {
        dev().seed(7);
        let d = &dev();
        let l = |a, b| LinearConfig::new(a, b).init(d);
        Self {
            ln1: LayerNormConfig::new(16).init(d),
            q: l(16, 16),
            k: l(16, 16),
            v: l(16, 16),
            o: l(16, 16),
            ln2: LayerNormConfig::new(16).init(d),
            fc1: l(16, 32),
            fc2: l(32, 16),
            dropout: DropoutConfig::new(0.3).init(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let dh = d / HEADS;
        let h = self.ln1.forward(x.clone());
        let q = self
            .q
            .forward(h.clone())
            .reshape([b, s, HEADS, dh])
            .swap_dims(1, 2);
        let k = self
            .k
            .forward(h.clone())
            .reshape([b, s, HEADS, dh])
            .permute([0, 2, 3, 1]);
        let v = self.v.forward(h).reshape([b, s, HEADS, dh]).swap_dims(1, 2);
        let att = softmax(q.matmul(k).div_scalar((dh as f32).sqrt()), 3);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        let x = x + self.o.forward(y);
        let h = self
            .dropout
            .forward(gelu(self.fc1.forward(self.ln2.forward(x.clone()))));
        let x = x + self.fc2.forward(h);
        // Slicing, concatenation, tensor and scalar arithmetic, clamp.
        let lo = x.clone().slice([0..b, 0..s, 0..d / 2]);
        let hi = x.clone().slice([0..b, 0..s, d / 2..d]);
        let mixed = Tensor::cat(vec![lo.clone() * hi.clone(), (lo - hi).div_scalar(2.0)], 2);
        let mixed = mixed
            .clamp(-3.0, 3.0)
            .mul_scalar(0.5)
            .add_scalar(0.1)
            .sub_scalar(0.2);
        mixed / (x.clone().abs() + 1.0) - x
    }
}

#[derive(Module, Debug)]
struct Conv1dNet {
    conv: Conv1d,
    conv2: Conv1d,
    fc: Linear,
}

impl Conv1dNet {
    fn new() -> Self {
        dev().seed(9);
        Self {
            conv: Conv1dConfig::new(4, 8, 3)
                .with_stride(2)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(&dev()),
            conv2: Conv1dConfig::new(8, 8, 3)
                .with_dilation(2)
                .with_groups(2)
                .init(&dev()),
            fc: LinearConfig::new(8 * 6, 5).init(&dev()),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = relu(self.conv2.forward(relu(self.conv.forward(x))));
        self.fc.forward(x.flatten::<2>(1, 2))
    }
}

// ---------------------------------------------------------------- FP32 models

#[test]
fn fp32_reference_cnn_matches_burn() {
    let m = reference_cnn(1);
    check_fp32("reference_cnn", &m, [2, 1, 28, 28], |m, x| m.forward(x));
}

#[test]
fn fp32_residual_network_with_batch_norm_matches_burn() {
    let m = ResNet::new();
    check_fp32("resnet", &m, [2, 3, 16, 16], |m, x| m.forward(x));
}

#[test]
fn fp32_depthwise_separable_network_matches_burn() {
    let m = DepthwiseSeparable::new();
    check_fp32("depthwise", &m, [2, 8, 15, 15], |m, x| m.forward(x));
}

#[test]
fn fp32_attention_block_matches_burn() {
    let m = AttentionBlock::new();
    check_fp32("attention", &m, [2, 5, 16], |m, x| m.forward(x));
}

#[test]
fn fp32_conv1d_network_matches_burn() {
    let m = Conv1dNet::new();
    check_fp32("conv1d", &m, [2, 4, 20], |m, x| m.forward(x));
}

#[test]
fn linear_on_2d_and_3d_inputs_and_matmul_of_activations() {
    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }
    dev().seed(11);
    let m = Two {
        a: LinearConfig::new(6, 4).init(&dev()),
        b: LinearConfig::new(6, 4).with_bias(false).init(&dev()),
    };
    check_fp32("linear2d", &m, [3, 6], |m, x| {
        m.a.forward(x.clone()) + m.b.forward(x)
    });
    check_fp32("linear3d_matmul", &m, [2, 5, 6], |m, x| {
        let a = m.a.forward(x.clone());
        let b = m.b.forward(x);
        a.matmul(b.swap_dims(1, 2))
    });
}

#[test]
fn static_shape_option_keeps_the_traced_batch() {
    let m = reference_cnn(2);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("static.xml");
    let options = ExportOptions {
        dynamic_batch: false,
        ..ExportOptions::default()
    };
    export(&m, [4, 1, 28, 28], |m, x| m.forward(x), &xml, &options).unwrap();
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        !text.contains("<dim>-1</dim>"),
        "static export has a dynamic dim"
    );
    assert!(text.contains(r#"shape="4,1,28,28""#));
    let input = data(&[4, 1, 28, 28], 5);
    let c = compare(
        &burn_forward(&m, &input, &|m: &ReferenceCnn, x| m.forward(x)),
        &ov_forward(&xml, &input),
        10,
    );
    assert!(c.max_rel_diff <= 1e-4, "{c:?}");
    // The dynamic export, by contrast, declares the batch dynamic.
    let dyn_xml = dir.path().join("dynamic.xml");
    export(
        &m,
        [4, 1, 28, 28],
        |m, x| m.forward(x),
        &dyn_xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&dyn_xml).unwrap();
    assert!(text.contains(r#"shape="?,1,28,28""#));
}

#[test]
fn python_check_script_agrees_with_the_rust_runtime() {
    let m = reference_cnn(3);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("m.xml");
    export(
        &m,
        [2, 1, 28, 28],
        |m, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let input = data(&[5, 1, 28, 28], 9);
    let input_path = dir.path().join("x.f32");
    let output_path = dir.path().join("y.f32");
    let bytes: Vec<u8> = input
        .try_to_vec::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&input_path, bytes).unwrap();
    let answer = ov_check(&[
        "infer",
        "--xml",
        xml.to_str().unwrap(),
        "--shape",
        "5,1,28,28",
        "--input",
        input_path.to_str().unwrap(),
        "--output",
        output_path.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert_eq!(answer["shape"], serde_json::json!([5, 10]));
    let py: Vec<f32> = std::fs::read(&output_path)
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rust = ov_forward(&xml, &input);
    let c = compare(&py, &rust, 10);
    assert!(c.max_abs_diff <= 1e-5, "{c:?}");
}

// ---------------------------------------------------------------- errors

#[derive(Module, Debug)]
struct Odd {
    body: Linear,
    head: Linear,
}

#[test]
fn unsupported_operation_is_named_with_its_module_and_nothing_is_written() {
    dev().seed(13);
    let m = Odd {
        body: LinearConfig::new(4, 4).init(&dev()),
        head: LinearConfig::new(4, 3).init(&dev()),
    };
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("odd.xml");
    let err = export(
        &m,
        [2, 4],
        |m, x| m.head.forward(relu(m.body.forward(x)).cos()),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("Cos"), "{message}");
    assert!(
        message.contains("`head`") || message.contains("`body`"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left behind"
    );
}

#[test]
fn a_path_without_xml_extension_is_refused_without_writing() {
    let m = Conv1dNet::new();
    let dir = tempfile::tempdir().unwrap();
    let err = export(
        &m,
        [1, 4, 20],
        |m, x| m.forward(x),
        dir.path().join("m.txt"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------- fake quantization

/// The fake-quantize contract, written out by hand (test-only quantizer).
fn fq<const D: usize>(x: Tensor<D>, il: Tensor<D>, r: Tensor<D>, levels: u32) -> Tensor<D> {
    let l = (levels - 1) as f32;
    x.sub(il.clone())
        .div(r.clone())
        .clamp(0.0, 1.0)
        .mul_scalar(l)
        .round()
        .div_scalar(l)
        .mul(r)
        .add(il)
}

#[derive(Module, Debug)]
struct HandQuant {
    conv: Conv2d,
    fc: Linear,
    act1: Param<Tensor<1>>,
    wscale: Param<Tensor<1>>,
    act2: Param<Tensor<1>>,
    fc_low: Param<Tensor<1>>,
    fc_range: Param<Tensor<1>>,
}

impl HandQuant {
    fn new() -> Self {
        dev().seed(21);
        let d = &dev();
        let conv = Conv2dConfig::new([3, 8], [3, 3]).init(d);
        let fc = LinearConfig::new(8 * 6 * 6, 5).init(d);
        // Per-channel symmetric weight scales = max |w| per output channel.
        let w = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let scales: Vec<f32> = w
            .chunks(27)
            .map(|c| c.iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .collect();
        // Asymmetric per-output-column fc ranges; the low end is a multiple of the step.
        let fw = fc.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let (mut lows, mut ranges) = (Vec::new(), Vec::new());
        for o in 0..5 {
            let col: Vec<f32> = (0..288).map(|i| fw[i * 5 + o]).collect();
            let (mn, mx) = col
                .iter()
                .fold((0.0f32, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
            let range = (mx - mn) * 1.1;
            let step = range / 255.0;
            lows.push((mn / step).round() * step);
            ranges.push(range);
        }
        let t = |v: Vec<f32>| {
            Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(v.clone(), [v.len()]),
                d,
            ))
        };
        Self {
            conv,
            fc,
            // Zero exactly on the grid (il = -128 steps), as the quantizers make it.
            act1: t(vec![-128.0 * 4.0 / 255.0, 4.0]),
            wscale: t(scales),
            act2: t(vec![0.0, 3.0]),
            fc_low: t(lows),
            fc_range: t(ranges),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let a1 = self.act1.val();
        let x = fq(
            x,
            a1.clone().narrow(0, 0, 1).reshape([1, 1, 1, 1]),
            a1.narrow(0, 1, 1).reshape([1, 1, 1, 1]),
            256,
        );
        let s = self.wscale.val().reshape([8, 1, 1, 1]);
        let w = fq(
            self.conv.weight.val(),
            s.clone().mul_scalar(-1.0),
            s.mul_scalar(2.0),
            255,
        );
        let b = self.conv.bias.as_ref().map(|b| b.val());
        let y = relu(conv2d(x, w, b, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)));
        let y: Tensor<2> = y.flatten(1, 3);
        let a2 = self.act2.val();
        let y = fq(
            y,
            a2.clone().narrow(0, 0, 1).reshape([1, 1]),
            a2.narrow(0, 1, 1).reshape([1, 1]),
            256,
        );
        let fw = fq(
            self.fc.weight.val(),
            self.fc_low.val().reshape([1, 5]),
            self.fc_range.val().reshape([1, 5]),
            256,
        );
        y.matmul(fw) + self.fc.bias.as_ref().unwrap().val().reshape([1, 5])
    }
}

#[test]
fn hand_written_fake_quantizers_are_recognised_and_run_in_openvino() {
    let m = HandQuant::new();
    let forward = |m: &HandQuant, x| m.forward(x);
    // Graph level: four fake-quantizers, two of them on weights.
    let mut g = capture(&m, [2, 3, 8, 8], forward, &CaptureOptions::default()).unwrap();
    let report = prepare(&mut g).unwrap();
    let weights = report.fake_quantizers.iter().filter(|f| f.weight).count();
    assert_eq!(
        (report.fake_quantizers.len(), weights),
        (4, 2),
        "{:?}",
        g.op_histogram()
    );
    assert!(!g
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::Round | Op::Clamp { .. })));
    // IR level: an i8 conv weight (symmetric) and a u8 fc weight with a zero point.
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("hand.xml");
    let r = export(&m, [2, 3, 8, 8], forward, &xml, &ExportOptions::default()).unwrap();
    assert_eq!((r.activation_quantizers, r.quantized_weights), (2, 2));
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(text.contains(r#"element_type="i8""#) && text.contains(r#"element_type="u8""#));
    assert!(text.contains("subtract_zero_point"));
    // Numbers: OpenVINO (INT8 kernels) against Burn's fake-quantized forward.
    let input = data(&[6, 3, 8, 8], 3);
    let reference = burn_forward(&m, &input, &forward);
    let c = compare(&reference, &ov_forward(&xml, &input), 5);
    println!("hand-quantized: {c:?}");
    // OpenVINO accumulates the INT8 products exactly where Burn sums f32 products, so a value
    // that lands within float error of a rounding boundary of the second quantizer may take the
    // neighbouring level: a few such flips (one level = 3/255 times an fc weight) are expected.
    assert!(c.max_rel_diff <= 1e-2, "{c:?}");
    assert_eq!(c.top1_agreement, 1.0);
    // Runtime level: the convolution (symmetric i8 weights) runs on an INT8 kernel. OpenVINO
    // 2026.4's CPU plugin treats u8 weights with a zero point on a FullyConnected as compressed
    // weights (decompressed, bf16/f32 kernel), so the asymmetric fc is only checked for numbers.
    let layers = runtime_compute_layers(&xml, "2,3,8,8");
    assert_eq!(layers.len(), 2, "{layers:?}");
    let conv = layers
        .iter()
        .find(|l| l[1] == "Convolution")
        .expect("a convolution");
    assert!(is_int8(conv), "{conv:?}");
}

/// The Convolution / MatMul / FullyConnected layers of the runtime model (OpenVINO picks its
/// kernels at compile time): `(name, layerType, runtimePrecision, primitiveType)`.
fn runtime_compute_layers(xml: &Path, shape: &str) -> Vec<[String; 4]> {
    let answer = ov_check(&["runtime", "--xml", xml.to_str().unwrap(), "--shape", shape]);
    let mut out = Vec::new();
    for l in answer["layers"].as_array().unwrap() {
        let field = |k: &str| l[k].as_str().unwrap_or("").to_string();
        let kind = field("layerType");
        if matches!(
            kind.as_str(),
            "Convolution" | "MatMul" | "FullyConnected" | "GroupConvolution"
        ) {
            println!(
                "  {kind:<16} {:<48} {:<4} {}",
                field("name"),
                field("runtimePrecision"),
                field("primitiveType")
            );
            out.push([
                field("name"),
                kind,
                field("runtimePrecision"),
                field("primitiveType"),
            ]);
        }
    }
    out
}

fn is_int8(layer: &[String; 4]) -> bool {
    matches!(layer[2].as_str(), "u8" | "i8") && layer[3].to_lowercase().ends_with("i8")
}

/// Asserts every Convolution / MatMul / FullyConnected of the runtime model runs on INT8
/// kernels, and that there are `expected` of them.
fn assert_int8_layers(xml: &Path, shape: &str, expected: usize) {
    let layers = runtime_compute_layers(xml, shape);
    assert_eq!(layers.len(), expected, "{layers:?}");
    for l in &layers {
        assert!(
            is_int8(l),
            "layer {} ({}) runs {}/{}, not INT8",
            l[0],
            l[1],
            l[2],
            l[3]
        );
    }
}

fn mnist() -> Mnist {
    Mnist::load(&burn_compress_recipes::mnist::default_dir()).expect("MNIST-10k in data/mnist-10k")
}

/// The reference CNN quantized with burn-compress-quant (BN folded, ranges from 300 samples).
fn quantized_reference_cnn(data: &Mnist) -> (ReferenceCnn, ReferenceCnn) {
    let fp32 = reference_cnn(4).fold_batch_norms().unwrap();
    let calib = data.train.take(300);
    let batches: Vec<Tensor<4>> = calib
        .batch_indices(100, None)
        .iter()
        .map(|i| calib.batch(i, &dev()).0)
        .collect();
    let qat = burn_compress::quantize(fp32.valid())
        .init_ranges(RangeInit::MeanMinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    (fp32, qat)
}

/// Export of a quantized model; returns the xml path and the agreement over the test split.
pub fn qat_agreement(
    model: &ReferenceCnn,
    xml: &Path,
    test: &burn_compress_recipes::MnistSplit,
) -> burn_compress::openvino::Comparison {
    let mut runtime = Runtime::new().unwrap();
    let mut compiled = runtime.compile(xml, Precision::F32).unwrap();
    let (mut reference, mut actual) = (Vec::new(), Vec::new());
    for indices in test.batch_indices(250, None) {
        let (x, _) = test.batch(&indices, &dev());
        let input = x.to_data();
        reference.extend(model.forward(x).into_data().try_to_vec::<f32>().unwrap());
        actual.extend(compiled.infer(&input).unwrap().try_to_vec::<f32>().unwrap());
    }
    compare(&reference, &actual, 10)
}

#[test]
fn qat_reference_cnn_exports_to_int8() {
    let data = mnist();
    let (fp32, qat) = quantized_reference_cnn(&data);
    let dir = tempfile::tempdir().unwrap();
    let fp32_xml = dir.path().join("fp32.xml");
    let int8_xml = dir.path().join("int8.xml");
    let forward = |m: &ReferenceCnn, x| m.forward(x);
    let f = export(
        &fp32,
        [1, 1, 28, 28],
        forward,
        &fp32_xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let q = export(
        &qat,
        [1, 1, 28, 28],
        forward,
        &int8_xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (q.activation_quantizers, q.quantized_weights),
        (4, 4),
        "{q:?}"
    );
    let ratio = q.bin_bytes as f64 / f.bin_bytes as f64;
    println!(
        "bin: fp32 {} B, int8 {} B, ratio {ratio:.3}",
        f.bin_bytes, q.bin_bytes
    );
    assert!(ratio <= 0.3, "INT8 .bin is {ratio:.3} of the FP32 .bin");
    let c = qat_agreement(&qat, &int8_xml, &data.test);
    println!(
        "QAT reference CNN vs OpenVINO INT8 on {} MNIST test images: top-1 agreement {:.4}, max logit diff {:.4}",
        c.rows, c.top1_agreement, c.max_abs_diff
    );
    assert_eq!(c.rows, data.test.len());
    assert!(c.top1_agreement >= 0.999, "{c:?}");
    assert_int8_layers(&int8_xml, "1,1,28,28", 4);
}

#[derive(Module, Debug)]
struct QuantMix {
    conv1d: burn_compress::quant::QConv1d,
    depthwise: burn_compress::quant::QConv2d,
    pointwise: burn_compress::quant::QConv2d,
    token: burn_compress::quant::QLinear,
}

impl QuantMix {
    fn new() -> Self {
        dev().seed(31);
        let d = &dev();
        Self {
            conv1d: burn_compress::quant::QConv1d::new(
                Conv1dConfig::new(8, 8, 3)
                    .with_padding(PaddingConfig1d::Explicit(1, 1))
                    .init(d),
            ),
            depthwise: burn_compress::quant::QConv2d::new(
                Conv2dConfig::new([8, 8], [3, 3])
                    .with_groups(8)
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d),
            ),
            pointwise: burn_compress::quant::QConv2d::new(
                Conv2dConfig::new([8, 16], [1, 1]).init(d),
            ),
            token: burn_compress::quant::QLinear::new(LinearConfig::new(16, 12).init(d)),
        }
    }

    /// `[b, 8, 6, 6]` -> Conv1d over rows, depthwise + pointwise conv, then a linear layer on the
    /// 3-D `[b, 36, 16]` token view.
    fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = x.dims();
        let rows: Tensor<3> = x.reshape([b, c, h * w]);
        let x = relu(self.conv1d.forward(rows)).reshape([b, c, h, w]);
        let x = relu(self.pointwise.forward(relu(self.depthwise.forward(x))));
        let tokens = x.flatten::<3>(2, 3).swap_dims(1, 2);
        self.token.forward(tokens)
    }
}

#[test]
fn quantized_conv1d_depthwise_and_3d_linear_run_in_int8() {
    let m = QuantMix::new();
    let batches: Vec<Tensor<4>> = (0..3)
        .map(|k| Tensor::from_data(data(&[8, 8, 6, 6], 40 + k), &dev()))
        .collect();
    let q = burn_compress::quantize(m)
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    let forward = |m: &QuantMix, x| m.forward(x);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("mix.xml");
    let r = export(&q, [2, 8, 6, 6], forward, &xml, &ExportOptions::default()).unwrap();
    assert_eq!(
        (r.activation_quantizers, r.quantized_weights),
        (4, 4),
        "{r:?}"
    );
    let input = data(&[4, 8, 6, 6], 77);
    let reference = burn_forward(&q, &input, &forward);
    let c = compare(&reference, &ov_forward(&xml, &input), 12);
    println!("quantized mix: {c:?}");
    assert!(c.max_rel_diff <= 2e-2, "{c:?}");
    assert!(c.top1_agreement >= 0.95, "{c:?}");
    let layers = runtime_compute_layers(&xml, "2,8,6,6");
    assert!(layers.len() >= 4, "{layers:?}");
    for l in &layers {
        assert!(
            is_int8(l),
            "layer {} ({}) runs {}/{}, not INT8",
            l[0],
            l[1],
            l[2],
            l[3]
        );
    }
}
