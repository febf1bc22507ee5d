//! Resampling: Burn's interpolation as OpenVINO's Interpolate-11 over the last two axes.
//!
//! Burn's nearest mode takes source index `floor(o * in / out)` whatever `align_corners` says
//! (OpenVINO's `asymmetric` + `floor`); bilinear and bicubic clamp the source coordinate
//! `o * (in - 1) / (out - 1)` (`align_corners`) or `(o + 0.5) * in / out - 0.5`
//! (`half_pixel`, not `pytorch_half_pixel`, which differs for an output of 1), as OpenVINO's
//! `linear_onnx` and `cubic` (Keys, a = -0.75) do.

use burn_compress_graph::InterpolateMode;

use super::Lowerer;
use crate::error::Result;
use crate::ir::attr;

impl Lowerer<'_> {
    pub(super) fn interpolate(
        &mut self,
        i: usize,
        mode: InterpolateMode,
        align_corners: bool,
        output_size: &[usize],
    ) -> Result<()> {
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
            (InterpolateMode::Bilinear, false) => ("linear_onnx", "half_pixel"),
            (InterpolateMode::Bilinear, true) => ("linear_onnx", "align_corners"),
            (InterpolateMode::Bicubic, false) => ("cubic", "half_pixel"),
            (InterpolateMode::Bicubic, true) => ("cubic", "align_corners"),
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
