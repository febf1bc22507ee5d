//! The fused fake-quantize (autodiff on Flex, and with `--features wgpu` on wgpu) against the
//! unfused chain and NNCF's formulas: on the NNCF reference data its forward equals the unfused
//! op's bit for bit and, with one range per element (so no channel sums), every gradient equals
//! NNCF's formula for that element and the unfused op's exactly (the two zeros counted as one).
//! Per-channel layouts check the channel indexing and sums.

use burn::tensor::{Device, Shape, Tensor, TensorData};
use burn_compress_quant::{
    fake_quantize_trainable, fake_quantize_trainable_unfused, fused, Form, Operands,
};
use serde_json::Value;

use crate::nncf::{cases, quantizer};
use crate::{dims, floats};

/// Values and gradients of one run: y, dx, d(input_low), d(range), d(learned).
type Outcome = [Vec<f32>; 5];

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Bits, except that the two zeros count as one (a gradient of `g − g` may be either).
fn numbers(values: &[f32]) -> Vec<u32> {
    values
        .iter()
        .map(|v| if *v == 0.0 { 0 } else { v.to_bits() })
        .collect()
}

/// `sum(FQ(x)·g)` and its gradients with `input_low`, `range` and `learned` as separate leaves
/// (`learned` holds the range's values) on `device`, fused or not.
#[allow(clippy::too_many_arguments)]
fn run<const D: usize>(
    device: &Device,
    x: &[f32],
    g: &[f32],
    shape: [usize; D],
    (low, range, param_shape): (&[f32], &[f32], [usize; D]),
    levels: u32,
    form: Form,
    fused_op: bool,
) -> Outcome {
    let device = device.clone().autodiff();
    let leaf = |values: &[f32], dims: [usize; D]| {
        Tensor::<D>::from_data(TensorData::new(values.to_vec(), Shape::new(dims)), &device)
            .require_grad()
    };
    let (xt, lowt, ranget, learnedt) = (
        leaf(x, shape),
        leaf(low, param_shape),
        leaf(range, param_shape),
        leaf(range, param_shape),
    );
    let operands = Operands {
        x: xt.clone(),
        input_low: lowt.clone(),
        range: ranget.clone(),
        learned: learnedt.clone(),
    };
    let y = if fused_op {
        assert!(
            fused::supports(&operands),
            "the fused op applies to autodiff tensors on {device:?}"
        );
        fake_quantize_trainable(
            xt.clone(),
            lowt.clone(),
            ranget.clone(),
            learnedt.clone(),
            levels,
            form,
        )
    } else {
        fake_quantize_trainable_unfused(operands, levels, form)
    };
    let upstream = Tensor::<D>::from_data(TensorData::new(g.to_vec(), Shape::new(shape)), &device);
    let grads = y.clone().mul(upstream).sum().backward();
    let grad = |t: &Tensor<D>| read(t.grad(&grads).expect("a gradient"));
    [
        read(y),
        grad(&xt),
        grad(&lowt),
        grad(&ranget),
        grad(&learnedt),
    ]
}

/// The devices whose backends have the fused op.
fn fused_devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut devices = vec![Device::flex()];
    #[cfg(feature = "wgpu")]
    devices.push(Device::wgpu(burn::tensor::DeviceKind::Cpu));
    devices
}

/// A case's effective `(input_low, range)` (NNCF's |s| + eps, TuneRange) per element of `x`.
fn per_element_range(case: &Value) -> (Vec<f32>, Vec<f32>) {
    let (lows, highs) = quantizer(case, &Device::flex()).range_values();
    let shape = dims(&case["shape"]);
    let axis = case["axis"].as_u64().map(|a| a as usize);
    let channel = |i: usize| match axis {
        Some(a) => (i / shape[a + 1..].iter().product::<usize>()) % shape[a],
        None => 0,
    };
    let n: usize = shape.iter().product();
    let low: Vec<f32> = (0..n).map(|i| lows[channel(i)]).collect();
    let range = (0..n)
        .map(|i| highs[channel(i)] - lows[channel(i)])
        .collect();
    (low, range)
}

