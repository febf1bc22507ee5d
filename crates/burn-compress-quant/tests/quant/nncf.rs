//! Outputs and gradients of NNCF 3.4.0's own quantize functions (`symmetric_quantize`,
//! `asymmetric_quantize`, eps 1e-16; `tests/data/nncf_fake_quant_cases.json`) against
//! [`FakeQuantizer`] on every backend: forward within 1e-6 and input gradients within 1e-5,
//! relative; range gradients, which are sums over a channel, within 1e-5 of the sum of the
//! magnitudes of their terms (float32 summation error lives at that scale, and a channel's sum
//! can cancel to far below it), the terms computed from NNCF's own outputs.

use burn::module::Param;
use burn::tensor::{Device, Shape, Tensor, TensorData};
use burn_compress_quant::{FakeQuantizer, QuantMode, ResolvedSpec};
use serde_json::Value;

use crate::{devices, dims, floats};

/// The NNCF reference cases.
pub fn cases() -> Vec<Value> {
    let text = include_str!("../../../../tests/data/nncf_fake_quant_cases.json");
    let cases: Value = serde_json::from_str(text).expect("valid JSON");
    cases.as_array().expect("a list of cases").clone()
}

/// The quantizer a case describes, with its parameters as trainable leaves on `device`.
pub fn quantizer(case: &Value, device: &Device) -> FakeQuantizer {
    let params = &case["params"];
    let param = |values: Vec<f32>| {
        let n = values.len();
        Param::from_data(TensorData::new(values, Shape::new([n])), device)
    };
    let symmetric = case["symmetric"].as_bool().unwrap();
    let spec = ResolvedSpec {
        mode: if symmetric {
            QuantMode::Symmetric
        } else {
            QuantMode::Asymmetric
        },
        level_low: case["level_low"].as_i64().unwrap() as i32,
        level_high: case["level_high"].as_i64().unwrap() as i32,
        axis: case["axis"].as_u64().map(|a| a as usize),
    };
    assert_eq!(spec.levels() as u64, case["levels"].as_u64().unwrap());
    if symmetric {
        FakeQuantizer {
            scale: param(floats(&params["scale"])),
            input_low: None,
            spec,
        }
    } else {
        FakeQuantizer {
            scale: param(floats(&params["input_range"])),
            input_low: Some(param(floats(&params["input_low"]))),
            spec,
        }
    }
}

struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    /// `scale`, or `input_low` and `input_range`, as NNCF names them.
    grads: Vec<(&'static str, Vec<f32>)>,
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Forward and backward of `sum(quantizer(x) * g)` on an autodiff copy of `device`.
fn run<const D: usize>(case: &Value, device: &Device) -> Run {
    let ad = device.clone().autodiff();
    let shape = dims(&case["shape"]);
    let tensor = |key: &str| {
        Tensor::<D>::from_data(
            TensorData::new(floats(&case[key]), Shape::from(shape.clone())),
            &ad,
        )
    };
    let x = tensor("x").require_grad();
    let g = tensor("g");
    let q = quantizer(case, &ad);
    // Weight quantizers compute integer levels times the step (as the IR's weights do).
    let weight = case["name"].as_str().unwrap().starts_with("sym_w");
    let y = if weight {
        q.forward_weight(x.clone())
    } else {
        q.forward(x.clone())
    };
    let grads = y.clone().mul(g).sum().backward();
    let mut named = vec![];
    match &q.input_low {
        None => named.push(("scale", read(q.scale.val().grad(&grads).unwrap()))),
        Some(low) => {
            named.push(("input_low", read(low.val().grad(&grads).unwrap())));
            named.push(("input_range", read(q.scale.val().grad(&grads).unwrap())));
        }
    }
    Run {
        y: read(y),
        dx: read(x.grad(&grads).unwrap()),
        grads: named,
    }
}

/// `got` equals `want` within `relative` of `want`'s magnitude (floored at `floor`, the scale
/// below which a value counts as zero for this quantity).
fn assert_close(got: &[f32], want: &[f32], relative: f32, floor: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = relative * w.abs().max(floor);
        assert!(
            (g - w).abs() <= tolerance,
            "{what}[{i}]: got {g}, NNCF {w} (difference {:e} > {tolerance:e})",
            (g - w).abs()
        );
    }
}

