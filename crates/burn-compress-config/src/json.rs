//! A JSON reader that knows where it is: every value carries its path (`compression[0].params`)
//! and every error names it; objects refuse keys nobody asked for.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ConfigError;

/// A value and its JSON path.
#[derive(Clone)]
pub struct Field<'a> {
    path: String,
    value: &'a Value,
}

/// The JSON type of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Field<'a> {
    /// The document root.
    pub fn root(value: &'a Value) -> Self {
        Self {
            path: String::new(),
            value,
        }
    }

    /// An error at this value.
    pub fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.path, reason)
    }

    fn expected(&self, what: &str) -> ConfigError {
        self.error(format!("expected {what}, found {}", kind(self.value)))
    }

    /// The value as an object whose keys are then taken one by one.
    pub fn object(&self) -> Result<Object<'a>, ConfigError> {
        match self.value {
            Value::Object(map) => Ok(Object {
                path: self.path.clone(),
                entries: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                asked: Vec::new(),
            }),
            _ => Err(self.expected("an object")),
        }
    }

    /// A number.
    pub fn f64(&self) -> Result<f64, ConfigError> {
        self.value.as_f64().ok_or_else(|| self.expected("a number"))
    }

    /// A number in `[0, 1)`.
    pub fn level(&self) -> Result<f64, ConfigError> {
        let level = self.f64()?;
        if (0.0..1.0).contains(&level) {
            Ok(level)
        } else {
            Err(self.error(format!("{level} is outside [0, 1)")))
        }
    }

    /// A finite number `> 0`.
    pub fn positive(&self) -> Result<f64, ConfigError> {
        let value = self.f64()?;
        if value > 0.0 && value.is_finite() {
            Ok(value)
        } else {
            Err(self.error(format!("{value} is not a positive number")))
        }
    }

    /// A number `>= 0`.
    pub fn non_negative(&self) -> Result<f64, ConfigError> {
        let value = self.f64()?;
        if value >= 0.0 && value.is_finite() {
            Ok(value)
        } else {
            Err(self.error(format!("{value} is not >= 0")))
        }
    }

    /// A whole number `>= 0` (NNCF writes counts as numbers: `2.0` is accepted, `2.5` is not).
    pub fn count(&self) -> Result<usize, ConfigError> {
        let value = self.f64()?;
        if value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f64 {
            Ok(value as usize)
        } else {
            Err(self.error(format!("{value} is not a whole number >= 0")))
        }
    }

    /// A boolean.
    pub fn bool(&self) -> Result<bool, ConfigError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.expected("a boolean"))
    }

    /// A string.
    pub fn str(&self) -> Result<&'a str, ConfigError> {
        self.value.as_str().ok_or_else(|| self.expected("a string"))
    }

    /// One of `allowed`.
    pub fn choice(&self, allowed: &[&'static str]) -> Result<&'static str, ConfigError> {
        let text = self.str()?;
        allowed
            .iter()
            .find(|a| **a == text)
            .copied()
            .ok_or_else(|| {
                self.error(format!(
                    "unknown value `{text}` (expected one of: {})",
                    allowed.join(", ")
                ))
            })
    }

    /// A string or an array of strings (NNCF's scope lists).
    pub fn strings(&self) -> Result<Vec<String>, ConfigError> {
        match self.value {
            Value::String(text) => Ok(vec![text.clone()]),
            Value::Array(_) => self
                .items()?
                .iter()
                .map(|item| item.str().map(str::to_string))
                .collect(),
            _ => Err(self.expected("a string or an array of strings")),
        }
    }

    /// An array of numbers.
    pub fn numbers(&self) -> Result<Vec<f64>, ConfigError> {
        self.items()?.iter().map(Field::f64).collect()
    }

    /// The items of an array, each with its path.
    pub fn items(&self) -> Result<Vec<Field<'a>>, ConfigError> {
        match self.value {
            Value::Array(values) => Ok(values
                .iter()
                .enumerate()
                .map(|(i, value)| Field {
                    path: format!("{}[{i}]", self.path),
                    value,
                })
                .collect()),
            _ => Err(self.expected("an array")),
        }
    }

    /// An object, or an array of objects (NNCF's `compression` and `input_info`).
    pub fn one_or_many(&self) -> Result<Vec<Field<'a>>, ConfigError> {
        match self.value {
            Value::Object(_) => Ok(vec![self.clone()]),
            Value::Array(_) => self.items(),
            _ => Err(self.expected("an object or an array of objects")),
        }
    }
}

/// An object whose keys are taken as they are read; [`finish`](Object::finish) refuses the rest.
pub struct Object<'a> {
    path: String,
    entries: BTreeMap<&'a str, &'a Value>,
    asked: Vec<&'static str>,
}

impl<'a> Object<'a> {
    /// An object without keys at `path` (an absent section read with its defaults).
    pub fn empty(path: &str) -> Self {
        Self {
            path: path.to_string(),
            entries: BTreeMap::new(),
            asked: Vec::new(),
        }
    }

    /// The object's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error at `key` of this object.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.child_path(key), reason)
    }

    /// The value of `key`, if present (`null` counts as absent).
    pub fn take(&mut self, key: &'static str) -> Option<Field<'a>> {
        self.asked.push(key);
        let value = self.entries.remove(key)?;
        if value.is_null() {
            return None;
        }
        Some(Field {
            path: self.child_path(key),
            value,
        })
    }

    /// The value of `key`, which must be present.
    pub fn require(&mut self, key: &'static str) -> Result<Field<'a>, ConfigError> {
        self.take(key).ok_or_else(|| self.error(key, "is required"))
    }

    /// `read(value)` when `key` is present, else `default`.
    pub fn read_or<T>(
        &mut self,
        key: &'static str,
        default: T,
        read: impl FnOnce(&Field<'a>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        match self.take(key) {
            Some(field) => read(&field),
            None => Ok(default),
        }
    }

    /// `read(value)` when `key` is present.
    pub fn read<T>(
        &mut self,
        key: &'static str,
        read: impl FnOnce(&Field<'a>) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.take(key).map(|field| read(&field)).transpose()
    }

    /// Refuses `key` when present: NNCF knows it, burn-compress does not do it (`why`).
    pub fn unsupported(&mut self, key: &'static str, why: &str) -> Result<(), ConfigError> {
        match self.take(key) {
            Some(field) => Err(field.error(format!("is not supported: {why}"))),
            None => Ok(()),
        }
    }

    /// Fails on the first key nobody asked for, naming it and the keys this object knows.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.entries.keys().next() {
            None => Ok(()),
            Some(key) => {
                let mut known = self.asked.clone();
                known.sort_unstable();
                known.dedup();
                Err(self.error(
                    key,
                    format!("unknown key (known here: {})", known.join(", ")),
                ))
            }
        }
    }
}
