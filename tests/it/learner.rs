//! burn-train's `Learner` driving a compressed model (`burn_compress_train::Compressed`): an
//! NNCF-style config (magnitude sparsity to 50 % per optimizer step + INT8) applied to the
//! trained reference CNN, fine-tuned one epoch (4,000 images) on one device and on two devices (flex and
//! ndarray, burn-train's multi-device data-parallel strategy). Every replica's compression
//! state and parameters are compared bit for bit at every step, and the two runs' accuracies
//! must agree within 0.5 points.

use std::path::Path;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use burn::train::renderer::CliMetricsRenderer;
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, MultiDeviceOptim, SupervisedTraining, TrainOutput,
    TrainStep,
};
use burn_compress::prelude::*;
use burn_compress_recipes::{accuracy, mnist_loader, Mnist, ReferenceCnn};
use burn_compress_train::Compressed;

use crate::common::{mnist, trained_fp32};

const BATCH: usize = 64;
/// Training images per run (half the train split keeps the two-device run short).
const TRAIN_IMAGES: usize = 4000;

/// `(device, digest)` of every replica's model at every training step, in order.
static REPLICAS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Passes everything to `inner`, recording each replica's state as it starts a step.
#[derive(Module, Debug)]
struct Probe<M> {
    inner: M,
}

impl TrainStep for Probe<Compressed<ReferenceCnn>> {
    type Input = <ReferenceCnn as TrainStep>::Input;
    type Output = <ReferenceCnn as TrainStep>::Output;

    fn step(&self, item: Self::Input) -> TrainOutput<Self::Output> {
        let device = format!("{:?}", self.inner.devices()[0]);
        REPLICAS.lock().unwrap().push((device, digest(&self.inner)));
        TrainStep::step(&self.inner, item)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        Probe {
            inner: self.inner.optimize(optim, lr, grads),
        }
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        Probe {
            inner: self.inner.optimize_multi(optim, lr, grads),
        }
    }
}

impl InferenceStep for Probe<Compressed<ReferenceCnn>> {
    type Input = <ReferenceCnn as InferenceStep>::Input;
    type Output = <ReferenceCnn as InferenceStep>::Output;

    fn step(&self, item: Self::Input) -> Self::Output {
        InferenceStep::step(&self.inner, item)
    }
}

/// The controller's serialised state, the per-weight statistics (mask zeros) and an FNV-1a
/// hash of every parameter's bits: equal digests mean bit-identical compression state.
fn digest(model: &Compressed<ReferenceCnn>) -> String {
    struct Hasher(u64);
    impl ModuleVisitor for Hasher {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_to_vec::<f32>().unwrap();
            for value in values {
                for byte in value.to_bits().to_le_bytes() {
                    self.0 = (self.0 ^ byte as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
    }
    let mut hasher = Hasher(0xcbf2_9ce4_8422_2325);
    model.visit(&mut hasher);
    format!(
        "{} {:?} {:016x}",
        serde_json::to_string(model.compression()).unwrap(),
        model.statistics().model,
        hasher.0
    )
}

/// Fine-tunes the compressed trained CNN for one epoch on `devices` (the first is the main
/// one); returns the model and its test accuracy.
fn fine_tune(data: &Mnist, devices: Vec<Device>) -> (Compressed<ReferenceCnn>, f64) {
    let train = data.train.take(TRAIN_IMAGES);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        CompressionConfig::from_file(&root.join("configs/mnist_magnitude50_int8.json")).unwrap();
    // burn-train splits each batch of the epoch's loader across the devices.
    let steps_per_epoch = (train.len() / devices.len()).div_ceil(BATCH);
    let calibration = (0..5)
        .map(|i| {
            let indices: Vec<usize> = (i * BATCH..(i + 1) * BATCH).collect();
            train.batch(&indices, &devices[0]).0
        })
        .collect::<Vec<_>>();
    let (model, compression) = compress(trained_fp32().fork(&devices[0]))
        .config(&config)
        .steps_per_epoch(steps_per_epoch)
        .build(|m: &ReferenceCnn, x| m.forward(x), calibration)
        .unwrap();
    let model = Probe {
        inner: Compressed::new(model, compression),
    };

    let dir = tempfile::tempdir().unwrap();
    let strategy = match devices.len() {
        1 => ExecutionStrategy::single(devices[0].clone()),
        _ => ExecutionStrategy::multi(devices.clone(), MultiDeviceOptim::OptimMainDevice),
    };
    let result = SupervisedTraining::new(
        dir.path(),
        mnist_loader(&train, BATCH, Some(42)),
        mnist_loader(&data.test, 256, None),
    )
    .num_epochs(1)
    .with_training_strategy(strategy.into())
    .with_application_logger(None)
    .renderer(Box::new(CliMetricsRenderer::new()))
    .launch(Learner::new(model, AdamConfig::new().init(), 1e-4));

    let model = result.model.inner;
    let accuracy = accuracy(&model.model, &data.test, &Device::flex());
    (model, accuracy)
}

#[test]
fn learner_on_two_devices_keeps_replicas_identical_and_single_device_accuracy() {
    let data = mnist();
    let (single, single_accuracy) = fine_tune(&data, vec![Device::flex().autodiff()]);
    let stats = single.statistics();
    println!("one device: {single_accuracy:.2} %\n{stats}");
    assert!(single_accuracy >= 97.5, "{single_accuracy}");
    // The schedule reached its 50 % target over the epoch's optimizer steps.
    assert!(
        (stats.model.masked_sparsity() - 0.5).abs() < 0.01,
        "{stats}"
    );
    assert!(stats.model.weights.iter().all(|w| w.quantized), "{stats}");

    REPLICAS.lock().unwrap().clear();
    #[allow(deprecated)]
    let ndarray = Device::ndarray().autodiff();
    let (multi, multi_accuracy) = fine_tune(&data, vec![Device::flex().autodiff(), ndarray]);
    println!("two devices: {multi_accuracy:.2} %");
    assert!(
        (multi.statistics().model.masked_sparsity() - 0.5).abs() < 0.01,
        "{}",
        multi.statistics()
    );

    // Each step runs one replica per device, all forks of the same model.
    let replicas = std::mem::take(&mut *REPLICAS.lock().unwrap());
    let steps = TRAIN_IMAGES.div_ceil(2 * BATCH);
    assert_eq!(replicas.len(), 2 * steps);
    let mut distinct_states = std::collections::HashSet::new();
    for (step, pair) in replicas.chunks(2).enumerate() {
        assert_ne!(
            pair[0].0, pair[1].0,
            "step {step}: both replicas on one device"
        );
        assert_eq!(pair[0].1, pair[1].1, "step {step}: replicas differ");
        distinct_states.insert(pair[0].1.clone());
    }
    // The state moved every step (weights, levels, masks), so the comparison meant something.
    assert_eq!(distinct_states.len(), steps);

    assert!(
        (multi_accuracy - single_accuracy).abs() <= 0.5,
        "two devices {multi_accuracy:.2} % vs one device {single_accuracy:.2} %"
    );
}
