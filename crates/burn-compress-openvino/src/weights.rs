//! Weight constants in the layout the consuming OpenVINO op wants, and fake-quantized weights
//! turned into integer constants with their dequantization scale and zero point.

use burn_compress_core::fake_quant::host;
use burn_compress_graph::ConstTensor;

/// How a weight is laid out for its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As in the graph.
    AsIs,
    /// Convolution weight `[O, I/g, k..]` as GroupConvolution's `[g, O/g, I/g, k..]`.
    Grouped(usize),
    /// Burn's `[.., d_in, d_out]` matmul weight as `[d_out, d_in]` for `transpose_b = true`.
    Transposed,
}

/// Shape and row-major values of any element type.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense<T> {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<T>,
}

impl<T: Copy + Default> Dense<T> {
    /// Applies `layout`. Broadcast-shaped tensors (scales) work too: a per-tensor value stays so.
    pub fn layout(self, layout: Layout) -> Dense<T> {
        match layout {
            Layout::AsIs => self,
            Layout::Grouped(_) => Dense {
                shape: grouped_shape(&self.shape, layout),
                data: self.data,
            },
            Layout::Transposed => {
                let (shape, data) = transposed(&self.shape, &self.data);
                Dense {
                    shape,
                    data: data.unwrap_or(self.data),
                }
            }
        }
    }
}

/// The shape of a tensor of `shape` in `layout`, for the layouts that keep the values in place
/// (`AsIs`, and `Grouped`: `[O, ..]` as `[g, O/g, ..]`, or a leading 1 for broadcast scales).
pub fn grouped_shape(shape: &[usize], layout: Layout) -> Vec<usize> {
    let mut shape = shape.to_vec();
    if let Layout::Grouped(g) = layout {
        if shape[0].is_multiple_of(g) && shape[0] >= g {
            let o = shape[0];
            shape[0] = o / g;
            shape.insert(0, g);
        } else {
            shape.insert(0, 1);
        }
    }
    shape
}

/// The shape of `[.., rows, cols]` (leading unit axes only) as `[cols, rows]`, with
/// `(rows, cols)`; `None` when there is nothing to transpose (rank below 2 after dropping unit
/// axes).
pub fn transposed_shape(shape: &[usize]) -> (Vec<usize>, Option<(usize, usize)>) {
    let mut shape = shape.to_vec();
    while shape.len() > 2 && shape[0] == 1 {
        shape.remove(0);
    }
    if shape.len() < 2 {
        return (shape, None);
    }
    let (rows, cols) = (shape[0], shape[1]);
    (vec![cols, rows], Some((rows, cols)))
}

/// Writes the transpose of the row-major `rows × cols` matrix `data` into `out` (`cols × rows`).
///
/// Square tiles go through a small buffer, so each cache line of `data` is read once and each
/// line of `out` written once, whole: with power-of-two strides the lines of a column map to the
/// same cache set and would evict each other otherwise.
pub fn transpose_into<T: Copy + Default>(rows: usize, cols: usize, data: &[T], out: &mut [T]) {
    const TILE: usize = 16;
    assert_eq!(data.len(), rows * cols, "transposed matrix size");
    assert_eq!(out.len(), data.len(), "transposed matrix size");
    let mut tile = [[T::default(); TILE]; TILE];
    for first_row in (0..rows).step_by(TILE) {
        let height = TILE.min(rows - first_row);
        for first_col in (0..cols).step_by(TILE) {
            let width = TILE.min(cols - first_col);
            let block_rows = data[first_row * cols..].chunks(cols).take(height);
            for (i, row) in block_rows.enumerate() {
                for (j, &v) in row[first_col..first_col + width].iter().enumerate() {
                    tile[j][i] = v;
                }
            }
            for (j, column) in tile.iter().enumerate().take(width) {
                let start = (first_col + j) * rows + first_row;
                out[start..start + height].copy_from_slice(&column[..height]);
            }
        }
    }
}

/// `[.., rows, cols]` (leading unit axes only) as `[cols, rows]`; the data is `None` when there
/// is nothing to transpose (rank below 2 after dropping unit axes, or no data).
pub fn transposed<T: Copy + Default>(shape: &[usize], data: &[T]) -> (Vec<usize>, Option<Vec<T>>) {
    let (shape, matrix) = transposed_shape(shape);
    match matrix {
        Some((rows, cols)) if !data.is_empty() => {
            let mut out = vec![T::default(); data.len()];
            transpose_into(rows, cols, data, &mut out);
            (shape, Some(out))
        }
        _ => (shape, None),
    }
}

impl From<&ConstTensor> for Dense<f32> {
    fn from(c: &ConstTensor) -> Self {
        Dense {
            shape: c.shape.clone(),
            data: c.data.clone(),
        }
    }
}

/// A weight quantized by a fake-quantizer: `w ≈ (q - zero_point) * scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeight {
    /// Integer values, i8 range when `zero_point` is `None`, u8 range otherwise.
    pub q: Dense<i32>,
    /// Per-channel (or per-tensor) step, broadcastable to `q`.
    pub scale: Dense<f32>,
    /// Zero point, broadcastable to `q`; `None` when folded into signed `q`.
    pub zero_point: Option<Dense<f32>>,
}

