//! The fused fake-quantize on host slices: the forward in one pass into an output it allocates
//! without zeroing, the NNCF backward in one pass (the input's gradient per element, the range
//! parameters' gradients as per-channel sums) reading the forward's output instead of
//! quantizing again (two divisions per element fewer), split into blocks over rayon's threads,
//! each block compiled for the CPU's widest vectors (the crate's `isa` module). Every
//! per-element value comes from [`host`], the numerics the tensor chain and the exporter share.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::fake_quant::{host, Form};
use crate::isa::{Isa, Kernel};

/// Elements per parallel block.
const BLOCK: usize = 1 << 14;

/// Tensors with fewer elements run on the calling thread, in one block: in a training step the
/// pool's threads sleep between operations, and waking one costs more than it saves on such a
/// tensor.
const PARALLEL_FROM: usize = 1 << 17;

/// How a call runs: the instruction set, and the size from which a tensor is split over threads.
#[derive(Clone, Copy, Debug)]
struct Plan {
    isa: Isa,
    parallel_from: usize,
}

impl Plan {
    /// The widest instruction set the CPU has; parallel from [`PARALLEL_FROM`] elements.
    fn best() -> Self {
        Self {
            isa: Isa::best(),
            parallel_from: PARALLEL_FROM,
        }
    }

    /// Splits `out` and the `inputs` (all of `out`'s length) into blocks of about [`BLOCK`]
    /// elements (whole rows of `row`) and runs `block(start, inputs, out)` on each, in
    /// parallel when there is more than one; `merge` folds the results. Under `parallel_from`
    /// elements, one block on the calling thread.
    fn blocks<const N: usize, T: Send, R: Send>(
        self,
        inputs: [&[f32]; N],
        out: &mut [T],
        row: usize,
        block: impl Fn(usize, [&[f32]; N], &mut [T]) -> R + Sync,
        merge: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        let size = (BLOCK / row).max(1) * row;
        if out.len() <= size || out.len() < self.parallel_from {
            return block(0, inputs, out);
        }
        out.par_chunks_mut(size)
            .enumerate()
            .map(|(b, out)| {
                let start = b * size;
                block(start, inputs.map(|s| &s[start..start + out.len()]), out)
            })
            .reduce_with(merge)
            .expect("at least one block")
    }

    /// [`blocks`](Self::blocks) of a layout whose channels are not the last axis: `kernel`
    /// gets each block with its channels' constants.
    fn channel_blocks<const N: usize, T: Send, R: Send>(
        self,
        inputs: [&[f32]; N],
        out: &mut [T],
        grid: &Grid,
        layout: ChannelLayout,
        kernel: impl Fn(Block<'_, N, T>) -> R + Sync,
        merge: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        let channels = grid.channels();
        let block = |start, inputs: [&[f32]; N], out: &mut [T]| {
            kernel(Block {
                inputs,
                out,
                start,
                channels: &channels,
                layout,
                form: grid.form,
            })
        };
        self.blocks(inputs, out, 1, block, merge)
    }
}

/// Independent accumulators per sum, so the element loop vectorises (float addition is not
/// reassociated by the compiler): one AVX-512 register of `f32`.
const LANES: usize = 16;

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
    /// The maximal runs `(start, end, channel)` of `start..end` that each lie in one channel.
    #[inline(always)]
    fn runs(self, start: usize, end: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let mut i = start;
        std::iter::from_fn(move || {
            (i < end).then(|| {
                let outer = i / self.inner;
                let run = (i, end.min((outer + 1) * self.inner), outer % self.channels);
                i = run.1;
                run
            })
        })
    }

