//! Attaching quantizers: sites, weight grids, calibration ranges, ignored scopes, training,
//! BatchNorm folding and adaptation. Expected values are computed by hand in the tests.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::BatchNormConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use burn_compress_quant::{
    adapt_batch_norm, fold_batch_norm, quantize, quantizer_sites, OverflowFix, QuantMode,
    QuantSpec, QuantizerKind, RangeInit, WeightTransform,
};

use crate::model::{ramp, Tiny};

fn calibrate(model: Tiny, init: RangeInit, batches: Vec<Tensor<4>>) -> Tiny {
    quantize(model)
        .init_ranges(init, batches, |m, x| {
            m.forward(x);
        })
        .unwrap()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn every_weight_and_activation_slot_gets_a_quantizer() {
    let device = Device::flex();
    let model = Tiny::new(&device);
    let before = quantizer_sites(&model);
    let paths: Vec<&str> = before.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "conv.input_quant",
            "conv.conv",
            "fc1.input_quant",
            "fc1.linear",
            "fc2.input_quant",
            "fc2.linear"
        ]
    );
    assert!(before.iter().all(|s| !s.attached));
    assert_eq!(before[3].kind, QuantizerKind::Weight { axis: 1 });
    let model = calibrate(model, RangeInit::MinMax, vec![ramp(2, -1.0, 1.0, &device)]);
    assert!(quantizer_sites(&model).iter().all(|s| s.attached));
}

#[test]
fn weights_land_on_a_per_channel_narrow_grid_or_the_half_range() {
    let device = Device::flex();
    // Full 8 bits: [-127, 127] over ±max|w|. Overflow fix (default): [-64, 63], step max|w|/63.
    for (fix, steps) in [(OverflowFix::Disable, 127.0), (OverflowFix::Enable, 63.0)] {
        let model = Tiny::new(&device);
        let raw = values(model.conv.conv.weight.val()); // [2, 1, 3, 3]
        let model = quantize(model)
            .overflow_fix(fix)
            .init_ranges(
                RangeInit::MinMax,
                vec![ramp(1, 0.0, 1.0, &device)],
                |m, x| {
                    m.forward(x);
                },
            )
            .unwrap();
        let quantized = values(model.conv.conv.weight.val());
        for channel in 0..2 {
            let w = &raw[channel * 9..(channel + 1) * 9];
            let scale = w.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
            for (i, &v) in w.iter().enumerate() {
                let want = (v as f64 / scale * steps).round_ties_even() / steps * scale;
                let got = quantized[channel * 9 + i] as f64;
                assert!(
                    (got - want).abs() < 1e-6,
                    "{fix:?} channel {channel} element {i}: {got} vs {want}"
                );
            }
        }
        let spec = &WeightTransform::quantizer_of(&model.conv.conv.weight)
            .unwrap()
            .spec;
        let grid = (spec.level_low, spec.level_high);
        assert_eq!(
            grid,
            if steps == 63.0 {
                (-64, 63)
            } else {
                (-127, 127)
            }
        );
    }
    let model = calibrate(
        Tiny::new(&device),
        RangeInit::MinMax,
        vec![ramp(1, 0.0, 1.0, &device)],
    );
    // The Linear weight is [d_input, d_output]: one scale per output column.
    let quantizer = WeightTransform::quantizer_of(&model.fc1.linear.weight).unwrap();
    assert_eq!(quantizer.spec.axis, Some(1));
    assert_eq!(quantizer.scale.dims(), [8]);
}

#[test]
fn activation_ranges_follow_the_chosen_statistic() {
    let device = Device::flex();
    // Batch 1 spans [-1, 3], batch 2 spans [0, 5]: input of conv is exactly these values.
    let batches = || vec![ramp(1, -1.0, 3.0, &device), ramp(1, 0.0, 5.0, &device)];
    let high = |model: &Tiny| model.conv.input_quant.quantizer().unwrap().range_values().1[0];
    // min_max: [-1, 5] -> signed, scale 5.
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs();
    let model = calibrate(Tiny::new(&device), RangeInit::MinMax, batches());
    assert!(close(high(&model), 5.0), "{}", high(&model));
    let spec = &model.conv.input_quant.quantizer().unwrap().spec;
    assert_eq!((spec.level_low, spec.level_high), (-128, 127));
    // mean_min_max: mean of mins -0.5, of maxs 4.0 -> scale 4.
    let model = calibrate(Tiny::new(&device), RangeInit::MeanMinMax, batches());
    assert!(close(high(&model), 4.0), "{}", high(&model));
    // percentile 0..=50 of 72 evenly spaced samples: the median of both ramps together.
    let model = calibrate(
        Tiny::new(&device),
        RangeInit::Percentile {
            min_percentile: 0.0,
            max_percentile: 50.0,
        },
        batches(),
    );
    let mut all: Vec<f32> = values(ramp(1, -1.0, 3.0, &device));
    all.extend(values(ramp(1, 0.0, 5.0, &device)));
    all.sort_by(f32::total_cmp);
    let median = (all[35] + all[36]) / 2.0;
    assert!(
        (high(&model) - median.max(1.0)).abs() < 1e-6,
        "{} vs {}",
        high(&model),
        median
    );
    // mse_search shrinks the range but keeps it within [0.3, 1] of min-max.
    let model = calibrate(Tiny::new(&device), RangeInit::MseSearch, batches());
    assert!((1.5..=5.0).contains(&high(&model)), "{}", high(&model));
    // fc1's input follows a ReLU: all values >= 0 -> unsigned grid [0, 255].
    let spec = &model.fc1.input_quant.quantizer().unwrap().spec;
    assert_eq!((spec.level_low, spec.level_high), (0, 255));
}

