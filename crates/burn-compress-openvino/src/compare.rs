//! Comparison of a reference output (Burn's) with an IR's output (OpenVINO's).

/// How close two `[n, classes]` (or any shape) outputs are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Largest absolute difference.
    pub max_abs_diff: f32,
    /// `max_abs_diff` over the largest reference magnitude.
    pub max_rel_diff: f32,
    /// Fraction of rows whose argmax agrees (rows of length `classes`).
    pub top1_agreement: f64,
    /// Rows compared.
    pub rows: usize,
}

/// Compares `actual` with `reference`, both row-major with rows of `classes` values.
///
/// # Panics
/// When the lengths differ or are not a multiple of `classes`.
pub fn compare(reference: &[f32], actual: &[f32], classes: usize) -> Comparison {
    assert_eq!(reference.len(), actual.len(), "outputs differ in length");
    assert!(
        classes > 0 && reference.len().is_multiple_of(classes),
        "bad row length {classes}"
    );
    let max_abs_diff = reference
        .iter()
        .zip(actual)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = reference.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            })
            .0
    };
    let rows = reference.len() / classes;
    let agree = reference
        .chunks(classes)
        .zip(actual.chunks(classes))
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    Comparison {
        max_abs_diff,
        max_rel_diff: if scale > 0.0 {
            max_abs_diff / scale
        } else {
            max_abs_diff
        },
        top1_agreement: if rows == 0 {
            1.0
        } else {
            agree as f64 / rows as f64
        },
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_differences_and_agreement() {
        let c = compare(&[1.0, 2.0, 3.0, 0.0], &[1.0, 2.5, 3.0, 4.0], 2);
        assert_eq!(c.max_abs_diff, 4.0);
        assert!((c.max_rel_diff - 4.0 / 3.0).abs() < 1e-6);
        assert_eq!(c.top1_agreement, 0.5);
        assert_eq!(c.rows, 2);
    }
}