    /// Channels on the last axis: each row of `channels` elements walks all channels.
    fn is_interleaved(&self) -> bool {
        self.inner == 1 && self.channels > 1
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

/// One channel's constants, computed once per call.
#[derive(Clone, Copy)]
struct ChannelGrid {
    low: f32,
    range: f32,
    high: f32,
    zero_point: f32,
    step: f32,
    levels: u32,
}

impl ChannelGrid {
    /// The fake-quantized `x` in `form`.
    #[inline(always)]
    fn quantize(&self, x: f32, form: Form) -> f32 {
        match form {
            Form::FakeQuantize => host::fake_quantize(x, self.low, self.range, self.levels),
            Form::Integer => host::integer_value(
                host::level(x, self.low, self.range, self.levels),
                self.zero_point,
                self.step,
            ),
        }
    }

    /// NNCF's gradient terms of one element `x` whose fake-quantized value is `q`, with
    /// upstream gradient `g`: `(d x, [d input_low, d range, d learned])`, each its value or
    /// `+0.0`: `x` gets `g` inside `[low, high]`; `low` gets `g` below and above, `range` gets
    /// `g` above (both through `high = low + range`); the learned parameter gets
    /// `g·((q − x)/range)` inside. Selects, not products with a mask, so an infinite input
    /// never meets 0·∞.
    #[inline(always)]
    fn gradient_terms(&self, x: f32, q: f32, g: f32) -> (f32, [f32; 3]) {
        let above = x > self.high;
        let outside = above | (x < self.low);
        let learned = g * ((q - x) / self.range);
        let pick = |keep: bool, value: f32| if keep { value } else { 0.0 };
        (
            pick(!outside, g),
            [pick(outside, g), pick(above, g), pick(!outside, learned)],
        )
    }
}

impl Grid {
    /// Each channel's constants.
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
}

/// The fake-quantized `x`.
pub fn forward(x: &[f32], grid: &Grid, layout: ChannelLayout) -> Vec<f32> {
    forward_on(Plan::best(), x, grid, layout)
}

/// [`forward`] run as `plan` says.
fn forward_on(plan: Plan, x: &[f32], grid: &Grid, layout: ChannelLayout) -> Vec<f32> {
    let isa = plan.isa;
    // Not zeroed first: every element is written below.
    let mut values = Vec::with_capacity(x.len());
    let out = &mut values.spare_capacity_mut()[..x.len()];
    if layout.is_interleaved() {
        let columns = Columns::new(grid);
        let rows = |_, [x]: [&[f32]; 1], out: &mut [MaybeUninit<f32>]| {
            isa.run(RowsForward {
                x,
                out,
                columns: &columns,
            })
        };
        plan.blocks([x], out, layout.channels, rows, |(), ()| ());
    } else {
        let block = |block: Block<'_, 1, MaybeUninit<f32>>| isa.run(ForwardBlock(block));
        plan.channel_blocks([x], out, grid, layout, block, |(), ()| ());
    }
    // SAFETY: the blocks cover `out`, and the forward kernels write each of their elements.
    unsafe { values.set_len(x.len()) };
    values
}

/// One block of contiguous inputs (the input `x` first) starting at element `start`, with
/// `out` of the same length (the forward's output, or the upstream gradient the backward
/// overwrites).
struct Block<'a, const N: usize, T> {
    inputs: [&'a [f32]; N],
    out: &'a mut [T],
    start: usize,
    channels: &'a [ChannelGrid],
    layout: ChannelLayout,
    form: Form,
}

impl<'a, const N: usize, T> Block<'a, N, T> {
    /// The block's runs of one channel: `(channel, inputs, out, its grid)`.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn runs(self) -> impl Iterator<Item = (usize, [&'a [f32]; N], &'a mut [T], &'a ChannelGrid)> {
        let Self {
            inputs,
            out,
            start,
            channels,
            layout,
            ..
        } = self;
        let mut rest = (inputs, out);
        let end = start + rest.1.len();
        layout.runs(start, end).map(move |(s, e, c)| {
            let inputs = rest.0.map(|input| &input[..e - s]);
            rest.0 = rest.0.map(|input| &input[e - s..]);
            let (out, next_out) = std::mem::take(&mut rest.1).split_at_mut(e - s);
            rest.1 = next_out;
            (c, inputs, out, &channels[c])
        })
    }
}

/// The forward of one block.
struct ForwardBlock<'a>(Block<'a, 1, MaybeUninit<f32>>);

impl Kernel for ForwardBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let form = self.0.form;
        for (_, [x], out, grid) in self.0.runs() {
            match form {
                // One loop per form, so each vectorises.
                Form::FakeQuantize => {
                    for (o, &v) in out.iter_mut().zip(x) {
                        o.write(grid.quantize(v, Form::FakeQuantize));
                    }
                }
                Form::Integer => {
                    for (o, &v) in out.iter_mut().zip(x) {
                        o.write(grid.quantize(v, Form::Integer));
                    }
                }
            }
        }
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

