//! Wire format v1 of `paramant-sdk` 3.0.0 ("PQHB"): the byte layout, and sealing/opening a
//! payload for one receiver device.
//!
//! ```text
//! "PQHB" ‖ version (1) ‖ kem_id u16 ‖ sig_id u16 ‖ flags (0)          header, 10 bytes
//! u32 ‖ ML-KEM-768 ciphertext ‖ u32 ‖ sender ML-DSA-65 public key
//! [u32 ‖ ML-DSA-65 signature]            only when sig_id ≠ 0
//! nonce (12) ‖ u32 ‖ AES-256-GCM ciphertext+tag
//! random padding up to the block size (5 MiB by default)
//! ```
//! All integers are big-endian. The AES key is HKDF-SHA256(shared secret, salt = first 32
//! bytes of the KEM ciphertext, info = "paramant-v1-aes-key"); the AAD is the header followed
//! by a u32 chunk index (0). The signature is ML-DSA-65 over SHA-256(AAD ‖ KEM ciphertext ‖
//! sender key ‖ nonce ‖ ciphertext). The blob's address on the relay is the SHA-256 of the
//! padded bytes.

use crypto::pipe::{self, DeviceKeys, NONCE_LEN};
use sha2::{Digest, Sha256};
use sha3::Sha3_256;
use zeroize::Zeroizing;

use crate::Error;

/// The magic at the start of every v1 blob.
pub const MAGIC: &[u8; 4] = b"PQHB";
/// The only wire version.
pub const VERSION: u8 = 1;
/// KEM id of ML-KEM-768.
pub const KEM_ML_KEM_768: u16 = 0x0002;
/// Signature id of an anonymous sender.
pub const SIG_NONE: u16 = 0x0000;
/// Signature id of ML-DSA-65.
pub const SIG_ML_DSA_65: u16 = 0x0002;
/// The SDK's default (and largest) padding block: 5 MiB.
pub const DEFAULT_BLOCK: usize = 5 * 1024 * 1024;
const HEADER_LEN: usize = 10;

/// The SDK's padding block sizes by name (`--pad-block`).
pub const BLOCKS: [(&str, usize); 4] =
    [("4k", 4 * 1024), ("64k", 64 * 1024), ("512k", 512 * 1024), ("5m", DEFAULT_BLOCK)];

/// A parsed v1 blob, borrowing from the padded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a> {
    /// KEM algorithm id.
    pub kem_id: u16,
    /// Signature algorithm id (0 = anonymous).
    pub sig_id: u16,
    /// The KEM ciphertext.
    pub ct_kem: &'a [u8],
    /// The sender's ML-DSA-65 public key (empty when anonymous).
    pub sender_pub: &'a [u8],
    /// The sender's signature, when `sig_id` ≠ 0.
    pub signature: Option<&'a [u8]>,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The AES-GCM ciphertext and tag.
    pub ciphertext: &'a [u8],
}

/// The 14-byte AES-GCM associated data: header ‖ u32 chunk index (always 0 in v1).
#[must_use]
pub fn aad(kem_id: u16, sig_id: u16) -> [u8; 14] {
    let mut out = [0u8; 14];
    out[..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5..7].copy_from_slice(&kem_id.to_be_bytes());
    out[7..9].copy_from_slice(&sig_id.to_be_bytes());
    out
}

/// What the sender signs: SHA-256 over AAD ‖ KEM ciphertext ‖ sender key ‖ nonce ‖ ciphertext.
#[must_use]
pub fn sign_input(blob: &Blob<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(aad(blob.kem_id, blob.sig_id));
    h.update(blob.ct_kem);
    h.update(blob.sender_pub);
    h.update(blob.nonce);
    h.update(blob.ciphertext);
    h.finalize().into()
}

