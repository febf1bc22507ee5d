//! The fused fake-quantize on host slices: the forward in one pass, the NNCF backward in one pass
//! (the input's gradient per element, the range parameters' gradients as per-channel sums),
//! split into blocks over rayon's threads. Every per-element value comes from
//! [`host`], the numerics the tensor chain and the exporter share.

use rayon::prelude::*;

use crate::fake_quant::{host, Form};

/// Elements per parallel block: small tensors (weights) run on the calling thread.
const BLOCK: usize = 1 << 14;

/// How per-channel range parameters line up with the flat, contiguous input: element `i`
/// belongs to channel `(i / inner) % channels` (one channel covers the whole input when
/// `channels` is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelLayout {
    /// Number of channels (the parameters' length).
    pub channels: usize,
    /// Contiguous elements per channel run (the product of the dimensions after the channel
    /// axis).
    pub inner: usize,
}

impl ChannelLayout {
    /// Calls `run(start, end, channel)` for each maximal run of `start..end` that lies in one
    /// channel.
    fn for_each_run(&self, start: usize, end: usize, mut run: impl FnMut(usize, usize, usize)) {
        let mut i = start;
        while i < end {
            let outer = i / self.inner;
            let run_end = end.min((outer + 1) * self.inner);
            run(i, run_end, outer % self.channels);
            i = run_end;
        }
    }
}

/// A quantizer's grid per channel: `[low, low + range]` on `levels` values, in `form`.
#[derive(Clone, Debug)]
pub struct Grid {
    /// `input_low` per channel.
    pub low: Vec<f32>,
    /// `range` per channel (positive).
    pub range: Vec<f32>,
    /// Number of levels.
    pub levels: u32,
    /// Which arithmetic the value follows.
    pub form: Form,
}

/// One channel's constants, computed once per run.
#[derive(Clone, Copy)]
struct ChannelGrid {
    low: f32,
    range: f32,
    high: f32,
    zero_point: f32,
    step: f32,
    levels: u32,
}

impl Grid {
    /// Each channel's constants, computed once per call.
    fn channels(&self) -> Vec<ChannelGrid> {
        (0..self.low.len())
            .map(|c| {
                let (low, range) = (self.low[c], self.range[c]);
                ChannelGrid {
                    low,
                    range,
                    high: low + range,
                    zero_point: host::zero_point(low, range, self.levels),
                    step: range / (self.levels - 1) as f32,
                    levels: self.levels,
                }
            })
            .collect()
    }

    /// Runs `body` with the per-element function of channel `g`, monomorphised per form so
    /// that the element loops inside `body` vectorise.
    #[inline(always)]
    fn with_channel<R>(&self, g: &ChannelGrid, body: impl ChannelBody<R>) -> R {
        match self.form {
            Form::FakeQuantize => body.run(g, |x| host::fake_quantize(x, g.low, g.range, g.levels)),
            Form::Integer => body.run(g, |x| {
                host::integer_value(
                    host::level(x, g.low, g.range, g.levels),
                    g.zero_point,
                    g.step,
                )
            }),
        }
    }
}

/// A loop over one channel run, generic over the per-element quantize function.
trait ChannelBody<R> {
    fn run(self, grid: &ChannelGrid, quantize: impl Fn(f32) -> f32 + Copy) -> R;
}

/// Writes the fake-quantized `x` into `out` (same length).
pub fn forward(x: &[f32], grid: &Grid, layout: ChannelLayout, out: &mut [f32]) {
    if layout.inner == 1 && layout.channels > 1 {
        return interleaved::forward(x, grid, layout.channels, out);
    }
    struct Forward<'a> {
        x: &'a [f32],
        out: &'a mut [f32],
    }
    impl ChannelBody<()> for Forward<'_> {
        #[inline(always)]
        fn run(self, _: &ChannelGrid, quantize: impl Fn(f32) -> f32 + Copy) {
            for (o, &v) in self.out.iter_mut().zip(self.x) {
                *o = quantize(v);
            }
        }
    }
    let channels = grid.channels();
    let block = |(b, out): (usize, &mut [f32])| {
        let start = b * BLOCK;
        layout.for_each_run(start, start + out.len(), |s, e, c| {
            let body = Forward {
                x: &x[s..e],
                out: &mut out[s - start..e - start],
            };
            grid.with_channel(&channels[c], body);
        });
    };
    if x.len() > BLOCK {
        out.par_chunks_mut(BLOCK).enumerate().for_each(block);
    } else {
        block((0, out));
    }
}

/// The range parameters' gradients of one fused fake-quantize for the upstream gradient `g`,
/// NNCF's formulas: `low` gets `g` below and above `[low, high]`; `range` gets `g` above (both
/// through `high = low + range`); the learned parameter gets `g·((q − x)/range)` inside. (`x`
/// gets `g` inside and 0 outside: [`backward`] writes that over the upstream gradient.)
pub struct Gradients {
    /// Per channel.
    pub low: Vec<f32>,
    /// Per channel.
    pub range: Vec<f32>,
    /// Per channel.
    pub learned: Vec<f32>,
}

