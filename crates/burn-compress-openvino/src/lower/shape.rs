//! Shape and data-movement operations: Reshape (dynamic batch kept), Transpose, Slice, Flip,
//! SliceScatter, Pad, Gather (the rows of an embedding table that integer ids name, Burn's
//! `select`), Tile, and broadcasts (Burn's `expand` and filled tensors, to the run-time batch
//! size where a dimension follows it).

use burn_compress_graph::{PadMode, SliceRange};

use super::{bool_str, Lowerer};
use crate::error::Result;
use crate::ir::{attr, ElementType, Port, PortRef};

impl Lowerer<'_> {
    /// Gather-8 of `data` (input 0) at the integer `indices` (input 1) along `axis`.
    pub(super) fn gather(&mut self, i: usize, axis: usize) -> Result<()> {
        let p = self.input_ports(i)?;
        let name = format!("{}/axis", self.node_names[i]);
        let axis = self.ir.const_i64_scalar(name, axis as i64);
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
        let x = self.port_of(node.inputs[0])?;
        let [start, stop, step, axes] = self.slice_bounds(i, ranges)?;
        self.emit(i, "Slice", "opset8", vec![], &[x, start, stop, step, axes]);
        Ok(())
    }

    /// Slice-8 from the last element to before the first, step -1, along each of `axes` (the
    /// dynamic batch axis too: the bounds do not depend on its size).
    pub(super) fn flip(&mut self, i: usize, axes: &[usize]) -> Result<()> {
        let x = self.port_of(self.graph.nodes[i].inputs[0])?;
        let base = self.node_names[i].clone();
        let n = axes.len();
        let start = self.ir.const_i64(format!("{base}/start"), &vec![-1; n]);
        let stop = self
            .ir
            .const_i64(format!("{base}/stop"), &vec![i64::MIN; n]);
        let step = self.ir.const_i64(format!("{base}/step"), &vec![-1; n]);
        let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let axes = self.ir.const_i64(format!("{base}/axes"), &axes);
        self.emit(i, "Slice", "opset8", vec![], &[x, start, stop, step, axes]);
        Ok(())
    }

    /// SliceScatter-15: input 0 with the slice `ranges` replaced by input 1.
    pub(super) fn slice_assign(&mut self, i: usize, ranges: &[SliceRange]) -> Result<()> {
        let p = self.input_ports(i)?;
        let [start, stop, step, axes] = self.slice_bounds(i, ranges)?;
        self.emit(
            i,
            "SliceScatter",
            "opset15",
            vec![],
            &[p[0], p[1], start, stop, step, axes],
        );
        Ok(())
    }

    /// Start, stop, step and axes constants for the axes `ranges` does not take whole, of node
    /// `i`'s input 0 (a dynamic axis must be taken whole).
    fn slice_bounds(&mut self, i: usize, ranges: &[SliceRange]) -> Result<[PortRef; 4]> {
        let input = self.graph.value(self.graph.nodes[i].inputs[0]);
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
        let mut constant = |n: &str, v: Vec<i64>| self.ir.const_i64(format!("{base}/{n}"), &v);
        Ok([
            constant("start", starts),
            constant("stop", stops),
            constant("step", steps),
            constant("axes", axes),
        ])
    }

    /// Broadcast-3 of `value` to node `i`'s output shape (a dimension that follows the batch
    /// takes the batch size at run time), in the output's element type.
    pub(super) fn full(&mut self, i: usize, value: f64) -> Result<()> {
        let base = self.node_names[i].clone();
        let scalar = match self.out_port(self.graph.nodes[i].output).element {
            ElementType::Boolean => self.ir.add_const(
                format!("{base}/value"),
                ElementType::Boolean,
                &[],
                &[u8::from(value != 0.0)],
            ),
            ElementType::I64 => self.ir.add_const(
                format!("{base}/value"),
                ElementType::I64,
                &[],
                &(value as i64).to_le_bytes(),
            ),
            _ => self
                .ir
                .const_f32(format!("{base}/value"), &[], &[value as f32]),
        };
        self.broadcast_to_output(i, scalar)
    }

    /// Broadcast-3 of input 0 to node `i`'s output shape (Burn's `expand`).
    pub(super) fn expand(&mut self, i: usize) -> Result<()> {
        let x = self.port_of(self.graph.nodes[i].inputs[0])?;
        self.broadcast_to_output(i, x)
    }

    /// Tile-1 of input 0, `repeats` times along each axis.
    pub(super) fn tile(&mut self, i: usize, repeats: &[usize]) -> Result<()> {
        let out = self.graph.value(self.graph.nodes[i].output);
        if let Some(axis) = (0..repeats.len()).find(|&a| out.dynamic[a] && repeats[a] != 1) {
            return Err(self.err(
                i,
                format!("repeating along axis {axis}, which follows the batch"),
            ));
        }
        let x = self.port_of(self.graph.nodes[i].inputs[0])?;
        let repeats: Vec<i64> = repeats.iter().map(|&r| r as i64).collect();
        let repeats = self
            .ir
            .const_i64(format!("{}/repeats", self.node_names[i]), &repeats);
        self.emit(i, "Tile", "opset1", vec![], &[x, repeats]);
        Ok(())
    }

    /// Broadcast-3 (numpy) of `x` to node `i`'s output shape; a dimension that follows the
    /// batch takes the batch size of the first input at run time.
    fn broadcast_to_output(&mut self, i: usize, x: PortRef) -> Result<()> {
        let g = self.graph;
        let out = g.value(g.nodes[i].output);
        let base = self.node_names[i].clone();
        let shape = if out.dynamic.iter().any(|&d| d) {
            let batch = self.batch_size(i)?;
            let traced_batch = g.value(g.inputs[0]).shape[0];
            let mut parts = Vec::new();
            for (axis, (&dim, &dynamic)) in out.shape.iter().zip(&out.dynamic).enumerate() {
                parts.push(match dynamic {
                    true if dim == traced_batch => batch,
                    true => {
                        return Err(self.err(
                            i,
                            format!("axis {axis} follows the batch but is not the batch size"),
                        ))
                    }
                    false => self
                        .ir
                        .const_i64(format!("{base}/dim{axis}"), &[dim as i64]),
                });
            }
            let rank = out.shape.len() as i64;
            self.ir.add_layer(
                "Concat",
                "opset1",
                format!("{base}/shape"),
                vec![attr("axis", 0)],
                &parts,
                vec![Port {
                    element: ElementType::I64,
                    dims: vec![rank],
                }],
            )[0]
        } else {
            let dims: Vec<i64> = out.shape.iter().map(|&d| d as i64).collect();
            self.ir.const_i64(format!("{base}/shape"), &dims)
        };
        self.emit(
            i,
            "Broadcast",
            "opset3",
            vec![attr("mode", "numpy")],
            &[x, shape],
        );
        Ok(())
    }

    /// The batch size (axis 0 of the first input) at run time, as a 1-D i64 tensor of one value.
    fn batch_size(&mut self, i: usize) -> Result<PortRef> {
        let g = self.graph;
        let input = *g
            .inputs
            .first()
            .ok_or_else(|| self.err(i, "a batch-sized tensor in a graph with no input"))?;
        let x = self.port_of(input)?;
        let base = self.node_names[i].clone();
        let rank = g.value(input).shape.len() as i64;
        let shape = self.ir.add_layer(
            "ShapeOf",
            "opset3",
            format!("{base}/input_shape"),
            vec![attr("output_type", "i64")],
            &[x],
            vec![Port {
                element: ElementType::I64,
                dims: vec![rank],
            }],
        )[0];
        let index = self.ir.const_i64(format!("{base}/batch_axis"), &[0]);
        let axis = self.ir.const_i64_scalar(format!("{base}/gather_axis"), 0);
        Ok(self.ir.add_layer(
            "Gather",
            "opset8",
            format!("{base}/batch"),
            vec![attr("batch_dims", 0)],
            &[shape, index, axis],
            vec![Port {
                element: ElementType::I64,
                dims: vec![1],
            }],
        )[0])
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
