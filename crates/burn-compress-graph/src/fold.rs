//! Constant evaluation and folding of constant subgraphs.

use std::collections::HashMap;

use crate::graph::{Graph, Op, ValueId, ValueKind};
use crate::tensor::ConstTensor;

/// Evaluates `id` if it is a constant or computed from constants by foldable operations
/// (reshape, transpose, slicing, element-wise arithmetic). `None` otherwise.
pub fn eval_const(graph: &Graph, id: ValueId) -> Option<ConstTensor> {
    let mut memo = HashMap::new();
    eval(graph, id, &mut memo)
}

fn eval(
    graph: &Graph,
    id: ValueId,
    memo: &mut HashMap<ValueId, Option<ConstTensor>>,
) -> Option<ConstTensor> {
    if let Some(known) = memo.get(&id) {
        return known.clone();
    }
    let result = match &graph.value(id).kind {
        ValueKind::Constant(c) => Some(c.clone()),
        ValueKind::Input => None,
        ValueKind::Node(i) => {
            let node = &graph.nodes[*i];
            let mut args = Vec::with_capacity(node.inputs.len());
            for input in &node.inputs {
                args.push(eval(graph, *input, memo)?);
            }
            apply(&node.op, &args, &graph.value(id).shape)
        }
    };
    memo.insert(id, result.clone());
    result
}

/// Computes one foldable operation on constant arguments.
pub fn apply(op: &Op, args: &[ConstTensor], out_shape: &[usize]) -> Option<ConstTensor> {
    let unary = |f: &dyn Fn(f32) -> f32| Some(args[0].map(f));
    match op {
        Op::Reshape => args[0].reshape(out_shape.to_vec()).ok(),
        Op::Transpose { perm } => args[0].transpose(perm).ok(),
        Op::Add => args[0].zip(&args[1], |a, b| a + b).ok(),
        Op::Sub => args[0].zip(&args[1], |a, b| a - b).ok(),
        Op::Mul => args[0].zip(&args[1], |a, b| a * b).ok(),
        Op::Div => args[0].zip(&args[1], |a, b| a / b).ok(),
        Op::Neg => unary(&|v| -v),
        Op::Abs => unary(&|v| v.abs()),
        Op::Sqrt => unary(&|v| v.sqrt()),
        Op::Exp => unary(&|v| v.exp()),
        Op::Relu => unary(&|v| v.max(0.0)),
        Op::Round => unary(&|v| v.round_ties_even()),
        Op::Math(f) => unary(&|v| f.of(v)),
        Op::Clamp { min, max } => {
            let (lo, hi) = (*min as f32, *max as f32);
            unary(&|v| v.max(lo).min(hi))
        }
        Op::Slice { ranges } => slice(&args[0], ranges, out_shape),
        Op::Flip { axes } => flip(&args[0], axes),
        // Booleans are 0 and 1, integers exact: converting keeps the values.
        Op::Convert => Some(args[0].clone()),
        Op::Compare(how) => args[0].zip(&args[1], |a, b| truth(how.holds(a, b))).ok(),
        Op::Not => unary(&|v| truth(v == 0.0)),
        Op::And => args[0]
            .zip(&args[1], |a, b| truth(a != 0.0 && b != 0.0))
            .ok(),
        Op::Or => args[0]
            .zip(&args[1], |a, b| truth(a != 0.0 || b != 0.0))
            .ok(),
        Op::Expand => expand(&args[0], out_shape),
        Op::Select => {
            let condition = expand(&args[0], out_shape)?;
            let then = expand(&args[1], out_shape)?;
            let otherwise = expand(&args[2], out_shape)?;
            let data = (condition.data.iter().zip(&then.data).zip(&otherwise.data))
                .map(|((&c, &t), &e)| if c != 0.0 { t } else { e })
                .collect();
            ConstTensor::new(out_shape.to_vec(), data).ok()
        }
        _ => None,
    }
}

/// A boolean as the graph stores it.
fn truth(b: bool) -> f32 {
    f32::from(u8::from(b))
}

/// `x` broadcast to `shape`.
fn expand(x: &ConstTensor, shape: &[usize]) -> Option<ConstTensor> {
    let target = ConstTensor::new(shape.to_vec(), vec![0.0; shape.iter().product()]).ok()?;
    let expanded = x.zip(&target, |a, _| a).ok()?;
    (expanded.shape == shape).then_some(expanded)
}

fn flip(x: &ConstTensor, axes: &[usize]) -> Option<ConstTensor> {
    pick(x, &x.shape, |d, i| match axes.contains(&d) {
        true => x.shape[d] - 1 - i,
        false => i,
    })
}

fn slice(
    x: &ConstTensor,
    ranges: &[crate::graph::SliceRange],
    out_shape: &[usize],
) -> Option<ConstTensor> {
    pick(x, out_shape, |d, i| {
        let (start, step) = ranges.get(d).map(|r| (r.start, r.step)).unwrap_or((0, 1));
        start + i * step
    })
}

