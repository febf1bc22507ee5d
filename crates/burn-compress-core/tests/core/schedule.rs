//! Every schedule's level at every epoch (and step) equals its formula, evaluated by hand
//! (values computed independently in Python and written here as literals).

use burn_compress_core::{LevelSchedule, Schedule, Scheduler};

fn assert_levels(schedule: &LevelSchedule, expected: &[f64]) {
    for (epoch, want) in expected.iter().enumerate() {
        let got = schedule.level_at(epoch as f64);
        assert!(
            (got - want).abs() < 1e-12,
            "{:?} at epoch {epoch}: {got} vs {want}",
            schedule.schedule
        );
    }
}

#[test]
fn polynomial_concave_and_convex() {
    let concave = LevelSchedule::new(Schedule::polynomial(), 0.0, 0.5, 4.0);
    assert_levels(
        &concave,
        &[
            0.0,
            0.11405524663821476,
            0.23205663436592672,
            0.35641270562537064,
            0.5,
            0.5,
        ],
    );
    let convex = LevelSchedule::new(
        Schedule::Polynomial {
            power: 2.0,
            concave: false,
        },
        0.1,
        0.6,
        4.0,
    );
    assert_levels(&convex, &[0.1, 0.13125, 0.225, 0.38125, 0.6, 0.6]);
}

#[test]
fn exponential_decays_the_density() {
    let exp = LevelSchedule::new(Schedule::Exponential, 0.1, 0.7, 4.0);
    assert_levels(
        &exp,
        &[
            0.1,
            0.31614788291356666,
            0.48038475772933675,
            0.6051777961142522,
            0.7,
            0.7,
        ],
    );
}

#[test]
fn multistep_switches_exactly_at_its_steps() {
    let multistep = LevelSchedule::new(
        Schedule::Multistep {
            steps: vec![2.0, 3.0],
            levels: vec![0.1, 0.3, 0.6],
        },
        0.0,
        0.6,
        0.0,
    );
    assert_levels(&multistep, &[0.1, 0.1, 0.3, 0.6, 0.6]);
}

#[test]
fn cubic_zhu_gupta_with_and_without_update_frequency() {
    let cubic = LevelSchedule::new(
        Schedule::Cubic {
            begin: 1.0,
            frequency: 0.0,
        },
        0.0,
        0.8,
        5.0,
    );
    assert_levels(&cubic, &[0.0, 0.0, 0.4625, 0.7, 0.7875, 0.8, 0.8]);
    let stepped = LevelSchedule::new(
        Schedule::Cubic {
            begin: 1.0,
            frequency: 2.0,
        },
        0.0,
        0.8,
        5.0,
    );
    assert_levels(&stepped, &[0.0, 0.0, 0.0, 0.7, 0.7, 0.8, 0.8]);
}

#[test]
fn constant_holds_the_target() {
    assert_levels(&LevelSchedule::constant(0.3), &[0.3, 0.3, 0.3]);
}

#[test]
fn per_step_schedules_follow_fractional_epochs() {
    let schedule = LevelSchedule::new(Schedule::polynomial(), 0.0, 0.5, 2.0).with_per_step(true);
    let mut scheduler = Scheduler::new(schedule, Some(4)).unwrap();
    let expected = [
        0.0,
        0.05661882287139636,
        0.11405524663821476,
        0.1724617532909507,
        0.23205663436592672,
        0.2931773276708619,
        0.35641270562537064,
        0.42305347416594274,
        0.5,
        0.5,
    ];
    assert!((scheduler.start().level - expected[0]).abs() < 1e-12);
    for (step, want) in expected.iter().enumerate().skip(1) {
        let tick = scheduler.step(|| 0.0);
        assert!(tick.update, "per-step schedules update at every step");
        assert!(
            (tick.level - want).abs() < 1e-12,
            "step {step}: {} vs {want}",
            tick.level
        );
    }
}

#[test]
fn per_epoch_schedules_update_at_epoch_ends_and_freeze() {
    let schedule = LevelSchedule::new(Schedule::polynomial(), 0.0, 0.5, 4.0).with_freeze_epoch(2.0);
    let mut scheduler = Scheduler::new(schedule, Some(3)).unwrap();
    let mut updates = Vec::new();
    for step in 1..=12 {
        let tick = scheduler.step(|| 0.0);
        if tick.update {
            updates.push((step, tick.level));
        }
        assert_eq!(tick.frozen, step >= 6, "step {step}");
    }
    // Only the end of epoch 0 updates: epoch 2 is frozen before its level applies.
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].0, 3);
    assert!((updates[0].1 - 0.11405524663821476).abs() < 1e-12);
}

