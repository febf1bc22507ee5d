//! The config error: the file, the JSON path of the value at fault, and what is wrong.

use std::path::{Path, PathBuf};

/// A config that cannot be read or used. `path` is the JSON path of the value at fault
/// (`compression[1].params.schedule`), empty for the file itself.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ConfigError {
    /// The config file, when the config came from one.
    pub file: Option<PathBuf>,
    /// JSON path of the value at fault; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// An error at JSON path `path`.
    pub fn at(path: &str, reason: impl Into<String>) -> Self {
        Self {
            file: None,
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    /// The same error, located in `file`.
    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }

    fn describe(&self) -> String {
        let place = match (&self.file, self.path.is_empty()) {
            (Some(file), false) => format!("config `{}`, key `{}`", file.display(), self.path),
            (Some(file), true) => format!("config `{}`", file.display()),
            (None, false) => format!("config key `{}`", self.path),
            (None, true) => "config".to_string(),
        };
        format!("{place}: {}", self.reason)
    }
}
