//! The paramant client: what the `paramant` CLI does, as a library.
//!
//! - [`v1`] and [`drop`]: wire format v1 of the published `paramant-sdk` 3.0.0 (ML-KEM-768,
//!   HKDF-SHA256, AES-256-GCM, ML-DSA-65 sender signatures, padding) and its BIP39 drops —
//!   byte-compatible both ways with the SDK.
//! - [`relay`]: the relay's HTTP API (send, receive, drop, pickup, the log's public endpoints).
//! - [`audit`]: checks anyone can run without trusting the operator — STH signatures against a
//!   pinned key, consistency between heads, receipts, peers' mirrored heads, the RSS feed.
//! - [`store`]: the user's config directory (device keys, pinned log keys, receipts), mode 0600.
//!
//! The math is `tlog`'s, the formats `wire`'s and the key operations `crypto`'s; this crate only
//! composes them and talks HTTP.
#![deny(missing_docs)]

pub mod audit;
pub mod cli;
pub mod drop;
pub mod relay;
pub mod store;
pub mod v1;

/// Everything that can fail in the client. [`Error::exit_code`] maps each to the CLI's
/// documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something does not verify: a signature, a proof, a receipt, a decryption.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A blob is not well-formed wire format v1.
    #[error("invalid blob: {0}")]
    Blob(String),
    /// The payload does not fit in the padding block.
    #[error(
        "payload too large for the padding block ({plaintext} bytes of plaintext → {encoded} bytes encoded, block {block} bytes)"
    )]
    TooLarge {
        /// Plaintext length.
        plaintext: usize,
        /// Encoded length.
        encoded: usize,
        /// Block size.
        block: usize,
    },
    /// The file to send is larger than one blob holds; refused before it is read.
    #[error(
        "{what} is {size} bytes, but one blob holds at most {max} bytes of data with the {block}-byte padding block \
         (wire format v1 of paramant-sdk 3.0.0 is a single AES-GCM message padded to the block, and relays take \
         blobs of at most 5 MiB = the 5m block): split or compress it"
    )]
    InputTooLarge {
        /// The file (or standard input).
        what: String,
        /// Its size (for standard input: more than `max`).
        size: u64,
        /// The most one blob holds.
        max: usize,
        /// The padding block.
        block: usize,
    },
    /// The log's key differs from the key pinned for it.
    #[error("log key changed: {0}")]
    KeyChanged(String),
    /// Two signed heads of one log are inconsistent (a fork, a shrink, a failed consistency proof).
    #[error("fork detected: {0}")]
    Fork(String),
    /// The relay answered with an error status.
    #[error("relay answered HTTP {status} for {what}: {detail}")]
    Status {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The error body, shortened.
        detail: String,
    },
    /// The relay could not be reached or sent something unreadable.
    #[error("{0}")]
    Transport(String),
    /// A local file or directory could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The user asked for something that cannot be done (missing credentials, bad arguments).
    #[error("{0}")]
    Usage(String),
    /// A key-handling error from `crypto`.
    #[error(transparent)]
    Crypto(#[from] crypto::pipe::PipeError),
}

impl From<crypto::Error> for Error {
    fn from(e: crypto::Error) -> Self {
        Error::Crypto(e.into())
    }
}

/// Exit codes of the `paramant` CLI (also in `paramant --help` and the README).
pub mod exit {
    /// Success; everything checked is valid.
    pub const OK: u8 = 0;
    /// Something is invalid: a signature, proof, receipt or blob (or decryption failed).
    pub const INVALID: u8 = 1;
    /// Usage error: bad arguments, missing credentials.
    pub const USAGE: u8 = 2;
    /// The relay or log could not be reached, answered an error, or a local file failed.
    pub const UNAVAILABLE: u8 = 3;
    /// The log's signing key differs from the pinned key.
    pub const KEY_CHANGED: u8 = 4;
    /// Two signed tree heads of one log are inconsistent: a fork.
    pub const FORK: u8 = 5;
    /// Unchecked: nothing checked was invalid, but something could not be checked (a peer's
    /// own log could not be reached for its consistency proofs).
    pub const UNCHECKED: u8 = 6;
}

impl Error {
    /// The CLI exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) | Error::Blob(_) => exit::INVALID,
            Error::Crypto(crypto::pipe::PipeError::Decrypt | crypto::pipe::PipeError::KemCiphertext { .. }) => {
                exit::INVALID
            }
            Error::TooLarge { .. } | Error::InputTooLarge { .. } | Error::Usage(_) => exit::USAGE,
            Error::KeyChanged(_) => exit::KEY_CHANGED,
            Error::Fork(_) => exit::FORK,
            Error::Status { .. } | Error::Transport(_) | Error::Io(_) | Error::Crypto(_) => exit::UNAVAILABLE,
        }
    }

    /// A short machine-readable kind for `--json` output.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::Blob(_) => "invalid_blob",
            Error::TooLarge { .. } | Error::InputTooLarge { .. } => "too_large",
            Error::KeyChanged(_) => "key_changed",
            Error::Fork(_) => "fork",
            Error::Status { .. } => "relay_error",
            Error::Transport(_) => "unreachable",
            Error::Io(_) => "io",
            Error::Usage(_) => "usage",
            Error::Crypto(crypto::pipe::PipeError::Decrypt) => "decrypt_failed",
            Error::Crypto(_) => "key_error",
        }
    }
}
