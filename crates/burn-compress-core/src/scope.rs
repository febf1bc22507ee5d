//! Ignored scopes: module paths (exact or dotted prefix) or regular expressions (`re:` prefix).

use regex::Regex;

use crate::error::{CoreError, Result};

/// One ignored scope.
#[derive(Clone, Debug)]
pub enum Scope {
    /// A module path; matches itself and everything below it (`fc2` matches `fc2.linear`).
    Path(String),
    /// A regular expression that must match a whole module path or one of its ancestors.
    Regex {
        /// The text as written (after `re:`).
        text: String,
        /// The compiled, anchored expression.
        regex: Regex,
    },
}

impl Scope {
    /// Parses `re:<regex>` as a regular expression and anything else as a module path.
    pub fn parse(text: &str) -> Result<Self> {
        match text.strip_prefix("re:") {
            Some(pattern) => {
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
                    CoreError::InvalidScope {
                        scope: text.to_string(),
                        reason: error.to_string(),
                    }
                })?;
                Ok(Scope::Regex {
                    text: text.to_string(),
                    regex,
                })
            }
            None => Ok(Scope::Path(text.to_string())),
        }
    }

    /// Whether the scope covers the module at `path`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Scope::Path(scope) => {
                path == scope
                    || path
                        .strip_prefix(scope.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            }
            Scope::Regex { regex, .. } => path
                .match_indices('.')
                .map(|(end, _)| &path[..end])
                .chain([path])
                .any(|ancestor| regex.is_match(ancestor)),
        }
    }

    /// The scope as the user wrote it.
    pub fn text(&self) -> &str {
        match self {
            Scope::Path(text) | Scope::Regex { text, .. } => text,
        }
    }
}

/// Checks that each scope matches at least one of `paths`; the error names the scope.
pub fn check_scopes_match(scopes: &[Scope], paths: &[String]) -> Result<()> {
    for scope in scopes {
        if !paths.iter().any(|path| scope.matches(path)) {
            return Err(CoreError::UnmatchedScope {
                scope: scope.text().to_string(),
                candidates: paths.join(", "),
            });
        }
    }
    Ok(())
}
