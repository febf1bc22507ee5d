//! Recognition of burn-compress fake-quantize computations.
//!
//! In inference mode every fake-quantizer computes, for input `x` and constant ranges `il`
//! (input low) and `r` (range), `k = round(((x - il) / r).clamp(0, 1) * (L - 1))` and then
//! either OpenVINO's form (activations)
//!
//! ```text
//! q = k / (L - 1) * r + il
//! ```
//!
//! or the integer form (weights) `q = (k - zp) * step`, `zp = round(-il / r * (L - 1))`,
//! `step = r / (L - 1)`. Both are `FakeQuantize(x; il, il + r, il, il + r, L)`. The matcher finds
//! these chains (every intermediate used once, `il` and `r` constant after folding) and replaces
//! each by one [`Op::FakeQuantize`] node.

use crate::error::{GraphError, Result};
use crate::fold::eval_const;
use crate::graph::{Graph, Op, ValueId, ValueKind};
use crate::tensor::ConstTensor;

/// One recognised fake-quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeQuantMatch {
    /// Index of the node that now holds the [`Op::FakeQuantize`].
    pub node: usize,
    /// Number of levels.
    pub levels: u32,
    /// Whether the quantized input is a constant (a weight).
    pub weight: bool,
    /// Parameter path of the quantized weight (`conv1.weight`), for weights.
    pub weight_param: Option<String>,
    /// The parameter the range was computed from (`conv1.weight.fake_quant.scale`), if any.
    pub range_param: Option<String>,
}

/// Replaces every fake-quantize chain by an [`Op::FakeQuantize`] node and returns what it found.
/// Run it before [`crate::fold::fold_constants`], which would fold weight chains into floats.
///
/// A chain is recognised by its structure alone; its range must then be finite and non-empty
/// on every channel, or the error names the quantizer's parameter (no silent fallback to a
/// floating-point computation).
pub fn match_fake_quantize(graph: &mut Graph) -> Result<Vec<FakeQuantMatch>> {
    let mut found = 0;
    for end in 0..graph.nodes.len() {
        let Some(m) = match_chain(graph, end) else {
            continue;
        };
        let range_param = source_params(graph, m.range_source)
            .into_iter()
            .chain(source_params(graph, m.low_source))
            .next();
        check_range(graph, &m, range_param.as_deref())?;
        let name = graph.value(graph.nodes[end].output).name.clone();
        let il_id = graph.add_constant(format!("{name}/input_low"), m.il.clone(), range_param);
        let ih =
            m.il.zip(&m.range, |a, b| a + b)
                .expect("il and r broadcast");
        let ih_id = graph.add_constant(format!("{name}/input_high"), ih, None);
        let node = &mut graph.nodes[end];
        node.op = Op::FakeQuantize { levels: m.levels };
        node.inputs = vec![m.x, il_id, ih_id, il_id, ih_id];
        found += 1;
    }
    if found > 0 {
        graph.remove_dead();
    }
    // Node indices changed: report the surviving fake-quantize nodes.
    Ok(fake_quantize_nodes(graph))
}

/// Every channel of a recognised range must be finite with a positive width.
fn check_range(graph: &Graph, m: &Chain, range_param: Option<&str>) -> Result<()> {
    let bad_low = m.il.data.iter().position(|v| !v.is_finite());
    let bad_range = m
        .range
        .data
        .iter()
        .position(|v| !v.is_finite() || *v <= 0.0);
    let reason = match (bad_low, bad_range) {
        (Some(c), _) => format!("input_low of channel {c} is {}", m.il.data[c]),
        (None, Some(c)) => format!("range width of channel {c} is {}", m.range.data[c]),
        (None, None) => return Ok(()),
    };
    let quantizer = range_param
        .map(str::to_string)
        .or_else(|| graph.value(m.x).param.clone())
        .unwrap_or_else(|| graph.value(m.x).name.clone());
    Err(GraphError::InvalidQuantizer {
        quantizer,
        reason: format!("{reason}; a range must be finite and not empty"),
    })
}

/// Parameter paths of the constants `v` is computed from (depth first, inputs in order).
pub fn source_params(graph: &Graph, v: ValueId) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![v];
    let mut seen = std::collections::HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        let value = graph.value(v);
        if let Some(param) = &value.param {
            found.push(param.clone());
        }
        if let ValueKind::Node(i) = value.kind {
            stack.extend(graph.nodes[i].inputs.iter().rev());
        }
    }
    found
}

