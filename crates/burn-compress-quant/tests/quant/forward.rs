//! Forward values: OpenVINO's FakeQuantize on the same inputs, and hand-computed cases.

use burn::module::Param;
use burn::tensor::{Device, Shape, Tensor, TensorData};
use burn_compress_quant::{fake_quantize, FakeQuantizer, QuantMode, ResolvedSpec};
use serde_json::Value;

use crate::{devices, dims, floats};

fn tensor<const D: usize>(values: &[f32], shape: &[usize], device: &Device) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), Shape::from(shape.to_vec())),
        device,
    )
}

/// What one reference case gives: `fake_quantize`'s output, the `FakeQuantizer`'s output, and
/// the quantizer's effective per-channel `(input_low, range)` (NNCF's: `s − s·ll/lh` for
/// symmetric grids, TuneRange for asymmetric ones).
struct CaseRun {
    direct: Vec<f32>,
    module: Vec<f32>,
    module_lows: Vec<f32>,
    module_ranges: Vec<f32>,
}

/// Runs `fake_quantize` and the equivalent `FakeQuantizer` on one reference case.
fn run_case<const D: usize>(case: &Value, device: &Device) -> CaseRun {
    let shape = dims(&case["shape"]);
    let param_shape = dims(&case["param_shape"]);
    let levels = case["levels"].as_u64().unwrap() as u32;
    let x: Tensor<D> = tensor(&floats(&case["input"]), &shape, device);
    let low: Tensor<D> = tensor(&floats(&case["input_low"]), &param_shape, device);
    let range: Tensor<D> = tensor(&floats(&case["range"]), &param_shape, device);
    let direct = fake_quantize(x.clone(), low, range, levels);

    let kind = &case["kind"];
    let spec = ResolvedSpec {
        mode: if kind["mode"] == "symmetric" {
            QuantMode::Symmetric
        } else {
            QuantMode::Asymmetric
        },
        level_low: kind["level_low"].as_i64().unwrap() as i32,
        level_high: kind["level_high"].as_i64().unwrap() as i32,
        axis: kind["axis"].as_u64().map(|a| a as usize),
    };
    let param = |values: Vec<f32>| {
        let n = values.len();
        Param::from_data(TensorData::new(values, Shape::new([n])), device)
    };
    let quantizer = match spec.mode {
        QuantMode::Symmetric => FakeQuantizer {
            scale: param(floats(&case["scale"])),
            input_low: None,
            spec,
        },
        QuantMode::Asymmetric => FakeQuantizer {
            scale: param(floats(&case["range"])),
            input_low: Some(param(floats(&case["input_low"]))),
            spec,
        },
    };
    assert_eq!(quantizer.levels(), levels, "{}", case["name"]);
    let through_module = quantizer.forward(x);
    let read = |t: Tensor<D>| t.into_data().try_to_vec::<f32>().unwrap();
    let (lows, ranges) = quantizer.effective_low_and_range();
    let read1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    CaseRun {
        direct: read(direct),
        module: read(through_module),
        module_lows: read1(lows),
        module_ranges: read1(ranges),
    }
}

/// Flat index into a broadcast parameter of `param_shape` for element `index` of `shape`.
fn broadcast_index(index: usize, shape: &[usize], param_shape: &[usize]) -> usize {
    let (mut rest, mut flat, mut stride) = (index, 0, 1);
    for (dim, pdim) in shape.iter().zip(param_shape).rev() {
        let coordinate = rest % dim;
        rest /= dim;
        if *pdim != 1 {
            flat += coordinate * stride;
            stride *= pdim;
        }
    }
    flat
}

/// One unit in the last place of the larger range end: the precision of the quantized value.
fn range_ulp(low: f32, range: f32) -> f64 {
    let magnitude = low.abs().max((low + range).abs());
    (f32::from_bits(magnitude.to_bits() + 1) - magnitude) as f64
}

/// The FakeQuantize formula evaluated exactly (f64) on the f32 parameters: (level index, value).
fn exact(x: f32, low: f32, range: f32, levels: u32) -> (f64, f64) {
    let steps = (levels - 1) as f64;
    let level =
        (((x as f64 - low as f64) / range as f64).clamp(0.0, 1.0) * steps).round_ties_even();
    (level, level / steps * range as f64 + low as f64)
}

