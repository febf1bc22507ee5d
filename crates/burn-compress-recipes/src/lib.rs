//! Ready recipes for burn-compress: the MNIST-10k dataset, the reference CNN, a training loop
//! with progress bars and hooks for compression methods, and the compression recipes that
//! `configs/` describe.

pub mod checkpoint;
pub mod mnist;
pub mod model;
pub mod recipe;
pub mod resnet;
pub mod train;

pub use mnist::{Mnist, MnistSplit};
pub use model::ReferenceCnn;
pub use recipe::{
    load_compressed, run_recipe, run_recipe_with, train_fp32, Recipe, RecipeModels, RecipeSummary,
    RunOptions,
};
pub use train::{accuracy, predict, Classifier, NoHook, StepHook, Trainer};
