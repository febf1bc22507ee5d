//! [`WeightMask`]: the sparsity stage of a weight transform (a binary mask, optionally learned
//! from logits as in RB sparsity).

use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// How the weights a mask removes are trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskGradient {
    /// Removed weights get no gradient (`∂(w ⊙ m)/∂w = m`): they stay where they were.
    #[default]
    Zero,
    /// Straight-through: every weight gets the full gradient, so a removed weight can grow
    /// back when the mask is recomputed (SR-STE adds a decay on removed weights on top).
    StraightThrough,
}

/// Clamp of the uniform noise of RB sampling, as NNCF does (`u ∈ [eps, 1 − eps]`).
const NOISE_EPS: f32 = 1e-6;

/// A binary weight mask. `keep` (1 keeps a weight, 0 removes it) is what inference, export and
/// statistics use. With `logits` (RB sparsity) the mask is learned: while the logits require
/// gradients, training samples `ε = [σ(s + logit(u)) > ½]`, `u ~ U(0, 1)`, with a
/// straight-through threshold, and `keep` is refreshed from `[s > 0]` by the controller.
///
/// Both tensors are stored flattened (row-major) and reshaped to the weight at each use.
#[derive(Module, Debug)]
pub struct WeightMask {
    /// 1.0 keeps a weight, 0.0 removes it. Not trained.
    pub keep: Param<Tensor<1>>,
    /// Learned mask logits (RB sparsity), trained while they require gradients.
    pub logits: Option<Param<Tensor<1>>>,
    /// Gradient of removed weights under a fixed mask.
    #[module(skip)]
    pub gradient: MaskGradient,
}

impl WeightMask {
    /// A fixed mask from `keep` values (1.0 / 0.0).
    pub fn fixed(keep: Tensor<1>, gradient: MaskGradient) -> Self {
        Self {
            keep: Param::from_tensor(keep).set_require_grad(false),
            logits: None,
            gradient,
        }
    }

    /// A learned mask (RB sparsity) starting from `logits`; `keep` starts as `[logits > 0]`.
    pub fn learned(logits: Tensor<1>) -> Self {
        let keep = logits.clone().greater_elem(0.0).float();
        Self {
            keep: Param::from_tensor(keep).set_require_grad(false),
            logits: Some(Param::from_tensor(logits)),
            gradient: MaskGradient::Zero,
        }
    }

    /// Whether training samples the mask from its logits (learned and not frozen).
    pub fn is_learning(&self) -> bool {
        self.logits
            .as_ref()
            .is_some_and(|logits| logits.val().is_require_grad())
    }

    /// The deterministic learned mask `[σ(s) > ½]` with a straight-through gradient to the
    /// logits (RB's loss term), flattened; `None` for fixed masks.
    pub fn learned_keep(&self) -> Option<Tensor<1>> {
        let probability = burn::tensor::activation::sigmoid(self.logits.as_ref()?.val());
        Some(straight_through_threshold(probability))
    }

    /// `w ⊙ mask`. In training a learned mask is sampled; a fixed one passes gradients as
    /// [`MaskGradient`] says. In inference the chain is a plain multiplication by `keep`.
    pub fn apply<const D: usize>(&self, weight: Tensor<D>) -> Tensor<D> {
        let dims = weight.dims();
        if weight.is_autodiff() && self.is_learning() {
            let logits = self
                .logits
                .as_ref()
                .expect("learning masks have logits")
                .val();
            let noise = Tensor::<1>::random(
                logits.shape(),
                Distribution::Uniform(NOISE_EPS as f64, 1.0 - NOISE_EPS as f64),
                &logits.device(),
            );
            let noise_logit = noise.clone().div(noise.neg().add_scalar(1.0)).log();
            let sampled = straight_through_threshold(burn::tensor::activation::sigmoid(
                logits.add(noise_logit),
            ));
            return weight.mul(sampled.reshape(dims));
        }
        let keep = self.keep.val().reshape(dims);
        if !weight.is_autodiff() {
            return weight.mul(keep);
        }
        match self.gradient {
            MaskGradient::Zero => weight.mul(keep),
            MaskGradient::StraightThrough => {
                let removed = weight.clone().mul(keep).sub(weight.clone()).detach();
                weight.add(removed)
            }
        }
    }
}

/// `[p > ½]` in value, with the gradient of `p` (NNCF's `STThreshold`).
fn straight_through_threshold(probability: Tensor<1>) -> Tensor<1> {
    let hard = probability.clone().greater_elem(0.5).float();
    let correction = hard.sub(probability.clone()).detach();
    probability.add(correction)
}
