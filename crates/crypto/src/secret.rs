//! Helpers for secrets that are not keys: constant-time compare, random tokens, credential files.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Error;

/// Constant-time equality for secrets (tokens, key hashes). The lengths are not secret: inputs
/// of different lengths compare unequal at once.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A fresh random secret token: `prefix` followed by 64 lowercase hex characters (32 bytes from
/// the OS RNG).
///
/// # Errors
/// [`Error::Rng`] if the OS RNG fails.
pub fn random_token(prefix: &str) -> Result<String, Error> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(Error::Rng)?;
    Ok(format!("{prefix}{}", hex::encode(bytes.as_ref())))
}

/// Path of the secret file `$CREDENTIALS_DIRECTORY/<name>` (systemd `LoadCredential=`) when that
/// variable is set and the file exists; `None` otherwise. `name` must be a plain file name:
/// anything with a `/`, `.` or `..` yields `None`.
#[must_use]
pub fn credential_path(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = PathBuf::from(dir).join(name);
    path.is_file().then_some(path)
}

/// A shared secret token (admin token, internal API token): zeroized on drop, never printed,
/// compared only in constant time.
pub struct Secret {
    value: Zeroizing<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Wraps a token value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self { value: Zeroizing::new(value) }
    }

    /// Reads the token in `path` (surrounding whitespace ignored), or creates it with
    /// [`random_token`]`(prefix)` and mode 0600 when the file is absent.
    ///
    /// # Errors
    /// IO failures naming the path, an empty file, or a failing OS RNG.
    pub fn load_or_generate(path: &Path, prefix: &str) -> Result<Self, Error> {
        let io = |action, source| Error::KeyFileIo { path: path.to_path_buf(), action, source };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let value = Zeroizing::new(text);
                let trimmed = value.trim();
                if trimmed.is_empty() {
                    return Err(Error::KeyFileFormat { path: path.to_path_buf(), len: 0 });
                }
                Ok(Self::new(trimmed.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = random_token(prefix)?;
                match crate::keyfile::create_private_file(path, token.as_bytes())? {
                    crate::keyfile::Created::Yes => Ok(Self::new(token)),
                    // Another process created it first: theirs is the token in force.
                    crate::keyfile::Created::AlreadyExisted => Self::load_or_generate(path, prefix),
                }
            }
            Err(e) => Err(io("read", e)),
        }
    }

    /// Reads the token in `path`, which must exist (a secret shared with another service).
    ///
    /// # Errors
    /// IO failures naming the path, or an empty file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::KeyFileIo {
            path: path.to_path_buf(),
            action: "read",
            source,
        })?);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::KeyFileFormat { path: path.to_path_buf(), len: 0 });
        }
        Ok(Self::new(trimmed.to_owned()))
    }

    /// Constant-time comparison with a presented value.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        ct_eq(self.value.as_bytes(), presented)
    }

    /// The token itself, for handing to a client that must present it (never log it).
    #[must_use]
    pub fn danger_expose(&self) -> &str {
        &self.value
    }
}
