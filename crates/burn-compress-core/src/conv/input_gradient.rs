//! The input gradient of a stride-1 2-D convolution with few input channels, on host slices.
//!
//! Per sample and input channel, in two passes. First the *tap sums*: for every tap `t` of the
//! kernel and every output position `o`, `T[t][o] = Σ_c w[c][t] · grad[c][o]` over the output
//! channels `c` of the channel's group — a product of the few-row weight matrix with the
//! gradient, reading the gradient once, in order, with the sums of a tile of [`TILE`] taps over
//! [`BLOCK`] positions held in registers (explicit AVX-512 where the CPU has it). Then every tap
//! adds its row of sums to `E`, the input zero-padded by the convolution's padding, shifted by
//! `(kh·dilation, kw·dilation)`; `E` cut to the input is the gradient. Sums are taken in a
//! fixed order (output channel, then tap) with IEEE `×` and `+` only: every instruction set
//! gives the same bits.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::TensorMetadata;
use rayon::prelude::*;

use crate::isa::{Isa, Kernel};

/// Taps whose sums are taken together (a 3×3 kernel's); a kernel with another number of taps is
/// cut into tiles of this many, the last one filled up with taps of weight zero.
const TILE: usize = 9;

/// Output positions whose tap sums are held in registers at a time (two 16-lane vectors).
const BLOCK: usize = 32;

/// A convolution's shape, for the input gradient: channels, groups, sizes `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Samples in the batch.
    batch: usize,
    /// Input channels.
    in_channels: usize,
    /// Output channels.
    out_channels: usize,
    /// Channel groups.
    groups: usize,
    /// The input's size.
    input: [usize; 2],
    /// The output's size.
    output: [usize; 2],
    /// The kernel's size.
    kernel: [usize; 2],
    /// The kernel's dilation.
    dilation: [usize; 2],
    /// Padding before the input's first row and column.
    padding: [usize; 2],
}

impl Geometry {
    /// The geometry of a convolution of `x` by `weight` with output gradient `grad`, when this
    /// module computes it: stride 1 and shapes that agree; `None` otherwise.
    pub(crate) fn of(
        x: &FlexTensor,
        weight: &FlexTensor,
        grad: &FlexTensor,
        options: &ConvOptions<2>,
    ) -> Option<Self> {
        let [batch, in_channels, in_h, in_w] = x.shape().dims();
        let [grad_batch, out_channels, out_h, out_w] = grad.shape().dims();
        let [weight_out, weight_in, kernel_h, kernel_w] = weight.shape().dims();
        let groups = options.groups;
        let geometry = Self {
            batch,
            in_channels,
            out_channels,
            groups,
            input: [in_h, in_w],
            output: [out_h, out_w],
            kernel: [kernel_h, kernel_w],
            dilation: options.dilation,
            padding: options.padding_begin(),
        };
        let padded = geometry.padded();
        let fits = (0..2).all(|a| {
            geometry.padding[a] + geometry.input[a] <= padded[a] && geometry.output[a] > 0
        });
        let agree = options.stride == [1, 1]
            && groups > 0
            && grad_batch == batch
            && weight_out == out_channels
            && in_channels % groups == 0
            && out_channels % groups == 0
            && weight_in * groups == in_channels
            && fits;
        agree.then_some(geometry)
    }

    /// Input channels per group.
    pub(crate) fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group.
    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// The kernel's taps.
    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Tiles of [`TILE`] taps.
    fn tiles(&self) -> usize {
        self.taps().div_ceil(TILE)
    }

    /// The size of `E`, the input with the padding around it: `output + (kernel − 1)·dilation`.
    fn padded(&self) -> [usize; 2] {
        [0, 1].map(|a| self.output[a] + (self.kernel[a] - 1) * self.dilation[a])
    }
}

/// The input gradient `[batch, in_channels, in_h, in_w]` of the convolution for the upstream
/// gradient `grad` (`[batch, out_channels, out_h, out_w]`) and `weight` (`[out_channels,
/// in_channels / groups, kernel_h, kernel_w]`), one task per sample.
pub(crate) fn compute(grad: &[f32], weight: &[f32], geometry: &Geometry) -> Vec<f32> {
    compute_on(Isa::best(), grad, weight, geometry)
}

