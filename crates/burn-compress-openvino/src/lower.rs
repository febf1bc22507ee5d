//! Lowering of a prepared [`Graph`] to OpenVINO opset operations.

use std::collections::HashMap;

use burn_compress_graph::{ConstTensor, Graph, Op, ValueId, ValueKind};

use crate::error::{ExportError, Result};
use crate::ir::{attr, join, ElementType, IrModel, Port, PortRef, WeightSummary};
use crate::weights::{quantize_weight, Dense, Layout};

/// Lowers `graph` (after [`burn_compress_graph::prepare`]) into an IR model named `name`, its
/// outputs named `output_names` (`output{k}` where none is given).
pub fn lower(graph: &Graph, name: &str, output_names: &[String]) -> Result<IrModel> {
    let mut l = Lowerer {
        graph,
        ir: IrModel::new(name),
        ports: HashMap::new(),
        node_names: Vec::new(),
    };
    l.node_names = (0..graph.nodes.len())
        .map(|i| {
            let module = graph.module_path_near(i);
            format!("{module}/{}{i}", graph.nodes[i].op.name())
        })
        .collect();
    for input in &graph.inputs {
        let v = graph.value(*input);
        let dims = l.dims(*input);
        let shape = dims
            .iter()
            .map(|&d| {
                if d < 0 {
                    "?".to_string()
                } else {
                    d.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let port = l.ir.add_layer(
            "Parameter",
            "opset1",
            v.name.clone(),
            vec![attr("shape", shape), attr("element_type", "f32")],
            &[],
            vec![Port {
                element: ElementType::F32,
                dims,
            }],
        )[0];
        l.ir.layers[port.layer].output_names = Some(v.name.clone());
        l.ports.insert(*input, port);
    }
    for i in 0..graph.nodes.len() {
        l.node(i)?;
    }
    for (k, output) in graph.outputs.iter().enumerate() {
        let port = l.port_of(*output)?;
        let label = output_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("output{k}"));
        l.ir.layers[port.layer].output_names = Some(label.clone());
        l.ir.add_layer(
            "Result",
            "opset1",
            format!("{label}/sink"),
            vec![],
            &[port],
            vec![],
        );
    }
    Ok(l.ir)
}

struct Lowerer<'g> {
    graph: &'g Graph,
    ir: IrModel,
    ports: HashMap<ValueId, PortRef>,
    node_names: Vec<String>,
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Lowerer<'_> {
    fn dims(&self, v: ValueId) -> Vec<i64> {
        let value = self.graph.value(v);
        value
            .shape
            .iter()
            .zip(&value.dynamic)
            .map(|(&d, &dynamic)| if dynamic { -1 } else { d as i64 })
            .collect()
    }

    fn err(&self, i: usize, reason: impl Into<String>) -> ExportError {
        ExportError::Lowering {
            op: self.graph.nodes[i].op.name(),
            path: self.graph.module_path_near(i),
            reason: reason.into(),
        }
    }

    /// A constant input, or a fake-quantized constant (weight), in the given layout.
    fn weight_like(&self, v: ValueId) -> bool {
        match &self.graph.value(v).kind {
            ValueKind::Constant(_) => true,
            ValueKind::Node(i) => {
                let node = &self.graph.nodes[*i];
                matches!(node.op, Op::FakeQuantize { .. })
                    && self.graph.constant(node.inputs[0]).is_some()
            }
            ValueKind::Input => false,
        }
    }

    fn port_of(&mut self, v: ValueId) -> Result<PortRef> {
        if let Some(p) = self.ports.get(&v) {
            return Ok(*p);
        }
        let p = self.weight(v, Layout::AsIs)?;
        self.ports.insert(v, p);
        Ok(p)
    }

    /// Emits a constant or a quantized-weight decompression chain for `v` in `layout`.
    fn weight(&mut self, v: ValueId, layout: Layout) -> Result<PortRef> {
        let value = self.graph.value(v);
        let name = value.name.clone();
        match &value.kind {
            ValueKind::Constant(c) => {
                let d = Dense::from(c).layout(layout);
                // Named after the parameter it holds, also when it was computed (masked).
                let name = value.param.clone().unwrap_or(name);
                Ok(self.ir.const_f32(name, &d.shape, &d.data))
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
                let c = |k: usize| self.graph.constant(node.inputs[k]);
                let (Some(w), Some(il), Some(ih)) = (c(0), c(1), c(2)) else {
                    return Err(self.err(*i, "fake-quantized weight with non-constant ranges"));
                };
                // Named after the weight's parameter, also when it was computed (masked).
                let source = self.graph.value(node.inputs[0]);
                let wname = source.param.clone().unwrap_or_else(|| source.name.clone());
                self.quantized_weight(*i, &wname, w, il, ih, levels, layout)
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

    fn out_port(&self, v: ValueId) -> Port {
        Port {
            element: ElementType::F32,
            dims: self.dims(v),
        }
    }

    /// Emits a single-output layer for node `i` with the node's output port.
    fn emit(
        &mut self,
        i: usize,
        kind: &str,
        version: &str,
        attrs: Vec<(String, String)>,
        inputs: &[PortRef],
    ) -> PortRef {
        let output = self.graph.nodes[i].output;
        let port = self.out_port(output);
        let name = self.node_names[i].clone();
        let p = self
            .ir
            .add_layer(kind, version, name, attrs, inputs, vec![port])[0];
        self.ports.insert(output, p);
        p
    }

    fn input_ports(&mut self, i: usize) -> Result<Vec<PortRef>> {
        let inputs = self.graph.nodes[i].inputs.clone();
        inputs.into_iter().map(|v| self.port_of(v)).collect()
    }

    fn node(&mut self, i: usize) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let g = self.graph;
        let out_shape = g.value(node.output).shape.clone();
        let numpy = || vec![attr("auto_broadcast", "numpy")];
        match &node.op {
            Op::FakeQuantize { levels } => {
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
            }
            Op::Conv(a) => {
                let x = self.port_of(node.inputs[0])?;
                let grouped = a.groups > 1;
                let layout = if grouped {
                    Layout::Grouped(a.groups)
                } else {
                    Layout::AsIs
                };
                let w = self.weight_for(node.inputs[1], layout, i)?;
                let attrs = vec![
                    attr("strides", join(a.stride.iter())),
                    attr("dilations", join(a.dilation.iter())),
                    attr("pads_begin", join(a.pads_begin.iter())),
                    attr("pads_end", join(a.pads_end.iter())),
                    attr("auto_pad", "explicit"),
                ];
                let kind = if grouped {
                    "GroupConvolution"
                } else {
                    "Convolution"
                };
                let conv = self.emit(i, kind, "opset1", attrs, &[x, w]);
                if let Some(&b) = node.inputs.get(2) {
                    let mut shape = vec![1usize; out_shape.len()];
                    shape[1] = out_shape[1];
                    let bias = match g.constant(b) {
                        Some(c) => {
                            let name = g.value(b).name.clone();
                            self.ir.const_f32(name, &shape, &c.data)
                        }
                        None => {
                            let bp = self.port_of(b)?;
                            let target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                            let tc = self
                                .ir
                                .const_i64(format!("{}/bias_shape", self.node_names[i]), &target);
                            self.ir.add_layer(
                                "Reshape",
                                "opset1",
                                format!("{}/bias_reshape", self.node_names[i]),
                                vec![attr("special_zero", "false")],
                                &[bp, tc],
                                vec![Port {
                                    element: ElementType::F32,
                                    dims: target,
                                }],
                            )[0]
                        }
                    };
                    let port = self.out_port(node.output);
                    let name = format!("{}/bias", self.node_names[i]);
                    let p = self.ir.add_layer(
                        "Add",
                        "opset1",
                        name,
                        numpy(),
                        &[conv, bias],
                        vec![port],
                    )[0];
                    self.ports.insert(node.output, p);
                }
            }
            Op::MatMul => {
                let a = self.port_of(node.inputs[0])?;
                let rhs = node.inputs[1];
                let shape = &g.value(rhs).shape;
                let matrix = shape.len() >= 2 && shape[..shape.len() - 2].iter().all(|&d| d == 1);
                let (b, transpose_b) = if self.weight_like(rhs) && matrix {
                    (self.weight_for(rhs, Layout::Transposed, i)?, true)
                } else {
                    (self.port_of(rhs)?, false)
                };
                self.emit(
                    i,
                    "MatMul",
                    "opset1",
                    vec![
                        attr("transpose_a", "false"),
                        attr("transpose_b", bool_str(transpose_b)),
                    ],
                    &[a, b],
                );
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => {
                let kind = match node.op {
                    Op::Add => "Add",
                    Op::Sub => "Subtract",
                    Op::Mul => "Multiply",
                    _ => "Divide",
                };
                let p = self.input_ports(i)?;
                self.emit(i, kind, "opset1", numpy(), &p);
            }
            Op::BatchNorm { epsilon } => {
                let p = self.input_ports(i)?;
                self.emit(
                    i,
                    "BatchNormInference",
                    "opset5",
                    vec![attr("epsilon", epsilon)],
                    &p,
                );
            }
            Op::LayerNorm { epsilon } => {
                let p = self.input_ports(i)?;
                let axes = self
                    .ir
                    .const_i64(format!("{}/axes", self.node_names[i]), &[-1]);
                let port = self.out_port(node.output);
                let base = self.node_names[i].clone();
                let mut x = self.ir.add_layer(
                    "MVN",
                    "opset6",
                    format!("{base}/mvn"),
                    vec![
                        attr("eps", epsilon),
                        attr("normalize_variance", "true"),
                        attr("eps_mode", "INSIDE_SQRT"),
                    ],
                    &[p[0], axes],
                    vec![port.clone()],
                )[0];
                x = self.ir.add_layer(
                    "Multiply",
                    "opset1",
                    format!("{base}/gamma"),
                    numpy(),
                    &[x, p[1]],
                    vec![port.clone()],
                )[0];
                if let Some(&beta) = p.get(2) {
                    x = self.ir.add_layer(
                        "Add",
                        "opset1",
                        format!("{base}/beta"),
                        numpy(),
                        &[x, beta],
                        vec![port],
                    )[0];
                }
                self.ports.insert(node.output, x);
            }
            Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Exp
            | Op::Sqrt
            | Op::Erf
            | Op::Neg
            | Op::Abs => {
                let kind = match node.op {
                    Op::Relu => "Relu",
                    Op::Sigmoid => "Sigmoid",
                    Op::Tanh => "Tanh",
                    Op::Exp => "Exp",
                    Op::Sqrt => "Sqrt",
                    Op::Erf => "Erf",
                    Op::Neg => "Negative",
                    _ => "Abs",
                };
                let p = self.input_ports(i)?;
                self.emit(i, kind, "opset1", vec![], &p);
            }
            Op::Round => {
                let p = self.input_ports(i)?;
                self.emit(i, "Round", "opset5", vec![attr("mode", "half_to_even")], &p);
            }
            Op::Gelu => {
                let p = self.input_ports(i)?;
                self.emit(
                    i,
                    "Gelu",
                    "opset7",
                    vec![attr("approximation_mode", "ERF")],
                    &p,
                );
            }
            Op::LeakyRelu { slope } => {
                let x = self.port_of(node.inputs[0])?;
                let s = self.ir.const_f32(
                    format!("{}/slope", self.node_names[i]),
                    &[1],
                    &[*slope as f32],
                );
                self.emit(i, "PRelu", "opset1", vec![], &[x, s]);
            }
            Op::Softmax { axis } => {
                let p = self.input_ports(i)?;
                self.emit(i, "SoftMax", "opset8", vec![attr("axis", axis)], &p);
            }
            Op::Clamp { min, max } => {
                let p = self.input_ports(i)?;
                self.emit(
                    i,
                    "Clamp",
                    "opset1",
                    vec![attr("min", min), attr("max", max)],
                    &p,
                );
            }
            Op::MaxPool(pool) => {
                let p = self.input_ports(i)?;
                let mut attrs = vec![
                    attr("strides", join(pool.stride.iter())),
                    attr("pads_begin", join(pool.padding.iter())),
                    attr("pads_end", join(pool.padding.iter())),
                    attr("kernel", join(pool.kernel.iter())),
                    attr(
                        "rounding_type",
                        if pool.ceil_mode { "ceil" } else { "floor" },
                    ),
                    attr("auto_pad", "explicit"),
                ];
                if pool.dilation.iter().all(|&d| d == 1) {
                    self.emit(i, "MaxPool", "opset1", attrs, &p);
                } else {
                    attrs.push(attr("dilations", join(pool.dilation.iter())));
                    attrs.push(attr("index_element_type", "i64"));
                    attrs.push(attr("axis", 0));
                    let values = self.out_port(node.output);
                    let indices = Port {
                        element: ElementType::I64,
                        dims: values.dims.clone(),
                    };
                    let name = self.node_names[i].clone();
                    let outs = self.ir.add_layer(
                        "MaxPool",
                        "opset8",
                        name,
                        attrs,
                        &p,
                        vec![values, indices],
                    );
                    self.ports.insert(node.output, outs[0]);
                }
            }
            Op::AvgPool {
                pool,
                count_include_pad,
            } => {
                let p = self.input_ports(i)?;
                let attrs = vec![
                    attr("strides", join(pool.stride.iter())),
                    attr("pads_begin", join(pool.padding.iter())),
                    attr("pads_end", join(pool.padding.iter())),
                    attr("kernel", join(pool.kernel.iter())),
                    attr("exclude-pad", bool_str(!count_include_pad)),
                    attr(
                        "rounding_type",
                        if pool.ceil_mode { "ceil" } else { "floor" },
                    ),
                    attr("auto_pad", "explicit"),
                ];
                self.emit(i, "AvgPool", "opset1", attrs, &p);
            }
            Op::AdaptiveAvgPool { output_size } => {
                let x = self.port_of(node.inputs[0])?;
                let sizes: Vec<i64> = output_size.iter().map(|&d| d as i64).collect();
                let s = self
                    .ir
                    .const_i64(format!("{}/output_shape", self.node_names[i]), &sizes);
                self.emit(i, "AdaptiveAvgPool", "opset8", vec![], &[x, s]);
            }
            Op::ReduceMean { axes } | Op::ReduceSum { axes } => {
                let kind = if matches!(node.op, Op::ReduceMean { .. }) {
                    "ReduceMean"
                } else {
                    "ReduceSum"
                };
                let x = self.port_of(node.inputs[0])?;
                let a: Vec<i64> = axes.iter().map(|&d| d as i64).collect();
                let c = self
                    .ir
                    .const_i64(format!("{}/axes", self.node_names[i]), &a);
                self.emit(i, kind, "opset1", vec![attr("keep_dims", "true")], &[x, c]);
            }
            Op::Reshape => {
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
            }
            Op::Transpose { perm } => {
                let x = self.port_of(node.inputs[0])?;
                let order: Vec<i64> = perm.iter().map(|&d| d as i64).collect();
                let c = self
                    .ir
                    .const_i64(format!("{}/order", self.node_names[i]), &order);
                self.emit(i, "Transpose", "opset1", vec![], &[x, c]);
            }
            Op::Concat { axis } => {
                let p = self.input_ports(i)?;
                self.emit(i, "Concat", "opset1", vec![attr("axis", axis)], &p);
            }
            Op::Slice { ranges } => {
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
            }
            Op::Unsupported { name } => {
                return Err(ExportError::Graph(
                    burn_compress_graph::GraphError::Unsupported {
                        op: name.clone(),
                        path: g.module_path_near(i),
                    },
                ))
            }
        }
        Ok(())
    }

    /// The weight input `v` of Convolution / MatMul node `i` in `layout`, recorded in the IR's
    /// weight summaries.
    fn weight_for(&mut self, v: ValueId, layout: Layout, i: usize) -> Result<PortRef> {
        if self.weight_like(v) {
            let port = self.weight(v, layout)?;
            // Quantized weights are recorded as they are written; record the float ones here.
            let value = self.graph.value(v);
            if let (ValueKind::Constant(c), Some(param)) = (&value.kind, &value.param) {
                self.ir.weights.push(WeightSummary {
                    param: param.clone(),
                    element: ElementType::F32,
                    elements: c.data.len(),
                    zeros: c.data.iter().filter(|&&x| x == 0.0).count(),
                });
            }
            Ok(port)
        } else if layout == Layout::AsIs {
            self.port_of(v)
        } else {
            Err(self.err(i, "weights computed at run time are not supported"))
        }
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
}
