//! Ready recipes for burn-compress: the MNIST-10k dataset, the reference CNN, a plain training
//! loop with progress bars, and the reference QAT recipe.

pub mod mnist;
pub mod model;
pub mod recipe;
pub mod train;

pub use mnist::{Mnist, MnistSplit};
pub use model::ReferenceCnn;
pub use recipe::{run_qat, QatRecipe, RecipeModels, RecipeSummary};
pub use train::{accuracy, predict, train_epoch, train_step, Classifier};