/// [`compute`] compiled for `isa`.
fn compute_on(isa: Isa, grad: &[f32], weight: &[f32], geometry: &Geometry) -> Vec<f32> {
    let [in_h, in_w] = geometry.input;
    let [out_h, out_w] = geometry.output;
    let sample_in = geometry.in_channels * in_h * in_w;
    let sample_out = geometry.out_channels * out_h * out_w;
    let tiles = tile_weights(weight, geometry);
    let mut dx = vec![0.0f32; geometry.batch * sample_in];
    dx.par_chunks_mut(sample_in.max(1))
        .zip(grad.par_chunks(sample_out.max(1)))
        .for_each_init(
            || Scratch::new(geometry),
            |scratch, (dx, grad)| {
                isa.run(Sample {
                    isa,
                    grad,
                    tiles: &tiles,
                    dx,
                    geometry,
                    scratch,
                })
            },
        );
    dx
}

/// The weights in the order the tap sums read them: per input channel and tile of taps, per
/// output channel of the group, [`TILE`] weights (zero past the kernel's last tap).
fn tile_weights(weight: &[f32], g: &Geometry) -> Vec<f32> {
    let (in_per_group, out_per_group, taps) = (g.in_per_group(), g.out_per_group(), g.taps());
    let mut tiles = Vec::with_capacity(g.in_channels * g.tiles() * out_per_group * TILE);
    for i in 0..g.in_channels {
        let (group, local) = (i / in_per_group, i % in_per_group);
        for tile in 0..g.tiles() {
            for o in group * out_per_group..(group + 1) * out_per_group {
                let kernel = &weight[(o * in_per_group + local) * taps..][..taps];
                tiles.extend(
                    (tile * TILE..(tile + 1) * TILE).map(|t| kernel.get(t).map_or(0.0, |w| *w)),
                );
            }
        }
    }
    tiles
}

/// A task's working memory: the tap sums of one tile (`TILE` rows of the output's size), `E`
/// for one input channel, and each tap's offset in `E`.
struct Scratch {
    sums: Vec<f32>,
    padded_input: Vec<f32>,
    offsets: Vec<usize>,
}

impl Scratch {
    fn new(g: &Geometry) -> Self {
        let [height, pitch] = g.padded();
        let (kernel_w, [dilation_h, dilation_w]) = (g.kernel[1], g.dilation);
        Self {
            sums: vec![0.0; TILE * g.output[0] * g.output[1]],
            padded_input: vec![0.0; height * pitch],
            offsets: (0..g.taps())
                .map(|t| (t / kernel_w) * dilation_h * pitch + (t % kernel_w) * dilation_w)
                .collect(),
        }
    }
}

/// The input gradient of one sample.
struct Sample<'a> {
    /// The instruction set the task is compiled for (it picks the tap sums' kernel).
    isa: Isa,
    grad: &'a [f32],
    tiles: &'a [f32],
    dx: &'a mut [f32],
    geometry: &'a Geometry,
    scratch: &'a mut Scratch,
}

impl Kernel for Sample<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let g = self.geometry;
        let ([in_h, in_w], [out_h, out_w]) = (g.input, g.output);
        let [_, pitch] = g.padded();
        let [pad_h, pad_w] = g.padding;
        let plane = out_h * out_w;
        let (in_per_group, out_per_group, taps) = (g.in_per_group(), g.out_per_group(), g.taps());
        let Scratch {
            sums,
            padded_input,
            offsets,
        } = self.scratch;
        let tile_len = out_per_group * TILE;
        let mut tiles = self.tiles.chunks_exact(tile_len);
        for (i, dx) in self.dx.chunks_exact_mut(in_h * in_w).enumerate() {
            let group = i / in_per_group;
            let grad = &self.grad[group * out_per_group * plane..][..out_per_group * plane];
            padded_input.fill(0.0);
            for first in (0..taps).step_by(TILE) {
                let weights = tiles
                    .next()
                    .expect("a tile per input channel and tile of taps");
                tap_sums(self.isa, grad, weights, plane, sums);
                for (t, sums) in sums.chunks_exact(plane).take(taps - first).enumerate() {
                    let offset = offsets[first + t];
                    for (y, row) in sums.chunks_exact(out_w).enumerate() {
                        let target = &mut padded_input[y * pitch + offset..][..out_w];
                        for (e, &s) in target.iter_mut().zip(row) {
                            *e += s;
                        }
                    }
                }
            }
            // Cut E to the input.
            for (y, row) in dx.chunks_exact_mut(in_w).enumerate() {
                row.copy_from_slice(&padded_input[(y + pad_h) * pitch + pad_w..][..in_w]);
            }
        }
    }
}