/// Per-channel partial sums of one block: (low, range, learned).
type Sums = Vec<[f64; 3]>;

/// Independent accumulators per sum, so the element loop vectorises (float addition is not
/// reassociated by the compiler).
const LANES: usize = 8;

/// All ones where `condition` holds, else zero.
#[inline(always)]
fn mask(condition: bool) -> u32 {
    0u32.wrapping_sub(condition as u32)
}

/// `value` where `mask` is all ones, `+0.0` where it is zero.
#[inline(always)]
fn keep(value: f32, mask: u32) -> f32 {
    f32::from_bits(value.to_bits() & mask)
}

/// NNCF's gradient terms of one element `x` with upstream gradient `g` and quantized value `q`:
/// `(d x, [d input_low, d range, d learned])`. Masks as bits (all ones or zero) select `g` or
/// `+0.0` without branches, so callers' loops vectorise and an infinite input never meets 0·∞.
#[inline(always)]
fn gradient_terms(x: f32, g: f32, q: f32, low: f32, high: f32, range: f32) -> (f32, [f32; 3]) {
    let above = mask(x > high);
    let inside = !(mask(x < low) | above);
    let learned = g * ((q - x) / range);
    (
        keep(g, inside),
        [keep(g, !inside), keep(g, above), keep(learned, inside)],
    )
}

/// Computes [`Gradients`] for input `x` and upstream gradient `grad` (same length), and
/// overwrites `grad` with the input's gradient, element by element (no allocation the size of
/// the input).
pub fn backward(x: &[f32], grad: &mut [f32], grid: &Grid, layout: ChannelLayout) -> Gradients {
    if layout.inner == 1 && layout.channels > 1 {
        return interleaved::backward(x, grad, grid, layout.channels);
    }
    struct Backward<'a> {
        x: &'a [f32],
        /// The upstream gradient, overwritten with the input's.
        grad: &'a mut [f32],
    }
    impl ChannelBody<[f64; 3]> for Backward<'_> {
        #[inline(always)]
        fn run(self, c: &ChannelGrid, quantize: impl Fn(f32) -> f32 + Copy) -> [f64; 3] {
            // Each stage runs over all lanes of a chunk, so the lanes vectorise.
            type Lanes = [f32; LANES];
            let lanes = |x: &Lanes, o: &mut Lanes, acc: &mut [Lanes; 3]| {
                let g = *o;
                let mut q = [0.0f32; LANES];
                for j in 0..LANES {
                    q[j] = quantize(x[j]);
                }
                for j in 0..LANES {
                    let (gx, terms) = gradient_terms(x[j], g[j], q[j], c.low, c.high, c.range);
                    o[j] = gx;
                    for k in 0..3 {
                        acc[k][j] += terms[k];
                    }
                }
            };
            let mut acc = [[0.0f32; LANES]; 3];
            let mut xs = self.x.chunks_exact(LANES);
            let mut os = self.grad.chunks_exact_mut(LANES);
            for (x, o) in (&mut xs).zip(&mut os) {
                let o: &mut Lanes = o.try_into().expect("a full chunk");
                lanes(x.try_into().expect("a full chunk"), o, &mut acc);
            }
            // The tail (or a whole run shorter than a chunk), element by element.
            let tail = xs.remainder().iter().zip(os.into_remainder());
            for (j, (&x, o)) in tail.enumerate() {
                let (gx, terms) = gradient_terms(x, *o, quantize(x), c.low, c.high, c.range);
                *o = gx;
                for k in 0..3 {
                    acc[k][j] += terms[k];
                }
            }
            acc.map(|lanes| lanes.iter().map(|&v| v as f64).sum())
        }
    }
    let channels = grid.channels();
    let block = |(b, grad): (usize, &mut [f32])| -> Sums {
        let start = b * BLOCK;
        let mut sums = vec![[0.0f64; 3]; layout.channels];
        layout.for_each_run(start, start + grad.len(), |s, e, c| {
            let body = Backward {
                x: &x[s..e],
                grad: &mut grad[s - start..e - start],
            };
            let run = grid.with_channel(&channels[c], body);
            for (sum, part) in sums[c].iter_mut().zip(run) {
                *sum += part;
            }
        });
        sums
    };
    let add = |mut a: Sums, b: Sums| {
        for (a, b) in a.iter_mut().zip(b) {
            for k in 0..3 {
                a[k] += b[k];
            }
        }
        a
    };
    let sums = if x.len() > BLOCK {
        grad.par_chunks_mut(BLOCK)
            .enumerate()
            .map(block)
            .reduce(|| vec![[0.0f64; 3]; layout.channels], add)
    } else {
        block((0, grad))
    };
    let column = |k: usize| sums.iter().map(|s| s[k] as f32).collect();
    Gradients {
        low: column(0),
        range: column(1),
        learned: column(2),
    }
}

