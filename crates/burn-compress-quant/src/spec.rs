//! Quantizer specifications: bits, symmetry, signedness, granularity, narrow range.

use serde::{Deserialize, Serialize};

use burn_compress_core::{QuantMode, ResolvedSpec};

use crate::error::{QuantError, Result};

/// Whether a symmetric grid holds negative values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signedness {
    /// Decided from calibration statistics: all values >= 0 gives unsigned.
    Auto,
    /// Negative values are representable.
    Signed,
    /// Only values >= 0 are representable.
    Unsigned,
}

/// One range for the whole tensor, or one per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// A single range.
    PerTensor,
    /// One range per index of `axis`; `None` means the layer's output-channel axis for weights
    /// (0 for convolutions, 1 for Burn's `[d_input, d_output]` Linear weight) and axis 1 for
    /// activations.
    PerChannel {
        /// The channel axis, or `None` for the layer default.
        axis: Option<usize>,
    },
}

/// NNCF's fix for INT8 kernels on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI): their
/// u8 x i8 products are summed pairwise into 16 bits with saturation (`vpmaddubsw`), so weights
/// beyond ±64 can overflow and OpenVINO then computes something else than the trained model.
/// The fix trains 8-bit weights on the half range `[-64, 63]` (7 bits), which cannot overflow
/// (255·64·2 < 32768) and runs the same on every CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowFix {
    /// Every 8-bit symmetric weight quantizer uses the half range (NNCF 2.x's default).
    #[default]
    Enable,
    /// Only the first Conv1d/Conv2d/Conv3d weight, in module order (NNCF 3.x's default; the
    /// first layer sees the widest, signed inputs).
    FirstLayer,
    /// Full 8-bit weights: exact only on CPUs with VNNI/AMX (and GPUs).
    Disable,
}

/// A quantizer specification, as a user writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantSpec {
    /// Bit width, 2 to 8.
    pub bits: u32,
    /// Symmetric or asymmetric grid.
    pub mode: QuantMode,
    /// Signedness of a symmetric grid (ignored for asymmetric grids).
    #[serde(default = "default_signedness")]
    pub signedness: Signedness,
    /// Per-tensor or per-channel ranges.
    pub granularity: Granularity,
    /// Drop the most negative level (`[-127, 127]` for 8 bits): OpenVINO's choice for weights.
    #[serde(default)]
    pub narrow_range: bool,
}

fn default_signedness() -> Signedness {
    Signedness::Auto
}

impl QuantSpec {
    /// 8-bit symmetric signed narrow-range weights, one scale per output channel.
    pub fn int8_weights() -> Self {
        Self {
            bits: 8,
            mode: QuantMode::Symmetric,
            signedness: Signedness::Signed,
            granularity: Granularity::PerChannel { axis: None },
            narrow_range: true,
        }
    }

    /// 8-bit symmetric per-tensor activations, signedness from calibration.
    pub fn int8_activations() -> Self {
        Self {
            bits: 8,
            mode: QuantMode::Symmetric,
            signedness: Signedness::Auto,
            granularity: Granularity::PerTensor,
            narrow_range: false,
        }
    }

    /// The same spec with another bit width.
    pub fn with_bits(mut self, bits: u32) -> Self {
        self.bits = bits;
        self
    }

    /// The same spec with another mode.
    pub fn with_mode(mut self, mode: QuantMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same spec with another signedness.
    pub fn with_signedness(mut self, signedness: Signedness) -> Self {
        self.signedness = signedness;
        self
    }

    /// The same spec with another granularity.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// The same spec with narrow range on or off.
    pub fn with_narrow_range(mut self, narrow_range: bool) -> Self {
        self.narrow_range = narrow_range;
        self
    }

    /// Checks every field; the error names the field at fault.
    pub fn validate(&self) -> Result<()> {
        if !(2..=8).contains(&self.bits) {
            return Err(QuantError::InvalidSpec {
                field: "bits",
                value: self.bits.to_string(),
                reason: "must be between 2 and 8".into(),
            });
        }
        Ok(())
    }

    /// Resolves signedness and channel axis into the integer grid a quantizer uses.
    ///
    /// `signed` is the calibration verdict for `Signedness::Auto` (true when negative values
    /// were seen); `default_axis` is the layer's channel axis; `rank` the tensor's rank.
    pub fn resolve(&self, signed: bool, default_axis: usize, rank: usize) -> Result<ResolvedSpec> {
        self.resolve_grid(signed, default_axis, rank, false)
    }

    /// As [`resolve`](Self::resolve); with `half_range`, an 8-bit symmetric signed spec uses
    /// NNCF's half range instead: 7 bits, `[-64, 63]`, not narrow (see [`OverflowFix`]).
    pub fn resolve_grid(
        &self,
        signed: bool,
        default_axis: usize,
        rank: usize,
        half_range: bool,
    ) -> Result<ResolvedSpec> {
        self.validate()?;
        let halved = half_range
            && self.bits == 8
            && self.mode == QuantMode::Symmetric
            && self.signedness != Signedness::Unsigned;
        if halved {
            let spec = self
                .clone()
                .with_bits(7)
                .with_narrow_range(false)
                .with_signedness(Signedness::Signed);
            return spec.resolve_grid(true, default_axis, rank, false);
        }
        let signed = match (self.mode, self.signedness) {
            (QuantMode::Asymmetric, _) => false,
            (_, Signedness::Signed) => true,
            (_, Signedness::Unsigned) => false,
            (_, Signedness::Auto) => signed,
        };
        let levels: i32 = if self.narrow_range {
            (1 << self.bits) - 1
        } else {
            1 << self.bits
        };
        let (level_low, level_high) = match (self.mode, signed) {
            (QuantMode::Symmetric, true) if self.narrow_range => {
                (-((1 << (self.bits - 1)) - 1), (1 << (self.bits - 1)) - 1)
            }
            (QuantMode::Symmetric, true) => (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1),
            _ => (0, levels - 1),
        };
        let axis = match self.granularity {
            Granularity::PerTensor => None,
            Granularity::PerChannel { axis } => {
                let axis = axis.unwrap_or(default_axis);
                if axis >= rank {
                    return Err(QuantError::InvalidSpec {
                        field: "granularity.axis",
                        value: axis.to_string(),
                        reason: format!("the tensor has rank {rank}"),
                    });
                }
                Some(axis)
            }
        };
        Ok(ResolvedSpec {
            mode: self.mode,
            level_low,
            level_high,
            axis,
        })
    }
}