/// The tap sums of one tile: `sums[t][o] = Σ_c weights[c][t] · grad[c][o]` over the rows `c`
/// of `grad` (each `plane` long), summed in the order of `c`: explicit AVX-512 where `isa` is,
/// the same operations in plain code (vectorised for `isa`) elsewhere.
#[inline(always)]
fn tap_sums(isa: Isa, grad: &[f32], weights: &[f32], plane: usize, sums: &mut [f32]) {
    assert!(grad.len() * TILE == weights.len() * plane && sums.len() == TILE * plane);
    match isa {
        // SAFETY: `Isa::Avx512` runs only where the CPU has AVX-512F; the lengths are checked
        // above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::tap_sums(grad, weights, plane, sums) },
        _ => plain_tap_sums(grad, weights, plane, sums),
    }
}

/// [`tap_sums`] in plain code: per block of [`BLOCK`] positions, `TILE` rows of sums.
#[inline(always)]
fn plain_tap_sums(grad: &[f32], weights: &[f32], plane: usize, sums: &mut [f32]) {
    for start in (0..plane).step_by(BLOCK) {
        let len = BLOCK.min(plane - start);
        let mut acc = [[0.0f32; BLOCK]; TILE];
        for (grad, weights) in grad.chunks_exact(plane).zip(weights.chunks_exact(TILE)) {
            let grad = &grad[start..][..len];
            for (acc, &w) in acc.iter_mut().zip(weights) {
                for (a, &v) in acc.iter_mut().zip(grad) {
                    *a += w * v;
                }
            }
        }
        for (sums, acc) in sums.chunks_exact_mut(plane).zip(&acc) {
            sums[start..][..len].copy_from_slice(&acc[..len]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{BLOCK, TILE};

    /// [`super::tap_sums`] with AVX-512: per block of [`BLOCK`] positions, `TILE × 2` vector
    /// sums in registers, each gradient row loaded once (masked past the plane's end).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `grad` holds `weights.len() / TILE` rows of `plane` values
    /// and `sums` `TILE` rows.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tap_sums(grad: &[f32], weights: &[f32], plane: usize, sums: &mut [f32]) {
        let rows = weights.len() / TILE;
        let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
        let mut start = 0;
        while start < plane {
            let len = BLOCK.min(plane - start);
            let (low, high) = (mask(len), mask(len.saturating_sub(16)));
            let mut acc = [[_mm512_setzero_ps(); 2]; TILE];
            for c in 0..rows {
                // SAFETY: the masked lanes stay inside row `c` (`start + len <= plane`).
                let (v0, v1) = unsafe {
                    let row = grad.as_ptr().add(c * plane + start);
                    (
                        _mm512_maskz_loadu_ps(low, row),
                        _mm512_maskz_loadu_ps(high, row.add(16)),
                    )
                };
                let w = &weights[c * TILE..][..TILE];
                for t in 0..TILE {
                    let wt = _mm512_set1_ps(w[t]);
                    acc[t][0] = _mm512_add_ps(acc[t][0], _mm512_mul_ps(wt, v0));
                    acc[t][1] = _mm512_add_ps(acc[t][1], _mm512_mul_ps(wt, v1));
                }
            }
            for (t, acc) in acc.iter().enumerate() {
                // SAFETY: as the loads, in row `t` of `sums`.
                unsafe {
                    let row = sums.as_mut_ptr().add(t * plane + start);
                    _mm512_mask_storeu_ps(row, low, acc[0]);
                    _mm512_mask_storeu_ps(row.add(16), high, acc[1]);
                }
            }
            start += BLOCK;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input gradient by its definition, in f64: every output element's gradient times each
    /// tap's weight, added at the input position the tap read.
    fn reference(grad: &[f32], weight: &[f32], g: &Geometry) -> Vec<f64> {
        let ([in_h, in_w], [out_h, out_w], [kernel_h, kernel_w]) = (g.input, g.output, g.kernel);
        let (in_per_group, out_per_group) = (g.in_per_group(), g.out_channels / g.groups);
        let mut dx = vec![0.0f64; g.batch * g.in_channels * in_h * in_w];
        for n in 0..g.batch {
            for o in 0..g.out_channels {
                for local in 0..in_per_group {
                    let i = (o / out_per_group) * in_per_group + local;
                    for (kh, kw) in
                        (0..kernel_h).flat_map(|kh| (0..kernel_w).map(move |kw| (kh, kw)))
                    {
                        let w =
                            weight[((o * in_per_group + local) * kernel_h + kh) * kernel_w + kw];
                        for (oy, ox) in (0..out_h).flat_map(|y| (0..out_w).map(move |x| (y, x))) {
                            let y = (oy + kh * g.dilation[0]).checked_sub(g.padding[0]);
                            let x = (ox + kw * g.dilation[1]).checked_sub(g.padding[1]);
                            if let (Some(y), Some(x)) = (y, x) {
                                if y < in_h && x < in_w {
                                    let gv =
                                        grad[((n * g.out_channels + o) * out_h + oy) * out_w + ox];
                                    dx[((n * g.in_channels + i) * in_h + y) * in_w + x] +=
                                        f64::from(w) * f64::from(gv);
                                }
                            }
                        }
                    }
                }
            }
        }
        dx
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                ((i.wrapping_mul(2_654_435_761).wrapping_add(seed)) >> 8) as f32 / 16_777_216.0
                    - 0.5
            })
            .collect()
    }

    /// Every instruction set gives the definition's values (up to summation order) and the same
    /// bits as the others, for paddings before and after, dilation, groups and several
    /// channels, kernels of one tile of taps, less and more, and sizes that do not fill whole blocks.
    #[test]
    fn every_instruction_set_matches_the_definition() {
        // (batch, in, out, groups, input [h, w], kernel, dilation, padding [top, bottom, left, right])
        type Case = (
            usize,
            usize,
            usize,
            usize,
            [usize; 2],
            [usize; 2],
            [usize; 2],
            [usize; 4],
        );
        let cases: [Case; 7] = [
            (3, 1, 32, 1, [28, 28], [3, 3], [1, 1], [0; 4]),
            (2, 2, 7, 1, [12, 21], [5, 5], [1, 2], [2, 1, 4, 0]),
            (2, 1, 4, 1, [4, 3], [1, 2], [1, 1], [0, 0, 1, 1]),
            (2, 3, 8, 1, [17, 13], [3, 3], [1, 1], [1; 4]),
            (2, 2, 5, 1, [9, 11], [3, 2], [2, 3], [2, 0, 1, 3]),
            (2, 4, 6, 2, [7, 8], [2, 3], [1, 1], [0, 1, 1, 0]),
            (1, 1, 3, 1, [5, 6], [1, 1], [1, 1], [0; 4]),
        ];
        for (batch, in_channels, out_channels, groups, input, kernel, dilation, pad) in cases {
            let output = [0, 1]
                .map(|a| input[a] + pad[2 * a] + pad[2 * a + 1] - (kernel[a] - 1) * dilation[a]);
            let geometry = Geometry {
                batch,
                in_channels,
                out_channels,
                groups,
                input,
                output,
                kernel,
                dilation,
                padding: [pad[0], pad[2]],
            };
            let grad = values(batch * out_channels * output[0] * output[1], 3);
            let weight = values(
                out_channels * in_channels / groups * kernel[0] * kernel[1],
                7,
            );
            let expected = reference(&grad, &weight, &geometry);
            let mut first: Option<Vec<u32>> = None;
            for isa in Isa::supported() {
                let what = format!("{geometry:?} on {isa:?}");
                let got = compute_on(isa, &grad, &weight, &geometry);
                assert_eq!(got.len(), expected.len(), "{what}");
                for (k, (&got, &want)) in got.iter().zip(&expected).enumerate() {
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-5,
                        "{what}: element {k}: {got} against {want}"
                    );
                }
                let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                match &first {
                    Some(first) => {
                        assert_eq!(first, &bits, "{what}: bits differ between instruction sets")
                    }
                    None => first = Some(bits),
                }
            }
        }
    }
}