#[test]
fn asymmetric_ranges_represent_zero_exactly() {
    let device = Device::flex();
    let spec = QuantSpec::int8_activations().with_mode(QuantMode::Asymmetric);
    let model = quantize(Tiny::new(&device))
        .activations(spec)
        .init_ranges(
            RangeInit::MinMax,
            vec![ramp(1, -0.37, 2.9, &device)],
            |m, x| {
                m.forward(x);
            },
        )
        .unwrap();
    let quantizer = model.conv.input_quant.quantizer().unwrap();
    let (low, high) = quantizer.range_values();
    let step = (high[0] - low[0]) / 255.0;
    let zero_point = -low[0] / step;
    assert!(
        (zero_point - zero_point.round()).abs() < 1e-3,
        "zero point {zero_point}"
    );
    let zero = quantizer.forward(Tensor::<1>::zeros([1], &device));
    assert_eq!(values(zero), [0.0]);
}

#[test]
fn ignored_scopes_by_path_and_regex_stay_in_floating_point() {
    let device = Device::flex();
    let attached = |model: &Tiny| -> Vec<String> {
        quantizer_sites(model)
            .into_iter()
            .filter(|s| s.attached)
            .map(|s| s.path)
            .collect()
    };
    let model = quantize(Tiny::new(&device))
        .ignore("fc2")
        .init_ranges(
            RangeInit::MinMax,
            vec![ramp(1, 0.0, 1.0, &device)],
            |m, x| {
                m.forward(x);
            },
        )
        .unwrap();
    assert_eq!(
        attached(&model),
        [
            "conv.input_quant",
            "conv.conv",
            "fc1.input_quant",
            "fc1.linear"
        ]
    );
    let model = quantize(Tiny::new(&device))
        .ignore(r"re:fc\d")
        .no_activations()
        .init_ranges(RangeInit::MinMax, Vec::<Tensor<4>>::new(), |m, x| {
            m.forward(x);
        })
        .unwrap();
    assert_eq!(attached(&model), ["conv.conv"]);
}

#[test]
fn qat_step_trains_scales_and_weights() {
    let device = Device::flex().autodiff();
    let model = calibrate(
        Tiny::new(&device),
        RangeInit::MinMax,
        vec![ramp(2, -1.0, 1.0, &device)],
    );
    let quantizer = model.fc1.input_quant.quantizer().unwrap();
    let scale_before = values(quantizer.scale.val());
    let logits = model.forward(ramp(4, -1.0, 2.0, &device));
    let grads = logits.powi_scalar(2).mean().backward();
    let quantizer = model.fc1.input_quant.quantizer().unwrap();
    assert!(
        quantizer.scale.val().grad(&grads).is_some(),
        "activation scale gets a gradient"
    );
    let weight_quantizer = WeightTransform::quantizer_of(&model.conv.conv.weight).unwrap();
    assert!(
        weight_quantizer.scale.val().grad(&grads).is_some(),
        "weight scale gets a gradient"
    );
    let grads = GradientsParams::from_grads(grads, &model);
    let model = AdamConfig::new().init().step(1e-2, model, grads);
    let scale_after = values(model.fc1.input_quant.quantizer().unwrap().scale.val());
    assert_ne!(scale_before, scale_after, "the optimizer updates the scale");
}

#[test]
fn folded_batch_norm_matches_conv_then_batch_norm_in_eval_mode() {
    let device = Device::flex();
    let train = device.clone().autodiff();
    let conv = Conv2dConfig::new([3, 4], [3, 3]).init(&train);
    let bn = BatchNormConfig::new(4).init(&train);
    // Give the running statistics non-trivial values.
    for i in 0..5 {
        bn.forward(conv.forward(ramp(2, -1.0 - i as f32, 2.0 + i as f32, &train).repeat_dim(1, 3)));
    }
    let (conv, bn) = (conv.valid(), bn.valid());
    let x = ramp(3, -2.0, 3.0, &device).repeat_dim(1, 3);
    let reference = values(bn.forward(conv.forward(x.clone())));
    let folded = fold_batch_norm(conv, &bn, "block.conv").unwrap();
    let got = values(folded.forward(x));
    for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
        assert!(
            (g - r).abs() <= 1e-5 * r.abs().max(1.0),
            "element {i}: {g} vs {r}"
        );
    }
}

#[test]
fn batch_norm_adaptation_re_estimates_running_statistics() {
    let device = Device::flex().autodiff();
    let bn = BatchNormConfig::new(1).init(&device);
    let before = values(bn.running_mean.value());
    let batches = (0..40).map(|_| ramp(2, 3.0, 5.0, &device));
    let count = adapt_batch_norm(&bn, batches, |m, x| {
        m.forward(x);
    })
    .unwrap();
    assert_eq!(count, 40);
    let after = values(bn.running_mean.value());
    assert_eq!(before, [0.0]);
    assert!(
        (after[0] - 4.0).abs() < 0.1,
        "running mean {after:?} approaches the data mean 4"
    );
    let error = adapt_batch_norm(
        &bn.valid(),
        vec![ramp(1, 0.0, 1.0, &Device::flex())],
        |m, x| {
            m.forward(x);
        },
    )
    .expect_err("needs autodiff");
    assert!(error.to_string().contains("autodiff"), "{error}");
}
