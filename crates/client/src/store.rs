//! The user's config directory: `$PARAMANT_HOME`, else `$XDG_CONFIG_HOME/paramant`, else
//! `~/.config/paramant`. Directories are mode 0700, files 0600.
//!
//! - `devices/NAME.key` — a device's ML-KEM-768 + ML-DSA-65 seeds (96 bytes, written by `crypto`)
//! - `pins.json` — per log origin: the pinned key hash and the last verified STH
//! - `known_devices.json` — receivers' key fingerprints seen on first send (TOFU)
//! - `receipts/HASH.json` — the delivery receipt of each blob received

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crypto::pipe::DeviceKeys;

use crate::Error;

/// The config directory and the files in it.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The directory from the environment (see the module doc).
    ///
    /// # Errors
    /// Neither `PARAMANT_HOME`, `XDG_CONFIG_HOME` nor `HOME` is set.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = var("PARAMANT_HOME")
            .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("paramant")))
            .or_else(|| var("HOME").map(|d| d.join(".config").join("paramant")))
            .ok_or_else(|| Error::Usage("set HOME or PARAMANT_HOME: no config directory".into()))?;
        Ok(Self { root })
    }

    /// A store rooted at `root`.
    #[must_use]
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, sub: &str) -> Result<PathBuf, Error> {
        let dir = if sub.is_empty() { self.root.clone() } else { self.root.join(sub) };
        DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io(&dir, "create", &e))?;
        Ok(dir)
    }

    /// The keys of device `name`, created on first use. Returns whether they were created.
    ///
    /// # Errors
    /// The key file cannot be read or created, or the name is unsafe as a file name.
    pub fn device_keys(&self, name: &str) -> Result<(DeviceKeys, bool), Error> {
        let path = self.dir("devices")?.join(format!("{}.key", safe_name(name)?));
        Ok(DeviceKeys::load_or_generate(&path)?)
    }

    /// Reads a JSON file of the store; `None` when absent.
    ///
    /// # Errors
    /// It exists but cannot be read or parsed.
    pub fn read_json(&self, rel: &str) -> Result<Option<serde_json::Value>, Error> {
        let path = self.root.join(rel);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, "read", &e)),
        }
    }

    /// Writes a JSON file of the store atomically, mode 0600.
    ///
    /// # Errors
    /// It cannot be written.
    pub fn write_json(&self, rel: &str, value: &serde_json::Value) -> Result<PathBuf, Error> {
        let path = self.root.join(rel);
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        DirBuilder::new().recursive(true).mode(0o700).create(&parent).map_err(|e| io(&parent, "create", &e))?;
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Io(e.to_string()))?;
        write_private(&path, &bytes)?;
        Ok(path)
    }
}

/// Writes `bytes` to `path` through a mode-0600 temporary file and a rename.
///
/// # Errors
/// The file cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(&tmp, "create", &e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io(&tmp, "write", &e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, "rename into place", &e))
}

/// Device and blob names become file names: only `[A-Za-z0-9._-]`, not starting with a dot.
///
/// # Errors
/// [`Error::Usage`] for anything else.
pub fn safe_name(name: &str) -> Result<&str, Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(name) } else { Err(Error::Usage(format!("{name:?} is not a valid name (use A-Z a-z 0-9 . _ -)"))) }
}

fn io(path: &Path, action: &str, e: &std::io::Error) -> Error {
    Error::Io(format!("{}: {action} failed: {e}", path.display()))
}
