//! The log signing key's file and fresh seeds: what `logkey` (pure) leaves to this crate.

use std::path::Path;

use logkey::{LogSigningKey, SEED_LEN};
use zeroize::Zeroizing;

use crate::{Error, keyfile};

/// Whether [`KeyFile::load_or_generate`] found an existing key or created a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key file existed and was loaded.
    Loaded,
    /// No key file existed; a fresh key was generated and written.
    Generated,
}

/// Making log signing keys from the OS random number generator and from key files.
pub trait KeyFile: Sized {
    /// A fresh key whose seed comes from the OS random number generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the OS RNG fails.
    fn generate() -> Result<Self, Error>;

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
    fn load_or_generate(path: &Path) -> Result<(Self, KeyOrigin), Error>;

    /// Loads the seed from `path`, which must exist and hold exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::KeyFileIo`] (including when the file is missing), [`Error::KeyFileFormat`] or
    /// [`Error::KeyFileNotRegular`].
    fn load(path: &Path) -> Result<Self, Error>;
}

impl KeyFile for LogSigningKey {
    fn generate() -> Result<Self, Error> {
        let seed = random_seed()?;
        Ok(Self::from_seed(&seed))
    }

    fn load_or_generate(path: &Path) -> Result<(Self, KeyOrigin), Error> {
        if let Some(seed) = keyfile::read_seed_if_exists(path)? {
            return Ok((Self::from_seed(&seed), KeyOrigin::Loaded));
        }
        let seed = random_seed()?;
        match keyfile::create_seed_file(path, &seed)? {
            keyfile::Created::Yes => Ok((Self::from_seed(&seed), KeyOrigin::Generated)),
            // Someone else created the file between our read and our link: theirs is the key.
            keyfile::Created::AlreadyExisted => Ok((<Self as KeyFile>::load(path)?, KeyOrigin::Loaded)),
        }
    }

    fn load(path: &Path) -> Result<Self, Error> {
        let seed = keyfile::read_seed(path)?;
        Ok(Self::from_seed(&seed))
    }
}

/// 32 bytes from the OS RNG, zeroized when dropped.
fn random_seed() -> Result<Zeroizing<[u8; SEED_LEN]>, Error> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    getrandom::fill(seed.as_mut()).map_err(Error::Rng)?;
    Ok(seed)
}
