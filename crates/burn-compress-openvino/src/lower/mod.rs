//! Lowering of a prepared [`Graph`] to OpenVINO opset operations, one family of operations per
//! module: [`quant`] (FakeQuantize and quantized weights), [`conv`] (Convolution, MatMul),
//! [`element_wise`] (a table of one-to-one operations), [`norm`], [`pool`], [`resize`] and
//! [`shape`].
//! Adding an operation is one arm in [`Lowerer::node`] and one function in its family (or one
//! row of the element-wise table).

use std::borrow::Cow;
use std::collections::HashMap;

use burn_compress_graph::{ConstTensor, ElementKind, Graph, Op, ValueId, ValueKind};

use crate::error::{ExportError, Result};
use crate::ir::{attr, ElementType, IrModel, Port, PortRef};
use crate::weights::Layout;

mod conv;
mod element_wise;
mod norm;
mod pool;
mod quant;
mod resize;
mod shape;

/// Lowers `graph` (after [`burn_compress_graph::prepare`]) into an IR model named `name`, its
/// outputs named `output_names` (`output{k}` where none is given).
pub fn lower(graph: &Graph, name: &str, output_names: &[String]) -> Result<IrModel> {
    lower_with(graph, HashMap::new(), IrModel::new(name), output_names)
}

/// [`lower`], consuming the graph: the values of large constants (weights) move out of it and
/// are released as soon as the IR's blob holds them, so the weights are not held twice.
pub fn lower_consuming(graph: Graph, name: &str, output_names: &[String]) -> Result<IrModel> {
    lower_into(graph, IrModel::new(name), output_names)
}

/// [`lower_consuming`] into `ir`, an empty model (one that streams its blob to a file, for one:
/// [`IrModel::streaming_to`]).
pub fn lower_into(mut graph: Graph, ir: IrModel, output_names: &[String]) -> Result<IrModel> {
    let taken = take_large_constants(&mut graph);
    lower_with(&graph, taken, ir, output_names)
}

/// Constants of at least this many values are moved out of the graph by [`lower_consuming`].
const LARGE_CONSTANT: usize = 1 << 16;

/// Moves the values of the large constants that nodes consume out of `graph`, with the number of
/// uses left for each.
fn take_large_constants(graph: &mut Graph) -> HashMap<ValueId, (Vec<f32>, usize)> {
    let uses = graph.consumers();
    let mut taken = HashMap::new();
    for (i, value) in graph.values.iter_mut().enumerate() {
        if let ValueKind::Constant(c) = &mut value.kind {
            let consumed_by_nodes = !uses[i].is_empty() && !uses[i].contains(&usize::MAX);
            if c.data.len() >= LARGE_CONSTANT && consumed_by_nodes {
                taken.insert(ValueId(i), (std::mem::take(&mut c.data), uses[i].len()));
            }
        }
    }
    taken
}