impl Blob<'_> {
    /// The unpadded encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_LEN + 32 + self.ct_kem.len() + self.sender_pub.len() + self.ciphertext.len() + 4000,
        );
        out.extend_from_slice(&aad(self.kem_id, self.sig_id)[..HEADER_LEN]);
        put_field(&mut out, self.ct_kem);
        put_field(&mut out, self.sender_pub);
        if let Some(signature) = self.signature {
            put_field(&mut out, signature);
        }
        out.extend_from_slice(&self.nonce);
        put_field(&mut out, self.ciphertext);
        out
    }
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("fields are under 4 GiB").to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Parses a (padded) v1 blob; trailing bytes after the ciphertext are padding.
///
/// # Errors
/// [`Error::Blob`] naming what is wrong: not v1, another version, flags set, truncated.
pub fn decode(bytes: &[u8]) -> Result<Blob<'_>, Error> {
    let bad = |what: &str| Error::Blob(what.to_owned());
    if !bytes.starts_with(MAGIC) {
        return Err(bad("not wire format v1 (no PQHB magic)"));
    }
    let header = bytes.get(..HEADER_LEN).ok_or_else(|| bad("truncated header"))?;
    if header[4] != VERSION {
        return Err(Error::Blob(format!("wire version {} is not supported (only 1)", header[4])));
    }
    if header[9] != 0 {
        return Err(Error::Blob(format!("flags 0x{:02x} are not supported", header[9])));
    }
    let kem_id = u16::from_be_bytes([header[5], header[6]]);
    let sig_id = u16::from_be_bytes([header[7], header[8]]);
    let mut rest = &bytes[HEADER_LEN..];
    let ct_kem = take_field(&mut rest, "KEM ciphertext")?;
    let sender_pub = take_field(&mut rest, "sender key")?;
    let signature = if sig_id == SIG_NONE { None } else { Some(take_field(&mut rest, "signature")?) };
    let (nonce, tail) = rest.split_first_chunk::<NONCE_LEN>().ok_or_else(|| bad("truncated at nonce"))?;
    rest = tail;
    let ciphertext = take_field(&mut rest, "ciphertext")?;
    Ok(Blob { kem_id, sig_id, ct_kem, sender_pub, signature, nonce: *nonce, ciphertext })
}

fn take_field<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], Error> {
    let truncated = || Error::Blob(format!("truncated at {what}"));
    let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let len = u32::from_be_bytes(*len) as usize;
    let field = tail.get(..len).ok_or_else(truncated)?;
    *rest = &tail[len..];
    Ok(field)
}

/// The AES key of a blob: HKDF-SHA256 over the shared secret (‖ SHA3-256 of the optional
/// pre-shared secret), salted with the KEM ciphertext's first 32 bytes.
fn payload_key(shared: &[u8; 32], ct_kem: &[u8], pre_shared_secret: Option<&str>) -> Zeroizing<[u8; 32]> {
    let salt = &ct_kem[..ct_kem.len().min(32)];
    match pre_shared_secret.filter(|s| !s.is_empty()) {
        None => pipe::hkdf_sha256(shared, salt, b"paramant-v1-aes-key"),
        Some(secret) => {
            let mut ikm = Zeroizing::new(shared.to_vec());
            ikm.extend_from_slice(&Sha3_256::digest(secret.as_bytes()));
            pipe::hkdf_sha256(&ikm, salt, b"paramant-v1-aes-key-pss")
        }
    }
}

/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// Bytes a blob adds to its plaintext: header, length fields, KEM ciphertext, the sender's key
/// and signature (when signed), nonce and tag.
#[must_use]
pub const fn overhead(signed: bool) -> usize {
    let sender = if signed { crypto::ML_DSA_65_PUBLIC_KEY_LEN + 4 + crypto::ML_DSA_65_SIGNATURE_LEN } else { 0 };
    HEADER_LEN + 4 + pipe::ML_KEM_768_CIPHERTEXT_LEN + 4 + sender + NONCE_LEN + 4 + TAG_LEN
}

/// The most plaintext one blob padded to `block` holds (v1 is one AES-GCM message per blob).
#[must_use]
pub const fn max_plaintext(block: usize, signed: bool) -> usize {
    block.saturating_sub(overhead(signed))
}

/// Encrypts `data` to the receiver's ML-KEM-768 key, signed by `sender` (anonymous when
/// `None`), padded with random bytes to `block` bytes. Returns the padded blob.
///
/// # Errors
/// The receiver's key is invalid, the blob does not fit in `block`, or the RNG failed.
pub fn seal(
    data: &[u8],
    receiver_kem_pub: &[u8],
    sender: Option<&DeviceKeys>,
    block: usize,
    pre_shared_secret: Option<&str>,
) -> Result<Vec<u8>, Error> {
    seal_from(&mut &data[..], data.len(), receiver_kem_pub, sender, block, pre_shared_secret)
}

