//! Quantized export: fake-quantizers become FakeQuantize layers and integer weights, the IR
//! agrees with Burn's fake-quantized forward, and OpenVINO runs its Conv/MatMul on INT8 kernels.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use burn_compress::graph::{capture, prepare, CaptureOptions, Op};
use burn_compress::openvino::{compare, export, ExportOptions};
use burn_compress::quant::RangeInit;
use burn_compress_recipes::{Mnist, ReferenceCnn};

use crate::common::models::{reference_cnn, ResNet};
use crate::common::{
    assert_int8_compute, assert_int8_layers, burn_forward, calibration_batches, data, dev, is_int8,
    mnist, mnist_agreement, ov_forward, runtime_compute_layers, standalone_fake_quantize,
};

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
        // Half-range symmetric weights ([-64, 63] steps of s/63): exact on CPUs without VNNI.
        let w = fq(
            self.conv.weight.val(),
            s.clone().mul_scalar(-64.0 / 63.0),
            s.mul_scalar(127.0 / 63.0),
            128,
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
    assert_eq!(
        (r.activation_quantizers.len(), r.quantized_weights().len()),
        (2, 2)
    );
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

pub fn quantized_reference_cnn(data: &Mnist) -> (ReferenceCnn, ReferenceCnn) {
    let fp32 = reference_cnn(4).fold_batch_norms().unwrap();
    let batches = calibration_batches(&data.train, 300);
    let qat = burn_compress::quantize(fp32.valid())
        .init_ranges(RangeInit::MeanMinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    (fp32, qat)
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
    let q = burn_compress::export(
        &qat,
        [1, 1, 28, 28],
        forward,
        &int8_xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (q.activation_quantizers.len(), q.quantized_weights().len()),
        (4, 4),
        "{q:?}"
    );
    assert!(q.float_inputs.is_empty(), "{:?}", q.float_inputs);
    let ratio = q.bin_bytes as f64 / f.bin_bytes as f64;
    println!(
        "bin: fp32 {} B, int8 {} B, ratio {ratio:.3}",
        f.bin_bytes, q.bin_bytes
    );
    assert!(ratio <= 0.3, "INT8 .bin is {ratio:.3} of the FP32 .bin");
    let c = mnist_agreement(&qat, forward, &int8_xml, &data.test);
    println!(
        "QAT reference CNN vs OpenVINO INT8 on {} MNIST test images: top-1 agreement {:.4}, max logit diff {:.4}",
        c.rows, c.top1_agreement, c.max_abs_diff
    );
    assert_eq!(c.rows, data.test.len());
    assert!(c.top1_agreement >= 0.999, "{c:?}");
    assert_int8_layers(&int8_xml, "1,1,28,28", 4);
    // The quantizers after MaxPool and the flatten moved up to the ReLUs: OpenVINO fuses them
    // into the convolutions, as it does for NNCF's IR of the same network.
    let ours = standalone_fake_quantize(&int8_xml, "64,1,28,28");
    let nncf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nncf-reference-cnn/peer_int8.xml");
    let theirs = standalone_fake_quantize(&nncf, "64,1,28,28");
    println!("standalone FakeQuantize: ours {ours:?}, NNCF {theirs:?}");
    assert!(ours.len() <= theirs.len(), "ours {ours:?}, NNCF {theirs:?}");
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
    let r =
        burn_compress::export(&q, [2, 8, 6, 6], forward, &xml, &ExportOptions::default()).unwrap();
    assert_eq!(
        (r.activation_quantizers.len(), r.quantized_weights().len()),
        (4, 4),
        "{r:?}"
    );
    let input = data(&[4, 8, 6, 6], 77);
    let reference = burn_forward(&q, &input, &forward);
    let c = compare(&reference, &ov_forward(&xml, &input), 12);
    println!("quantized mix: {c:?}");
    assert!(c.max_rel_diff <= 2e-2, "{c:?}");
    assert!(c.top1_agreement >= 0.95, "{c:?}");
    assert_int8_compute(&xml, "2,8,6,6", 4, true);
}

#[test]
fn layers_whose_input_has_no_quantizer_are_reported_as_running_in_floating_point() {
    let mnist_data = mnist();
    let calib = mnist_data.train.take(100);
    let batches: Vec<Tensor<4>> = vec![calib.batch(&(0..100).collect::<Vec<_>>(), &dev()).0];
    let forward = |m: &ReferenceCnn, x| m.forward(x);
    let fp32 = reference_cnn(12).fold_batch_norms().unwrap();
    let qat = burn_compress::quantize(fp32)
        .ignore("fc1.input_quant")
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("partial.xml");
    let report = burn_compress::export(
        &qat,
        [1, 1, 28, 28],
        forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let layers: Vec<&str> = report
        .float_inputs
        .iter()
        .map(|f| f.layer.as_str())
        .collect();
    assert_eq!(layers, ["fc1.linear"], "{:?}", report.float_inputs);
    assert!(report.float_input_advice()[0].contains("wrap the layer"));
    // OpenVINO agrees: that one layer runs in floating point, the other three in INT8.
    let compute = runtime_compute_layers(&xml, "1,1,28,28");
    let float: Vec<_> = compute.iter().filter(|l| !is_int8(l)).collect();
    assert_eq!((compute.len(), float.len()), (4, 1), "{compute:?}");

    // A model of stock layers: every quantized layer is reported, and none runs in INT8.
    let stock = burn_compress::quantize(ResNet::new())
        .init_ranges(
            RangeInit::MinMax,
            vec![Tensor::from_data(data(&[2, 3, 16, 16], 13), &dev())],
            |m, x| {
                m.forward(x);
            },
        )
        .unwrap();
    let xml = dir.path().join("stock.xml");
    let report = burn_compress::export(
        &stock,
        [1, 3, 16, 16],
        |m: &ResNet, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let compute = runtime_compute_layers(&xml, "1,3,16,16");
    assert_eq!(report.float_inputs.len(), report.quantized_weights().len());
    assert_eq!(report.float_inputs.len(), compute.len());
    assert!(compute.iter().all(|l| !is_int8(l)), "{compute:?}");
}
