//! The `quantization` algorithm section.

use burn_compress_core::QuantMode;
use burn_compress_quant::{
    Granularity, OverflowFix, QuantConfig, QuantSpec, RangeInit, Signedness,
};

use crate::common::{batchnorm_adaptation, ignored_scopes};
use crate::error::ConfigError;
use crate::json::{Field, Object};

/// Quantization as a config asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizationAlgorithm {
    /// Specs, range initialiser, ignored scopes, overflow fix.
    pub config: QuantConfig,
    /// Calibration samples for range initialisation (`initializer.range.num_init_samples`).
    pub init_samples: usize,
    /// Samples of BatchNorm adaptation after the quantizers are attached.
    pub bn_adaptation_samples: usize,
}

/// Reads a quantizer group (`weights` or `activations`) over the preset's `mode`.
fn group(
    field: Option<Field<'_>>,
    mut spec: QuantSpec,
    weights: bool,
) -> Result<QuantSpec, ConfigError> {
    let Some(field) = field else {
        return Ok(spec);
    };
    let mut group = field.object()?;
    if let Some(mode) = group.take("mode") {
        spec.mode = match mode.choice(&["symmetric", "asymmetric"])? {
            "symmetric" => QuantMode::Symmetric,
            _ => QuantMode::Asymmetric,
        };
    }
    if let Some(bits) = group.take("bits") {
        let value = bits.count()?;
        if !(2..=8).contains(&value) {
            return Err(bits.error(format!("{value} bits: 2 to 8 are supported")));
        }
        spec.bits = value as u32;
    }
    if let Some(signed) = group.take("signed") {
        spec.signedness = if signed.bool()? {
            Signedness::Signed
        } else {
            Signedness::Unsigned
        };
    }
    if let Some(per_channel) = group.take("per_channel") {
        spec.granularity = if per_channel.bool()? {
            Granularity::PerChannel { axis: None }
        } else {
            Granularity::PerTensor
        };
    }
    if let Some(logarithm) = group.take("logarithm_scale") {
        if logarithm.bool()? {
            return Err(logarithm.error("is not supported: ranges are learned linearly"));
        }
    }
    group.unsupported(
        "ignored_scopes",
        "scopes apply to weights and activations together: use the algorithm's `ignored_scopes`",
    )?;
    group.unsupported("target_scopes", "use the algorithm's `ignored_scopes`")?;
    group.unsupported("validate_scopes", "scopes are always validated")?;
    if !weights {
        group.unsupported(
            "unified_scale_ops",
            "inputs of an add or concat keep their own ranges",
        )?;
    }
    group.finish()?;
    Ok(spec)
}

/// Reads `initializer.range` (one object).
fn range(field: Field<'_>) -> Result<(RangeInit, usize), ConfigError> {
    if field.items().is_ok() {
        return Err(field
            .error("is not supported as a per-layer list: give one object for every quantizer"));
    }
    let mut range = field.object()?;
    let samples = range.read_or("num_init_samples", 256, |f| f.count())?;
    if samples == 0 {
        return Err(range.error(
            "num_init_samples",
            "0 would skip range initialisation, which burn-compress always runs",
        ));
    }
    let kind = range.read_or("type", "mixed_min_max", |f| {
        f.choice(&[
            "mixed_min_max",
            "min_max",
            "mean_min_max",
            "threesigma",
            "percentile",
            "mean_percentile",
        ])
    })?;
    let init = match kind {
        "min_max" => RangeInit::MinMax,
        // NNCF's mixed collector takes the mean of the per-batch maxima (and, for asymmetric
        // quantizers, of the minima): the mean-min-max statistics of every quantizer here.
        "mixed_min_max" | "mean_min_max" => RangeInit::MeanMinMax,
        "percentile" => {
            let (low, high) = match range.take("params") {
                Some(params) => {
                    let mut params = params.object()?;
                    let low = params.read_or("min_percentile", 0.1, |f| f.f64())?;
                    let high = params.read_or("max_percentile", 99.9, |f| f.f64())?;
                    params.finish()?;
                    (low, high)
                }
                None => (0.1, 99.9),
            };
            RangeInit::Percentile {
                min_percentile: low as f32,
                max_percentile: high as f32,
            }
        }
        other => {
            return Err(range.error(
                "type",
                format!(
                "`{other}` is not supported (min_max, mean_min_max, mixed_min_max, percentile are)"
            ),
            ))
        }
    };
    range.finish()?;
    Ok((init, samples))
}

/// Reads a `quantization` section; `preset` symmetric / asymmetric activations as NNCF does.
pub fn read(section: &mut Object<'_>) -> Result<QuantizationAlgorithm, ConfigError> {
    let preset = section.read_or("preset", "performance", |f| {
        f.choice(&["performance", "mixed"])
    })?;
    let mut activations = QuantSpec::int8_activations();
    if preset == "mixed" {
        activations.mode = QuantMode::Asymmetric;
    }
    let weights = group(section.take("weights"), QuantSpec::int8_weights(), true)?;
    let activations = group(section.take("activations"), activations, false)?;

    let (mut range_init, mut init_samples) = (RangeInit::MeanMinMax, 256);
    let mut bn_adaptation_samples = 2000;
    if let Some(initializer) = section.take("initializer") {
        let mut initializer = initializer.object()?;
        if let Some(field) = initializer.take("range") {
            (range_init, init_samples) = range(field)?;
        }
        bn_adaptation_samples = batchnorm_adaptation(&mut initializer)?;
        initializer.unsupported(
            "precision",
            "mixed-precision search (HAWQ, AutoQ, manual) is not implemented; set `bits`",
        )?;
        initializer.finish()?;
    }
    let overflow_fix = section.read_or("overflow_fix", OverflowFix::Enable, |f| {
        Ok(
            match f.choice(&["enable", "disable", "first_layer_only"])? {
                "enable" => OverflowFix::Enable,
                "disable" => OverflowFix::Disable,
                _ => OverflowFix::FirstLayer,
            },
        )
    })?;
    if let Some(inputs) = section.take("quantize_inputs") {
        if !inputs.bool()? {
            return Err(inputs.error(
                "is not supported as `false`: the model's input quantizer is a layer of your \
                 model (put it in `ignored_scopes` to leave it out)",
            ));
        }
    }
    if let Some(outputs) = section.take("quantize_outputs") {
        if outputs.bool()? {
            return Err(outputs.error("is not supported: outputs stay in floating point"));
        }
    }
    section.read("export_to_onnx_standard_ops", |f| f.bool())?;
    section.unsupported(
        "scope_overrides",
        "per-layer specs are not implemented; use `ignored_scopes` or one spec per group",
    )?;
    section.unsupported(
        "params",
        "staged quantization (start epochs, LR drops) is not implemented",
    )?;
    section.unsupported(
        "compression_lr_multiplier",
        "ranges train at the optimizer's learning rate",
    )?;
    let ignored = ignored_scopes(section)?;
    Ok(QuantizationAlgorithm {
        config: QuantConfig {
            weights: Some(weights),
            activations: Some(activations),
            range_init,
            ignored_scopes: ignored,
            overflow_fix,
        },
        init_samples,
        bn_adaptation_samples,
    })
}
