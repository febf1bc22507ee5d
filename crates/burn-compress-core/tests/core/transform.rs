//! The composite weight transform: forward `FQ(mask ⊙ w)` and its gradients against the formulas
//! written out by hand (f64), stages attached in either order, and both stages kept through
//! `valid()`, records and device moves. Foreign reparameterizations are refused by name.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress_core::{
    attach, Attachment, CoreError, FakeQuantizer, MaskGradient, QuantMode, ResolvedSpec,
    WeightMask, WeightTransform,
};

use crate::devices;

#[derive(Module, Debug)]
struct Net {
    fc: Linear,
}

/// Weight `[d_in = 3, d_out = 4]`, chosen to land below, inside and above the ranges.
const WEIGHT: [f32; 12] = [
    0.31, -1.7, 0.05, 0.9, //
    -0.42, 0.6, -2.4, 0.11, //
    1.3, -0.08, 0.77, -0.5,
];
/// Keep mask over the weight (0 removes).
const KEEP: [f32; 12] = [1., 0., 1., 1., 0., 1., 1., 0., 1., 1., 0., 1.];
/// Per-output-column scales (axis 1 of Burn's Linear weight).
const SCALES: [f32; 4] = [1.0, 0.5, 2.0, 0.6];

fn net(device: &Device) -> Net {
    let mut fc = LinearConfig::new(3, 4).init(device);
    fc.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(WEIGHT.to_vec(), [3, 4]),
        device,
    ));
    Net { fc }
}

fn mask(device: &Device, gradient: MaskGradient) -> WeightMask {
    WeightMask::fixed(
        Tensor::from_data(TensorData::new(KEEP.to_vec(), [12]), device),
        gradient,
    )
}

fn quantizer(device: &Device) -> FakeQuantizer {
    let spec = ResolvedSpec {
        mode: QuantMode::Symmetric,
        level_low: -127,
        level_high: 127,
        axis: Some(1),
    };
    let lows: Vec<f32> = SCALES.iter().map(|s| -s).collect();
    FakeQuantizer::new(spec, &lows, &SCALES, "fc", device).unwrap()
}