#[test]
fn adaptive_raises_the_level_after_reaching_it() {
    let schedule = LevelSchedule::new(Schedule::by_name("adaptive").unwrap(), 0.1, 0.2, 0.0);
    let mut scheduler = Scheduler::new(schedule, None).unwrap();
    assert_eq!(scheduler.level(), 0.1);
    // Achieved 0.05 < 0.1 - 0.03: stays.
    assert_eq!(scheduler.epoch_step(|| 0.05).level, 0.1);
    // Achieved 0.08 >= 0.07: +0.05.
    assert!((scheduler.epoch_step(|| 0.08).level - 0.15).abs() < 1e-12);
    // Capped at the target.
    assert!((scheduler.epoch_step(|| 0.15).level - 0.2).abs() < 1e-12);
    assert!((scheduler.epoch_step(|| 0.2).level - 0.2).abs() < 1e-12);
}

#[test]
fn bad_settings_name_the_field() {
    let cases = [
        (
            LevelSchedule::new(Schedule::Constant, 0.0, 1.0, 0.0),
            "target",
        ),
        (
            LevelSchedule::new(Schedule::Exponential, -0.1, 0.5, 3.0),
            "init",
        ),
        (
            LevelSchedule::new(
                Schedule::Multistep {
                    steps: vec![1.0],
                    levels: vec![0.5],
                },
                0.0,
                0.5,
                0.0,
            ),
            "multistep.levels",
        ),
        (
            LevelSchedule::new(
                Schedule::Polynomial {
                    power: 0.0,
                    concave: true,
                },
                0.0,
                0.5,
                2.0,
            ),
            "polynomial.power",
        ),
    ];
    for (schedule, field) in cases {
        let error = schedule.validate().unwrap_err();
        assert_eq!(error.field, field, "{error}");
    }
    let error = Schedule::by_name("cosine").unwrap_err();
    assert!(error.to_string().contains("cosine"), "{error}");
    let per_step = LevelSchedule::constant(0.5).with_per_step(true);
    assert_eq!(
        Scheduler::new(per_step, None).unwrap_err().field,
        "per_step"
    );
}

#[test]
fn exponential_with_bias_matches_nncf_pruning_schedule() {
    // NNCF's own scheduler test (init 0, target 0.5, num_init_steps 1, pruning_steps 20)
    // expects a = −0.5, b = 0.5, k ≈ 0.5836; levels here from that curve, solved by Newton's
    // method on k in Python. The schedule spans `pruning_steps − 1` epochs after the warm-up.
    let nncf = LevelSchedule::new(Schedule::ExponentialWithBias, 0.0, 0.5, 19.0).with_warmup(1.0);
    let expected = [
        0.0,
        0.0,
        0.22108351749381305,
        0.3444126837550872,
        0.41321059064168564,
    ];
    for (epoch, want) in expected.iter().enumerate() {
        let got = nncf.level_at(epoch as f64);
        assert!((got - want).abs() < 1e-4, "epoch {epoch}: {got} vs {want}");
    }
    assert!((nncf.level_at(20.0) - 0.5).abs() < 1e-12);
    let shifted = LevelSchedule::new(Schedule::ExponentialWithBias, 0.1, 0.4, 14.0);
    for (epoch, want) in [
        (0.0, 0.1),
        (1.0, 0.23986052066870353),
        (2.0, 0.31452778618556276),
        (5.0, 0.38703327163903173),
        (13.0, 0.39995997314021275),
        (14.0, 0.4),
    ] {
        let got = shifted.level_at(epoch);
        assert!((got - want).abs() < 1e-6, "epoch {epoch}: {got} vs {want}");
    }
    let flat = LevelSchedule::new(Schedule::ExponentialWithBias, 0.3, 0.4, 5.0);
    assert!(flat.validate().unwrap_err().to_string().contains("init"));
}

#[test]
fn warmup_holds_level_zero_then_shifts_the_schedule() {
    let exp = LevelSchedule::new(Schedule::Exponential, 0.1, 0.7, 4.0).with_warmup(2.0);
    assert_levels(
        &exp,
        &[0.0, 0.0, 0.1, 0.31614788291356666, 0.48038475772933675],
    );
}
