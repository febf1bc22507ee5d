//! Keys every algorithm section shares: scopes and BatchNorm adaptation.
//!
//! NNCF scope strings become burn-compress scopes: an entry containing `{re}` is a regular
//! expression without that token, searched unanchored in NNCF, so it becomes
//! `re:.*(?:<regex>).*`; any other entry is a Burn module path (`fc2`, `layer1.0.conv1`).

use crate::error::ConfigError;
use crate::json::Object;

/// The scope as burn-compress reads it.
pub fn scope(text: &str) -> String {
    if text.contains("{re}") {
        format!("re:.*(?:{}).*", text.replace("{re}", ""))
    } else {
        text.to_string()
    }
}

/// Reads `ignored_scopes` of `object` and refuses what burn-compress cannot honour
/// (`target_scopes`, `validate_scopes: false`).
pub fn ignored_scopes(object: &mut Object<'_>) -> Result<Vec<String>, ConfigError> {
    let scopes = object.read_or("ignored_scopes", Vec::new(), |f| f.strings())?;
    object.unsupported(
        "target_scopes",
        "list the layers to leave out in `ignored_scopes` instead",
    )?;
    if let Some(validate) = object.take("validate_scopes") {
        if !validate.bool()? {
            return Err(validate.error(
                "is not supported as `false`: a scope that matches no layer is always an error",
            ));
        }
    }
    Ok(scopes.iter().map(|s| scope(s)).collect())
}

/// `initializer.batchnorm_adaptation.num_bn_adaptation_samples` (NNCF's default: 2000).
pub fn batchnorm_adaptation(initializer: &mut Object<'_>) -> Result<usize, ConfigError> {
    match initializer.take("batchnorm_adaptation") {
        Some(field) => {
            let mut adaptation = field.object()?;
            let samples = adaptation.read_or("num_bn_adaptation_samples", 2000, |f| f.count())?;
            adaptation.finish()?;
            Ok(samples)
        }
        None => Ok(2000),
    }
}

/// The `initializer` of a section that has BatchNorm adaptation only (sparsity, pruning).
pub fn adaptation_initializer(section: &mut Object<'_>) -> Result<usize, ConfigError> {
    match section.take("initializer") {
        Some(field) => {
            let mut initializer = field.object()?;
            let samples = batchnorm_adaptation(&mut initializer)?;
            initializer.finish()?;
            Ok(samples)
        }
        None => Ok(2000),
    }
}
