//! Resampling: Burn's interpolation as OpenVINO's Interpolate-11 over the last two axes.
//!
//! Burn's nearest mode takes source index `floor(o * in / out)` whatever `align_corners` says
//! (OpenVINO's `asymmetric` + `floor`); bilinear and bicubic clamp the source coordinate
//! `o * (in - 1) / (out - 1)` (`align_corners`) or `(o + 0.5) * in / out - 0.5`
//! (`half_pixel`, not `pytorch_half_pixel`, which differs for an output of 1), as OpenVINO's
//! `linear_onnx` and `cubic` (Keys, a = -0.75) do. Nearest-exact takes
//! `floor((o + 0.5) * in / out)` (OpenVINO's `tf_half_pixel_for_nn` + `floor`). Lanczos3 has no
//! OpenVINO operation: with the output size fixed it is one linear map per axis, so it lowers to
//! two MatMuls with constant matrices ([`lanczos3_matrix`]).

use burn_compress_graph::InterpolateMode;

use super::Lowerer;
use crate::error::Result;
use crate::ir::{attr, ElementType, Port};

impl Lowerer<'_> {
    pub(super) fn interpolate(
        &mut self,
        i: usize,
        mode: InterpolateMode,
        align_corners: bool,
        output_size: &[usize],
    ) -> Result<()> {
        if mode == InterpolateMode::Lanczos3 {
            return self.lanczos3(i, align_corners, output_size);
        }
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let rank = self.graph.value(node.inputs[0]).shape.len();
        let name = self.node_names[i].clone();
        let sizes: Vec<i64> = output_size.iter().map(|&d| d as i64).collect();
        let axes: Vec<i64> = (rank - sizes.len()..rank).map(|a| a as i64).collect();
        let sizes = self.ir.const_i64(format!("{name}/sizes"), &sizes);
        let axes = self.ir.const_i64(format!("{name}/axes"), &axes);
        let (mode, coordinates) = match (mode, align_corners) {
            (InterpolateMode::Nearest, _) => ("nearest", "asymmetric"),
            (InterpolateMode::NearestExact, _) => ("nearest", "tf_half_pixel_for_nn"),
            (InterpolateMode::Bilinear, false) => ("linear_onnx", "half_pixel"),
            (InterpolateMode::Bilinear, true) => ("linear_onnx", "align_corners"),
            (InterpolateMode::Bicubic, false) => ("cubic", "half_pixel"),
            (InterpolateMode::Bicubic, true) => ("cubic", "align_corners"),
            (InterpolateMode::Lanczos3, _) => unreachable!("lowered as MatMuls above"),
        };
        let zeros = vec!["0"; rank].join(",");
        let attrs = vec![
            attr("mode", mode),
            attr("shape_calculation_mode", "sizes"),
            attr("coordinate_transformation_mode", coordinates),
            attr("nearest_mode", "floor"),
            attr("antialias", "false"),
            attr("pads_begin", &zeros),
            attr("pads_end", &zeros),
            attr("cube_coeff", -0.75),
        ];
        self.emit(i, "Interpolate", "opset11", attrs, &[x, sizes, axes]);
        Ok(())
    }
}

impl Lowerer<'_> {
    /// Lanczos3 over the last two axes `[.., h, w]`: `x · Aw^T`, then `Ah · (..)`, with
    /// [`lanczos3_matrix`] for each axis.
    fn lanczos3(&mut self, i: usize, align_corners: bool, output_size: &[usize]) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let shape = self.graph.value(node.inputs[0]).shape.clone();
        let rank = shape.len();
        let &[out_h, out_w] = output_size else {
            return Err(self.err(i, "Lanczos3 resamples exactly two axes"));
        };
        let (in_h, in_w) = (shape[rank - 2], shape[rank - 1]);
        let name = self.node_names[i].clone();
        // Along the width: x [.., h, w] · [out_w, w]^T.
        let width_map = self.ir.const_f32(
            format!("{name}/width_map"),
            &[out_w, in_w],
            &lanczos3_matrix(in_w, out_w, align_corners),
        );
        let mut dims = self.dims(node.inputs[0]);
        dims[rank - 1] = out_w as i64;
        let matmul = |transpose_b| {
            vec![
                attr("transpose_a", "false"),
                attr("transpose_b", transpose_b),
            ]
        };
        let rows = self.ir.add_layer(
            "MatMul",
            "opset1",
            format!("{name}/width"),
            matmul("true"),
            &[x, width_map],
            vec![Port {
                element: ElementType::F32,
                dims,
            }],
        )[0];
        // Along the height: [out_h, h] · [.., h, out_w], broadcast over the leading axes.
        let height_map = self.ir.const_f32(
            format!("{name}/height_map"),
            &[out_h, in_h],
            &lanczos3_matrix(in_h, out_h, align_corners),
        );
        self.emit(i, "MatMul", "opset1", matmul("false"), &[height_map, rows]);
        Ok(())
    }
}

