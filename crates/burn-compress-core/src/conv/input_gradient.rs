//! The input gradient of a stride-1 2-D convolution with few input channels, on host slices.
//!
//! With `E` the input zero-padded by the convolution's padding, every tap `(kh, kw)` adds
//! `w · grad` to `E` shifted by `(kh·dilation, kw·dilation)`. Laid out with one row pitch for `E`
//! and the gradient (the gradient's rows padded with zeros to `E`'s width), each such shift is a
//! constant offset, so the work is long runs of `E` each summing every tap of every output
//! channel in registers ([`CHUNK`] values at a time) instead of one short row per tap. `E` cut
//! to the input is the gradient. Sums are taken in a fixed order (output channel, then tap) with
//! IEEE `×` and `+` only: every instruction set gives the same bits.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::TensorMetadata;
use rayon::prelude::*;

use crate::isa::{Isa, Kernel};

/// Values of `E` summed in registers at a time.
const CHUNK: usize = 64;

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
    let mut dx = vec![0.0f32; geometry.batch * sample_in];
    dx.par_chunks_mut(sample_in.max(1))
        .zip(grad.par_chunks(sample_out.max(1)))
        .for_each_init(
            || Scratch::new(geometry),
            |scratch, (dx, grad)| {
                isa.run(Sample {
                    grad,
                    weight,
                    dx,
                    geometry,
                    scratch,
                })
            },
        );
    dx
}

/// A task's working memory: the padded input gradient `E` per input channel (a whole number of
/// [`CHUNK`]s each), one output channel's gradient at `E`'s row pitch with zero margins, and
/// each tap's offset in `E`.
struct Scratch {
    padded_input: Vec<f32>,
    spread_grad: Vec<f32>,
    offsets: Vec<usize>,
}

/// `E`'s layout: its row pitch, its length rounded up to [`CHUNK`]s, and the largest tap offset.
#[derive(Clone, Copy)]
struct Layout {
    pitch: usize,
    plane: usize,
    max_offset: usize,
}

impl Layout {
    #[inline(always)]
    fn of(geometry: &Geometry) -> Self {
        let [height, pitch] = geometry.padded();
        let [kernel_h, kernel_w] = geometry.kernel;
        let [dilation_h, dilation_w] = geometry.dilation;
        Self {
            pitch,
            plane: (height * pitch).div_ceil(CHUNK) * CHUNK,
            max_offset: (kernel_h - 1) * dilation_h * pitch + (kernel_w - 1) * dilation_w,
        }
    }
}

impl Scratch {
    fn new(geometry: &Geometry) -> Self {
        let layout = Layout::of(geometry);
        let [kernel_h, kernel_w] = geometry.kernel;
        let [dilation_h, dilation_w] = geometry.dilation;
        let offsets = (0..kernel_h * kernel_w)
            .map(|t| (t / kernel_w) * dilation_h * layout.pitch + (t % kernel_w) * dilation_w)
            .collect();
        Self {
            padded_input: vec![0.0; geometry.in_channels * layout.plane],
            // Margins of `max_offset` before and a plane after: every read of a tap lands inside.
            spread_grad: vec![0.0; layout.max_offset + 2 * layout.plane],
            offsets,
        }
    }
}

/// The input gradient of one sample.
struct Sample<'a> {
    grad: &'a [f32],
    weight: &'a [f32],
    dx: &'a mut [f32],
    geometry: &'a Geometry,
    scratch: &'a mut Scratch,
}

impl Kernel for Sample<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let g = self.geometry;
        let Layout {
            pitch,
            plane,
            max_offset,
        } = Layout::of(g);
        let ([in_h, in_w], [out_h, out_w]) = (g.input, g.output);
        let taps = g.kernel[0] * g.kernel[1];
        let (in_per_group, out_per_group) = (g.in_per_group(), g.out_channels / g.groups);
        let Scratch {
            padded_input,
            spread_grad,
            offsets,
        } = self.scratch;
        padded_input.fill(0.0);
        for (o, grad) in self.grad.chunks_exact(out_h * out_w).enumerate() {
            // The gradient at E's pitch; the columns past `out_w` and the margins stay zero.
            for (row, values) in grad.chunks_exact(out_w).enumerate() {
                spread_grad[max_offset + row * pitch..][..out_w].copy_from_slice(values);
            }
            let group = o / out_per_group;
            for local in 0..in_per_group {
                let weights = &self.weight[(o * in_per_group + local) * taps..][..taps];
                let input = &mut padded_input[(group * in_per_group + local) * plane..][..plane];
                for (c, chunk) in input.chunks_exact_mut(CHUNK).enumerate() {
                    let base = max_offset + c * CHUNK;
                    let mut sum = [0.0f32; CHUNK];
                    for (&w, &offset) in weights.iter().zip(offsets.iter()) {
                        let values: &[f32; CHUNK] = spread_grad[base - offset..][..CHUNK]
                            .try_into()
                            .expect("a whole chunk");
                        for j in 0..CHUNK {
                            sum[j] += w * values[j];
                        }
                    }
                    for j in 0..CHUNK {
                        chunk[j] += sum[j];
                    }
                }
            }
        }
        // Cut E to the input.
        let [pad_h, pad_w] = g.padding;
        for (i, dx) in self.dx.chunks_exact_mut(in_h * in_w).enumerate() {
            let input = &padded_input[i * plane..];
            for (y, row) in dx.chunks_exact_mut(in_w).enumerate() {
                row.copy_from_slice(&input[(y + pad_h) * pitch + pad_w..][..in_w]);
            }
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
    /// channels, at sizes that do not fill whole chunks.
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
        let cases: [Case; 5] = [
            (3, 1, 32, 1, [28, 28], [3, 3], [1, 1], [0; 4]),
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
