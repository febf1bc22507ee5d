//! Graph clean-up passes and the pipeline that prepares a captured graph for export.

use crate::error::Result;
use crate::fake_quant::{fake_quantize_nodes, match_fake_quantize, FakeQuantMatch};
use crate::fold::fold_constants;
use crate::graph::{Graph, Op, ValueKind};
use crate::tensor::ConstTensor;

/// What [`prepare`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareReport {
    /// Recognised fake-quantizers.
    pub fake_quantizers: Vec<FakeQuantMatch>,
    /// Nodes replaced by constants.
    pub folded: usize,
    /// Identity nodes removed.
    pub identities: usize,
    /// Activation quantizers moved up to their producers (output names).
    pub hoisted: Vec<String>,
}

/// Prepares a captured graph for lowering: rejects unsupported ops, recognises fake-quantize
/// chains, moves reshapes of quantized weights into the weights, folds constants, moves
/// activation quantizers up to their producers and removes identities and dead code.
pub fn prepare(graph: &mut Graph) -> Result<PrepareReport> {
    graph.check_supported()?;
    match_fake_quantize(graph)?;
    push_reshape_into_quantized_weights(graph);
    let folded = fold_constants(graph);
    let identities = remove_identities(graph);
    let hoisted = hoist_activation_quantizers(graph);
    graph.validate()?;
    let fake_quantizers = fake_quantize_nodes(graph);
    Ok(PrepareReport {
        fake_quantizers,
        folded,
        identities,
        hoisted,
    })
}

/// `Reshape(FakeQuantize(w))` with constant `w`, where the reshape only prepends unit axes
/// (Burn's linear does this for inputs of rank > 2), becomes `FakeQuantize(reshape(w))`: the
/// ranges broadcast from the right, so per-channel ranges keep their meaning.
pub fn push_reshape_into_quantized_weights(graph: &mut Graph) -> usize {
    let uses = graph.consumers();
    let mut changed = 0;
    for i in 0..graph.nodes.len() {
        if graph.nodes[i].op != Op::Reshape {
            continue;
        }
        let src = graph.nodes[i].inputs[0];
        let ValueKind::Node(fq) = graph.value(src).kind else {
            continue;
        };
        if !matches!(graph.nodes[fq].op, Op::FakeQuantize { .. }) || uses[src.0].len() != 1 {
            continue;
        }
        let w = graph.nodes[fq].inputs[0];
        let Some(weight) = graph.constant(w).cloned() else {
            continue;
        };
        let out_shape = graph.value(graph.nodes[i].output).shape.clone();
        let extra = out_shape.len().saturating_sub(weight.shape.len());
        if out_shape.len() < weight.shape.len()
            || out_shape[..extra].iter().any(|&d| d != 1)
            || out_shape[extra..] != weight.shape[..]
        {
            continue;
        }
        let name = graph.value(w).name.clone();
        let param = graph.value(w).param.clone();
        let reshaped = weight.reshape(out_shape.clone()).expect("same size");
        let new_w = graph.add_constant(name, reshaped, param);
        let mut inputs = graph.nodes[fq].inputs.clone();
        inputs[0] = new_w;
        let op = graph.nodes[fq].op.clone();
        let node = &mut graph.nodes[i];
        node.op = op;
        node.inputs = inputs;
        changed += 1;
    }
    if changed > 0 {
        graph.remove_dead();
    }
    changed
}

/// Removes reshapes and slices that keep the shape, and identity transposes.
pub fn remove_identities(graph: &mut Graph) -> usize {
    let mut removed = 0;
    for i in 0..graph.nodes.len() {
        let node = &graph.nodes[i];
        let Some(&input) = node.inputs.first() else {
            continue;
        };
        let same_shape = graph.value(input).shape == graph.value(node.output).shape;
        let identity = match &node.op {
            Op::Reshape => same_shape,
            Op::Slice { ranges } => {
                same_shape && ranges.iter().all(|r| r.start == 0 && r.step == 1)
            }
            Op::Transpose { perm } => perm.iter().enumerate().all(|(a, &b)| a == b),
            _ => false,
        };
        // Keep the node when it is all that stands between a graph input and a graph output.
        if identity && !(graph.inputs.contains(&input) && graph.outputs.contains(&node.output)) {
            let output = node.output;
            graph.replace_uses(output, input);
            removed += 1;
        }
    }
    if removed > 0 {
        graph.remove_dead();
    }
    removed
}

