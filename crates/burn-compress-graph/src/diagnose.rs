//! Diagnostics for INT8 inference: which quantized layers OpenVINO will still run in floating
//! point.

use crate::fake_quant::source_params;
use crate::graph::{module_of, Graph, Op, ValueId, ValueKind};

/// A Convolution or MatMul whose weight is quantized but whose input is not: OpenVINO's INT8
/// kernels need both, so it runs in floating point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatInput {
    /// Module path of the layer (`fc1.linear`).
    pub layer: String,
    /// The operation (`Conv`, `MatMul`).
    pub op: String,
}

/// Every Convolution / MatMul of `graph` (after [`crate::prepare`]) with a quantized weight and
/// an input that no `FakeQuantize` reaches through the operations OpenVINO keeps in u8 (MaxPool,
/// reshapes, transposes, slices).
pub fn float_inputs(graph: &Graph) -> Vec<FloatInput> {
    graph
        .nodes
        .iter()
        .filter(|node| matches!(node.op, Op::Conv(_) | Op::ConvTranspose { .. } | Op::MatMul))
        .filter(|node| quantized_weight(graph, node.inputs[1]))
        .filter(|node| !quantized_activation(graph, node.inputs[0]))
        .map(|node| FloatInput {
            layer: source_params(graph, node.inputs[1])
                .first()
                .map(|param| module_of(param))
                .unwrap_or_else(|| graph.value(node.inputs[1]).name.clone()),
            op: node.op.name(),
        })
        .collect()
}

/// Whether `v` is a constant quantized by a `FakeQuantize`.
fn quantized_weight(graph: &Graph, v: ValueId) -> bool {
    graph.producer(v).is_some_and(|node| {
        matches!(node.op, Op::FakeQuantize { .. }) && graph.constant(node.inputs[0]).is_some()
    })
}

/// Whether a `FakeQuantize` of an activation produces `v`, directly or through operations that
/// keep its integer values.
fn quantized_activation(graph: &Graph, mut v: ValueId) -> bool {
    loop {
        let ValueKind::Node(i) = graph.value(v).kind else {
            return false;
        };
        let node = &graph.nodes[i];
        match node.op {
            Op::FakeQuantize { .. } => return graph.constant(node.inputs[0]).is_none(),
            Op::MaxPool(_) | Op::Reshape | Op::Transpose { .. } | Op::Slice { .. } => {
                v = node.inputs[0];
            }
            _ => return false,
        }
    }
}