/// Channels on the last axis (`inner` 1, e.g. a Linear weight's output features): each row of
/// `channels` elements walks all channels, so the parameters are laid out as columns and the
/// loops run along a row.
mod interleaved {
    use rayon::prelude::*;

    use super::{gradient_terms, Gradients, Grid, BLOCK};
    use crate::fake_quant::{host, Form};

    /// The channels' constants as columns.
    struct Columns {
        low: Vec<f32>,
        range: Vec<f32>,
        high: Vec<f32>,
        zero_point: Vec<f32>,
        step: Vec<f32>,
        levels: u32,
        form: Form,
    }

    impl Columns {
        fn new(grid: &Grid) -> Self {
            let channels = grid.channels();
            let column = |f: fn(&super::ChannelGrid) -> f32| channels.iter().map(f).collect();
            Self {
                low: column(|c| c.low),
                range: column(|c| c.range),
                high: column(|c| c.high),
                zero_point: column(|c| c.zero_point),
                step: column(|c| c.step),
                levels: grid.levels,
                form: grid.form,
            }
        }

        /// Writes the fake-quantized values of one row `x` (channel `j` at position `j`)
        /// into `out`; the form is chosen once per row so the element loop vectorises.
        #[inline(always)]
        fn values_into(&self, x: &[f32], out: &mut [f32]) {
            let levels = self.levels;
            let params = self.low.iter().zip(&self.range);
            match self.form {
                Form::FakeQuantize => {
                    for ((o, &v), (&low, &range)) in out.iter_mut().zip(x).zip(params) {
                        *o = host::fake_quantize(v, low, range, levels);
                    }
                }
                Form::Integer => {
                    let grid = params.zip(self.zero_point.iter().zip(&self.step));
                    for ((o, &v), ((&low, &range), (&zp, &step))) in out.iter_mut().zip(x).zip(grid)
                    {
                        *o = host::integer_value(host::level(v, low, range, levels), zp, step);
                    }
                }
            }
        }
    }

    /// Rows per parallel block.
    fn rows_per_block(channels: usize) -> usize {
        (BLOCK / channels).max(1)
    }

    pub(super) fn forward(x: &[f32], grid: &Grid, channels: usize, out: &mut [f32]) {
        let columns = Columns::new(grid);
        let rows = |(x, out): (&[f32], &mut [f32])| {
            for (x, out) in x.chunks(channels).zip(out.chunks_mut(channels)) {
                columns.values_into(x, out);
            }
        };
        let block = rows_per_block(channels) * channels;
        if x.len() > BLOCK {
            x.par_chunks(block)
                .zip(out.par_chunks_mut(block))
                .for_each(rows);
        } else {
            rows((x, out));
        }
    }

    pub(super) fn backward(x: &[f32], grad: &mut [f32], grid: &Grid, channels: usize) -> Gradients {
        let columns = Columns::new(grid);
        // Per-channel sums of one block: (low, range, learned) as three columns.
        let rows = |(x, grad): (&[f32], &mut [f32])| -> [Vec<f32>; 3] {
            // One row's quantized values.
            let mut q = vec![0.0f32; channels];
            let mut acc = [
                vec![0.0f32; channels],
                vec![0.0f32; channels],
                vec![0.0f32; channels],
            ];
            let [low_sum, range_sum, learned_sum] = &mut acc;
            for (x, grad) in x.chunks(channels).zip(grad.chunks_mut(channels)) {
                columns.values_into(x, &mut q);
                let params = (columns.low.iter().zip(&columns.high)).zip(&columns.range);
                let sums =
                    (low_sum.iter_mut().zip(range_sum.iter_mut())).zip(learned_sum.iter_mut());
                for (
                    (((g, &v), &q), ((&low, &high), &range)),
                    ((low_sum, range_sum), learned_sum),
                ) in grad.iter_mut().zip(x).zip(&q).zip(params).zip(sums)
                {
                    let (dx, [d_low, d_range, d_learned]) =
                        gradient_terms(v, *g, q, low, high, range);
                    *g = dx;
                    *low_sum += d_low;
                    *range_sum += d_range;
                    *learned_sum += d_learned;
                }
            }
            acc
        };
        let add = |mut a: [Vec<f32>; 3], b: [Vec<f32>; 3]| {
            for (a, b) in a.iter_mut().zip(b) {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
            }
            a
        };
        let block = rows_per_block(channels) * channels;
        let [low, range, learned] = if x.len() > BLOCK {
            x.par_chunks(block)
                .zip(grad.par_chunks_mut(block))
                .map(rows)
                .reduce(
                    || {
                        [
                            vec![0.0; channels],
                            vec![0.0; channels],
                            vec![0.0; channels],
                        ]
                    },
                    add,
                )
        } else {
            rows((x, grad))
        };
        Gradients {
            low,
            range,
            learned,
        }
    }
}
