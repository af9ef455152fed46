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

/// The sender signature a v1 blob carries: the SDK signs, with ML-DSA-65 (empty context),
/// `SHA-256(header ‖ u32 chunk index 0 ‖ ct_kem ‖ sender_pub ‖ nonce ‖ ciphertext)` — the AAD
/// and every field of the blob except the signature and the padding after it.
pub struct SenderSignature<'a> {
    /// The sender's ML-DSA-65 public key, as the blob states it.
    pub sender_pub: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
    /// The signed message.
    pub signed_digest: [u8; 32],
}

/// Whether a payload is a v1 blob whose header claims a sender signature (a cheap look at the
/// header; [`sender_signature`] parses the rest).
pub fn claims_signature(payload: &[u8]) -> bool {
    payload.starts_with(MAGIC) && payload.len() >= HEADER_LEN && u16::from_be_bytes([payload[7], payload[8]]) != 0
}

/// The sender signature of a well-formed v1 blob (see [`check`]) that claims one; `None` for
/// unsigned (`sig` id 0) and non-v1 payloads.
pub fn sender_signature(payload: &[u8]) -> Option<SenderSignature<'_>> {
    use sha2::{Digest, Sha256};
    let header = payload.strip_prefix(MAGIC.as_slice()).and(payload.get(..HEADER_LEN))?;
    if u16::from_be_bytes([header[7], header[8]]) == 0 {
        return None;
    }
    let (ct_kem, rest) = field(&payload[HEADER_LEN..])?;
    let (sender_pub, rest) = field(rest)?;
    let (signature, rest) = field(rest)?;
    let nonce = rest.get(..NONCE_LEN)?;
    let (ciphertext, _padding) = field(&rest[NONCE_LEN..])?;
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(0u32.to_be_bytes());
    hasher.update(ct_kem);
    hasher.update(sender_pub);
    hasher.update(nonce);
    hasher.update(ciphertext);
    Some(SenderSignature { sender_pub, signature, signed_digest: hasher.finalize().into() })
}

/// Splits a `u32 big-endian length ‖ bytes` field off.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
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

    #[test]
    fn the_signed_message_covers_every_field_but_the_signature_and_padding() {
        let blob = blob(1, 2, 2);
        let signed = sender_signature(&blob).expect("signed blob");
        assert_eq!((signed.sender_pub.len(), signed.signature.len()), (1952, 3309));
        let mut padded = blob.clone();
        padded.extend([1u8; 100]);
        assert_eq!(sender_signature(&padded).unwrap().signed_digest, signed.signed_digest);
        let mut changed = blob.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_ne!(sender_signature(&changed).unwrap().signed_digest, signed.signed_digest);
        assert!(sender_signature(&super::tests::blob(1, 2, 0)).is_none(), "unsigned");
        assert!(sender_signature(b"plain bytes").is_none());
    }
}