/// Moves every activation `FakeQuantize` up through the operations it commutes with exactly, so
/// that it follows the convolution or activation producing its input, where OpenVINO fuses it
/// into that producer (which then writes u8, and the moved operations run on u8):
///
/// - MaxPool, for per-tensor and per-channel ranges (quantizing is non-decreasing, so it
///   commutes with a maximum);
/// - a flatten (a reshape merging trailing axes, as before a Linear), for per-tensor ranges.
///
/// A ReLU right before a quantizer whose input range starts at 0 or above is dropped for that
/// quantizer: `FQ(relu(x)) = FQ(x)` there, as negative inputs clamp to the same level (NNCF's
/// IRs have no such ReLU either, and OpenVINO saves the post-op).
///
/// Other reshapes, transposes and slices also commute with a per-tensor quantizer, but OpenVINO
/// 2026.4 then runs a following (depthwise) convolution in f32: the quantizer stays before them.
/// A quantizer moves only while the value it would pass is used by nothing else. Returns the
/// names of the moved quantizers.
pub fn hoist_activation_quantizers(graph: &mut Graph) -> Vec<String> {
    let mut moved = Vec::new();
    loop {
        let uses = graph.consumers();
        let step = (0..graph.nodes.len()).find(|&f| hoistable(graph, &uses, f).is_some());
        let Some(f) = step else {
            break;
        };
        let p = hoistable(graph, &uses, f).expect("checked");
        let name = graph.value(graph.nodes[f].output).name.clone();
        swap_with_producer(graph, p, f);
        if !moved.contains(&name) {
            moved.push(name);
        }
    }
    for name in bypass_relus(graph) {
        if !moved.contains(&name) {
            moved.push(name);
        }
    }
    moved
}

/// Makes every activation quantizer with a non-negative input range read past a ReLU feeding it.
fn bypass_relus(graph: &mut Graph) -> Vec<String> {
    let mut bypassed = Vec::new();
    for f in 0..graph.nodes.len() {
        let node = &graph.nodes[f];
        if !matches!(node.op, Op::FakeQuantize { .. }) {
            continue;
        }
        let Some(producer) = graph.producer(node.inputs[0]) else {
            continue;
        };
        let unsigned = graph
            .constant(node.inputs[1])
            .is_some_and(|low| low.data.iter().all(|&v| v >= 0.0));
        if producer.op == Op::Relu && unsigned {
            let source = producer.inputs[0];
            graph.nodes[f].inputs[0] = source;
            bypassed.push(graph.value(graph.nodes[f].output).name.clone());
        }
    }
    if !bypassed.is_empty() {
        graph.remove_dead();
    }
    bypassed
}

/// The producer node `p` that FakeQuantize node `f` can move above, if any.
fn hoistable(graph: &Graph, uses: &[Vec<usize>], f: usize) -> Option<usize> {
    let node = &graph.nodes[f];
    if !matches!(node.op, Op::FakeQuantize { .. }) {
        return None;
    }
    let x = node.inputs[0];
    let ValueKind::Node(p) = graph.value(x).kind else {
        return None;
    };
    let producer = &graph.nodes[p];
    let source = *producer.inputs.first()?;
    if uses[x.0] != [f] || uses[source.0] != [p] || graph.constant(source).is_some() {
        return None;
    }
    let ranges: Vec<&ConstTensor> = node.inputs[1..]
        .iter()
        .map(|v| graph.constant(*v))
        .collect::<Option<_>>()?;
    let per_tensor = ranges.iter().all(|r| r.len() == 1);
    let rank = graph.value(source).shape.len();
    let per_channel_kept = ranges.iter().all(|r| {
        r.len() == 1
            || (r.shape.len() == rank && r.shape.iter().enumerate().all(|(a, &d)| a == 1 || d == 1))
    });
    let commutes = match producer.op {
        Op::MaxPool(_) => per_channel_kept,
        Op::Reshape => per_tensor && is_flatten(&graph.value(source).shape, &graph.value(x).shape),

        _ => false,
    };
    commutes.then_some(p)
}

/// Whether `to` is `from` with its trailing axes merged into one (`[n, c, h, w]` -> `[n, c·h·w]`).
fn is_flatten(from: &[usize], to: &[usize]) -> bool {
    let kept = to.len().saturating_sub(1);
    to.len() < from.len()
        && from[..kept] == to[..kept]
        && from[kept..].iter().product::<usize>() == to[kept]
}

/// `y = op(x); z = FQ(y, r..)` (nodes `p` < `f`) becomes `y' = FQ(x, r..); z = op(y')`: node `p`
/// now quantizes and node `f` applies the operation; value `y` takes `x`'s shape.
fn swap_with_producer(graph: &mut Graph, p: usize, f: usize) {
    let x = graph.nodes[p].inputs[0];
    let y = graph.nodes[p].output;
    let op = graph.nodes[p].op.clone();
    let fq_op = graph.nodes[f].op.clone();
    let mut fq_inputs = graph.nodes[f].inputs.clone();
    fq_inputs[0] = x;
    graph.nodes[p].op = fq_op;
    graph.nodes[p].inputs = fq_inputs;
    graph.nodes[f].op = op;
    graph.nodes[f].inputs = vec![y];
    let (shape, dynamic) = (graph.value(x).shape.clone(), graph.value(x).dynamic.clone());
    let z = graph.nodes[f].output;
    let value = &mut graph.values[y.0];
    value.shape = shape;
    value.dynamic = dynamic;
    // The names follow the operations: the quantizer keeps its name, the moved op too.
    let fq_name = std::mem::take(&mut graph.values[z.0].name);
    graph.values[z.0].name = std::mem::replace(&mut graph.values[y.0].name, fq_name);
}