fn with(mask: Option<WeightMask>, quantizer: Option<FakeQuantizer>) -> HashMap<String, Attachment> {
    HashMap::from([("fc.weight".to_string(), Attachment { mask, quantizer })])
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `FQ(keep·w)` on the narrow signed grid of scale `s`, in f64.
fn expected(index: usize) -> f64 {
    let s = SCALES[index % 4] as f64;
    let x = KEEP[index] as f64 * WEIGHT[index] as f64;
    let (low, range) = (-s, 2.0 * s);
    (((x - low) / range).clamp(0.0, 1.0) * 254.0).round_ties_even() / 254.0 * range + low
}

fn assert_forward(model: &Net, what: &str) {
    let got = read(model.fc.weight.val());
    for (i, g) in got.iter().enumerate() {
        let want = expected(i);
        assert!(
            (*g as f64 - want).abs() < 1e-6,
            "{what}: element {i}: {g} vs {want}"
        );
        if KEEP[i] == 0.0 {
            assert_eq!(*g, 0.0, "{what}: masked element {i} is exactly zero");
        }
    }
}

#[test]
fn forward_is_fq_of_the_masked_weight_in_either_order() {
    for device in devices() {
        let mask_first = attach(
            net(&device),
            with(Some(mask(&device, MaskGradient::Zero)), None),
        )
        .unwrap();
        let mask_first = attach(mask_first, with(None, Some(quantizer(&device)))).unwrap();
        assert_forward(&mask_first, &format!("{device:?} mask, then quantizer"));

        let quant_first = attach(net(&device), with(None, Some(quantizer(&device)))).unwrap();
        let quant_first = attach(
            quant_first,
            with(Some(mask(&device, MaskGradient::Zero)), None),
        )
        .unwrap();
        assert_forward(&quant_first, &format!("{device:?} quantizer, then mask"));

        let both = attach(
            net(&device),
            with(
                Some(mask(&device, MaskGradient::Zero)),
                Some(quantizer(&device)),
            ),
        )
        .unwrap();
        assert_forward(&both, &format!("{device:?} together"));
        let transform = WeightTransform::of(&both.fc.weight).unwrap();
        assert!(transform.mask.is_some() && transform.quantizer.is_some());
    }
}

#[test]
fn gradients_follow_the_mask_and_nncf_formulas() {
    let upstream: Vec<f32> = (0..12).map(|i| 0.3 + 0.1 * i as f32).collect();
    for device in devices() {
        for gradient in [MaskGradient::Zero, MaskGradient::StraightThrough] {
            let ad = device.clone().autodiff();
            let model = attach(
                net(&ad),
                with(Some(mask(&ad, gradient)), Some(quantizer(&ad))),
            )
            .unwrap();
            let g = Tensor::<2>::from_data(TensorData::new(upstream.clone(), [3, 4]), &ad);
            let grads = model.fc.weight.val().mul(g).sum().backward();
            let dw = read(model.fc.weight.base().grad(&grads).unwrap());
            let quantizer = WeightTransform::quantizer_of(&model.fc.weight).unwrap();
            let ds = read(quantizer.scale.val().grad(&grads).unwrap());
            let mut want_ds = [0.0f64; 4];
            for i in 0..12 {
                let s = SCALES[i % 4] as f64;
                let x = KEEP[i] as f64 * WEIGHT[i] as f64;
                let gi = upstream[i] as f64;
                let inside = x >= -s && x <= s;
                // Through the mask: zero gradient for removed weights, or straight through.
                let through_mask = match gradient {
                    MaskGradient::Zero => KEEP[i] as f64,
                    MaskGradient::StraightThrough => 1.0,
                };
                let want_dw = if inside { gi * through_mask } else { 0.0 };
                assert!(
                    (dw[i] as f64 - want_dw).abs() < 1e-6,
                    "{device:?} {gradient:?} dw[{i}]: {} vs {want_dw}",
                    dw[i]
                );
                // NNCF: (q − x)/r inside (r = 2s), 1 above, level_low/level_high = −1 below.
                want_ds[i % 4] += gi
                    * if x > s {
                        1.0
                    } else if x < -s {
                        -1.0
                    } else {
                        (expected(i) - x) / (2.0 * s)
                    };
            }
            for c in 0..4 {
                assert!(
                    (ds[c] as f64 - want_ds[c]).abs() < 1e-5 * want_ds[c].abs().max(1.0),
                    "{device:?} {gradient:?} d/ds[{c}]: {} vs {}",
                    ds[c],
                    want_ds[c]
                );
            }
        }
    }
}

#[test]
fn valid_records_and_device_moves_keep_both_stages() {
    let device = Device::flex();
    let model = attach(
        net(&device.clone().autodiff()),
        with(
            Some(mask(&device.clone().autodiff(), MaskGradient::Zero)),
            Some(quantizer(&device.clone().autodiff())),
        ),
    )
    .unwrap();
    let reference = read(model.valid().fc.weight.val());
    let stages = |m: &Net| {
        let t = WeightTransform::of(&m.fc.weight).expect("transform kept");
        (t.mask.is_some(), t.quantizer.is_some())
    };

    let valid = model.valid();
    assert_eq!(stages(&valid), (true, true));
    assert_eq!(read(valid.fc.weight.val()), reference);
    let retrained = valid.clone().train();
    assert_eq!(stages(&retrained), (true, true));

    #[allow(deprecated)]
    let moved = valid.clone().to_device(&Device::ndarray());
    assert_eq!(stages(&moved), (true, true));
    assert_eq!(read(moved.fc.weight.val()), reference);

    // A record restores weight, mask and scales into a model with the same stages.
    let dir = std::env::temp_dir().join(format!("burn-compress-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.bpk");
    valid.clone().save_file(&path).unwrap();
    let other = attach(
        Net {
            fc: LinearConfig::new(3, 4).init(&device),
        },
        with(
            Some(WeightMask::fixed(
                Tensor::ones([12], &device),
                MaskGradient::Zero,
            )),
            Some(quantizer(&device)),
        ),
    )
    .unwrap();
    let loaded = other.load_file(&path);
    assert_eq!(stages(&loaded), (true, true));
    assert_eq!(read(loaded.fc.weight.val()), reference);
    let keep = read(
        WeightTransform::mask_of(&loaded.fc.weight)
            .unwrap()
            .keep
            .val(),
    );
    assert_eq!(keep, KEEP.to_vec());
    drop(loaded);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn foreign_reparameterizations_and_repeated_stages_are_refused_by_name() {
    let device = Device::flex();
    let lora = net(&device).apply_lora(burn::module::Lora::new(2, 4.0));
    let error = attach(lora, with(Some(mask(&device, MaskGradient::Zero)), None)).unwrap_err();
    assert!(
        matches!(&error, CoreError::ForeignReparameterization { param, .. } if param == "fc.weight"),
        "{error}"
    );
    let masked = attach(
        net(&device),
        with(Some(mask(&device, MaskGradient::Zero)), None),
    )
    .unwrap();
    let error = attach(masked, with(Some(mask(&device, MaskGradient::Zero)), None)).unwrap_err();
    assert_eq!(
        error,
        CoreError::AlreadyAttached {
            param: "fc.weight".into(),
            stage: "a mask"
        }
    );
    let bias = HashMap::from([("fc.bias".to_string(), Attachment::default())]);
    let error = attach(net(&device), bias).unwrap_err();
    assert!(matches!(error, CoreError::UnknownWeight { .. }), "{error}");
}

#[test]
fn a_removed_mask_leaves_a_transform_that_takes_new_stages() {
    let device = Device::flex();
    let masked = attach(
        net(&device),
        with(Some(mask(&device, MaskGradient::Zero)), None),
    )
    .unwrap();
    let plain = burn_compress_core::remove_masks(masked, &["fc.weight".to_string()]);
    let transform = WeightTransform::of(&plain.fc.weight).expect("still attached");
    assert!(!transform.mask.is_some() && !transform.quantizer.is_some());
    assert_eq!(
        read(plain.fc.weight.val()),
        WEIGHT.to_vec(),
        "an empty transform is the identity"
    );
    // Burn would silently keep the empty transform over a new one: the stage must go into it.
    let quantized = attach(plain, with(None, Some(quantizer(&device)))).unwrap();
    assert!(WeightTransform::quantizer_of(&quantized.fc.weight).is_some());
}
