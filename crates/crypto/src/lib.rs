//! Key material of paramant: the log's ML-DSA-65 (FIPS 204) signing key and its key file,
//! signature verification, small helpers for secrets (constant-time compare, random tokens,
//! systemd credentials), and [`pipe`]: a client device's keys and the ML-KEM-768 / HKDF /
//! AES-256-GCM operations of SDK wire format v1.
//!
//! Invariant: this is the only crate that touches private key bytes. Seeds never leave it except
//! through the key file it writes; they are zeroized on drop and never appear in `Debug` output
//! or error messages.
#![forbid(unsafe_code)]

mod keyfile;
mod note;
pub mod pipe;
mod secret;
mod signing;
mod verifying;

pub use note::{ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, NoteSigningKey, ed25519_verify};
pub use secret::{Secret, credential_path, ct_eq, random_token};
pub use signing::{KeyOrigin, LogSigningKey};
pub use verifying::LogVerifyingKey;

use std::path::PathBuf;

/// Length in bytes of an encoded ML-DSA-65 signature (FIPS 204, Table 2).
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;

/// Length in bytes of an encoded ML-DSA-65 public key (FIPS 204, Table 2).
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;

/// Length in bytes of an ML-DSA seed ξ, the stored form of a signing key.
pub const SEED_LEN: usize = 32;

/// Everything that can go wrong in this crate. Messages name paths and lengths, never key bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Rng(getrandom::Error),

    /// Reading, creating or syncing a key file (or its directory) failed.
    #[error("key file {}: {action} failed: {source}", path.display())]
    KeyFileIo {
        /// The key file (or its directory) involved.
        path: PathBuf,
        /// What was being done, e.g. "read" or "create".
        action: &'static str,
        /// The underlying IO error.
        source: std::io::Error,
    },

    /// A key file exists but does not hold exactly 32 raw bytes.
    #[error(
        "key file {} is not an ML-DSA-65 seed: it holds {len} bytes, expected exactly 32 raw bytes \
         (move it away to have a new key generated, or restore the right file)",
        path.display()
    )]
    KeyFileFormat {
        /// The offending key file.
        path: PathBuf,
        /// How many bytes it holds (at most 33 are read: "more than 32" shows as 33).
        len: usize,
    },

    /// A key file path is not a regular file (a directory, a device, ...).
    #[error("key file {} is not a regular file", path.display())]
    KeyFileNotRegular {
        /// The offending path.
        path: PathBuf,
    },

    /// An encoded public key has the wrong length.
    #[error("ML-DSA-65 public key must be {ML_DSA_65_PUBLIC_KEY_LEN} bytes, got {len}")]
    PublicKeyLength {
        /// The length received.
        len: usize,
    },

    /// An encoded signature has the wrong length.
    #[error("ML-DSA-65 signature must be {ML_DSA_65_SIGNATURE_LEN} bytes, got {len}")]
    SignatureLength {
        /// The length received.
        len: usize,
    },

    /// The signature is malformed or does not verify for this key and message.
    #[error("ML-DSA-65 signature is invalid")]
    BadSignature,
}