/// Per-channel sums: (low, range, learned).
type Sums = Vec<[f64; 3]>;

/// Computes [`Gradients`] for input `x`, its fake-quantized value `q` (the forward's output)
/// and upstream gradient `grad` (all of one length), and overwrites `grad` with the input's
/// gradient, element by element (no allocation the size of the input).
pub fn backward(
    x: &[f32],
    q: &[f32],
    grad: &mut [f32],
    grid: &Grid,
    layout: ChannelLayout,
) -> Gradients {
    backward_on(Plan::best(), [x, q], grad, grid, layout)
}

/// [`backward`] of `[x, q]` run as `plan` says.
fn backward_on(
    plan: Plan,
    inputs: [&[f32]; 2],
    grad: &mut [f32],
    grid: &Grid,
    layout: ChannelLayout,
) -> Gradients {
    let isa = plan.isa;
    let sums = if layout.is_interleaved() {
        let columns = Columns::new(grid);
        let rows = |_, [x, q]: [&[f32]; 2], grad: &mut [f32]| {
            isa.run(RowsBackward {
                x,
                q,
                grad,
                columns: &columns,
            })
        };
        plan.blocks(inputs, grad, layout.channels, rows, add_sums)
    } else {
        let block = |block: Block<'_, 2, f32>| isa.run(BackwardBlock(block));
        plan.channel_blocks(inputs, grad, grid, layout, block, add_sums)
    };
    let column = |k: usize| sums.iter().map(|s| s[k] as f32).collect();
    Gradients {
        low: column(0),
        range: column(1),
        learned: column(2),
    }
}

/// The backward of one block (its `out` is the upstream gradient, overwritten with the
/// input's).
struct BackwardBlock<'a>(Block<'a, 2, f32>);

impl Kernel for BackwardBlock<'_> {
    type Output = Sums;

    #[inline(always)]
    fn run(self) -> Sums {
        let mut sums = vec![[0.0f64; 3]; self.0.channels.len()];
        for (c, [x, q], grad, grid) in self.0.runs() {
            for (sum, part) in sums[c].iter_mut().zip(run_sums(x, q, grad, grid)) {
                *sum += part;
            }
        }
        sums
    }
}

/// The backward of one run of channel `c`: sums in [`LANES`] independent accumulators.
#[inline(always)]
fn run_sums(x: &[f32], q: &[f32], grad: &mut [f32], c: &ChannelGrid) -> [f64; 3] {
    let mut acc = [[0.0f32; LANES]; 3];
    let mut xs = x.chunks_exact(LANES);
    let mut qs = q.chunks_exact(LANES);
    let mut gs = grad.chunks_exact_mut(LANES);
    for ((x, q), g) in (&mut xs).zip(&mut qs).zip(&mut gs) {
        let x: &[f32; LANES] = x.try_into().expect("a full chunk");
        let q: &[f32; LANES] = q.try_into().expect("a full chunk");
        let g: &mut [f32; LANES] = g.try_into().expect("a full chunk");
        for j in 0..LANES {
            let (dx, terms) = c.gradient_terms(x[j], q[j], g[j]);
            g[j] = dx;
            for k in 0..3 {
                acc[k][j] += terms[k];
            }
        }
    }
    // The tail (or a whole run shorter than a chunk), element by element.
    let tail = xs
        .remainder()
        .iter()
        .zip(qs.remainder())
        .zip(gs.into_remainder());
    for (j, ((&x, &q), g)) in tail.enumerate() {
        let (dx, terms) = c.gradient_terms(x, q, *g);
        *g = dx;
        for k in 0..3 {
            acc[k][j] += terms[k];
        }
    }
    acc.map(|lanes| lanes.iter().map(|&v| f64::from(v)).sum())
}

/// Adds two blocks' per-channel sums.
fn add_sums(mut a: Sums, b: Sums) -> Sums {
    for (a, b) in a.iter_mut().zip(b) {
        for k in 0..3 {
            a[k] += b[k];
        }
    }
    a
}

