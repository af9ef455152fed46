//! Hex and base64 as the API uses them: lowercase hex hashes, standard padded base64 for
//! signatures and keys, unpadded base64url for the receipt header.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};

use crate::Error;

/// base64url that decodes with or without `=` padding (what `POST /v2/verify-receipt` accepts).
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A hash as 64 lowercase hex characters.
#[must_use]
pub fn hash_hex(h: &tlog::Hash) -> String {
    hex::encode(h)
}

/// Parses exactly 64 hex characters (either case) into a hash.
///
/// # Errors
/// [`Error::HashHex`] for any other length or a non-hex character.
pub fn parse_hash_hex(s: &str) -> Result<tlog::Hash, Error> {
    parse_hash_hex_named(s, "hash")
}

/// [`parse_hash_hex`] with the field name to report on failure.
pub(crate) fn parse_hash_hex_named(s: &str, what: &'static str) -> Result<tlog::Hash, Error> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::HashHex { what, len: s.len() })?;
    Ok(out)
}

/// Standard base64 with padding (RFC 4648 §4).
#[must_use]
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64; padding is required and trailing bits must be zero (canonical).
///
/// # Errors
/// [`Error::Base64`].
pub fn parse_b64(s: &str) -> Result<Vec<u8>, Error> {
    Ok(STANDARD.decode(s)?)
}

/// base64url without padding (RFC 4648 §5), as sent in `X-Paramant-Receipt`.
#[must_use]
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url or standard base64, with or without `=` padding. Clients differ: the
/// receipt header is base64url, but the Python SDK re-encodes receipts as padded standard base64.
///
/// # Errors
/// [`Error::Base64`].
pub fn parse_b64url_lenient(s: &str) -> Result<Vec<u8>, Error> {
    if s.contains(['+', '/']) {
        let url_safe: String = s
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        return Ok(URL_SAFE_LENIENT.decode(url_safe)?);
    }
    Ok(URL_SAFE_LENIENT.decode(s)?)
}
