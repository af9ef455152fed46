//! Strict TOML configuration files for paramant's services: read, parse (the config types
//! deny unknown fields, so typos never pass silently), validate, and report what is wrong with
//! the file and field named, so the operator knows the fix.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// A configuration file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: &'static str, message: String },
}

/// A field that failed validation, and how to fix it.
#[derive(Debug)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Reads `path`, parses it as `T`, and runs `validate` on the result.
pub fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&T) -> Result<(), Invalid>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let config: T =
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?;
    validate(&config).map_err(|e| ConfigError::Invalid { path: path.into(), field: e.field, message: e.message })?;
    Ok(config)
}