/// Burn's Lanczos3 resampling of one axis as a row-major `[out, in]` matrix: output `o` samples
/// source coordinate `c` (`o * (in - 1) / (out - 1)` with `align_corners`, else
/// `(o + 0.5) * in / out - 0.5`) with taps `floor(c) - 2 ..= floor(c) + 3` inside the input,
/// weighted `L(c - k)` with `L(x) = sin(πx) sin(πx/3) / (πx · πx/3)`, `L(0) = 1`, zero for
/// `|x| ≥ 3`, and divided by the row's sum (Burn divides by the product of both axes' sums).
pub(crate) fn lanczos3_matrix(input: usize, output: usize, align_corners: bool) -> Vec<f32> {
    let ratio = if align_corners {
        (input as f64 - 1.0) / (output.max(1) - 1).max(1) as f64
    } else {
        input as f64 / output as f64
    };
    let kernel = |x: f64| {
        if x == 0.0 {
            1.0
        } else if x.abs() >= 3.0 {
            0.0
        } else {
            let pi_x = std::f64::consts::PI * x;
            (pi_x.sin() * (pi_x / 3.0).sin()) / (pi_x * (pi_x / 3.0))
        }
    };
    let mut matrix = vec![0.0f32; output * input];
    for (o, row) in matrix.chunks_mut(input).enumerate() {
        let coordinate = if align_corners {
            o as f64 * ratio
        } else {
            (o as f64 + 0.5) * ratio - 0.5
        };
        let base = coordinate.floor();
        let taps: Vec<(usize, f64)> = (-2..=3)
            .map(|offset| base as i64 + offset)
            .filter(|&k| k >= 0 && k < input as i64)
            .map(|k| (k as usize, kernel(coordinate - k as f64)))
            .collect();
        let sum: f64 = taps.iter().map(|(_, w)| w).sum();
        let scale = if sum != 0.0 { 1.0 / sum } else { 1.0 };
        for (k, weight) in taps {
            row[k] = (weight * scale) as f32;
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::lanczos3_matrix;

    #[test]
    fn lanczos3_rows_sum_to_one_and_an_equal_size_is_the_identity() {
        for (input, output, corners) in [(5, 9, false), (9, 4, true), (7, 7, false), (1, 3, false)]
        {
            let m = lanczos3_matrix(input, output, corners);
            for row in m.chunks(input) {
                let sum: f32 = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-6,
                    "{input}->{output}: row sums to {sum}"
                );
            }
        }
        // Same size, half-pixel: every output sits on its source pixel, L(0) = 1, L(±k) = 0.
        let m = lanczos3_matrix(6, 6, false);
        for (o, row) in m.chunks(6).enumerate() {
            for (k, &w) in row.iter().enumerate() {
                let expected = if o == k { 1.0 } else { 0.0 };
                assert!((w - expected).abs() < 1e-7, "({o}, {k}): {w}");
            }
        }
    }

    #[test]
    fn lanczos3_upsampling_by_two_uses_the_kernel_at_quarter_offsets() {
        // in 8 -> out 16, half-pixel: output 8 samples c = 8.5 * 0.5 - 0.5 = 3.75, taps 1..=6
        // at distances 2.75, 1.75, 0.75, -0.25, -1.25, -2.25.
        let l = |x: f64| {
            let p = std::f64::consts::PI * x;
            p.sin() * (p / 3.0).sin() / (p * p / 3.0)
        };
        let distances = [2.75, 1.75, 0.75, -0.25, -1.25, -2.25];
        let sum: f64 = distances.iter().map(|&d| l(d)).sum();
        let m = lanczos3_matrix(8, 16, false);
        let row = &m[8 * 8..9 * 8];
        for (k, d) in (1..=6).zip(distances) {
            assert!((row[k] as f64 - l(d) / sum).abs() < 1e-7, "tap {k}");
        }
        assert_eq!((row[0], row[7]), (0.0, 0.0));
    }
}
