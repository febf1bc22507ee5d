//! Bad input gets an error that names the problem.

use burn::tensor::{Device, Tensor};
use burn_compress_core::CoreError;
use burn_compress_quant::{
    quantize, FakeQuantizer, QuantError, QuantSpec, RangeInit, ResolvedSpec,
};

use crate::model::{ramp, Tiny};

fn run(
    builder_fn: impl FnOnce(Tiny) -> burn_compress_quant::QuantizeBuilder<Tiny>,
    batches: Vec<Tensor<4>>,
) -> QuantError {
    let device = Device::flex();
    builder_fn(Tiny::new(&device))
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            m.forward(x);
        })
        .expect_err("must fail")
}

#[test]
fn bit_widths_outside_2_to_8_are_refused() {
    let device = Device::flex();
    for bits in [0, 1, 9, 16] {
        let error = run(
            |m| quantize(m).weights(QuantSpec::int8_weights().with_bits(bits)),
            vec![ramp(1, 0.0, 1.0, &device)],
        );
        let text = error.to_string();
        assert!(
            text.contains("`bits` = ") && text.contains(&bits.to_string()),
            "{text}"
        );
        let error = run(
            |m| quantize(m).activations(QuantSpec::int8_activations().with_bits(bits)),
            vec![ramp(1, 0.0, 1.0, &device)],
        );
        assert!(
            matches!(error, QuantError::InvalidSpec { field: "bits", .. }),
            "{error}"
        );
    }
}

#[test]
fn negative_empty_or_nan_ranges_are_refused() {
    let device = Device::flex();
    let spec = ResolvedSpec {
        mode: burn_compress_quant::QuantMode::Asymmetric,
        level_low: 0,
        level_high: 255,
        axis: None,
    };
    for (low, high, needle) in [
        (f32::NAN, 1.0, "not finite"),
        (0.0, f32::NAN, "not finite"),
        (1.0, -1.0, "empty or negative"),
        (0.5, 0.5, "empty or negative"),
        (0.0, f32::INFINITY, "not finite"),
    ] {
        let error = FakeQuantizer::new(spec.clone(), &[low], &[high], "block.act", &device)
            .expect_err("must fail");
        let text = error.to_string();
        assert!(
            text.contains("`block.act`") && text.contains(needle),
            "{text}"
        );
    }
}

#[test]
fn ignored_scope_that_matches_nothing_is_named() {
    let device = Device::flex();
    let error = run(
        |m| quantize(m).ignore("fc3"),
        vec![ramp(1, 0.0, 1.0, &device)],
    );
    let text = error.to_string();
    assert!(
        matches!(error, QuantError::Core(CoreError::UnmatchedScope { .. })),
        "{text}"
    );
    assert!(
        text.contains("`fc3`") && text.contains("fc1.linear"),
        "{text}"
    );
    let error = run(
        |m| quantize(m).ignore("re:conv[0-9]+"),
        vec![ramp(1, 0.0, 1.0, &device)],
    );
    assert!(error.to_string().contains("re:conv[0-9]+"), "{error}");
    let error = run(
        |m| quantize(m).ignore("re:fc(1"),
        vec![ramp(1, 0.0, 1.0, &device)],
    );
    assert!(
        matches!(error, QuantError::Core(CoreError::InvalidScope { .. })),
        "{error}"
    );
}

#[test]
fn empty_or_nan_calibration_sets_are_refused() {
    let device = Device::flex();
    let error = run(quantize, vec![]);
    assert!(
        error.to_string().contains("calibration set is empty"),
        "{error}"
    );

    let mut values = vec![0.5f32; 36];
    values[7] = f32::NAN;
    let poisoned = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, 6, 6]);
    let error = run(quantize, vec![ramp(1, 0.0, 1.0, &device), poisoned]);
    let text = error.to_string();
    assert!(
        text.contains("`conv.input_quant`") && text.contains("NaN"),
        "{text}"
    );
}

#[test]
fn bad_percentiles_are_refused() {
    let device = Device::flex();
    let error = quantize(Tiny::new(&device))
        .init_ranges(
            RangeInit::Percentile {
                min_percentile: 50.0,
                max_percentile: 10.0,
            },
            vec![ramp(1, 0.0, 1.0, &device)],
            |m, x| {
                m.forward(x);
            },
        )
        .expect_err("must fail");
    assert!(error.to_string().contains("min_percentile"), "{error}");
}
