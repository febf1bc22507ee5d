//! Bad input: each error names the setting or layer, and nothing is attached.

use burn::tensor::Device;
use burn_compress_core::{LevelSchedule, Schedule, WeightTransform};
use burn_compress_sparsity::{sparsify, NmSparsity, Sparsity, SparsityError};

use crate::model::Small;

#[test]
fn a_level_outside_zero_to_one_names_the_setting_and_layers() {
    let device = Device::flex();
    for level in [1.0, 1.5, -0.1] {
        let error = sparsify(Small::new(&device, 1))
            .magnitude(Sparsity::target(level))
            .build()
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("target") && text.contains("conv.weight"),
            "{text}"
        );
    }
}

#[test]
fn n_larger_than_m_or_m_not_dividing_the_input_dimension_names_the_layer() {
    let device = Device::flex();
    let error = sparsify(Small::new(&device, 1))
        .n_m(NmSparsity::new(4, 2))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("4:2"), "{error}");
    // The conv has 4 input channels: 3 does not divide them.
    let error = sparsify(Small::new(&device, 1))
        .n_m(NmSparsity::new(1, 3))
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, SparsityError::Pattern { layer, .. } if layer == "conv.weight"),
        "{error}"
    );
}

#[test]
fn unknown_schedules_and_scopes_are_named_and_nothing_is_attached() {
    let device = Device::flex();
    let error = Schedule::by_name("cosine").unwrap_err();
    assert!(error.to_string().contains("cosine"));
    let bad = LevelSchedule::new(
        Schedule::Multistep {
            steps: vec![1.0, 2.0],
            levels: vec![0.1],
        },
        0.0,
        0.5,
        0.0,
    );
    let model = Small::new(&device, 1);
    let error = sparsify(model.clone())
        .magnitude(Sparsity::scheduled(bad))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("multistep.levels"), "{error}");
    let error = sparsify(model.clone())
        .magnitude(Sparsity::target(0.5))
        .ignore("fc9")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("fc9"), "{error}");
    assert!(WeightTransform::of(&model.conv.weight).is_none());
}
