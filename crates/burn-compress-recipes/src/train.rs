//! A plain Burn training loop and evaluation for image classifiers, with progress bars.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};

use crate::mnist::MnistSplit;

/// A model that maps `[n, 1, 28, 28]` images to `[n, classes]` logits.
pub trait Classifier: Module {
    /// The logits.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
}

impl Classifier for crate::model::ReferenceCnn {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

/// A progress bar for `len` steps labelled `label` (hidden when not on a terminal).
pub fn progress_bar(len: usize, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// One training step: forward, cross-entropy, backward, optimizer update. Returns the loss.
pub fn train_step<M: Classifier>(
    model: M,
    optimizer: &mut ModuleOptimizer,
    learning_rate: f64,
    images: Tensor<4>,
    labels: Tensor<1, burn::tensor::Int>,
) -> (M, f32) {
    let device = images.device();
    let logits = model.logits(images);
    let loss = CrossEntropyLoss::new(None, &device).forward(logits, labels);
    let value = loss.clone().into_scalar::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optimizer.step(learning_rate, model, grads), value)
}

/// One epoch over `data` in shuffled batches. Returns the model and the mean loss.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch<M: Classifier>(
    mut model: M,
    optimizer: &mut ModuleOptimizer,
    learning_rate: f64,
    data: &MnistSplit,
    batch_size: usize,
    seed: u64,
    device: &Device,
    label: &str,
) -> (M, f32) {
    let batches = data.batch_indices(batch_size, Some(seed));
    let bar = progress_bar(batches.len(), label);
    let mut total = 0.0;
    for (step, indices) in batches.iter().enumerate() {
        let (images, labels) = data.batch(indices, device);
        let loss;
        (model, loss) = train_step(model, optimizer, learning_rate, images, labels);
        total += loss;
        bar.set_message(format!("loss {:.4}", total / (step + 1) as f32));
        bar.inc(1);
    }
    bar.finish();
    (model, total / batches.len().max(1) as f32)
}

/// Logits for every image of `data`, row-major `[len, classes]`, computed in eval mode.
pub fn predict<M: Classifier>(
    model: &M,
    data: &MnistSplit,
    batch_size: usize,
    device: &Device,
) -> Vec<f32> {
    let mut logits = Vec::new();
    for indices in data.batch_indices(batch_size, None) {
        let (images, _) = data.batch(&indices, device);
        let out = model.logits(images).into_data().convert::<f32>();
        logits.extend_from_slice(out.as_slice::<f32>().expect("f32 logits"));
    }
    logits
}

/// Index of the largest value of each row of `classes` values.
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    let rows = logits.len() / classes.max(1);
    let logits = TensorData::new(logits.to_vec(), [rows, classes]);
    Tensor::<2>::from_data(logits, &Device::flex())
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|index| index as usize)
        .collect()
}

/// Top-1 accuracy in percent of `[n, 10]` logits against `labels`.
pub fn top1(logits: &[f32], labels: &[u8]) -> f64 {
    let correct = argmax_rows(logits, 10)
        .iter()
        .zip(labels)
        .filter(|(p, &l)| **p == l as usize)
        .count();
    100.0 * correct as f64 / labels.len().max(1) as f64
}

/// Top-1 accuracy in percent of `model` (evaluated in eval mode) on `data`.
pub fn accuracy<M: Classifier>(model: &M, data: &MnistSplit, device: &Device) -> f64 {
    top1(&predict(model, data, 256, device), &data.labels)
}