impl QuantizedWeight {
    /// Number of elements that dequantize to exactly 0.0 (integer equal to the zero point).
    pub fn zero_count(&self) -> usize {
        let Some(zp) = &self.zero_point else {
            return self.q.data.iter().filter(|&&q| q == 0).count();
        };
        let q = ConstTensor::new(
            self.q.shape.clone(),
            self.q.data.iter().map(|&v| v as f32).collect(),
        );
        let zp = ConstTensor::new(zp.shape.clone(), zp.data.clone());
        match (q, zp) {
            (Ok(q), Ok(zp)) => q
                .zip(&zp, |q, z| f32::from(u8::from(q == z)))
                .map(|hits| hits.data.iter().filter(|&&h| h == 1.0).count())
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// Quantizes constant `w` as `FakeQuantize(w; il, ih, il, ih, levels)` does, with the host
/// numerics the training-time quantizer uses ([`host`]): level `k = round(clamp((w − il)/r, 0, 1)
/// ·(levels − 1))`, step `r/(levels − 1)`, zero point `round(−il/r·(levels − 1))`, `r = ih − il`.
/// When the whole integer grid `[-zp, levels - 1 - zp]` of every channel fits in i8 (symmetric
/// quantizers), the weight is stored signed as `k - zp` with no zero point; otherwise as unsigned
/// `k` with the zero point.
pub fn quantize_weight(
    w: &ConstTensor,
    il: &ConstTensor,
    ih: &ConstTensor,
    levels: u32,
) -> Option<QuantizedWeight> {
    let l = (levels - 1) as f32;
    let range = ih.zip(il, |h, lo| h - lo).ok()?;
    // The per-channel ranges, broadcast to every weight.
    let low = w.zip(il, |_, lo| lo).ok()?;
    let width = w.zip(&range, |_, r| r).ok()?;
    if low.shape != w.shape || width.shape != w.shape {
        return None;
    }
    let levels_of = |data: Vec<f32>| ConstTensor::new(w.shape.clone(), data).ok();
    let k = levels_of(
        w.data
            .iter()
            .zip(&low.data)
            .zip(&width.data)
            .map(|((&x, &lo), &r)| host::level(x, lo, r, levels))
            .collect(),
    )?;
    let q = levels_of(
        k.data
            .iter()
            .zip(&low.data)
            .zip(&width.data)
            .map(|((&k, &lo), &r)| k - host::zero_point(lo, r, levels))
            .collect(),
    )?;
    let step = range.map(|r| r / l);
    let zp = il
        .zip(&range, |lo, r| host::zero_point(lo, r, levels))
        .ok()?;
    let symmetric = zp.data.iter().all(|z| (l - 127.0..=128.0).contains(z));
    if symmetric {
        return Some(QuantizedWeight {
            q: Dense {
                shape: q.shape,
                data: q.data.iter().map(|&v| v as i32).collect(),
            },
            scale: (&step).into(),
            zero_point: None,
        });
    }
    if k.data.iter().all(|&v| (0.0..=255.0).contains(&v)) {
        return Some(QuantizedWeight {
            q: Dense {
                shape: k.shape,
                data: k.data.iter().map(|&v| v as i32).collect(),
            },
            scale: (&step).into(),
            zero_point: Some((&zp).into()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_weights_become_signed_without_zero_point() {
        // Two output channels, scales 1.0 and 0.5: il = -s, ih = s, 255 levels.
        let w = ConstTensor::new(vec![2, 2], vec![-1.0, 0.5, 0.25, -0.6]).unwrap();
        let il = ConstTensor::new(vec![2, 1], vec![-1.0, -0.5]).unwrap();
        let ih = ConstTensor::new(vec![2, 1], vec![1.0, 0.5]).unwrap();
        let qw = quantize_weight(&w, &il, &ih, 255).unwrap();
        assert!(qw.zero_point.is_none());
        // 0.75 * 254 = 190.5 rounds half to even: 190 - 127 = 63.
        assert_eq!(qw.q.data, vec![-127, 63, 63, -127]);
        for (i, &q) in qw.q.data.iter().enumerate() {
            let (c, step) = (i / 2, qw.scale.data[i / 2]);
            let clamped = w.data[i].clamp(il.data[c], ih.data[c]);
            assert!((q as f32 * step - clamped).abs() <= step / 2.0 + 1e-6);
        }
    }

    #[test]
    fn asymmetric_weights_keep_a_zero_point() {
        let w = ConstTensor::new(vec![3], vec![0.0, 1.0, 3.0]).unwrap();
        let il = ConstTensor::new(vec![1], vec![-1.0]).unwrap();
        let ih = ConstTensor::new(vec![1], vec![3.0]).unwrap();
        let qw = quantize_weight(&w, &il, &ih, 256).unwrap();
        let zp = qw.zero_point.unwrap();
        assert_eq!(zp.data, vec![64.0]);
        assert_eq!(qw.q.data, vec![64, 128, 255]);
    }

    #[test]
    fn tiled_transpose_moves_every_value_of_a_ragged_matrix() {
        // Neither side a multiple of the tile: partial tiles on both edges.
        let (rows, cols) = (37, 21);
        let data: Vec<u32> = (0..(rows * cols) as u32).collect();
        let mut out = vec![u32::MAX; rows * cols];
        transpose_into(rows, cols, &data, &mut out);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(out[c * rows + r], (r * cols + c) as u32, "({r}, {c})");
            }
        }
    }

    #[test]
    fn transposed_layout_swaps_matrix_axes_and_scales() {
        let d = Dense {
            shape: vec![1, 2, 3],
            data: vec![1, 2, 3, 4, 5, 6],
        }
        .layout(Layout::Transposed);
        assert_eq!(d.shape, vec![3, 2]);
        assert_eq!(d.data, vec![1, 4, 2, 5, 3, 6]);
        let s = Dense {
            shape: vec![1, 3],
            data: vec![1.0, 2.0, 3.0],
        }
        .layout(Layout::Transposed);
        assert_eq!(s.shape, vec![3, 1]);
        let g = Dense {
            shape: vec![4, 1, 3, 3],
            data: vec![0.0; 36],
        }
        .layout(Layout::Grouped(4));
        assert_eq!(g.shape, vec![4, 1, 1, 3, 3]);
    }
}