/// The channels' constants as columns, for inputs whose channels are on the last axis (a
/// Linear weight's output features): each row of `channels` elements walks all channels, so
/// the loops run along a row and read the constants as vectors. `C` is `Vec<f32>` (owned) or
/// `&[f32]` cut to the row's length ([`Columns::cut`], so loops index it without bounds checks).
struct Columns<C> {
    low: C,
    range: C,
    high: C,
    zero_point: C,
    step: C,
    levels: u32,
    form: Form,
}

impl Columns<Vec<f32>> {
    fn new(grid: &Grid) -> Self {
        let channels = grid.channels();
        let column = |f: fn(&ChannelGrid) -> f32| channels.iter().map(f).collect();
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

    /// Number of channels.
    fn len(&self) -> usize {
        self.low.len()
    }

    /// The columns as slices of length `n` (all of them: `n` is [`len`](Self::len)).
    #[inline(always)]
    fn cut(&self, n: usize) -> Columns<&[f32]> {
        Columns {
            low: &self.low[..n],
            range: &self.range[..n],
            high: &self.high[..n],
            zero_point: &self.zero_point[..n],
            step: &self.step[..n],
            levels: self.levels,
            form: self.form,
        }
    }
}

impl Columns<&[f32]> {
    /// Channel `j`'s constants.
    #[inline(always)]
    fn get(&self, j: usize) -> ChannelGrid {
        ChannelGrid {
            low: self.low[j],
            range: self.range[j],
            high: self.high[j],
            zero_point: self.zero_point[j],
            step: self.step[j],
            levels: self.levels,
        }
    }
}

/// The forward of whole rows.
struct RowsForward<'a> {
    x: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    columns: &'a Columns<Vec<f32>>,
}

impl Kernel for RowsForward<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { x, out, columns } = self;
        let n = columns.len();
        let cut = columns.cut(n);
        for (x, out) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let (x, out) = (&x[..n], &mut out[..n]);
            // One loop per form, so each vectorises.
            match columns.form {
                Form::FakeQuantize => {
                    for j in 0..n {
                        out[j].write(cut.get(j).quantize(x[j], Form::FakeQuantize));
                    }
                }
                Form::Integer => {
                    for j in 0..n {
                        out[j].write(cut.get(j).quantize(x[j], Form::Integer));
                    }
                }
            }
        }
    }
}

/// The backward of whole rows: per-channel sums in `f32` over the block's rows.
struct RowsBackward<'a> {
    x: &'a [f32],
    /// The forward's output.
    q: &'a [f32],
    /// The upstream gradient, overwritten with the input's.
    grad: &'a mut [f32],
    columns: &'a Columns<Vec<f32>>,
}

