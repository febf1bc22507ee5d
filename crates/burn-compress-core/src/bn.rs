//! BatchNorm folding (Conv2d + BatchNorm -> Conv2d) and BatchNorm adaptation.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

use crate::error::{CoreError, Result};
use crate::transform::WeightTransform;

/// Folds `bn` into `conv`: `w' = w·γ/√(var+ε)` per output channel and
/// `b' = (b − mean)·γ/√(var+ε) + β`, so that in eval mode `conv'(x) = bn(conv(x))`.
///
/// Fold before compressing: a convolution whose weight already carries a transform (its
/// quantizer ranges or mask would no longer fit) is refused, with an error naming `path`.
pub fn fold_batch_norm(conv: Conv2d, bn: &BatchNorm, path: &str) -> Result<Conv2d> {
    if conv
        .weight
        .reparameterization::<WeightTransform>()
        .is_some()
    {
        return Err(CoreError::BatchNorm {
            path: path.to_string(),
            reason: "fold batch norms before attaching quantizers or masks".into(),
        });
    }
    let [out_channels, ..] = conv.weight.dims();
    let [features] = bn.gamma.dims();
    if features != out_channels {
        return Err(CoreError::BatchNorm {
            path: path.to_string(),
            reason: format!(
                "the batch norm has {features} features for {out_channels} output channels"
            ),
        });
    }
    let device = conv.weight.lazy_device();
    let factor: Tensor<1> = bn
        .gamma
        .val()
        .div(bn.running_var.value().add_scalar(bn.epsilon).sqrt());
    let weight = conv
        .weight
        .val()
        .mul(factor.clone().reshape([out_channels, 1, 1, 1]));
    let bias = conv
        .bias
        .as_ref()
        .map(|bias| bias.val())
        .unwrap_or_else(|| Tensor::zeros([out_channels], &device));
    let bias = bias
        .sub(bn.running_mean.value())
        .mul(factor)
        .add(bn.beta.val());
    Ok(Conv2d {
        weight: Param::from_tensor(weight.detach()),
        bias: Some(Param::from_tensor(bias.detach())),
        ..conv
    })
}

/// Re-estimates BatchNorm running statistics by running `forward` over `batches` in training
/// mode (no backward pass, no parameter update). The model must be on an autodiff device, where
/// Burn's BatchNorm updates its running mean and variance. Returns the number of batches run.
pub fn adapt_batch_norm<M: Module, B>(
    model: &M,
    batches: impl IntoIterator<Item = B>,
    mut forward: impl FnMut(&M, B),
) -> Result<usize> {
    if !model.devices().iter().all(|device| device.is_autodiff()) {
        return Err(CoreError::Calibration(
            "batch-norm adaptation needs the model on an autodiff device (`device.autodiff()`) \
             in training mode"
                .into(),
        ));
    }
    let mut count = 0;
    for batch in batches {
        forward(model, batch);
        count += 1;
    }
    if count == 0 {
        return Err(CoreError::Calibration(
            "the batch-norm adaptation set is empty".into(),
        ));
    }
    Ok(count)
}
