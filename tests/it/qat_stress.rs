//! QAT under aggressive learning rates: whatever Adam does to the quantizer parameters at 1e-2
//! and 1e-1, ranges stay valid, every weight is exported as int8, every Conv/MatMul runs on
//! OpenVINO's INT8 kernels, and the IR agrees with Burn on >= 99.9 % of test predictions. On flex
//! and ndarray, with symmetric and asymmetric activation quantizers.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::LinearConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_compress::openvino::{compare, ExportOptions, Precision, Runtime};
use burn_compress::quant::{
    quantizer_sites, QConv2d, QLinear, QuantMode, QuantSpec, QuantizerKind, RangeInit,
};
use burn_compress_recipes::{Mnist, MnistSplit};

use crate::common::{assert_int8_layers, mnist};

/// A small convolutional network: two strided 3x3 convolutions and a classifier.
#[derive(Module, Debug)]
struct SmallCnn {
    conv1: QConv2d,
    conv2: QConv2d,
    fc: QLinear,
}

impl SmallCnn {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            QConv2d::new(
                Conv2dConfig::new([i, o], [3, 3])
                    .with_stride([2, 2])
                    .init(device),
            )
        };
        Self {
            conv1: conv(1, 8),
            conv2: conv(8, 16),
            fc: QLinear::new(LinearConfig::new(16 * 6 * 6, 10).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv2.forward(relu(self.conv1.forward(x))));
        self.fc.forward(x.flatten::<2>(1, 3))
    }
}

/// A small multilayer perceptron on flattened images.
#[derive(Module, Debug)]
struct SmallMlp {
    fc1: QLinear,
    fc2: QLinear,
}

impl SmallMlp {
    fn new(device: &Device) -> Self {
        Self {
            fc1: QLinear::new(LinearConfig::new(784, 64).init(device)),
            fc2: QLinear::new(LinearConfig::new(64, 10).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc2
            .forward(relu(self.fc1.forward(x.flatten::<2>(1, 3))))
    }
}

const STEPS: usize = 25;
const BATCH: usize = 64;

/// Attaches quantizers (activations in `mode`), trains `STEPS` Adam steps at `learning_rate`
/// on `device`, and returns the trained model.
fn stressed<M: Module>(
    model: M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
    mode: QuantMode,
    learning_rate: f64,
    train: &MnistSplit,
    device: &Device,
) -> M {
    let calibration = train.take(256);
    let batches: Vec<Tensor<4>> = calibration
        .batch_indices(128, None)
        .iter()
        .map(|i| calibration.batch(i, device).0)
        .collect();
    let mut model = burn_compress::quantize(model)
        .activations(QuantSpec::int8_activations().with_mode(mode))
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            forward(m, x);
        })
        .unwrap();
    let mut optimizer = AdamConfig::new().init();
    for (step, indices) in train
        .batch_indices(BATCH, Some(7))
        .into_iter()
        .take(STEPS)
        .enumerate()
    {
        let (images, labels) = train.batch(&indices, device);
        let loss = CrossEntropyLoss::new(None, device).forward(forward(&model, images), labels);
        let value = loss.clone().into_scalar::<f32>();
        assert!(value.is_finite(), "step {step}: loss {value}");
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(learning_rate, model, grads);
    }
    model
}

/// Exports `model` through the checked export and asserts the three properties.
fn assert_exports_to_int8<M: Module>(
    model: &M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
    compute_layers: usize,
    test: &MnistSplit,
    what: &str,
) {
    let model = model.valid().to_device(&Device::flex());
    let sites = quantizer_sites(&model);
    let weights = sites
        .iter()
        .filter(|s| s.attached && matches!(s.kind, QuantizerKind::Weight { .. }))
        .count();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("stressed.xml");
    let report = burn_compress::export(
        &model,
        [1, 1, 28, 28],
        &forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{what}: export failed: {e}"));
    assert_eq!(
        report.quantized_weights().len(),
        weights,
        "{what}: {report:?}"
    );
    assert!(
        report.weights.len() == weights,
        "{what}: every Conv/MatMul weight is int8: {:?}",
        report.weights
    );
    assert_int8_layers(&xml, "1,1,28,28", compute_layers);

    let mut runtime = Runtime::new().unwrap();
    let mut compiled = runtime.compile(&xml, Precision::F32).unwrap();
    let (mut reference, mut actual) = (Vec::new(), Vec::new());
    for indices in test.batch_indices(500, None) {
        let (x, _) = test.batch(&indices, &Device::flex());
        actual.extend(compiled.infer(&x.to_data()).unwrap().iter::<f32>());
        reference.extend(forward(&model, x).into_data().iter::<f32>());
    }
    let c = compare(&reference, &actual, 10);
    println!(
        "{what}: top-1 agreement {:.4}, max logit difference {:.4}",
        c.top1_agreement, c.max_abs_diff
    );
    assert!(c.top1_agreement >= 0.999, "{what}: {c:?}");
}

fn stress_on(device: &Device, data: &Mnist) {
    let ad = device.clone().autodiff();
    for mode in [QuantMode::Symmetric, QuantMode::Asymmetric] {
        for learning_rate in [1e-2, 1e-1] {
            let what = format!("{device:?} {mode:?} lr {learning_rate}");
            ad.seed(3);
            let cnn_forward = |m: &SmallCnn, x| m.forward(x);
            let cnn = stressed(
                SmallCnn::new(&ad),
                cnn_forward,
                mode,
                learning_rate,
                &data.train,
                &ad,
            );
            assert_exports_to_int8(&cnn, cnn_forward, 3, &data.test, &format!("cnn {what}"));
            let mlp_forward = |m: &SmallMlp, x| m.forward(x);
            let mlp = stressed(
                SmallMlp::new(&ad),
                mlp_forward,
                mode,
                learning_rate,
                &data.train,
                &ad,
            );
            assert_exports_to_int8(&mlp, mlp_forward, 2, &data.test, &format!("mlp {what}"));
        }
    }
}

#[test]
fn aggressive_qat_still_exports_every_weight_as_int8_on_flex() {
    stress_on(&Device::flex(), &mnist());
}

#[test]
#[allow(deprecated)]
fn aggressive_qat_still_exports_every_weight_as_int8_on_ndarray() {
    stress_on(&Device::ndarray(), &mnist());
}