fn lower_with(
    graph: &Graph,
    taken: HashMap<ValueId, (Vec<f32>, usize)>,
    ir: IrModel,
    output_names: &[String],
) -> Result<IrModel> {
    let mut l = Lowerer {
        graph,
        taken,
        ir,
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
        // Integer inputs (ids for an embedding) are i64, Burn's integer type.
        let element = element_type(v.element);
        let port = l.ir.add_layer(
            "Parameter",
            "opset1",
            v.name.clone(),
            vec![attr("shape", shape), attr("element_type", element.name())],
            &[],
            vec![Port { element, dims }],
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
    /// Values moved out of the graph's large constants, with their remaining uses.
    taken: HashMap<ValueId, (Vec<f32>, usize)>,
    ir: IrModel,
    ports: HashMap<ValueId, PortRef>,
    node_names: Vec<String>,
}

/// The IR element type of a graph value's elements.
fn element_type(element: ElementKind) -> ElementType {
    match element {
        ElementKind::Float => ElementType::F32,
        ElementKind::Integer => ElementType::I64,
        ElementKind::Boolean => ElementType::Boolean,
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl<'g> Lowerer<'g> {
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

    /// Constant `v` with its values, for one use: borrowed from the graph, or moved out of
    /// [`Lowerer::taken`] at its last use (copied before that).
    fn constant_tensor(&mut self, v: ValueId) -> Option<Cow<'g, ConstTensor>> {
        let graph: &'g Graph = self.graph;
        let c = graph.constant(v)?;
        let Some((data, uses)) = self.taken.get_mut(&v) else {
            return Some(Cow::Borrowed(c));
        };
        *uses = uses.saturating_sub(1);
        let data = if *uses == 0 {
            self.taken
                .remove(&v)
                .map(|(data, _)| data)
                .unwrap_or_default()
        } else {
            data.clone()
        };
        Some(Cow::Owned(ConstTensor {
            shape: c.shape.clone(),
            data,
        }))
    }

    /// The values of constant `v` without using them up.
    fn constant_values(&self, v: ValueId) -> Option<&[f32]> {
        match self.taken.get(&v) {
            Some((data, _)) => Some(data),
            None => self.graph.constant(v).map(|c| c.data.as_slice()),
        }
    }

    fn port_of(&mut self, v: ValueId) -> Result<PortRef> {
        if let Some(p) = self.ports.get(&v) {
            return Ok(*p);
        }
        let value = self.graph.value(v);
        let (name, element) = (value.name.clone(), value.element);
        let typed = match element {
            ElementKind::Float => None,
            _ => self.constant_tensor(v),
        };
        let p = match typed {
            // Integers (exact in the graph's f32) as i64, booleans as one byte each.
            Some(c) if element == ElementKind::Integer => {
                let bytes: Vec<u8> = c
                    .data
                    .iter()
                    .flat_map(|&x| (x as i64).to_le_bytes())
                    .collect();
                self.ir.add_const(name, ElementType::I64, &c.shape, &bytes)
            }
            Some(c) => {
                let bytes: Vec<u8> = c.data.iter().map(|&x| u8::from(x != 0.0)).collect();
                self.ir
                    .add_const(name, ElementType::Boolean, &c.shape, &bytes)
            }
            None => self.weight(v, Layout::AsIs)?,
        };
        self.ports.insert(v, p);
        Ok(p)
    }

    fn out_port(&self, v: ValueId) -> Port {
        Port {
            element: element_type(self.graph.value(v).element),
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
        if let Some(op) = element_wise::table(&node.op) {
            let p = self.input_ports(i)?;
            self.emit(i, op.kind, op.opset, op.attrs, &p);
            return Ok(());
        }
        match &node.op {
            Op::FakeQuantize { levels } => self.fake_quantize(i, *levels),
            Op::Conv(attrs) => self.conv(i, attrs),
            Op::ConvTranspose {
                conv,
                output_padding,
            } => self.conv_transpose(i, conv, output_padding),
            Op::DeformConv {
                conv,
                offset_groups,
            } => self.deform_conv(i, conv, *offset_groups),
            Op::HardSigmoid { alpha, beta } => self.hard_sigmoid(i, *alpha, *beta),
            Op::Pad { pads, mode } => self.pad(i, pads, *mode),
            Op::Interpolate {
                mode,
                align_corners,
                output_size,
            } => self.interpolate(i, *mode, *align_corners, output_size),
            Op::MatMul => self.matmul(i),
            Op::LeakyRelu { slope } => self.leaky_relu(i, *slope),
            Op::BatchNorm { epsilon } => self.batch_norm(i, *epsilon),
            Op::LayerNorm { epsilon } => self.layer_norm(i, *epsilon),
            Op::MaxPool(pool) => self.max_pool(i, pool),
            Op::AvgPool {
                pool,
                count_include_pad,
            } => self.avg_pool(i, pool, *count_include_pad),
            Op::AdaptiveAvgPool { output_size } => self.adaptive_avg_pool(i, output_size),
            Op::Reduce { how, axes } => self.reduce(i, *how, axes),
            Op::ArgExtreme { axis, largest } => self.arg_extreme(i, *axis, *largest),
            Op::CumSum { axis } => self.cum_sum(i, *axis),
            Op::GatherElements { axis } => {
                let p = self.input_ports(i)?;
                self.emit(i, "GatherElements", "opset6", vec![attr("axis", axis)], &p);
                Ok(())
            }
            Op::Reshape => self.reshape(i),
            Op::Transpose { perm } => self.transpose(i, perm),
            Op::Concat { axis } => {
                let p = self.input_ports(i)?;
                self.emit(i, "Concat", "opset1", vec![attr("axis", axis)], &p);
                Ok(())
            }
            Op::Slice { ranges } => self.slice(i, ranges),
            Op::Flip { axes } => self.flip(i, axes),
            Op::Gather { axis } => self.gather(i, *axis),
            Op::SliceAssign { ranges } => self.slice_assign(i, ranges),
            Op::Full { value } => self.full(i, *value),
            Op::Expand => self.expand(i),
            Op::Tile { repeats } => self.tile(i, repeats),
            Op::Convert => self.convert(i),
            Op::Unsupported { name } => Err(ExportError::Graph(
                burn_compress_graph::GraphError::Unsupported {
                    op: name.clone(),
                    path: self.graph.module_path_near(i),
                },
            )),
            other => Err(self.err(i, format!("no lowering for `{}`", other.name()))),
        }
    }
}
