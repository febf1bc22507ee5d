//! Dynamic batch: compare two traces taken at different batch sizes and mark every dimension
//! that changed as dynamic.

use std::mem::discriminant;

use crate::error::{GraphError, Result};
use crate::graph::{Graph, ValueKind};

/// Marks in `primary` every dimension that differs in `other`, a trace of the same forward at
/// another batch size. Both graphs must have the same structure (same ops, same ranks), and no
/// constant may change with the batch.
pub fn mark_dynamic(primary: &mut Graph, other: &Graph) -> Result<()> {
    if primary.nodes.len() != other.nodes.len() || primary.values.len() != other.values.len() {
        return Err(GraphError::DynamicBatch(format!(
            "the forward records {} operations at one batch size and {} at another",
            primary.nodes.len(),
            other.nodes.len()
        )));
    }
    for (i, (a, b)) in primary.nodes.iter().zip(&other.nodes).enumerate() {
        if discriminant(&a.op) != discriminant(&b.op) || a.inputs != b.inputs {
            return Err(GraphError::DynamicBatch(format!(
                "operation {i} is {} at one batch size and {} at another (near `{}`)",
                a.op.name(),
                b.op.name(),
                primary.module_path_near(i)
            )));
        }
    }
    for (a, b) in primary.values.iter_mut().zip(&other.values) {
        if a.shape.len() != b.shape.len() {
            return Err(GraphError::DynamicBatch(format!(
                "tensor `{}` changes rank with the batch size",
                a.name
            )));
        }
        let changed: Vec<bool> = a.shape.iter().zip(&b.shape).map(|(x, y)| x != y).collect();
        if changed.iter().any(|&c| c) {
            if let ValueKind::Constant(_) = a.kind {
                return Err(GraphError::DynamicBatch(format!(
                    "constant `{}` depends on the batch size (shape {:?} vs {:?})",
                    a.name, a.shape, b.shape
                )));
            }
        }
        a.dynamic = changed;
    }
    Ok(())
}

/// Whether two traces record the same operations on the same values with the same ranks (they
/// may differ in the sizes of dimensions).
pub(crate) fn same_structure(a: &Graph, b: &Graph) -> bool {
    a.nodes.len() == b.nodes.len()
        && a.values.len() == b.values.len()
        && a.nodes
            .iter()
            .zip(&b.nodes)
            .all(|(x, y)| discriminant(&x.op) == discriminant(&y.op) && x.inputs == y.inputs)
        && a.values
            .iter()
            .zip(&b.values)
            .all(|(x, y)| x.shape.len() == y.shape.len())
}