/// Per range parameter and channel, `Σ|g·∂y/∂p|` over the elements, with NNCF's formulas on
/// NNCF's own outputs: inside `(y − x)/r` (scale, range), above 1, below `ll/lh` (scale) or 1
/// (input low, and range of nothing below).
fn term_magnitudes(case: &Value) -> std::collections::HashMap<&'static str, Vec<f32>> {
    let (x, g, y) = (floats(&case["x"]), floats(&case["g"]), floats(&case["y"]));
    let shape = dims(&case["shape"]);
    let axis = case["axis"].as_u64().map(|a| a as usize);
    let channel = |i: usize| match axis {
        Some(a) => (i / shape[a + 1..].iter().product::<usize>()) % shape[a],
        None => 0,
    };
    let (ll, lh) = (
        case["level_low"].as_f64().unwrap() as f32,
        case["level_high"].as_f64().unwrap() as f32,
    );
    let params = &case["params"];
    let mut out = std::collections::HashMap::new();
    if case["symmetric"].as_bool().unwrap() {
        let scales = floats(&params["scale"]);
        let mut sums = vec![0.0f32; scales.len()];
        for i in 0..x.len() {
            let s = scales[channel(i)].abs();
            let (low, range) = (s * ll / lh, s - s * ll / lh);
            let term = if x[i] > low + range {
                1.0
            } else if x[i] < low {
                ll / lh
            } else {
                (y[i] - x[i]) / range
            };
            sums[channel(i)] += (g[i] * term).abs();
        }
        out.insert("scale", sums);
    } else {
        let n = floats(&params["input_low"]).len();
        let (mut lows, mut ranges) = (vec![0.0f32; n], vec![0.0f32; n]);
        // Saturated elements sit at the output's extremes; their terms are |g|.
        let lowest = |c: usize| {
            y.iter()
                .enumerate()
                .filter(|(i, _)| channel(*i) == c)
                .map(|(_, v)| *v)
                .fold(f32::INFINITY, f32::min)
        };
        let highest = |c: usize| {
            y.iter()
                .enumerate()
                .filter(|(i, _)| channel(*i) == c)
                .map(|(_, v)| *v)
                .fold(f32::NEG_INFINITY, f32::max)
        };
        for i in 0..x.len() {
            let c = channel(i);
            let (low, high) = (lowest(c), highest(c));
            let range = (high - low).max(f32::MIN_POSITIVE);
            if x[i] > high {
                lows[c] += g[i].abs();
                ranges[c] += g[i].abs();
            } else if x[i] < low {
                lows[c] += g[i].abs();
            } else {
                ranges[c] += (g[i] * (y[i] - x[i]) / range).abs();
            }
        }
        out.insert("input_low", lows);
        out.insert("input_range", ranges);
    }
    out
}

#[test]
fn forward_and_gradients_equal_nncf_on_every_quantizer_kind() {
    let cases = cases();
    assert_eq!(cases.len(), 6, "six quantizer kinds");
    for device in devices() {
        for case in &cases {
            let name = format!("{} on {device:?}", case["name"].as_str().unwrap());
            let run = match case["shape"].as_array().unwrap().len() {
                4 => run::<4>(case, &device),
                rank => panic!("{name}: rank {rank}"),
            };
            // Values are multiples of a quantization step; relative to the largest of them.
            let y = floats(&case["y"]);
            let y_scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_close(&run.y, &y, 1e-6, y_scale, &format!("{name}: forward"));
            assert_close(
                &run.dx,
                &floats(&case["dx"]),
                1e-5,
                1e-6,
                &format!("{name}: dx"),
            );
            let magnitudes = term_magnitudes(case);
            for (key, got) in &run.grads {
                let want = floats(&case["grads"][*key]);
                for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                    let scale = w.abs().max(magnitudes[key][c]);
                    assert!(
                        (g - w).abs() <= 1e-5 * scale,
                        "{name}: d/d{key}[{c}]: got {g}, NNCF {w} (terms sum to {scale})"
                    );
                }
            }
        }
    }
}
