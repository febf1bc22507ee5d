//! The checked export (`burn_compress::export`): ranges that training broke are refused by
//! module path, negative scales still export as int8, and a quantizer the IR would lose is an
//! error, never a silent floating-point fallback. Nothing is written on error.

use std::path::Path;

use burn::tensor::Tensor;
use burn_compress::openvino::{compare, ExportOptions};
use burn_compress::quant::RangeInit;
use burn_compress_recipes::ReferenceCnn;

use crate::common::models::reference_cnn;
use crate::common::{burn_forward, data, dev, ov_forward, set_param};

/// The reference CNN (BatchNorm folded) with quantizers from two random batches.
fn quantized() -> ReferenceCnn {
    let model = reference_cnn(8).fold_batch_norms().unwrap();
    let batches: Vec<Tensor<4>> = (0..2)
        .map(|k| Tensor::from_data(data(&[16, 1, 28, 28], 60 + k), &dev()))
        .collect();
    burn_compress::quantize(model)
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap()
}

fn forward(m: &ReferenceCnn, x: Tensor<4>) -> Tensor<2> {
    m.forward(x)
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn a_range_that_became_nan_is_refused_naming_the_layer() {
    for (param, layer) in [
        ("fc1.linear.weight.compress.quantizer.scale", "fc1.linear"),
        (
            "conv2.input_quant.slot.fake_quant.scale",
            "conv2.input_quant",
        ),
    ] {
        let broken = set_param(quantized(), param, |mut v| {
            v[0] = f32::NAN;
            v
        });
        let dir = tempfile::tempdir().unwrap();
        let error = burn_compress::export(
            &broken,
            [1, 1, 28, 28],
            forward,
            dir.path().join("m.xml"),
            &ExportOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(&format!("`{layer}`")), "{error}");
        assert!(error.contains("NaN"), "{error}");
        assert_eq!(files_in(dir.path()), 0, "nothing written");
    }
}

#[test]
fn negative_scales_export_as_int8_and_compute_what_burn_computes() {
    // An optimizer can push a scale through zero; NNCF (and we) use |s| + eps.
    let model = set_param(
        quantized(),
        "conv2.conv.weight.compress.quantizer.scale",
        |v| v.iter().map(|s| -s).collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("m.xml");
    let report = burn_compress::export(
        &model,
        [1, 1, 28, 28],
        forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.quantized_weights().len(), 4, "{report:?}");
    assert_eq!(report.activation_quantizers.len(), 4, "{report:?}");
    let input = data(&[8, 1, 28, 28], 5);
    let c = compare(
        &burn_forward(&model, &input, &forward),
        &ov_forward(&xml, &input),
        10,
    );
    assert!(c.max_rel_diff <= 2e-2 && c.top1_agreement == 1.0, "{c:?}");
}

#[test]
fn a_quantizer_missing_from_the_exported_forward_is_an_error() {
    let model = quantized();
    let dir = tempfile::tempdir().unwrap();
    // A forward that never reaches fc2 loses its quantizers.
    let error = burn_compress::export(
        &model,
        [1, 1, 28, 28],
        |m: &ReferenceCnn, x: Tensor<4>| {
            let x: Tensor<2> = x.flatten(1, 3);
            m.fc2.forward(x.narrow(1, 0, 128))
        },
        dir.path().join("m.xml"),
        &ExportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("conv1.conv.weight"), "{error}");
    assert_eq!(files_in(dir.path()), 0, "nothing written");
}
