//! FakeQuantize layers (activations) and quantized weights (integer constants with their
//! dequantization), named after the parameters they hold.

use burn_compress_graph::{ConstTensor, Op, ValueId, ValueKind};

use super::Lowerer;
use crate::error::{ExportError, Result};
use crate::ir::{attr, ElementType, Port, PortRef, WeightSummary};
use crate::weights::{grouped_shape, quantize_weight, transpose_into, transposed_shape, Layout};

impl Lowerer<'_> {
    /// An activation `FakeQuantize`; a quantized weight is emitted by its consumers instead, in
    /// their layout.
    pub(super) fn fake_quantize(&mut self, i: usize, levels: u32) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let g = self.graph;
        if g.constant(node.inputs[0]).is_some() {
            // A quantized weight: emitted by its consumers in their layout.
            return Ok(());
        }
        let p = self.input_ports(i)?;
        let source = g.value(node.inputs[1]).param.clone().unwrap_or_default();
        self.ir.activation_quantizers.push(source);
        self.emit(
            i,
            "FakeQuantize",
            "opset1",
            vec![attr("levels", levels), attr("auto_broadcast", "numpy")],
            &p,
        );
        Ok(())
    }

    /// Emits a constant or a quantized-weight decompression chain for `v` in `layout`.
    pub(super) fn weight(&mut self, v: ValueId, layout: Layout) -> Result<PortRef> {
        let value = self.graph.value(v);
        let name = value.name.clone();
        match &value.kind {
            ValueKind::Constant(_) => {
                // Named after the parameter it holds, also when it was computed (masked).
                let name = value.param.clone().unwrap_or(name);
                let c = self.constant_tensor(v).expect("a constant");
                // A transposition is written into the blob in place; other layouts only change
                // the shape.
                let port = match (layout, transposed_shape(&c.shape)) {
                    (Layout::Transposed, (shape, Some((rows, cols)))) => {
                        self.ir.const_f32_with(name, &shape, |out| {
                            transpose_into(rows, cols, &c.data, out)
                        })
                    }
                    (Layout::Transposed, (shape, None)) => self.ir.const_f32(name, &shape, &c.data),
                    _ => {
                        let shape = grouped_shape(&c.shape, layout);
                        self.ir.const_f32(name, &shape, &c.data)
                    }
                };
                Ok(port)
            }
            ValueKind::Node(i) => {
                let node = &self.graph.nodes[*i];
                let Op::FakeQuantize { levels } = node.op else {
                    return Err(ExportError::Graph(
                        burn_compress_graph::GraphError::Invalid(format!(
                            "value `{name}` used before it is produced"
                        )),
                    ));
                };
                let graph = self.graph;
                let c = |k: usize| graph.constant(node.inputs[k]);
                let (Some(_), Some(il), Some(ih)) = (c(0), c(1), c(2)) else {
                    return Err(self.err(*i, "fake-quantized weight with non-constant ranges"));
                };
                let w = self.constant_tensor(node.inputs[0]).expect("a constant");
                // Named after the weight's parameter, also when it was computed (masked).
                let source = graph.value(node.inputs[0]);
                let wname = source.param.clone().unwrap_or_else(|| source.name.clone());
                self.quantized_weight(*i, &wname, &w, il, ih, levels, layout)
            }
            ValueKind::Input => Err(ExportError::Graph(
                burn_compress_graph::GraphError::Invalid(format!("input `{name}` not lowered")),
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn quantized_weight(
        &mut self,
        node: usize,
        name: &str,
        w: &ConstTensor,
        il: &ConstTensor,
        ih: &ConstTensor,
        levels: u32,
        layout: Layout,
    ) -> Result<PortRef> {
        let qw = quantize_weight(w, il, ih, levels)
            .ok_or_else(|| self.err(node, "weight ranges do not fit 8-bit integers"))?;
        self.ir.weights.push(WeightSummary {
            param: name.to_string(),
            element: if qw.zero_point.is_none() {
                ElementType::I8
            } else {
                ElementType::U8
            },
            elements: qw.q.data.len(),
            zeros: qw.zero_count(),
        });
        let q = qw.q.layout(layout);
        let (element, bytes): (ElementType, Vec<u8>) = if qw.zero_point.is_none() {
            (
                ElementType::I8,
                q.data.iter().map(|&v| (v as i8) as u8).collect(),
            )
        } else {
            (ElementType::U8, q.data.iter().map(|&v| v as u8).collect())
        };
        let dims: Vec<i64> = q.shape.iter().map(|&d| d as i64).collect();
        let c = self
            .ir
            .add_const(format!("{name}/quantized"), element, &q.shape, &bytes);
        let f32_port = || Port {
            element: ElementType::F32,
            dims: dims.clone(),
        };
        let mut x = self.ir.add_layer(
            "Convert",
            "opset1",
            format!("{name}/convert"),
            vec![attr("destination_type", "f32")],
            &[c],
            vec![f32_port()],
        )[0];
        if let Some(zp) = qw.zero_point {
            let zp = zp.layout(layout);
            let zc = self
                .ir
                .const_f32(format!("{name}/zero_point"), &zp.shape, &zp.data);
            x = self.ir.add_layer(
                "Subtract",
                "opset1",
                format!("{name}/subtract_zero_point"),
                vec![attr("auto_broadcast", "numpy")],
                &[x, zc],
                vec![f32_port()],
            )[0];
        }
        let scale = qw.scale.layout(layout);
        let sc = self
            .ir
            .const_f32(format!("{name}/scale"), &scale.shape, &scale.data);
        Ok(self.ir.add_layer(
            "Multiply",
            "opset1",
            format!("{name}/dequantized"),
            vec![attr("auto_broadcast", "numpy")],
            &[x, sc],
            vec![f32_port()],
        )[0])
    }

    /// The weight input `v` of Convolution / MatMul node `i` in `layout`, recorded in the IR's
    /// weight summaries.
    pub(super) fn weight_for(&mut self, v: ValueId, layout: Layout, i: usize) -> Result<PortRef> {
        if self.weight_like(v) {
            // Quantized weights are recorded as they are written; record the float ones here
            // (before writing them can release their values).
            let value = self.graph.value(v);
            if let (Some(data), Some(param)) = (self.constant_values(v), &value.param) {
                let summary = WeightSummary {
                    param: param.clone(),
                    element: ElementType::F32,
                    elements: data.len(),
                    zeros: data.iter().filter(|&&x| x == 0.0).count(),
                };
                self.ir.weights.push(summary);
            }
            self.weight(v, layout)
        } else if layout == Layout::AsIs {
            self.port_of(v)
        } else {
            Err(self.err(i, "weights computed at run time are not supported"))
        }
    }
}
