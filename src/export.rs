//! Export of a compressed model: the model's quantizers are checked, then the OpenVINO IR is
//! written only if every one of them is in it as a quantizer.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress_openvino::{ExpectedQuantizers, ExportOptions, ExportReport};
use burn_compress_quant::{check_quantizers, quantizer_sites, QuantizerKind};

use crate::Error;

/// Exports `model` to an OpenVINO IR at `path` (`.xml`, with the `.bin` next to it), like
/// [`burn_compress_openvino::export`], and guarantees that every quantizer attached to the model
/// is in the IR: each quantized weight as an 8-bit integer constant, each activation quantizer
/// as a `FakeQuantize` layer. A quantizer whose range became NaN or infinite, or one the IR
/// would lose, is an error naming it; nothing is written then.
pub fn export<M, const D: usize, const O: usize>(
    model: &M,
    input_shape: [usize; D],
    forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportReport, Error>
where
    M: Module,
{
    check_quantizers(model)?;
    let mut expect = ExpectedQuantizers::default();
    for site in quantizer_sites(model).into_iter().filter(|s| s.attached) {
        match site.kind {
            QuantizerKind::Weight { .. } => expect.integer_weights.push(site.param_path),
            QuantizerKind::Activation => expect.activation_quantizers.push(site.param_path),
        }
    }
    let options = ExportOptions {
        expect,
        ..options.clone()
    };
    Ok(burn_compress_openvino::export(
        model,
        input_shape,
        forward,
        path,
        &options,
    )?)
}
