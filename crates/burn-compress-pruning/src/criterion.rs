//! Filter importance: how much each output channel of a producer weight matters.

use serde::{Deserialize, Serialize};

/// How a filter's importance is measured (smaller is pruned first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// `‖w_f‖₁`.
    L1,
    /// `‖w_f‖₂` (NNCF's default).
    #[default]
    L2,
    /// FPGM: `Σ_j ‖w_f − w_j‖₂`, the distance to the other filters of the layer; filters near
    /// the geometric median are redundant.
    GeometricMedian,
    /// `|γ|` of the BatchNorm that follows the layer.
    BnScale,
}

/// The filters of a weight: slices along `axis`, each flattened (row-major order of the rest).
pub fn filters(values: &[f32], dims: &[usize], axis: usize) -> Vec<Vec<f32>> {
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let count = dims[axis];
    (0..count)
        .map(|f| {
            (0..outer)
                .flat_map(|o| {
                    let start = (o * count + f) * inner;
                    values[start..start + inner].iter().copied()
                })
                .collect()
        })
        .collect()
}

/// Importance of every filter along `axis` by an L-norm or FPGM.
pub fn filter_importance(filters: &[Vec<f32>], criterion: Criterion) -> Vec<f32> {
    let norm2 = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    match criterion {
        Criterion::L1 => filters
            .iter()
            .map(|f| f.iter().map(|x| x.abs() as f64).sum::<f64>() as f32)
            .collect(),
        Criterion::L2 | Criterion::BnScale => filters.iter().map(|f| norm2(f) as f32).collect(),
        Criterion::GeometricMedian => filters
            .iter()
            .map(|f| {
                filters
                    .iter()
                    .map(|g| {
                        f.iter()
                            .zip(g)
                            .map(|(a, b)| ((a - b) as f64).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .sum::<f64>() as f32
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_slice_along_any_axis() {
        // [2, 3]: axis 0 gives rows, axis 1 columns.
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            filters(&v, &[2, 3], 0),
            vec![vec![1., 2., 3.], vec![4., 5., 6.]]
        );
        assert_eq!(
            filters(&v, &[2, 3], 1),
            vec![vec![1., 4.], vec![2., 5.], vec![3., 6.]]
        );
    }

    #[test]
    fn norms_and_geometric_median_by_hand() {
        let f = vec![vec![3.0, -4.0], vec![0.0, 1.0], vec![3.0, -3.0]];
        assert_eq!(filter_importance(&f, Criterion::L1), vec![7.0, 1.0, 6.0]);
        assert_eq!(
            filter_importance(&f, Criterion::L2),
            vec![5.0, 1.0, 18f32.sqrt()]
        );
        // Distances: d01 = √(9+25) = √34, d02 = 1, d12 = √(9+16) = 5.
        let gm = filter_importance(&f, Criterion::GeometricMedian);
        let want = [34f32.sqrt() + 1.0, 34f32.sqrt() + 5.0, 1.0 + 5.0];
        for (g, w) in gm.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
