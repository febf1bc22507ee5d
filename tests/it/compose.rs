//! Sparsity and quantization compose on a user's model in either order: both stages sit in
//! each weight's one transform, masked weights are exactly zero through fake-quantize, and the
//! export has int8 weights with those zeros.

use burn::tensor::Tensor;
use burn_compress::openvino::ExportOptions;
use burn_compress::prelude::*;
use burn_compress::shared::site::host_values;
use burn_compress_recipes::ReferenceCnn;

use crate::common::{data, dev, ir_int8_weight};

fn calibration() -> Vec<Tensor<4>> {
    vec![Tensor::from_data(data(&[8, 1, 28, 28], 3), &dev())]
}

fn quantized(model: ReferenceCnn) -> ReferenceCnn {
    quantize(model)
        .init_ranges(RangeInit::MinMax, calibration(), |m, x| {
            m.forward(x);
        })
        .unwrap()
}

fn sparse(model: ReferenceCnn) -> ReferenceCnn {
    sparsify(model)
        .magnitude(Sparsity::target(0.5))
        .build()
        .unwrap()
        .0
}

#[test]
fn sparsity_and_quantization_compose_in_either_order() {
    let fp32 = || {
        dev().seed(12);
        ReferenceCnn::new(&dev()).fold_batch_norms().unwrap()
    };
    for (order, model) in [
        ("sparsify, then quantize", quantized(sparse(fp32()))),
        ("quantize, then sparsify", sparse(quantized(fp32()))),
    ] {
        let transform = WeightTransform::of(&model.fc1.linear.weight).unwrap();
        assert!(
            transform.mask.is_some() && transform.quantizer.is_some(),
            "{order}"
        );
        let stats = ModelStats::of(&model);
        assert!(
            (stats.masked_sparsity() - 0.5).abs() < 1e-3,
            "{order}: {stats}"
        );
        // Masked weights are exactly zero after fake-quantize.
        let keep = host_values(transform.mask.get().unwrap().keep.val());
        let effective = host_values(model.fc1.linear.weight.val());
        for (k, w) in keep.iter().zip(&effective) {
            if *k == 0.0 {
                assert_eq!(*w, 0.0, "{order}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("m.xml");
        let report = burn_compress::export(
            &model,
            [1, 1, 28, 28],
            |m: &ReferenceCnn, x: Tensor<4>| m.forward(x),
            &xml,
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(report.quantized_weights().len(), 4, "{order}");
        // fc1's weight [1600, 128] is written transposed: element (r, c) at c * 1600 + r.
        let (_, ints) = ir_int8_weight(&xml, "fc1.linear.weight");
        for (i, k) in keep.iter().enumerate() {
            let (r, c) = (i / 128, i % 128);
            if *k == 0.0 {
                assert_eq!(ints[c * 1600 + r], 0, "{order}: element {i}");
            }
        }
    }
}
