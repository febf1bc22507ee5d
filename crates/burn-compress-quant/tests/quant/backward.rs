//! Gradients: NNCF's formulas (DESIGN.md, from its `reference.py`) element by element (below, inside and above the range), and
//! central finite differences where the output is smooth in the parameter (saturated inputs).

use burn::tensor::{Device, Tensor};
use burn_compress_quant::{fake_quantize_symmetric, fake_quantize_trainable, Form};

use crate::devices;

/// Where an input falls relative to the range.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Region {
    Below,
    Inside,
    Above,
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
}

/// Symmetric quantizer on one input: returns (q, dq/dx, dq/ds) for upstream gradient `g`.
fn symmetric_grads(device: &Device, x: f32, s: f32, g: f32, ll: i32, lh: i32) -> (f32, f32, f32) {
    let ad = device.clone().autodiff();
    let x_t = Tensor::<1>::from_floats([x], &ad).require_grad();
    let s_t = Tensor::<1>::from_floats([s], &ad).require_grad();
    let q = fake_quantize_symmetric(x_t.clone(), s_t.clone(), ll, lh, Form::FakeQuantize);
    let loss = q.clone().mul_scalar(g).sum();
    let grads = loss.backward();
    (
        scalar(q),
        scalar(x_t.grad(&grads).unwrap()),
        scalar(s_t.grad(&grads).unwrap()),
    )
}

/// Asymmetric quantizer on one input: returns (q, dq/dx, dq/d(range), dq/d(input_low)).
fn asymmetric_grads(device: &Device, x: f32, low: f32, range: f32, g: f32) -> (f32, f32, f32, f32) {
    let ad = device.clone().autodiff();
    let x_t = Tensor::<1>::from_floats([x], &ad).require_grad();
    let low_t = Tensor::<1>::from_floats([low], &ad).require_grad();
    let range_t = Tensor::<1>::from_floats([range], &ad).require_grad();
    let q = fake_quantize_trainable(
        x_t.clone(),
        low_t.clone(),
        range_t.clone(),
        range_t.clone(),
        256,
        Form::FakeQuantize,
    );
    let grads = q.clone().mul_scalar(g).sum().backward();
    (
        scalar(q),
        scalar(x_t.grad(&grads).unwrap()),
        scalar(range_t.grad(&grads).unwrap()),
        scalar(low_t.grad(&grads).unwrap()),
    )
}

fn close(got: f32, want: f32, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn symmetric_gradients_follow_nncf_formulas_per_element() {
    // (x, region) for scale 2.0; grids: signed narrow weights, unsigned and signed activations.
    let inputs = [
        (-3.1, Region::Below),
        (-0.77, Region::Inside),
        (0.013, Region::Inside),
        (1.234, Region::Inside),
        (2.6, Region::Above),
    ];
    let s = 2.0f32;
    let g = 0.7f32;
    for device in devices() {
        for (ll, lh) in [(-127, 127), (-128, 127), (0, 255), (-8, 7)] {
            for &(x, region) in &inputs {
                let region = if x < s * ll as f32 / lh as f32 {
                    Region::Below
                } else {
                    region
                };
                let (q, dx, ds) = symmetric_grads(&device, x, s, g, ll, lh);
                let what = format!("{device:?} grid [{ll},{lh}] x={x} {region:?}");
                // NNCF divides the inside term by the range r = s − s·ll/lh, not by s.
                let range = s - s * ll as f32 / lh as f32;
                let (want_dx, want_ds) = match region {
                    Region::Inside => (g, g * (q - x) / range),
                    Region::Above => (0.0, g),
                    Region::Below => (0.0, g * ll as f32 / lh as f32),
                };
                close(dx, want_dx, &format!("{what} d/dx"));
                close(ds, want_ds, &format!("{what} d/ds"));
            }
        }
    }
}

#[test]
fn asymmetric_gradients_follow_nncf_formulas_per_element() {
    let (low, range, g) = (-0.6f32, 2.4f32, -1.3f32);
    let inputs = [
        (-1.0, Region::Below),
        (-0.2, Region::Inside),
        (0.91, Region::Inside),
        (1.79, Region::Inside),
        (2.5, Region::Above),
    ];
    for device in devices() {
        for &(x, region) in &inputs {
            let (q, dx, dr, dl) = asymmetric_grads(&device, x, low, range, g);
            let what = format!("{device:?} x={x} {region:?}");
            let (want_dx, want_dr, want_dl) = match region {
                Region::Inside => (g, g * (q - x) / range, 0.0),
                Region::Above => (0.0, g, g),
                Region::Below => (0.0, 0.0, g),
            };
            close(dx, want_dx, &format!("{what} d/dx"));
            close(dr, want_dr, &format!("{what} d/drange"));
            close(dl, want_dl, &format!("{what} d/dlow"));
        }
    }
}

#[test]
fn gradients_agree_with_finite_differences_where_smooth() {
    let h = 1e-3f32;
    for device in devices() {
        // Symmetric signed activations: saturated inputs are smooth in the scale.
        for x in [-9.0f32, 7.5] {
            let forward = |s: f32| symmetric_grads(&device, x, s, 1.0, -128, 127).0;
            let numeric = (forward(2.0 + h) - forward(2.0 - h)) / (2.0 * h);
            let (_, dx, ds) = symmetric_grads(&device, x, 2.0, 1.0, -128, 127);
            assert!(
                (ds - numeric).abs() < 2e-3,
                "{device:?} x={x}: d/ds {ds} vs fd {numeric}"
            );
            let numeric_x = (symmetric_grads(&device, x + h, 2.0, 1.0, -128, 127).0
                - symmetric_grads(&device, x - h, 2.0, 1.0, -128, 127).0)
                / (2.0 * h);
            assert!(
                (dx - numeric_x).abs() < 1e-6,
                "{device:?} x={x}: d/dx {dx} vs fd {numeric_x}"
            );
        }
        // Asymmetric: saturated inputs are smooth in both input_low and range.
        for x in [-4.0f32, 5.0] {
            let q = |low: f32, range: f32| asymmetric_grads(&device, x, low, range, 1.0).0;
            let (_, _, dr, dl) = asymmetric_grads(&device, x, -0.6, 2.4, 1.0);
            let fd_r = (q(-0.6, 2.4 + h) - q(-0.6, 2.4 - h)) / (2.0 * h);
            let fd_l = (q(-0.6 + h, 2.4) - q(-0.6 - h, 2.4)) / (2.0 * h);
            assert!(
                (dr - fd_r).abs() < 2e-3,
                "{device:?} x={x}: d/drange {dr} vs fd {fd_r}"
            );
            assert!(
                (dl - fd_l).abs() < 2e-3,
                "{device:?} x={x}: d/dlow {dl} vs fd {fd_l}"
            );
        }
    }
}