/// The tensor of `out_shape` whose element at index `i` along each axis `d` is `x`'s at
/// `source(d, i)` along that axis.
fn pick(
    x: &ConstTensor,
    out_shape: &[usize],
    source: impl Fn(usize, usize) -> usize,
) -> Option<ConstTensor> {
    let strides = crate::tensor::strides(&x.shape);
    let n: usize = out_shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut index = vec![0usize; out_shape.len()];
    for _ in 0..n {
        let offset: usize = index
            .iter()
            .enumerate()
            .map(|(d, &i)| source(d, i) * strides[d])
            .sum();
        data.push(x.data[offset]);
        for d in (0..out_shape.len()).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    ConstTensor::new(out_shape.to_vec(), data).ok()
}

/// Replaces every node whose inputs are all constants (and whose op is foldable) by a constant,
/// then removes what became dead. Returns the number of folded nodes.
pub fn fold_constants(graph: &mut Graph) -> usize {
    let mut folded = 0;
    for i in 0..graph.nodes.len() {
        let node = &graph.nodes[i];
        let args: Option<Vec<ConstTensor>> = node
            .inputs
            .iter()
            .map(|v| graph.constant(*v).cloned())
            .collect();
        let Some(args) = args else { continue };
        let output = node.output;
        // A value whose shape follows the batch stays computed.
        if graph.value(output).dynamic.iter().any(|&d| d) {
            continue;
        }
        if let Some(result) = apply(&node.op, &args, &graph.value(output).shape) {
            // Keep a parameter-derived name readable.
            if let Some(param) = node
                .inputs
                .iter()
                .find_map(|v| graph.value(*v).param.clone())
            {
                graph.values[output.0].param = Some(param);
            }
            graph.set_constant(output, result);
            folded += 1;
        }
    }
    graph.remove_dead();
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_reshape_and_scalar_arithmetic() {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![2, 3]);
        let b = g.add_constant(
            "b",
            ConstTensor::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
            Some("fc.bias".into()),
        );
        let r = g.add_node(Op::Reshape, vec![b], "r", vec![1, 3]);
        let two = g.add_constant("two", ConstTensor::scalar(2.0), None);
        let m = g.add_node(Op::Mul, vec![r, two], "m", vec![1, 3]);
        let y = g.add_node(Op::Add, vec![x, m], "y", vec![2, 3]);
        g.outputs.push(y);
        assert_eq!(fold_constants(&mut g), 2);
        assert_eq!(g.nodes.len(), 1);
        let c = g.constant(g.nodes[0].inputs[1]).unwrap();
        assert_eq!(c.shape, vec![1, 3]);
        assert_eq!(c.data, vec![2.0, 4.0, 6.0]);
        g.validate().unwrap();
    }

    fn constant(shape: &[usize], data: &[f32]) -> ConstTensor {
        ConstTensor::new(shape.to_vec(), data.to_vec()).unwrap()
    }

    #[test]
    fn folds_comparisons_boolean_logic_selects_expands_and_flips() {
        use crate::graph::Comparison;
        let rows = constant(&[2, 1], &[0.0, 1.0]);
        let columns = constant(&[1, 3], &[0.0, 1.0, 2.0]);
        // A lower-triangle mask: row > column.
        let lower = apply(
            &Op::Compare(Comparison::Greater),
            &[rows.clone(), columns.clone()],
            &[2, 3],
        )
        .unwrap();
        assert_eq!(lower.data, vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let not = apply(&Op::Not, std::slice::from_ref(&lower), &[2, 3]).unwrap();
        assert_eq!(not.data, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        let first_column = apply(
            &Op::Compare(Comparison::Equal),
            &[columns, ConstTensor::scalar(0.0)],
            &[1, 3],
        )
        .unwrap();
        let and = apply(&Op::And, &[not, first_column.clone()], &[2, 3]).unwrap();
        assert_eq!(and.data, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let or = apply(&Op::Or, &[lower.clone(), first_column], &[2, 3]).unwrap();
        assert_eq!(or.data, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let picked = apply(
            &Op::Select,
            &[
                lower,
                ConstTensor::scalar(-9.0),
                constant(&[3], &[1.0, 2.0, 3.0]),
            ],
            &[2, 3],
        )
        .unwrap();
        assert_eq!(picked.data, vec![1.0, 2.0, 3.0, -9.0, 2.0, 3.0]);
        let expanded = apply(&Op::Expand, &[rows], &[2, 2]).unwrap();
        assert_eq!(expanded.data, vec![0.0, 0.0, 1.0, 1.0]);
        let grid = constant(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let flipped = apply(
            &Op::Flip { axes: vec![0, 1] },
            std::slice::from_ref(&grid),
            &[2, 3],
        )
        .unwrap();
        assert_eq!(flipped.data, vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        let columns_flipped = apply(&Op::Flip { axes: vec![1] }, &[grid], &[2, 3]).unwrap();
        assert_eq!(columns_flipped.data, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
    }
}
