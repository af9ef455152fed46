//! The log's Ed25519 note key: it signs C2SP checkpoints (signed-note form) alongside the
//! ML-DSA-65 STH, because C2SP tlog-tiles requires an Ed25519 signature from a public log and
//! today's witnesses and tlog tools verify only that.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::{Error, KeyOrigin, SEED_LEN, keyfile};

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Ed25519 (RFC 8032) signing key, kept as its 32-byte seed file like the log key: mode 0600,
/// created atomically, zeroized on drop, never shown by `Debug`.
pub struct NoteSigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl NoteSigningKey {
    /// The key of `seed` (RFC 8032 private key).
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self { inner: ed25519_dalek::SigningKey::from_bytes(seed) }
    }

    /// Loads the seed at `path`, or creates it (32 random bytes, mode 0600) when absent; the
    /// same file rules as [`crate::LogSigningKey::load_or_generate`].
    ///
    /// # Errors
    /// [`Error::KeyFileIo`], [`Error::KeyFileFormat`], [`Error::KeyFileNotRegular`] or
    /// [`Error::Rng`].
    pub fn load_or_generate(path: &Path) -> Result<(Self, KeyOrigin), Error> {
        if let Some(seed) = keyfile::read_seed_if_exists(path)? {
            return Ok((Self::from_seed(&seed), KeyOrigin::Loaded));
        }
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        getrandom::fill(seed.as_mut()).map_err(Error::Rng)?;
        match keyfile::create_seed_file(path, &seed)? {
            keyfile::Created::Yes => Ok((Self::from_seed(&seed), KeyOrigin::Generated)),
            keyfile::Created::AlreadyExisted => {
                let theirs = keyfile::read_seed(path)?;
                Ok((Self::from_seed(&theirs), KeyOrigin::Loaded))
            }
        }
    }

    /// Loads the existing seed at `path` (never creates one).
    ///
    /// # Errors
    /// [`Error::KeyFileIo`] (also when it does not exist), [`Error::KeyFileFormat`] or
    /// [`Error::KeyFileNotRegular`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let seed = keyfile::read_seed(path)?;
        Ok(Self::from_seed(&seed))
    }

    /// The 32-byte public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; ED25519_PUBLIC_KEY_LEN] {
        self.inner.verifying_key().to_bytes()
    }

    /// Signs `message` (pure Ed25519, deterministic).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        self.inner.sign(message).to_bytes()
    }
}

/// Whether `signature` is a valid Ed25519 signature of `message` by `public_key`.
#[must_use]
pub fn ed25519_verify(public_key: &[u8; ED25519_PUBLIC_KEY_LEN], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else { return false };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
    key.verify_strict(message, &signature).is_ok()
}

impl fmt::Debug for NoteSigningKey {
    /// Shows the public key only, never the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigningKey").field("public_key", &hex::encode(self.public_key())).finish_non_exhaustive()
    }
}
