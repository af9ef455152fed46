//! A structural look at SDK wire-format v1 blobs ("PQHB" header). The relay never decrypts;
//! it only refuses blobs that announce an algorithm or version it does not offer, or whose
//! length fields run past the end, so a receiver is not handed something it cannot open.
//! Blobs that do not start with "PQHB" (e.g. anonymous drops) pass untouched.

/// KEM ids offered (`/v2/capabilities`): ML-KEM-768.
pub const KEMS: [(u16, &str); 1] = [(2, "ML-KEM-768")];
/// Signature ids offered: none (anonymous sender) and ML-DSA-65.
pub const SIGS: [(u16, &str); 2] = [(0, "none"), (2, "ML-DSA-65")];

const MAGIC: &[u8; 4] = b"PQHB";
const HEADER_LEN: usize = 10;
const NONCE_LEN: usize = 12;

/// Why a v1 blob is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// 415: a version other than 1.
    UnsupportedVersion(u8),
    /// 415: a KEM or signature id this relay does not offer.
    UnsupportedAlgorithm { kind: &'static str, id: u16 },
    /// 400: a length field runs past the end.
    Malformed(&'static str),
}

/// Checks a payload; `Ok` for non-v1 payloads and well-formed v1 blobs (trailing padding allowed).
pub fn check(payload: &[u8]) -> Result<(), WireError> {
    if !payload.starts_with(MAGIC) {
        return Ok(());
    }
    let header = payload.get(..HEADER_LEN).ok_or(WireError::Malformed("truncated header"))?;
    if header[4] != 1 {
        return Err(WireError::UnsupportedVersion(header[4]));
    }
    let kem = u16::from_be_bytes([header[5], header[6]]);
    let sig = u16::from_be_bytes([header[7], header[8]]);
    if !KEMS.iter().any(|(id, _)| *id == kem) {
        return Err(WireError::UnsupportedAlgorithm { kind: "KEM", id: kem });
    }
    if !SIGS.iter().any(|(id, _)| *id == sig) {
        return Err(WireError::UnsupportedAlgorithm { kind: "SIG", id: sig });
    }
    let mut rest = &payload[HEADER_LEN..];
    rest = skip_field(rest, "truncated at KEM ciphertext")?;
    rest = skip_field(rest, "truncated at sender key")?;
    if sig != 0 {
        rest = skip_field(rest, "truncated at signature")?;
    }
    rest = rest.get(NONCE_LEN..).ok_or(WireError::Malformed("truncated at nonce"))?;
    skip_field(rest, "truncated at ciphertext")?;
    Ok(())
}

/// Skips a `u32 big-endian length ‖ bytes` field.
fn skip_field<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], WireError> {
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or(WireError::Malformed(what))?;
    let len = u32::from_be_bytes(*len) as usize;
    rest.get(len..).ok_or(WireError::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(len: usize) -> Vec<u8> {
        let mut out = (len as u32).to_be_bytes().to_vec();
        out.resize(4 + len, 0xab);
        out
    }

    fn blob(version: u8, kem: u16, sig: u16) -> Vec<u8> {
        let mut out = b"PQHB".to_vec();
        out.push(version);
        out.extend(kem.to_be_bytes());
        out.extend(sig.to_be_bytes());
        out.push(0);
        out.extend(field(1088));
        out.extend(field(if sig == 0 { 0 } else { 1952 }));
        if sig != 0 {
            out.extend(field(3309));
        }
        out.extend([7u8; 12]);
        out.extend(field(100));
        out
    }

    #[test]
    fn well_formed_v1_blobs_pass_with_trailing_padding() {
        assert_eq!(check(&blob(1, 2, 2)), Ok(()));
        let mut padded = blob(1, 2, 0);
        padded.resize(padded.len() + 5000, 0x55);
        assert_eq!(check(&padded), Ok(()));
        assert_eq!(check(b"not a v1 blob"), Ok(()));
    }

    #[test]
    fn unknown_versions_algorithms_and_truncation_are_refused() {
        assert_eq!(check(&blob(2, 2, 2)), Err(WireError::UnsupportedVersion(2)));
        assert_eq!(check(&blob(1, 9, 2)), Err(WireError::UnsupportedAlgorithm { kind: "KEM", id: 9 }));
        assert_eq!(check(&blob(1, 2, 3)), Err(WireError::UnsupportedAlgorithm { kind: "SIG", id: 3 }));
        let whole = blob(1, 2, 2);
        assert!(matches!(check(&whole[..whole.len() - 1]), Err(WireError::Malformed(_))));
        assert!(matches!(check(&whole[..20]), Err(WireError::Malformed(_))));
        assert!(matches!(check(b"PQHB\x01"), Err(WireError::Malformed(_))));
    }
}
