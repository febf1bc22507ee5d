//! Statistics of activation-quantizer inputs, gathered while calibration batches run.
//!
//! A [`CalibrationSession`] is active on one thread; while it is, every observation point (an
//! activation quantizer slot calls [`observe`] with its parameter id) records its input here and
//! passes it through unquantized, so statistics are those of the floating-point model.

use std::cell::RefCell;
use std::collections::HashMap;

use burn::module::ParamId;
use burn::tensor::Tensor;

/// Most values kept per quantizer for percentile and MSE initialisers.
const MAX_SAMPLES: usize = 200_000;
/// Most values sampled from one batch.
const SAMPLES_PER_BATCH: usize = 8_192;

/// Statistics of one quantizer's inputs over the calibration batches.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Per batch, per channel (axis 1; one channel for rank-1 inputs) minimum.
    pub batch_mins: Vec<Vec<f32>>,
    /// Per batch, per channel maximum.
    pub batch_maxs: Vec<Vec<f32>>,
    /// An evenly strided sample of the values seen.
    pub samples: Vec<f32>,
    /// Number of non-finite values seen.
    pub non_finite: usize,
}

impl Observation {
    fn record(&mut self, values: &[f32], dims: &[usize]) {
        self.non_finite += values.iter().filter(|v| !v.is_finite()).count();
        let (mins, maxs) = channel_min_max(values, dims, (dims.len() >= 2).then_some(1));
        self.batch_mins.push(mins);
        self.batch_maxs.push(maxs);
        if self.samples.len() < MAX_SAMPLES {
            let stride = values.len().div_ceil(SAMPLES_PER_BATCH).max(1);
            self.samples
                .extend(values.iter().step_by(stride).filter(|v| v.is_finite()));
        }
    }
}

/// Per-channel minimum and maximum of a row-major tensor along `axis` (all values when `None`).
/// Non-finite values are skipped.
pub fn channel_min_max(
    values: &[f32],
    dims: &[usize],
    axis: Option<usize>,
) -> (Vec<f32>, Vec<f32>) {
    let (channels, inner) = match axis {
        Some(axis) => (dims[axis], dims[axis + 1..].iter().product::<usize>()),
        None => (1, values.len().max(1)),
    };
    let mut mins = vec![f32::INFINITY; channels];
    let mut maxs = vec![f32::NEG_INFINITY; channels];
    for (index, &value) in values.iter().enumerate() {
        if !value.is_finite() {
            continue;
        }
        let channel = (index / inner) % channels;
        mins[channel] = mins[channel].min(value);
        maxs[channel] = maxs[channel].max(value);
    }
    (mins, maxs)
}

thread_local! {
    static SESSION: RefCell<Option<HashMap<ParamId, Observation>>> = const { RefCell::new(None) };
}

/// Records `x` for the observation point `id` if a session is active; returns whether it did.
pub fn observe<const D: usize>(id: ParamId, x: &Tensor<D>) -> bool {
    SESSION.with(|session| {
        let mut session = session.borrow_mut();
        let Some(observations) = session.as_mut() else {
            return false;
        };
        let dims = x.dims();
        let data = x.to_data().convert::<f32>();
        let values = data.as_slice::<f32>().unwrap_or(&[]);
        observations.entry(id).or_default().record(values, &dims);
        true
    })
}

/// An active statistics-gathering session on this thread; ends when finished or dropped.
pub struct CalibrationSession {
    _private: (),
}

impl CalibrationSession {
    /// Starts a session on this thread, replacing any unfinished one.
    pub fn start() -> Self {
        SESSION.with(|session| *session.borrow_mut() = Some(HashMap::new()));
        Self { _private: () }
    }

    /// Ends the session and returns what each quantizer saw.
    pub fn finish(self) -> HashMap<ParamId, Observation> {
        SESSION.with(|session| session.borrow_mut().take().unwrap_or_default())
    }
}

impl Drop for CalibrationSession {
    fn drop(&mut self) {
        SESSION.with(|session| session.borrow_mut().take());
    }
}
