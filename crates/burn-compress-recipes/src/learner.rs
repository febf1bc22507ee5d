//! The reference CNN as a burn-train model: MNIST batches for burn-train's data loaders, and
//! `TrainStep` / `InferenceStep` (cross-entropy classification), so that a `Learner` trains it
//! and burn-train's accuracy and loss metrics read its output.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use crate::mnist::MnistSplit;
use crate::model::ReferenceCnn;

/// Images `[n, 1, 28, 28]` and their labels `[n]`.
#[derive(Clone, Debug)]
pub struct MnistBatch {
    /// Normalised images.
    pub images: Tensor<4>,
    /// Labels 0-9.
    pub targets: Tensor<1, Int>,
}

/// Makes [`MnistBatch`]es from image indices into one split.
#[derive(Clone, Debug)]
pub struct MnistBatcher {
    split: Arc<MnistSplit>,
}

impl Batcher<usize, MnistBatch> for MnistBatcher {
    fn batch(&self, indices: Vec<usize>, device: &Device) -> MnistBatch {
        let (images, targets) = self.split.batch(&indices, device);
        MnistBatch { images, targets }
    }
}

/// A burn-train data loader over `split` in batches of `batch_size`, shuffled each epoch from
/// `shuffle_seed` when given.
pub fn mnist_loader(
    split: &MnistSplit,
    batch_size: usize,
    shuffle_seed: Option<u64>,
) -> Arc<dyn DataLoader<MnistBatch>> {
    let batcher = MnistBatcher {
        split: Arc::new(split.clone()),
    };
    let builder = DataLoaderBuilder::new(batcher).batch_size(batch_size);
    let builder = match shuffle_seed {
        Some(seed) => builder.shuffle(seed),
        None => builder,
    };
    builder.build(InMemDataset::new((0..split.len()).collect()))
}

impl ReferenceCnn {
    /// Logits, cross-entropy loss and targets of one batch.
    pub fn classify(&self, batch: MnistBatch) -> ClassificationOutput {
        let output = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, output, batch.targets)
    }
}

impl TrainStep for ReferenceCnn {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.classify(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for ReferenceCnn {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        self.classify(batch)
    }
}