/// As [`seal`], reading exactly `len` bytes of plaintext from `input` straight into the blob's
/// buffer and encrypting them there: the blob is the only copy held (a large file is never in
/// memory twice). The size is checked before anything is read.
///
/// # Errors
/// As [`seal`]; [`Error::Io`] when `input` ends early.
pub fn seal_from(
    input: &mut dyn std::io::Read,
    len: usize,
    receiver_kem_pub: &[u8],
    sender: Option<&DeviceKeys>,
    block: usize,
    pre_shared_secret: Option<&str>,
) -> Result<Vec<u8>, Error> {
    if len > max_plaintext(block, sender.is_some()) {
        return Err(Error::TooLarge { plaintext: len, encoded: len + overhead(sender.is_some()), block });
    }
    let (ct_kem, shared) = pipe::encapsulate(receiver_kem_pub)?;
    let key = payload_key(&shared, &ct_kem, pre_shared_secret);
    let sig_id = if sender.is_some() { SIG_ML_DSA_65 } else { SIG_NONE };
    let nonce = *pipe::random_bytes::<NONCE_LEN>()?;
    let sender_pub = sender.map(|s| s.signing_public_key().to_bytes()).unwrap_or_default();
    let mut out = Vec::with_capacity(block);
    out.extend_from_slice(&aad(KEM_ML_KEM_768, sig_id)[..HEADER_LEN]);
    put_field(&mut out, &ct_kem);
    put_field(&mut out, &sender_pub);
    // The signature covers the ciphertext, so its (fixed-length) place is filled in last.
    let signature_at = sender.map(|_| {
        put_field(&mut out, &[0u8; crypto::ML_DSA_65_SIGNATURE_LEN]);
        out.len() - crypto::ML_DSA_65_SIGNATURE_LEN
    });
    out.extend_from_slice(&nonce);
    let sealed_len =
        u32::try_from(len + TAG_LEN).map_err(|_| Error::TooLarge { plaintext: len, encoded: len, block })?;
    out.extend_from_slice(&sealed_len.to_be_bytes());
    let start = out.len();
    out.resize(start + len, 0);
    input.read_exact(&mut out[start..]).map_err(|e| Error::Io(format!("reading the data to send: {e}")))?;
    let tag = pipe::aes256gcm_seal_in_place(&key, &nonce, &aad(KEM_ML_KEM_768, sig_id), &mut out[start..]);
    out.extend_from_slice(&tag);
    if let (Some(sender), Some(at)) = (sender, signature_at) {
        let digest = sign_input(&Blob {
            kem_id: KEM_ML_KEM_768,
            sig_id,
            ct_kem: &ct_kem,
            sender_pub: &sender_pub,
            signature: None,
            nonce,
            ciphertext: &out[start..],
        });
        let signature = sender.sign(&digest);
        out.get_mut(at..at + signature.len())
            .filter(|_| signature.len() == crypto::ML_DSA_65_SIGNATURE_LEN)
            .ok_or_else(|| Error::Invalid("ML-DSA-65 signature of unexpected length".into()))?
            .copy_from_slice(&signature);
    }
    let end = out.len();
    out.resize(block, 0);
    pipe::fill_random(&mut out[end..])?;
    Ok(out)
}

/// Who sent an opened blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// No signature (`sig_id` 0).
    Anonymous,
    /// A valid ML-DSA-65 signature by this key; the SHA3-256 of the key, hex.
    Signed {
        /// SHA3-256 of the sender's ML-DSA-65 public key, 64 hex.
        key_hash: String,
    },
}

/// Decrypts a blob sent to `keys`. A signed blob must carry a valid signature by the key it
/// names (the published SDK does not check this; we refuse a forged or altered blob).
///
/// # Errors
/// Not a v1 blob, an unsupported algorithm, an invalid signature, or decryption failure.
pub fn open(
    padded: &[u8],
    keys: &DeviceKeys,
    pre_shared_secret: Option<&str>,
) -> Result<(Zeroizing<Vec<u8>>, Sender), Error> {
    open_owned(padded.to_vec(), keys, pre_shared_secret)
}

