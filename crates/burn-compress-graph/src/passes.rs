//! Graph clean-up passes and the pipeline that prepares a captured graph for export.

use crate::error::Result;
use crate::fake_quant::{fake_quantize_nodes, match_fake_quantize, FakeQuantMatch};
use crate::fold::fold_constants;
use crate::graph::{Graph, Op, ValueKind};

/// What [`prepare`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareReport {
    /// Recognised fake-quantizers.
    pub fake_quantizers: Vec<FakeQuantMatch>,
    /// Nodes replaced by constants.
    pub folded: usize,
    /// Identity nodes removed.
    pub identities: usize,
}

/// Prepares a captured graph for lowering: rejects unsupported ops, recognises fake-quantize
/// chains, moves reshapes of quantized weights into the weights, folds constants and removes
/// identities and dead code.
pub fn prepare(graph: &mut Graph) -> Result<PrepareReport> {
    graph.check_supported()?;
    match_fake_quantize(graph)?;
    push_reshape_into_quantized_weights(graph);
    let folded = fold_constants(graph);
    let identities = remove_identities(graph);
    graph.validate()?;
    let fake_quantizers = fake_quantize_nodes(graph);
    Ok(PrepareReport {
        fake_quantizers,
        folded,
        identities,
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
        let input = node.inputs[0];
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
