//! The client side of SDK wire format v1: a device's keys (ML-KEM-768 for receiving,
//! ML-DSA-65 for signing what it sends), encapsulation to a receiver's public key, HKDF-SHA256
//! and AES-256-GCM. The byte layout of a blob lives in the `client` crate; this module only
//! holds the operations that touch secret bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ml_kem::kem::{Decapsulate, Encapsulate, KeyExport, TryKeyInit};
use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem768, Seed};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keyfile::{Created, create_private_file, io_error};
use crate::{Error, LogSigningKey, LogVerifyingKey, SEED_LEN};

/// Length in bytes of an ML-KEM-768 encapsulation (public) key (FIPS 203, Table 3).
pub const ML_KEM_768_PUBLIC_KEY_LEN: usize = 1184;
/// Length in bytes of an ML-KEM-768 ciphertext (FIPS 203, Table 3).
pub const ML_KEM_768_CIPHERTEXT_LEN: usize = 1088;
/// Length in bytes of an ML-KEM seed (d ‖ z), the stored form of a decapsulation key.
pub const KEM_SEED_LEN: usize = 64;
/// Length of an AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a device key file: the ML-KEM seed, then the ML-DSA seed.
const DEVICE_FILE_LEN: usize = KEM_SEED_LEN + SEED_LEN;

/// Why a client-side operation failed. Messages never carry key bytes.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// A receiver's ML-KEM-768 public key has the wrong length or does not decode.
    #[error("the receiver's ML-KEM-768 public key is invalid ({len} bytes, expected {ML_KEM_768_PUBLIC_KEY_LEN})")]
    KemPublicKey {
        /// Its length.
        len: usize,
    },
    /// A KEM ciphertext has the wrong length.
    #[error("ML-KEM-768 ciphertext must be {ML_KEM_768_CIPHERTEXT_LEN} bytes, got {len}")]
    KemCiphertext {
        /// Its length.
        len: usize,
    },
    /// AES-256-GCM refused to open the ciphertext: wrong key, or the bytes were changed.
    #[error("decryption failed: the blob was not encrypted to this key, or it was altered")]
    Decrypt,
    /// A device key file does not hold exactly 96 bytes.
    #[error("device key file {} is not a paramant device key ({len} bytes, expected 96)", path.display())]
    DeviceFileFormat {
        /// The file.
        path: std::path::PathBuf,
        /// How many bytes it holds (97 means "more").
        len: usize,
    },
    /// A key-file or RNG error from the rest of the crate.
    #[error(transparent)]
    Key(#[from] Error),
}

/// A device's two key pairs, kept as seeds (zeroized on drop).
pub struct DeviceKeys {
    seeds: Zeroizing<[u8; DEVICE_FILE_LEN]>,
    kem: DecapsulationKey<MlKem768>,
    signing: LogSigningKey,
}

impl DeviceKeys {
    /// Fresh keys from the OS random number generator.
    ///
    /// # Errors
    /// The RNG failed.
    pub fn generate() -> Result<Self, PipeError> {
        let seeds = random_bytes::<DEVICE_FILE_LEN>()?;
        Ok(Self::from_seeds(&seeds))
    }

    fn from_seeds(seeds: &[u8; DEVICE_FILE_LEN]) -> Self {
        let mut kem_seed = Zeroizing::new(Seed::default());
        kem_seed.copy_from_slice(&seeds[..KEM_SEED_LEN]);
        let mut dsa_seed = Zeroizing::new([0u8; SEED_LEN]);
        dsa_seed.copy_from_slice(&seeds[KEM_SEED_LEN..]);
        Self {
            seeds: Zeroizing::new(*seeds),
            kem: DecapsulationKey::from_seed(*kem_seed),
            signing: LogSigningKey::from_seed(&dsa_seed),
        }
    }

