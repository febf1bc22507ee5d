//! Shape operations: Reshape (dynamic batch kept), Transpose, Slice, Pad, and Gather (the rows
//! of an embedding table that integer ids name).

use burn_compress_graph::{PadMode, SliceRange};

use super::{bool_str, Lowerer};
use crate::error::Result;
use crate::ir::{attr, ElementType, PortRef};

impl Lowerer<'_> {
    /// Gather-8 of `data` (input 0) at the integer `indices` (input 1) along `axis`.
    pub(super) fn gather(&mut self, i: usize, axis: usize) -> Result<()> {
        let p = self.input_ports(i)?;
        let name = format!("{}/axis", self.node_names[i]);
        let axis = self
            .ir
            .add_const(name, ElementType::I64, &[], &(axis as i64).to_le_bytes());
        self.emit(
            i,
            "Gather",
            "opset8",
            vec![attr("batch_dims", 0)],
            &[p[0], p[1], axis],
        );
        Ok(())
    }

    pub(super) fn reshape(&mut self, i: usize) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let (target, special_zero) = self.reshape_target(i)?;
        let c = self
            .ir
            .const_i64(format!("{}/shape", self.node_names[i]), &target);
        self.emit(
            i,
            "Reshape",
            "opset1",
            vec![attr("special_zero", bool_str(special_zero))],
            &[x, c],
        );
        Ok(())
    }

    pub(super) fn transpose(&mut self, i: usize, perm: &[usize]) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let order: Vec<i64> = perm.iter().map(|&d| d as i64).collect();
        let c = self
            .ir
            .const_i64(format!("{}/order", self.node_names[i]), &order);
        self.emit(i, "Transpose", "opset1", vec![], &[x, c]);
        Ok(())
    }

    pub(super) fn slice(&mut self, i: usize, ranges: &[SliceRange]) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let g = self.graph;
        let x = self.port_of(node.inputs[0])?;
        let input = g.value(node.inputs[0]);
        let (mut starts, mut stops, mut steps, mut axes) = (vec![], vec![], vec![], vec![]);
        for (axis, r) in ranges.iter().enumerate() {
            let full = r.start == 0 && r.end == input.shape[axis] && r.step == 1;
            if full {
                continue;
            }
            if input.dynamic[axis] {
                return Err(self.err(i, "slicing along the dynamic batch axis"));
            }
            starts.push(r.start as i64);
            stops.push(r.end as i64);
            steps.push(r.step as i64);
            axes.push(axis as i64);
        }
        let base = self.node_names[i].clone();
        let c: Vec<PortRef> = [
            ("start", starts),
            ("stop", stops),
            ("step", steps),
            ("axes", axes),
        ]
        .into_iter()
        .map(|(n, v)| self.ir.const_i64(format!("{base}/{n}"), &v))
        .collect();
        self.emit(i, "Slice", "opset8", vec![], &[x, c[0], c[1], c[2], c[3]]);
        Ok(())
    }

    /// The Reshape target: static dims, `-1` for the one dimension that follows the batch, or
    /// `0` (copy, with `special_zero`) for dynamic dims kept in place.
    fn reshape_target(&self, i: usize) -> Result<(Vec<i64>, bool)> {
        let node = &self.graph.nodes[i];
        let input = self.graph.value(node.inputs[0]);
        let output = self.graph.value(node.output);
        let dynamic: Vec<usize> = (0..output.shape.len())
            .filter(|&d| output.dynamic[d])
            .collect();
        let mut target: Vec<i64> = output.shape.iter().map(|&d| d as i64).collect();
        match dynamic.len() {
            0 => Ok((target, false)),
            1 => {
                target[dynamic[0]] = -1;
                Ok((target, false))
            }
            _ => {
                let mut unresolved = Vec::new();
                for &d in &dynamic {
                    if d < input.shape.len()
                        && input.dynamic[d]
                        && input.shape[d] == output.shape[d]
                    {
                        target[d] = 0;
                    } else {
                        unresolved.push(d);
                    }
                }
                if unresolved.len() > 1 {
                    return Err(self.err(i, "more than one reshaped dimension follows the batch"));
                }
                if let Some(&d) = unresolved.first() {
                    target[d] = -1;
                }
                Ok((target, true))
            }
        }
    }

    pub(super) fn pad(&mut self, i: usize, pads: &[(usize, usize)], mode: PadMode) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let name = self.node_names[i].clone();
        let begin: Vec<i64> = pads.iter().map(|p| p.0 as i64).collect();
        let end: Vec<i64> = pads.iter().map(|p| p.1 as i64).collect();
        let begin = self.ir.const_i64(format!("{name}/pads_begin"), &begin);
        let end = self.ir.const_i64(format!("{name}/pads_end"), &end);
        let (pad_mode, value) = match mode {
            PadMode::Constant(value) => ("constant", Some(value)),
            PadMode::Reflect => ("reflect", None),
            PadMode::Edge => ("edge", None),
        };
        let mut inputs = vec![x, begin, end];
        if let Some(value) = value {
            inputs.push(
                self.ir
                    .const_f32(format!("{name}/value"), &[], &[value as f32]),
            );
        }
        self.emit(
            i,
            "Pad",
            "opset12",
            vec![attr("pad_mode", pad_mode)],
            &inputs,
        );
        Ok(())
    }
}