/// The `FakeQuantize` nodes of `graph`, with whether each quantizes a constant (a weight).
pub fn fake_quantize_nodes(graph: &Graph) -> Vec<FakeQuantMatch> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| match node.op {
            Op::FakeQuantize { levels } => {
                let input = graph.value(node.inputs[0]);
                let weight = input.constant().is_some();
                Some(FakeQuantMatch {
                    node: i,
                    levels,
                    weight,
                    weight_param: input.param.clone().filter(|_| weight),
                    range_param: graph.value(node.inputs[1]).param.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

struct Chain {
    x: ValueId,
    il: ConstTensor,
    range: ConstTensor,
    levels: u32,
    /// The values `il` and `r` were read from, for naming the quantizer.
    low_source: ValueId,
    range_source: ValueId,
}

/// The single-use node producing `v`, if `v` is produced by `op`-kind node used once.
fn single_use_producer<'g>(
    graph: &'g Graph,
    uses: &[Vec<usize>],
    v: ValueId,
    is: impl Fn(&Op) -> bool,
) -> Option<&'g crate::graph::Node> {
    if uses[v.0].len() != 1 {
        return None;
    }
    match graph.value(v).kind {
        ValueKind::Node(i) if is(&graph.nodes[i].op) => Some(&graph.nodes[i]),
        _ => None,
    }
}

fn scalar_of(graph: &Graph, v: ValueId) -> Option<f32> {
    let c = eval_const(graph, v)?;
    (c.len() == 1).then(|| c.data[0])
}

/// For a commutative binary node, the (non-constant operand, constant operand) pair where the
/// non-constant one is produced by an `is` node used once.
fn split_operands<'g>(
    graph: &'g Graph,
    uses: &[Vec<usize>],
    node: &crate::graph::Node,
    commutative: bool,
    is: impl Fn(&Op) -> bool + Copy,
) -> Option<(&'g crate::graph::Node, ValueId)> {
    let (a, b) = (node.inputs[0], node.inputs[1]);
    if let Some(p) = single_use_producer(graph, uses, a, is) {
        return Some((p, b));
    }
    if commutative {
        if let Some(p) = single_use_producer(graph, uses, b, is) {
            return Some((p, a));
        }
    }
    None
}

/// `round(clamp((x - il) / r, 0, 1) * (L - 1))` ending at the `Round` node `round`: the level
/// index both fake-quantize forms start from.
fn match_levels(graph: &Graph, uses: &[Vec<usize>], round: &crate::graph::Node) -> Option<Chain> {
    // t = t.round(); t = t.mul_scalar(L - 1)
    let scaled = graph.producer(round.inputs[0])?;
    if scaled.op != Op::Mul || uses[round.inputs[0].0].len() != 1 {
        return None;
    }
    let (clamp, steps) = split_operands(
        graph,
        uses,
        scaled,
        true,
        |o| matches!(o, Op::Clamp { min, max } if *min == 0.0 && *max == 1.0),
    )?;
    let steps = scalar_of(graph, steps)?;
    if !(1.0..=255.0).contains(&steps) || steps.fract() != 0.0 {
        return None;
    }
    // t = t.div(r)
    let div_r = single_use_producer(graph, uses, clamp.inputs[0], |o| *o == Op::Div)?;
    let r1 = div_r.inputs[1];
    // t = x.sub(il)
    let sub = single_use_producer(graph, uses, div_r.inputs[0], |o| *o == Op::Sub)?;
    let (x, il1) = (sub.inputs[0], sub.inputs[1]);
    Some(Chain {
        x,
        il: eval_const(graph, il1)?,
        range: eval_const(graph, r1)?,
        levels: steps as u32 + 1,
        low_source: il1,
        range_source: r1,
    })
}

/// A fake-quantizer ending at node `end`, in either form:
/// OpenVINO's `round(..) / (L - 1) * r + il`, or the integer form `(round(..) - zp) * step`
/// with `zp = round(-il / r * (L - 1))` and `step = r / (L - 1)`.
fn match_chain(graph: &Graph, end: usize) -> Option<Chain> {
    let last = &graph.nodes[end];
    let uses = graph.consumers();
    match last.op {
        Op::Add => {
            // q = t.add(il); t = t.mul(r); t = t.div_scalar(L - 1)
            let (mul_r, il2) = split_operands(graph, &uses, last, true, |o| *o == Op::Mul)?;
            let (div_s, r2) = split_operands(graph, &uses, mul_r, true, |o| *o == Op::Div)?;
            let steps = scalar_of(graph, div_s.inputs[1])?;
            let round = single_use_producer(graph, &uses, div_s.inputs[0], |o| *o == Op::Round)?;
            let chain = match_levels(graph, &uses, round)?;
            let same = steps == (chain.levels - 1) as f32
                && eval_const(graph, il2)? == chain.il
                && eval_const(graph, r2)? == chain.range;
            same.then_some(chain)
        }
        Op::Mul => {
            // q = t.mul(step); t = t.sub(zp)
            let (sub_zp, step) = split_operands(graph, &uses, last, true, |o| *o == Op::Sub)?;
            let round = single_use_producer(graph, &uses, sub_zp.inputs[0], |o| *o == Op::Round)?;
            let chain = match_levels(graph, &uses, round)?;
            let steps = (chain.levels - 1) as f32;
            let want_zp = chain
                .il
                .zip(&chain.range, |l, r| (-l / r * steps).round_ties_even());
            let want_step = chain.range.map(|r| r / steps);
            let same = eval_const(graph, sub_zp.inputs[1])? == want_zp.ok()?
                && eval_const(graph, step)? == want_step;
            same.then_some(chain)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds `q = fq(x)` with the contract's op sequence; `leak` adds a second consumer of the
    /// rounded value, which must prevent the match.
    fn chain(leak: bool) -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![2, 3]);
        let s = vec![1, 1];
        let il = g.add_constant("il", ConstTensor::new(s.clone(), vec![-1.0]).unwrap(), None);
        let r = g.add_constant("r", ConstTensor::new(s.clone(), vec![2.0]).unwrap(), None);
        let l = g.add_constant("l", ConstTensor::scalar(255.0), None);
        let sh = vec![2, 3];
        let t = g.add_node(Op::Sub, vec![x, il], "t1", sh.clone());
        let t = g.add_node(Op::Div, vec![t, r], "t2", sh.clone());
        let t = g.add_node(Op::Clamp { min: 0.0, max: 1.0 }, vec![t], "t3", sh.clone());
        let t = g.add_node(Op::Mul, vec![t, l], "t4", sh.clone());
        let rounded = g.add_node(Op::Round, vec![t], "t5", sh.clone());
        let t = g.add_node(Op::Div, vec![rounded, l], "t6", sh.clone());
        let t = g.add_node(Op::Mul, vec![t, r], "t7", sh.clone());
        let q = g.add_node(Op::Add, vec![t, il], "q", sh.clone());
        g.outputs.push(q);
        if leak {
            let extra = g.add_node(Op::Relu, vec![rounded], "extra", sh);
            g.outputs.push(extra);
        }
        g
    }

    #[test]
    fn recognises_the_contract_sequence() {
        let mut g = chain(false);
        let found = match_fake_quantize(&mut g).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].levels, 256);
        assert!(!found[0].weight);
        assert_eq!(g.nodes.len(), 1);
        let node = &g.nodes[0];
        assert_eq!(node.op, Op::FakeQuantize { levels: 256 });
        assert_eq!(g.constant(node.inputs[1]).unwrap().data, vec![-1.0]);
        assert_eq!(g.constant(node.inputs[2]).unwrap().data, vec![1.0]);
        g.validate().unwrap();
    }

    /// `(k - zp) * step` for a symmetric grid of scale 1 (il = -1, r = 2, 255 levels: zp = 127).
    fn integer_chain(zero_point: f32) -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![2, 3]);
        let s = vec![1, 1];
        let il = g.add_constant("il", ConstTensor::new(s.clone(), vec![-1.0]).unwrap(), None);
        let r = g.add_constant("r", ConstTensor::new(s.clone(), vec![2.0]).unwrap(), None);
        let l = g.add_constant("l", ConstTensor::scalar(254.0), None);
        let zp = g.add_constant(
            "zp",
            ConstTensor::new(s.clone(), vec![zero_point]).unwrap(),
            None,
        );
        let step = g.add_constant(
            "step",
            ConstTensor::new(s, vec![2.0 / 254.0]).unwrap(),
            None,
        );
        let sh = vec![2, 3];
        let t = g.add_node(Op::Sub, vec![x, il], "t1", sh.clone());
        let t = g.add_node(Op::Div, vec![t, r], "t2", sh.clone());
        let t = g.add_node(Op::Clamp { min: 0.0, max: 1.0 }, vec![t], "t3", sh.clone());
        let t = g.add_node(Op::Mul, vec![t, l], "t4", sh.clone());
        let t = g.add_node(Op::Round, vec![t], "t5", sh.clone());
        let t = g.add_node(Op::Sub, vec![t, zp], "t6", sh.clone());
        let q = g.add_node(Op::Mul, vec![t, step], "q", sh);
        g.outputs.push(q);
        g
    }

    #[test]
    fn recognises_the_integer_form_with_its_own_zero_point_only() {
        let mut g = integer_chain(127.0);
        let found = match_fake_quantize(&mut g).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].levels, 255);
        let node = &g.nodes[0];
        assert_eq!(g.constant(node.inputs[1]).unwrap().data, vec![-1.0]);
        assert_eq!(g.constant(node.inputs[2]).unwrap().data, vec![1.0]);
        // Another zero point is another computation: not a fake-quantizer.
        let mut g = integer_chain(126.0);
        assert!(match_fake_quantize(&mut g).unwrap().is_empty());
    }

    #[test]
    fn an_intermediate_with_another_consumer_is_not_matched() {
        let mut g = chain(true);
        assert!(match_fake_quantize(&mut g).unwrap().is_empty());
        assert_eq!(g.nodes.len(), 9);
    }
}
