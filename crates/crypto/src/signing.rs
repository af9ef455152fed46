//! The log's ML-DSA-65 signing key: generation, loading from its seed file, and signing.

use std::fmt;
use std::path::Path;

use ml_dsa::{MlDsa65, Seed, Signer};
use zeroize::Zeroizing;

use crate::{Error, LogVerifyingKey, SEED_LEN, keyfile};

/// ML-DSA-65 (FIPS 204) signing key of the log, kept as its 32-byte seed ξ (zeroized on drop,
/// hidden from `Debug`).
///
/// The expanded key is derived once at construction (≈0.4 ms) and cached, so signing does not
/// re-derive it; `ml-dsa` zeroizes both the seed and the expanded key on drop.
pub struct LogSigningKey {
    inner: ml_dsa::SigningKey<MlDsa65>,
}

/// Whether [`LogSigningKey::load_or_generate`] found an existing key or created a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key file existed and was loaded.
    Loaded,
    /// No key file existed; a fresh key was generated and written.
    Generated,
}

impl LogSigningKey {
    /// A fresh key whose seed comes from the OS random number generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the OS RNG fails.
    pub fn generate() -> Result<Self, Error> {
        let seed = random_seed()?;
        Ok(Self::from_seed(&seed))
    }

    /// The key derived from `seed` (FIPS 204 `ML-DSA.KeyGen_internal`).
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        // Copy in place so no un-zeroized temporary of the seed is left behind.
        let mut xi = Zeroizing::new(Seed::default());
        xi.copy_from_slice(seed);
        Self { inner: ml_dsa::SigningKey::from_seed(&xi) }
    }

    /// The matching public key.
    #[must_use]
    pub fn verifying_key(&self) -> LogVerifyingKey {
        let key: &ml_dsa::VerifyingKey<MlDsa65> = self.inner.as_ref();
        LogVerifyingKey::from_key(key.clone())
    }

    /// Signs `message`: pure ML-DSA-65, empty context, deterministic variant (same key and
    /// message give the same signature). Returns the 3309-byte FIPS 204 encoding.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        // `Signer::sign` only fails for a context longer than 255 bytes; ml-dsa's `Signer` impl
        // always uses the empty context, so this cannot panic.
        let signature: ml_dsa::Signature<MlDsa65> = self.inner.sign(message);
        signature.encode().to_vec()
    }

    /// Loads the seed from `path`, or creates it when absent: 32 random bytes, file mode 0600,
    /// written to a temporary file in the same directory, fsynced, linked into place without
    /// overwriting anything (a concurrent creator wins and its key is loaded), directory fsynced.
    ///
    /// The file holds exactly 32 raw bytes; anything else is rejected with an error naming the
    /// path (the bytes are never printed).
    ///
    /// # Errors
    /// [`Error::KeyFileIo`], [`Error::KeyFileFormat`], [`Error::KeyFileNotRegular`] or
    /// [`Error::Rng`].
    pub fn load_or_generate(path: &Path) -> Result<(Self, KeyOrigin), Error> {
        if let Some(seed) = keyfile::read_seed_if_exists(path)? {
            return Ok((Self::from_seed(&seed), KeyOrigin::Loaded));
        }
        let seed = random_seed()?;
        match keyfile::create_seed_file(path, &seed)? {
            keyfile::Created::Yes => Ok((Self::from_seed(&seed), KeyOrigin::Generated)),
            // Someone else created the file between our read and our link: theirs is the key.
            keyfile::Created::AlreadyExisted => Ok((Self::load(path)?, KeyOrigin::Loaded)),
        }
    }

    /// Loads the seed from `path`, which must exist and hold exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::KeyFileIo`] (including when the file is missing), [`Error::KeyFileFormat`] or
    /// [`Error::KeyFileNotRegular`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let seed = keyfile::read_seed(path)?;
        Ok(Self::from_seed(&seed))
    }
}

impl fmt::Debug for LogSigningKey {
    /// Shows the public key's fingerprint only, never the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSigningKey")
            .field("pk_hash", &hex::encode(self.verifying_key().pk_hash()))
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the OS RNG, zeroized when dropped.
fn random_seed() -> Result<Zeroizing<[u8; SEED_LEN]>, Error> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    getrandom::fill(seed.as_mut()).map_err(Error::Rng)?;
    Ok(seed)
}
