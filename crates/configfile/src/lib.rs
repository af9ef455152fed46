//! Strict TOML configuration files for paramant's services: read, parse (the config types
//! deny unknown fields, so typos never pass silently), validate, and report what is wrong with
//! the file and field named, so the operator knows the fix.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// A configuration file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The file is not valid TOML for the config type (including unknown fields).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names line and column).
        source: Box<toml::de::Error>,
    },
    /// The file parses but a field's value is not usable.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as written in the file (`table.key`).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A field that failed validation, and how to fix it.
#[derive(Debug)]
pub struct Invalid {
    /// The field, as written in the file (`table.key`).
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Invalid {
    /// A validation failure of `field`.
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

/// The `[ctlog]` section of a service that talks to its sector's log (the relay, the license
/// client): where the log is and how to authenticate to it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlogConfig {
    /// The log's internal API, `http://127.0.0.1:PORT`.
    pub internal_url: String,
    /// The log's public API, `http://127.0.0.1:PORT`.
    pub public_url: String,
    /// File holding the log's internal token. Default: `$CREDENTIALS_DIRECTORY/ctlog-internal-token`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}