#[test]
fn fused_equals_unfused_and_nncf_formulas_per_element_on_reference_data() {
    for (device, case) in fused_devices()
        .into_iter()
        .flat_map(|d| cases().into_iter().map(move |c| (d.clone(), c)))
    {
        let name = case["name"].as_str().unwrap().to_string();
        let (x, g) = (floats(&case["x"]), floats(&case["g"]));
        let (low, range) = per_element_range(&case);
        let levels = case["levels"].as_u64().unwrap() as u32;
        let n = x.len();
        for form in [Form::FakeQuantize, Form::Integer] {
            let what = format!("{name}, {form:?} on {device:?}");
            let params = (low.as_slice(), range.as_slice(), [n, 1]);
            let fused = run(&device, &x, &g, [n, 1], params, levels, form, true);
            let unfused = run(&device, &x, &g, [n, 1], params, levels, form, false);
            for (k, label) in ["value", "dx", "d input_low", "d range", "d learned"]
                .iter()
                .enumerate()
            {
                let compare = if k == 0 { bits } else { numbers };
                assert_eq!(
                    compare(&fused[k]),
                    compare(&unfused[k]),
                    "{what}: {label} differs from the unfused op"
                );
            }
            // NNCF's formulas, element by element.
            let [y, dx, dlow, drange, dlearned] = &fused;
            for i in 0..n {
                let (lo, r) = (low[i], range[i]);
                let (below, above) = (x[i] < lo, x[i] > lo + r);
                let inside = !below && !above;
                let want = [
                    if inside { g[i] } else { 0.0 },
                    if inside { 0.0 } else { g[i] },
                    if above { g[i] } else { 0.0 },
                    if inside {
                        g[i] * ((y[i] - x[i]) / r)
                    } else {
                        0.0
                    },
                ];
                let got = [dx[i], dlow[i], drange[i], dlearned[i]];
                assert_eq!(
                    numbers(&got),
                    numbers(&want),
                    "{what}[{i}]: gradients (x, input_low, range, learned) \
                     for x {} in [{lo}, {}]",
                    x[i],
                    lo + r
                );
            }
        }
    }
}

#[test]
fn fused_per_channel_layouts_equal_the_unfused_op() {
    // Channels on axis 0 (convolution weights), axis 1 (activations), the last axis (Linear
    // weights: channels interleaved along each row) and per tensor, on a 4-D input whose axes 0
    // and 1 have the same size (the axis must come from the parameters' shape).
    let shape = [3, 3, 4, 5];
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
        .collect();
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
        .collect();
    let layouts = [[3, 1, 1, 1], [1, 3, 1, 1], [1, 1, 1, 5], [1, 1, 1, 1]];
    for (device, param_shape) in fused_devices()
        .into_iter()
        .flat_map(|d| layouts.map(move |l| (d.clone(), l)))
    {
        let channels: usize = param_shape.iter().product();
        let low: Vec<f32> = (0..channels).map(|c| -1.0 - c as f32 * 0.25).collect();
        let range: Vec<f32> = (0..channels).map(|c| 2.0 + c as f32 * 0.5).collect();
        for form in [Form::FakeQuantize, Form::Integer] {
            let params = (low.as_slice(), range.as_slice(), param_shape);
            let fused = run(&device, &x, &g, shape, params, 256, form, true);
            let unfused = run(&device, &x, &g, shape, params, 256, form, false);
            let what = format!("{param_shape:?}, {form:?} on {device:?}");
            assert_eq!(bits(&fused[0]), bits(&unfused[0]), "{what}: value");
            assert_eq!(numbers(&fused[1]), numbers(&unfused[1]), "{what}: dx");
            // Channel sums: equal up to float32 summation order.
            for k in 2..5 {
                for (a, b) in fused[k].iter().zip(&unfused[k]) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{what}: gradient {k}: fused {a}, unfused {b}"
                    );
                }
            }
        }
    }
}
