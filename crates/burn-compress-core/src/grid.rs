//! The integer grid of a quantizer: symmetric or asymmetric, its levels and channel axis.

use serde::{Deserialize, Serialize};

/// How the quantization grid is placed around zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantMode {
    /// Grid symmetric around zero; one learnable `scale`.
    Symmetric,
    /// Grid from a learnable `input_low` over a learnable `input_range`; zero exactly representable.
    Asymmetric,
}

/// A spec resolved for one tensor: the integer grid `[level_low, level_high]` and channel axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSpec {
    /// Symmetric or asymmetric.
    pub mode: QuantMode,
    /// Lowest integer level (e.g. -127, -128 or 0).
    pub level_low: i32,
    /// Highest integer level (e.g. 127 or 255).
    pub level_high: i32,
    /// Channel axis for per-channel ranges; `None` for per-tensor.
    pub axis: Option<usize>,
}

impl ResolvedSpec {
    /// Number of levels of the grid (OpenVINO's `levels` attribute).
    pub fn levels(&self) -> u32 {
        (self.level_high - self.level_low + 1) as u32
    }

    /// Whether negative values are representable on a symmetric grid.
    pub fn is_signed(&self) -> bool {
        self.level_low < 0
    }
}