/// Every element lands on the same level as OpenVINO's CPU FakeQuantize and the exact formula;
/// values agree within 2 ulps of the range (OpenVINO's own kernel is itself up to 2 ulps from
/// the exact formula on these cases; ours is within 1.5).
#[test]
fn matches_openvino_fake_quantize_on_every_quantizer_kind() {
    let text = include_str!("../../../../tests/data/fake_quant_reference.json");
    let reference: Value = serde_json::from_str(text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 11);
    for device in devices() {
        for case in cases {
            let run = match case["shape"].as_array().unwrap().len() {
                2 => run_case::<2>(case, &device),
                3 => run_case::<3>(case, &device),
                4 => run_case::<4>(case, &device),
                rank => panic!("rank {rank}"),
            };
            let (shape, param_shape) = (dims(&case["shape"]), dims(&case["param_shape"]));
            let (input, lows, ranges) = (
                floats(&case["input"]),
                floats(&case["input_low"]),
                floats(&case["range"]),
            );
            let levels = case["levels"].as_u64().unwrap() as u32;
            let openvino = floats(&case["expected"]);
            for i in 0..openvino.len() {
                let p = broadcast_index(i, &shape, &param_shape);
                let channel = p.min(run.module_lows.len() - 1);
                // The op runs on the case's range; the quantizer on its own effective range
                // (NNCF's arithmetic), a few ulps off the case's: against OpenVINO it may be off
                // by that difference on top of OpenVINO's own 2 ulps.
                let (module_low, module_range) =
                    (run.module_lows[channel], run.module_ranges[channel]);
                let drift = ((module_low - lows[p]).abs() as f64)
                    .max(((module_low + module_range) - (lows[p] + ranges[p])).abs() as f64);
                let checks = [
                    ("fake_quantize", run.direct[i], lows[p], ranges[p], 0.0),
                    (
                        "FakeQuantizer",
                        run.module[i],
                        module_low,
                        module_range,
                        drift,
                    ),
                ];
                for (what, got, low, range, drift) in checks {
                    let ulp = range_ulp(low, range);
                    let step = range as f64 / (levels - 1) as f64;
                    let (level, value) = exact(input[i], low, range, levels);
                    let got = got as f64;
                    let context = format!("{} {what} on {device:?}, element {i}", case["name"]);
                    assert_eq!(
                        ((got - low as f64) / step).round(),
                        level,
                        "{context}: level"
                    );
                    assert!(
                        (got - value).abs() <= 1.5 * ulp,
                        "{context}: {got} vs exact {value}"
                    );
                    let ov = openvino[i] as f64;
                    assert!(
                        (got - ov).abs() <= 2.0 * ulp + drift,
                        "{context}: {got} vs OpenVINO {ov}"
                    );
                }
            }
        }
    }
}

#[test]
fn hand_computed_values_round_half_to_even_and_saturate() {
    // Grid 0..=255 with step 1 (il = 0, r = 255, 256 levels): q = round-half-even(clamp(x)).
    let x = [-3.0, 0.0, 0.5, 1.5, 2.5, 3.49, 254.5, 255.0, 300.0];
    let want = [0.0, 0.0, 0.0, 2.0, 2.0, 3.0, 254.0, 255.0, 255.0];
    // Narrow signed 8-bit weights, scale 1.27: il = -1.27, r = 2.54, step 0.01.
    let w = [-2.0, -1.27, -0.004, 0.006, 0.016, 1.0, 1.27, 5.0];
    let w_want = [-1.27, -1.27, 0.0, 0.01, 0.02, 1.0, 1.27, 1.27];
    for device in devices() {
        let q = fake_quantize::<1>(
            Tensor::from_floats(x, &device),
            Tensor::from_floats([0.0], &device),
            Tensor::from_floats([255.0], &device),
            256,
        );
        assert_eq!(
            q.into_data().try_to_vec::<f32>().unwrap(),
            want,
            "{device:?}"
        );
        let q = fake_quantize::<1>(
            Tensor::from_floats(w, &device),
            Tensor::from_floats([-1.27], &device),
            Tensor::from_floats([2.54], &device),
            255,
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
        for (i, (got, want)) in q.iter().zip(w_want).enumerate() {
            assert!(
                (got - want).abs() < 1e-6,
                "{device:?} element {i}: {got} vs {want}"
            );
        }
    }
}
