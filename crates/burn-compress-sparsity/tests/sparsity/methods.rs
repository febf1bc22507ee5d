//! Each method reaches its level and pattern, and its controller drives it from a training loop.

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use burn_compress_core::{LevelSchedule, MaskGradient, ModelStats, Schedule, WeightTransform};
use burn_compress_sparsity::nm::satisfies;
use burn_compress_sparsity::{sparsify, NmSparsity, RbInit, RbSparsity, Sparsity};

use crate::model::{read, Small};

fn zeros(values: &[f32]) -> usize {
    values.iter().filter(|&&v| v == 0.0).count()
}

#[test]
fn magnitude_local_gives_every_layer_the_level() {
    let device = Device::flex();
    let (model, controller) = sparsify(Small::new(&device, 1))
        .magnitude(Sparsity::target(0.5).local())
        .build()
        .unwrap();
    for w in [
        read(model.conv.weight.val()),
        read(model.fc1.weight.val()),
        read(model.fc2.weight.val()),
    ] {
        assert_eq!(zeros(&w), w.len() / 2);
    }
    let stats = controller.statistics(&model);
    assert_eq!(stats.model.weight_zeros() * 2, stats.model.weight_params());
    println!("{stats}");
}

#[test]
fn magnitude_global_reaches_the_level_overall_and_removes_the_smallest() {
    let device = Device::flex();
    let fp32 = Small::new(&device, 2);
    let (model, _) = sparsify(fp32.clone())
        .magnitude(Sparsity::target(0.7))
        .ignore("fc2")
        .build()
        .unwrap();
    let stats = ModelStats::of(&model);
    assert!((stats.masked_sparsity() - 0.7).abs() < 1e-3, "{stats}");
    assert_eq!(
        read(model.fc2.weight.val()),
        read(fp32.fc2.weight.val()),
        "fc2 ignored"
    );
    // Within a layer, every removed weight is no larger than every kept one (normed_abs is a
    // per-layer scaling of |w|).
    for (dense, sparse) in [
        (read(fp32.conv.weight.val()), read(model.conv.weight.val())),
        (read(fp32.fc1.weight.val()), read(model.fc1.weight.val())),
    ] {
        let removed = dense
            .iter()
            .zip(&sparse)
            .filter(|(_, s)| **s == 0.0)
            .map(|(d, _)| d.abs());
        let kept = dense
            .iter()
            .zip(&sparse)
            .filter(|(_, s)| **s != 0.0)
            .map(|(d, _)| d.abs());
        let largest_removed = removed.fold(0.0f32, f32::max);
        let smallest_kept = kept.fold(f32::INFINITY, f32::min);
        assert!(
            largest_removed <= smallest_kept,
            "{largest_removed} > {smallest_kept}"
        );
    }
}

