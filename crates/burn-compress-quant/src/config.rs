//! The JSON form of a quantization setup (`"quantization"` section of a recipe config).

use serde::{Deserialize, Serialize};

use crate::range::RangeInit;
use crate::spec::{OverflowFix, QuantSpec};

/// Quantization settings as read from a config file. Unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    /// Weight quantizer spec; `null` leaves weights in floating point.
    #[serde(default = "default_weights")]
    pub weights: Option<QuantSpec>,
    /// Activation quantizer spec; `null` leaves activations in floating point.
    #[serde(default = "default_activations")]
    pub activations: Option<QuantSpec>,
    /// Activation range initialiser.
    #[serde(default = "default_range_init")]
    pub range_init: RangeInit,
    /// Module paths (or `re:` regular expressions) left unquantized.
    #[serde(default)]
    pub ignored_scopes: Vec<String>,
    /// Which 8-bit weights use the half range that CPUs without VNNI run exactly.
    #[serde(default)]
    pub overflow_fix: OverflowFix,
}

fn default_weights() -> Option<QuantSpec> {
    Some(QuantSpec::int8_weights())
}

fn default_activations() -> Option<QuantSpec> {
    Some(QuantSpec::int8_activations())
}

fn default_range_init() -> RangeInit {
    RangeInit::MeanMinMax
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            weights: default_weights(),
            activations: default_activations(),
            range_init: default_range_init(),
            ignored_scopes: Vec::new(),
            overflow_fix: OverflowFix::default(),
        }
    }
}

impl QuantConfig {
    /// A [`QuantizeBuilder`](crate::QuantizeBuilder) for `model` with these settings.
    pub fn builder<M: burn::module::Module>(&self, model: M) -> crate::QuantizeBuilder<M> {
        let mut builder = crate::quantize(model);
        builder = match &self.weights {
            Some(spec) => builder.weights(spec.clone()),
            None => builder.no_weights(),
        };
        builder = match &self.activations {
            Some(spec) => builder.activations(spec.clone()),
            None => builder.no_activations(),
        };
        for scope in &self.ignored_scopes {
            builder = builder.ignore(scope.clone());
        }
        builder.overflow_fix(self.overflow_fix)
    }
}
