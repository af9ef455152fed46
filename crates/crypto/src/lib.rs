//! Key material of paramant that needs the operating system: the log signing key's file (and
//! fresh seeds from the OS RNG) through [`KeyFile`], and small helpers for secrets
//! (constant-time compare, random tokens, systemd credentials), the Ed25519 note key of C2SP
//! checkpoints, and [`pipe`]: a client device's keys and the ML-KEM-768 / HKDF / AES-256-GCM
//! operations of SDK wire format v1. The keys themselves — pure
//! signing and verification — live in `logkey` and are re-exported here.
//!
//! Invariant: this is the only crate that touches private key bytes. Seeds never leave it except
//! through the key file it writes; they are zeroized on drop and never appear in `Debug` output
//! or error messages.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod keyfile;
mod note;
pub mod pipe;
mod secret;
mod signing;

pub use logkey::{
    Error as SignatureError, LogSigningKey, LogVerifyingKey, ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_65_SIGNATURE_LEN,
    SEED_LEN,
};
pub use note::{ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, NoteSigningKey, ed25519_verify};
pub use secret::{Secret, credential_path, ct_eq, random_token};
pub use signing::{KeyFile, KeyOrigin};

use std::path::PathBuf;

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
}