    /// Loads the keys at `path`, or creates them there (mode 0600, atomically: a concurrent
    /// creator's keys win and are loaded).
    ///
    /// # Errors
    /// The file cannot be read or created, or does not hold a device key.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), PipeError> {
        if let Some(keys) = Self::load_if_exists(path)? {
            return Ok((keys, false));
        }
        let keys = Self::generate()?;
        match create_private_file(path, keys.seeds.as_ref())? {
            Created::Yes => Ok((keys, true)),
            Created::AlreadyExisted => Ok((
                Self::load_if_exists(path)?.ok_or(PipeError::DeviceFileFormat { path: path.to_owned(), len: 0 })?,
                false,
            )),
        }
    }

    /// Loads the keys at `path`; `None` when there is no file.
    ///
    /// # Errors
    /// The file cannot be read or does not hold a device key.
    pub fn load_if_exists(path: &Path) -> Result<Option<Self>, PipeError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path, "open", e).into()),
        };
        let mut buf = Zeroizing::new([0u8; DEVICE_FILE_LEN + 1]);
        let mut len = 0;
        while len < buf.len() {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(path, "read", e).into()),
            }
        }
        if len != DEVICE_FILE_LEN {
            return Err(PipeError::DeviceFileFormat { path: path.to_owned(), len });
        }
        let mut seeds = Zeroizing::new([0u8; DEVICE_FILE_LEN]);
        seeds.copy_from_slice(&buf[..DEVICE_FILE_LEN]);
        Ok(Some(Self::from_seeds(&seeds)))
    }

    /// The ML-KEM-768 encapsulation key others encrypt to (1184 bytes).
    #[must_use]
    pub fn kem_public_key(&self) -> Vec<u8> {
        self.kem.encapsulation_key().to_bytes().to_vec()
    }

    /// The ML-DSA-65 verifying key of what this device signs (1952 bytes).
    #[must_use]
    pub fn signing_public_key(&self) -> LogVerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `message` with the device's ML-DSA-65 key (FIPS 204, empty context).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message)
    }

    /// Recovers the shared secret from a KEM ciphertext sent to this device.
    ///
    /// # Errors
    /// The ciphertext has the wrong length.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>, PipeError> {
        let shared =
            self.kem.decapsulate_slice(ciphertext).map_err(|_| PipeError::KemCiphertext { len: ciphertext.len() })?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&shared);
        Ok(out)
    }
}

/// Encapsulates a fresh shared secret to `receiver_public_key`: (ciphertext, shared secret).
///
/// # Errors
/// The key has the wrong length or is not a valid ML-KEM-768 key.
pub fn encapsulate(receiver_public_key: &[u8]) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), PipeError> {
    let invalid = || PipeError::KemPublicKey { len: receiver_public_key.len() };
    let key = EncapsulationKey::<MlKem768>::new_from_slice(receiver_public_key).map_err(|_| invalid())?;
    let (ciphertext, shared) = key.encapsulate();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&shared);
    Ok((ciphertext.to_vec(), out))
}

/// HKDF-SHA256 (RFC 5869) to a 32-byte key.
#[must_use]
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    okm
}

/// AES-256-GCM encryption; the result is the ciphertext followed by the 16-byte tag.
#[must_use]
pub fn aes256gcm_seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(&Nonce::from(*nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encrypts any message under 64 GiB")
}

/// AES-256-GCM encryption in place (no copy of a large message): `buf` becomes the
/// ciphertext; returns the 16-byte tag.
#[must_use]
pub fn aes256gcm_seal_in_place(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
    use aes_gcm::aead::AeadInOut;
    let tag = Aes256Gcm::new(key.into())
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .expect("AES-GCM encrypts any message under 64 GiB");
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag);
    out
}

/// AES-256-GCM decryption in place: `buf` (the ciphertext without its tag) becomes the
/// plaintext when `tag` verifies.
///
/// # Errors
/// [`PipeError::Decrypt`] when the tag does not verify (`buf` is then unspecified).
pub fn aes256gcm_open_in_place(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), PipeError> {
    use aes_gcm::aead::AeadInOut;
    Aes256Gcm::new(key.into())
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &(*tag).into())
        .map_err(|_| PipeError::Decrypt)
}

/// AES-256-GCM decryption and tag check.
///
/// # Errors
/// [`PipeError::Decrypt`] when the tag does not verify.
pub fn aes256gcm_open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PipeError> {
    Aes256Gcm::new(key.into())
        .decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| PipeError::Decrypt)
}

/// `N` bytes from the OS random number generator, zeroized on drop.
///
/// # Errors
/// The RNG failed.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, Error> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::fill(out.as_mut()).map_err(Error::Rng)?;
    Ok(out)
}

/// Fills `buf` from the OS random number generator (padding).
///
/// # Errors
/// The RNG failed.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(Error::Rng)
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys").field("signing", &self.signing_public_key()).finish_non_exhaustive()
    }
}