impl Kernel for RowsBackward<'_> {
    type Output = Sums;

    #[inline(always)]
    fn run(self) -> Sums {
        let Self {
            x,
            q,
            grad,
            columns,
        } = self;
        let n = columns.len();
        let cut = columns.cut(n);
        let mut acc = [vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]];
        let rows = x.chunks_exact(n).zip(q.chunks_exact(n));
        for ((x, q), grad) in rows.zip(grad.chunks_exact_mut(n)) {
            let (x, q, grad) = (&x[..n], &q[..n], &mut grad[..n]);
            let [low, range, learned] = &mut acc;
            let (low, range, learned) = (&mut low[..n], &mut range[..n], &mut learned[..n]);
            for j in 0..n {
                let (dx, terms) = cut.get(j).gradient_terms(x[j], q[j], grad[j]);
                grad[j] = dx;
                low[j] += terms[0];
                range[j] += terms[1];
                learned[j] += terms[2];
            }
        }
        (0..n)
            .map(|j| [0, 1, 2].map(|k| f64::from(acc[k][j])))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs that hit every case: inside, below, above, the bounds themselves, infinities, NaN,
    /// signed zeros, and values half-way between grid points.
    fn inputs(n: usize) -> Vec<f32> {
        let special = [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            0.0,
            -1.0,
            3.0,
            -1.0 + 4.0 / 255.0 * 0.5,
        ];
        (0..n)
            .map(|i| match i % 97 {
                k if k < special.len() => special[k],
                _ => ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 9.0,
            })
            .collect()
    }

    /// The value, input gradient and sums element by element from [`host`] and NNCF's rules.
    fn reference(x: &[f32], g: &[f32], grid: &Grid, channel: impl Fn(usize) -> usize) -> Expected {
        let mut expected = Expected {
            value: Vec::new(),
            dx: Vec::new(),
            sums: vec![[0.0f64; 3]; grid.low.len()],
        };
        let steps = (grid.levels - 1) as f32;
        for (i, (&v, &g)) in x.iter().zip(g).enumerate() {
            let c = channel(i);
            let (low, range) = (grid.low[c], grid.range[c]);
            let q = match grid.form {
                Form::FakeQuantize => host::fake_quantize(v, low, range, grid.levels),
                Form::Integer => host::integer_value(
                    host::level(v, low, range, grid.levels),
                    host::zero_point(low, range, grid.levels),
                    range / steps,
                ),
            };
            let (below, above) = (v < low, v > low + range);
            let inside = !(below || above);
            expected.value.push(q);
            expected.dx.push(if inside { g } else { 0.0 });
            let sums = &mut expected.sums[c];
            if !inside {
                sums[0] += f64::from(g);
            }
            if above {
                sums[1] += f64::from(g);
            }
            if inside {
                sums[2] += f64::from(g * ((q - v) / range));
            }
        }
        expected
    }

    struct Expected {
        value: Vec<f32>,
        dx: Vec<f32>,
        sums: Vec<[f64; 3]>,
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Every instruction set this CPU runs, on inputs in one block and in several, in each
    /// layout and form, gives the host formulas' values and input gradients bit for bit and their channel
    /// sums up to summation order.
    #[test]
    fn every_instruction_set_and_layout_matches_the_host_formulas() {
        // (dims, channel axis or None for per tensor)
        let cases: [(&[usize], Option<usize>); 4] = [
            (&[3, 5, 41, 43], None),
            (&[64, 32, 3, 3], Some(0)),
            (&[7, 6, 23, 29], Some(1)),
            (&[300, 128], Some(1)),
        ];
        for ((dims, axis), form) in cases
            .into_iter()
            .flat_map(|c| [Form::FakeQuantize, Form::Integer].map(|f| (c, f)))
        {
            let n: usize = dims.iter().product();
            let channels = axis.map_or(1, |a| dims[a]);
            let inner: usize = axis.map_or(n, |a| dims[a + 1..].iter().product());
            let layout = ChannelLayout { channels, inner };
            let grid = Grid {
                low: (0..channels).map(|c| -1.0 - c as f32 * 0.01).collect(),
                range: (0..channels).map(|c| 4.0 + c as f32 * 0.03).collect(),
                levels: 256,
                form,
            };
            let x = inputs(n);
            let g: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.25 - 1.5).collect();
            let expected = reference(&x, &g, &grid, |i| (i / inner) % channels);
            assert!(
                n < PARALLEL_FROM && n > BLOCK,
                "{dims:?}: one block or several"
            );
            // Each instruction set, in one block and (parallel from 0) in several.
            let plans = Isa::supported().flat_map(|isa| {
                [PARALLEL_FROM, 0].map(|parallel_from| Plan { isa, parallel_from })
            });
            for plan in plans {
                let what = format!("{dims:?} axis {axis:?} {form:?} as {plan:?}");
                let value = forward_on(plan, &x, &grid, layout);
                assert_eq!(bits(&value), bits(&expected.value), "{what}: value");
                let mut dx = g.clone();
                let sums = backward_on(plan, [&x, &value], &mut dx, &grid, layout);
                assert_eq!(bits(&dx), bits(&expected.dx), "{what}: dx");
                for (c, want) in expected.sums.iter().enumerate() {
                    let got = [sums.low[c], sums.range[c], sums.learned[c]];
                    for k in 0..3 {
                        let tolerance = 1e-5 * want[k].abs().max(1.0);
                        let close = (f64::from(got[k]) - want[k]).abs() <= tolerance;
                        assert!(
                            close || (want[k].is_nan() && got[k].is_nan()),
                            "{what}: channel {c} sum {k}: {} against {}",
                            got[k],
                            want[k]
                        );
                    }
                }
            }
        }
    }
}
