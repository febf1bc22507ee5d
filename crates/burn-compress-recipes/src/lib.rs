//! Ready recipes for burn-compress: the MNIST-10k dataset, the reference CNN, a training loop
//! with progress bars and hooks for compression methods, the same network as a burn-train model
//! (`learner`, behind the feature of that name), the compression recipes that `configs/` describe,
//! and the allocator training binaries install ([`TrainingAllocator`]).

#![warn(missing_docs)]

pub mod allocator;
pub mod checkpoint;
#[cfg(feature = "learner")]
pub mod learner;
pub mod mnist;
pub mod model;
pub mod recipe;
pub mod resnet;
pub mod train;

pub use allocator::{allocator_name, check_allocator_var, TrainingAllocator, ALLOCATOR_VAR};
#[cfg(feature = "learner")]
pub use learner::{mnist_loader, MnistBatch, MnistBatcher};
pub use mnist::{Mnist, MnistSplit};
pub use model::ReferenceCnn;
pub use recipe::{
    load_compressed, run_recipe, run_recipe_with, train_fp32, Recipe, RecipeModels, RecipeSummary,
    RunOptions,
};
pub use train::{accuracy, predict, Classifier, NoHook, StepHook, Trainer};