#[test]
fn two_of_four_holds_in_every_group_before_and_after_sr_ste_training() {
    let device = Device::flex().autodiff();
    let (mut model, mut controller) = sparsify(Small::new(&device, 3))
        .n_m(NmSparsity::new(2, 4).sr_ste())
        .build()
        .unwrap();
    let check = |m: &Small| {
        assert!(satisfies(
            &read(m.conv.weight.val()),
            &[8, 4, 3, 3],
            1,
            2,
            4
        ));
        assert!(satisfies(&read(m.fc1.weight.val()), &[128, 16], 0, 2, 4));
        assert!(satisfies(&read(m.fc2.weight.val()), &[16, 4], 0, 2, 4));
        let stats = ModelStats::of(m);
        assert_eq!(stats.weight_zeros() * 2, stats.weight_params());
    };
    check(&model);
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..5 {
        let x = Tensor::<4>::random([8, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let mut loss = model.forward(x).powi_scalar(2).mean();
        let penalty = controller.loss(&model).expect("SR-STE has a penalty");
        loss = loss.add(penalty);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
        controller.step(&mut model);
        check(&model);
    }
}

#[test]
fn sr_ste_penalty_is_half_lambda_times_the_removed_squares() {
    let device = Device::flex();
    let (model, controller) = sparsify(Small::new(&device, 4))
        .n_m(NmSparsity::new(1, 4).sr_ste())
        .build()
        .unwrap();
    let mut want = 0.0f64;
    for (dense, sparse) in [
        (
            read(model.conv.weight.base()),
            read(model.conv.weight.val()),
        ),
        (read(model.fc1.weight.base()), read(model.fc1.weight.val())),
        (read(model.fc2.weight.base()), read(model.fc2.weight.val())),
    ] {
        want += dense
            .iter()
            .zip(&sparse)
            .filter(|(_, s)| **s == 0.0)
            .map(|(d, _)| (*d as f64).powi(2))
            .sum::<f64>();
    }
    want *= 2e-4 / 2.0;
    let got = read(controller.loss(&model).unwrap())[0] as f64;
    assert!(
        (got - want).abs() < 1e-6 * want.max(1e-9),
        "{got} vs {want}"
    );
}

#[test]
fn polynomial_schedule_updates_masks_at_epoch_ends_then_freezes() {
    let device = Device::flex().autodiff();
    let schedule = LevelSchedule::new(Schedule::polynomial(), 0.0, 0.6, 2.0).with_freeze_epoch(3.0);
    let (mut model, mut controller) = sparsify(Small::new(&device, 5))
        .magnitude(Sparsity::scheduled(schedule.clone()).gradient(MaskGradient::StraightThrough))
        .steps_per_epoch(2)
        .build()
        .unwrap();
    let level = |m: &Small| ModelStats::of(m).masked_sparsity();
    assert!(level(&model) < 1e-3, "epoch 0 starts at init 0");
    let mut optimizer = AdamConfig::new().init();
    let mut frozen_mask = None;
    for step in 1..=10 {
        let x = Tensor::<4>::random([4, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let loss = model.forward(x).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
        controller.step(&mut model);
        let epoch = step / 2;
        let want = schedule.level_at(epoch.min(2) as f64);
        assert!(
            (level(&model) - want).abs() < 2e-3,
            "step {step}: sparsity {} vs schedule {want}",
            level(&model)
        );
        let keep = read(
            WeightTransform::mask_of(&model.fc1.weight)
                .unwrap()
                .keep
                .val(),
        );
        if epoch >= 3 {
            // Frozen: the mask never changes again, whatever the straight-through updates do.
            let frozen = frozen_mask.get_or_insert_with(|| keep.clone());
            assert_eq!(&keep, frozen, "step {step}");
            assert!(controller.frozen);
        }
    }
}

#[test]
fn rb_loss_and_its_gradient_follow_the_formula_and_masks_follow_the_logits() {
    let device = Device::flex().autodiff();
    let (mut model, mut controller) = sparsify(Small::new(&device, 6))
        .rb(RbSparsity::target(0.5).init(RbInit::Constant))
        .build()
        .unwrap();
    let total = 8 * 4 * 9 + 128 * 16 + 16 * 4;
    // All logits start at logit(0.99) > 0: density 1, loss ((1 − 0.5) / 0.05)² = 100.
    let loss = controller.loss(&model).unwrap();
    assert!((read(loss.clone())[0] - 100.0).abs() < 1e-3);
    // d loss / d s_i = 2·(density − 0.5)/0.05² · σ'(s_i) / total (straight-through threshold).
    let grads = loss.backward();
    let logits = WeightTransform::mask_of(&model.fc1.weight)
        .unwrap()
        .logits
        .as_ref()
        .unwrap()
        .val();
    let s0 = (0.99f64 / 0.01).ln();
    let sigma = 1.0 / (1.0 + (-s0).exp());
    let want = 2.0 * 0.5 / 0.0025 * sigma * (1.0 - sigma) / total as f64;
    for g in read(logits.grad(&grads).unwrap()) {
        assert!((g as f64 - want).abs() < 1e-5 * want, "{g} vs {want}");
    }
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..3 {
        let x = Tensor::<4>::random([4, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let loss = model
            .forward(x)
            .powi_scalar(2)
            .mean()
            .add(controller.loss(&model).unwrap());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.1, model, grads);
        controller.step(&mut model);
        // The stored masks are [s > 0] of the current logits.
        let mask = WeightTransform::mask_of(&model.fc1.weight).unwrap();
        let logits = read(mask.logits.as_ref().unwrap().val());
        let keep = read(mask.keep.val());
        for (l, k) in logits.iter().zip(&keep) {
            assert_eq!(*k, if *l > 0.0 { 1.0 } else { 0.0 });
        }
    }
    controller.freeze(&mut model);
    let mask = WeightTransform::mask_of(&model.fc1.weight).unwrap();
    assert!(!mask.is_learning(), "frozen logits stop training");
    assert!(controller.loss(&model).is_none(), "no loss once frozen");
}
