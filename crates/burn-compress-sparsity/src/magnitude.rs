//! Magnitude sparsity: masks that remove the weights of smallest importance, for one level over
//! all layers (`global`) or the same level in every layer (`local`).

use serde::{Deserialize, Serialize};

/// How a weight's importance is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Importance {
    /// `|w|`.
    Abs,
    /// `|w| / ‖W‖₂`, normalised by the L2 norm of the layer's whole weight, so one global
    /// threshold is fair across layers (NNCF's default).
    #[default]
    NormedAbs,
}

/// How a level is spread over the sparsified layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelMode {
    /// One threshold over all layers: the level holds for their weights together.
    #[default]
    Global,
    /// Each layer gets the level.
    Local,
}

/// Importance of every value of one weight.
pub fn importance(values: &[f32], kind: Importance) -> Vec<f32> {
    let scale = match kind {
        Importance::Abs => 1.0,
        Importance::NormedAbs => {
            let norm = values
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if norm > 0.0 {
                (1.0 / norm) as f32
            } else {
                1.0
            }
        }
    };
    values.iter().map(|v| v.abs() * scale).collect()
}

/// Number of values a level removes from `len` values.
pub fn removed_count(level: f64, len: usize) -> usize {
    ((level * len as f64).round() as usize).min(len)
}

/// Keep-masks (1.0 keep, 0.0 remove) that remove exactly `removed_count(level, total)` of the
/// values of least importance: over all layers together (`Global`) or in each layer (`Local`).
/// Ties are broken by position (earlier layers, then lower indices, go first).
pub fn magnitude_masks(importances: &[Vec<f32>], level: f64, mode: LevelMode) -> Vec<Vec<f32>> {
    match mode {
        LevelMode::Local => importances
            .iter()
            .map(|layer| {
                let remove = removed_count(level, layer.len());
                lowest_removed(&[layer.as_slice()], remove).remove(0)
            })
            .collect(),
        LevelMode::Global => {
            let total = importances.iter().map(Vec::len).sum();
            let layers: Vec<&[f32]> = importances.iter().map(Vec::as_slice).collect();
            lowest_removed(&layers, removed_count(level, total))
        }
    }
}

/// Masks over `layers` that remove the `remove` values of least importance overall.
fn lowest_removed(layers: &[&[f32]], remove: usize) -> Vec<Vec<f32>> {
    let mut masks: Vec<Vec<f32>> = layers.iter().map(|l| vec![1.0; l.len()]).collect();
    if remove == 0 {
        return masks;
    }
    let mut all: Vec<f32> = layers.iter().flat_map(|l| l.iter().copied()).collect();
    let (_, threshold, _) = all.select_nth_unstable_by(remove - 1, f32::total_cmp);
    let threshold = *threshold;
    // Everything strictly below the threshold goes; then values equal to it, in order.
    let below: usize = layers
        .iter()
        .map(|l| l.iter().filter(|v| v.total_cmp(&threshold).is_lt()).count())
        .sum();
    let mut ties_left = remove - below;
    for (layer, mask) in layers.iter().zip(&mut masks) {
        for (value, keep) in layer.iter().zip(mask.iter_mut()) {
            match value.total_cmp(&threshold) {
                std::cmp::Ordering::Less => *keep = 0.0,
                std::cmp::Ordering::Equal if ties_left > 0 => {
                    *keep = 0.0;
                    ties_left -= 1;
                }
                _ => {}
            }
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normed_abs_divides_by_the_layer_norm() {
        let imp = importance(&[3.0, -4.0], Importance::NormedAbs);
        assert_eq!(imp, vec![0.6, 0.8]);
        assert_eq!(importance(&[3.0, -4.0], Importance::Abs), vec![3.0, 4.0]);
    }

    #[test]
    fn local_masks_remove_the_level_in_each_layer() {
        let layers = vec![vec![0.1, 0.9, 0.5, 0.2], vec![5.0, 1.0]];
        let masks = magnitude_masks(&layers, 0.5, LevelMode::Local);
        assert_eq!(masks, vec![vec![0.0, 1.0, 1.0, 0.0], vec![1.0, 0.0]]);
    }

    #[test]
    fn global_masks_share_one_threshold_and_break_ties_in_order() {
        let layers = vec![vec![0.1, 0.9, 0.5, 0.2], vec![5.0, 0.2]];
        // 6 values, level 0.5: the three smallest (0.1 and the first two 0.2s... one of which
        // is in each layer) go, earlier position first.
        let masks = magnitude_masks(&layers, 0.5, LevelMode::Global);
        assert_eq!(masks, vec![vec![0.0, 1.0, 1.0, 0.0], vec![1.0, 0.0]]);
        let masks = magnitude_masks(&layers, 1.0 / 3.0, LevelMode::Global);
        assert_eq!(masks, vec![vec![0.0, 1.0, 1.0, 0.0], vec![1.0, 1.0]]);
    }
}
