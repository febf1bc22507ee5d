//! N:M semi-structured sparsity: in every group of M consecutive weights along the input
//! dimension, keep the N of largest magnitude.
//!
//! For a Conv weight `[out, in, k..]` a group runs over `in` at fixed `(out, k..)`; for Burn's
//! Linear weight `[d_in, d_out]` over `d_in` at a fixed output column.

/// An N:M pattern that does not fit a weight, or is not a pattern at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// N must be between 1 and M.
    #[error("{n}:{m} is not an N:M pattern: need 1 <= N <= M")]
    Invalid {
        /// N.
        n: usize,
        /// M.
        m: usize,
    },
    /// The input dimension is not a multiple of M.
    #[error("{n}:{m} sparsity needs an input dimension divisible by {m}, got {dim}")]
    Indivisible {
        /// N.
        n: usize,
        /// M.
        m: usize,
        /// The input dimension.
        dim: usize,
    },
}

/// Checks an N:M pattern against a weight of `dims` grouped along `axis`.
pub fn check_pattern(n: usize, m: usize, dims: &[usize], axis: usize) -> Result<(), PatternError> {
    if n == 0 || n > m {
        return Err(PatternError::Invalid { n, m });
    }
    let dim = dims[axis];
    if !dim.is_multiple_of(m) {
        return Err(PatternError::Indivisible { n, m, dim });
    }
    Ok(())
}

/// The keep-mask (1.0 keep, 0.0 remove) of the N:M pattern for row-major `values` of `dims`,
/// grouped along `axis`. Within a group, ties keep the earlier weight.
pub fn nm_mask(values: &[f32], dims: &[usize], axis: usize, n: usize, m: usize) -> Vec<f32> {
    let stride: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let groups = dims[axis] / m;
    let mut mask = vec![0.0; values.len()];
    let mut members: Vec<usize> = Vec::with_capacity(m);
    for o in 0..outer {
        for g in 0..groups {
            for inner in 0..stride {
                members.clear();
                members.extend((0..m).map(|j| (o * dims[axis] + g * m + j) * stride + inner));
                // Largest magnitude first; a stable sort keeps the earlier of equal weights.
                members.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
                for &kept in &members[..n] {
                    mask[kept] = 1.0;
                }
            }
        }
    }
    mask
}

/// Whether `values` holds at most `n` non-zeros in every N:M group (the pattern holds).
pub fn satisfies(values: &[f32], dims: &[usize], axis: usize, n: usize, m: usize) -> bool {
    let stride: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    (0..outer).all(|o| {
        (0..dims[axis] / m).all(|g| {
            (0..stride).all(|inner| {
                (0..m)
                    .filter(|j| values[(o * dims[axis] + g * m + j) * stride + inner] != 0.0)
                    .count()
                    <= n
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_of_four_along_the_input_axis_of_a_linear_weight() {
        // Burn Linear weight [d_in = 4, d_out = 2]: groups are the two columns.
        let w = [0.1, -5.0, -0.9, 1.0, 0.3, 2.0, 0.8, -0.1];
        let mask = nm_mask(&w, &[4, 2], 0, 2, 4);
        // Column 0: 0.1, -0.9, 0.3, 0.8 -> keep -0.9 and 0.8; column 1: -5, 1, 2, -0.1 -> -5, 2.
        assert_eq!(mask, vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
        let kept: Vec<f32> = w.iter().zip(&mask).map(|(w, m)| w * m).collect();
        assert!(satisfies(&kept, &[4, 2], 0, 2, 4));
        assert!(!satisfies(&w, &[4, 2], 0, 2, 4));
    }

    #[test]
    fn conv_groups_run_over_input_channels_at_each_position() {
        // [out 1, in 4, k 2]: position 0 holds 1, 2, 3, 4; position 1 holds 4, 3, 2, 1.
        let w = [1.0, 4.0, 2.0, 3.0, 3.0, 2.0, 4.0, 1.0];
        let mask = nm_mask(&w, &[1, 4, 2], 1, 1, 4);
        assert_eq!(mask, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_patterns_are_named() {
        assert_eq!(
            check_pattern(3, 2, &[4, 4], 0),
            Err(PatternError::Invalid { n: 3, m: 2 })
        );
        assert_eq!(
            check_pattern(2, 4, &[6, 4], 0),
            Err(PatternError::Indivisible { n: 2, m: 4, dim: 6 })
        );
    }
}