/// As [`open`], decrypting inside the downloaded buffer, which becomes the plaintext: a large
/// blob is never held twice.
///
/// # Errors
/// As [`open`].
pub fn open_owned(
    mut padded: Vec<u8>,
    keys: &DeviceKeys,
    pre_shared_secret: Option<&str>,
) -> Result<(Zeroizing<Vec<u8>>, Sender), Error> {
    let (key, aad, nonce, start, end, sender) = {
        let blob = decode(&padded)?;
        if blob.kem_id != KEM_ML_KEM_768 {
            return Err(Error::Blob(format!("KEM id 0x{:04x} is not ML-KEM-768", blob.kem_id)));
        }
        let sender = match (blob.sig_id, blob.signature) {
            (SIG_NONE, _) => Sender::Anonymous,
            (SIG_ML_DSA_65, Some(signature)) => {
                let key = crypto::LogVerifyingKey::from_bytes(blob.sender_pub)
                    .map_err(|e| Error::Invalid(format!("sender key: {e}")))?;
                key.verify(&sign_input(&blob), signature)
                    .map_err(|_| Error::Invalid("the sender's ML-DSA-65 signature does not verify".into()))?;
                Sender::Signed { key_hash: hex::encode(key.pk_hash()) }
            }
            (other, _) => return Err(Error::Blob(format!("signature id 0x{other:04x} is not supported"))),
        };
        let shared = keys.decapsulate(blob.ct_kem)?;
        let key = payload_key(&shared, blob.ct_kem, pre_shared_secret);
        // Where the ciphertext sits in `padded` (decode borrows it from there).
        let start = blob.ciphertext.as_ptr() as usize - padded.as_ptr() as usize;
        (key, aad(blob.kem_id, blob.sig_id), blob.nonce, start, start + blob.ciphertext.len(), sender)
    };
    let tag_at = end.checked_sub(TAG_LEN).filter(|&t| t >= start).ok_or(crypto::pipe::PipeError::Decrypt)?;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&padded[tag_at..end]);
    pipe::aes256gcm_open_in_place(&key, &nonce, &aad, &mut padded[start..tag_at], &tag)?;
    padded.truncate(tag_at);
    padded.drain(..start);
    Ok((Zeroizing::new(padded), sender))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_then_open_round_trips_signed_and_anonymous() {
        let receiver = DeviceKeys::generate().unwrap();
        let sender = DeviceKeys::generate().unwrap();
        let blob = seal(b"hello", &receiver.kem_public_key(), Some(&sender), 8192, None).unwrap();
        assert_eq!(blob.len(), 8192);
        let (data, who) = open(&blob, &receiver, None).unwrap();
        assert_eq!(&data[..], b"hello");
        assert_eq!(who, Sender::Signed { key_hash: hex::encode(sender.signing_public_key().pk_hash()) });
        let anon = seal(b"x", &receiver.kem_public_key(), None, 4096, Some("pss")).unwrap();
        assert_eq!(open(&anon, &receiver, Some("pss")).unwrap().1, Sender::Anonymous);
        assert!(open(&anon, &receiver, None).is_err(), "the pre-shared secret is part of the key");
    }

    #[test]
    fn altered_blobs_and_foreign_keys_are_refused() {
        let receiver = DeviceKeys::generate().unwrap();
        let sender = DeviceKeys::generate().unwrap();
        let blob = seal(b"hello", &receiver.kem_public_key(), Some(&sender), 8192, None).unwrap();
        let parsed = decode(&blob).unwrap();
        let ct_at = blob.len() - (blob.len() - parsed.encode().len()) - 1;
        for at in [12, 1100, ct_at] {
            let mut bad = blob.clone();
            bad[at] ^= 1;
            assert!(open(&bad, &receiver, None).is_err(), "flip at {at}");
        }
        let other = DeviceKeys::generate().unwrap();
        assert!(open(&blob, &other, None).is_err());
        assert!(seal(&[0u8; 5000], &receiver.kem_public_key(), None, 4096, None).is_err());
        assert!(decode(b"PQHB\x02\x00\x02\x00\x02\x00").is_err());
    }

    #[test]
    fn the_largest_payload_fills_the_block_exactly_and_one_more_byte_is_refused() {
        let receiver = DeviceKeys::generate().unwrap();
        let sender = DeviceKeys::generate().unwrap();
        for signer in [Some(&sender), None] {
            let max = max_plaintext(64 * 1024, signer.is_some());
            let data = vec![7u8; max];
            let blob = seal(&data, &receiver.kem_public_key(), signer, 64 * 1024, None).unwrap();
            assert_eq!(decode(&blob).unwrap().encode().len(), 64 * 1024, "no padding left");
            assert_eq!(&open(&blob, &receiver, None).unwrap().0[..], &data[..]);
            let over = seal(&vec![7u8; max + 1], &receiver.kem_public_key(), signer, 64 * 1024, None);
            assert!(matches!(over, Err(Error::TooLarge { .. })));
        }
        assert_eq!((overhead(true), overhead(false)), (6403, 1138));
    }
}
