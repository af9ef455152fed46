//! Anonymous drops of `paramant-sdk` 3.0.0: 16 random bytes shown as a 12-word BIP39 mnemonic
//! are the only secret. HKDF-SHA256 (salt "paramant-drop-v1") derives the AES key (info
//! "aes-key") and a lookup id (info "lookup-id"), whose SHA-256 in hex is the blob's address.
//! The packet is nonce (12) ‖ u32 length ‖ AES-256-GCM ciphertext (no AAD), padded with random
//! bytes to the block size.

use crypto::pipe::{self, NONCE_LEN};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// The keys a mnemonic stands for.
pub struct DropKeys {
    aes_key: Zeroizing<[u8; 32]>,
    /// The blob's address on the relay: SHA-256 hex of the lookup id.
    pub lookup_hash: String,
}

fn derive(entropy: &[u8]) -> DropKeys {
    let aes_key = pipe::hkdf_sha256(entropy, b"paramant-drop-v1", b"aes-key");
    let id = pipe::hkdf_sha256(entropy, b"paramant-drop-v1", b"lookup-id");
    DropKeys { aes_key, lookup_hash: hex::encode(Sha256::digest(id.as_ref())) }
}

/// Bytes a drop packet adds to its plaintext: nonce, length, tag.
pub const OVERHEAD: usize = NONCE_LEN + 4 + 16;

/// A fresh mnemonic, its keys, and the padded packet holding `data`.
///
/// # Errors
/// The packet does not fit in `block`, or the RNG failed.
pub fn seal(data: &[u8], block: usize) -> Result<(Zeroizing<String>, DropKeys, Vec<u8>), Error> {
    seal_from(&mut &data[..], data.len(), block)
}

/// As [`seal`], reading exactly `len` bytes from `input` straight into the packet and encrypting
/// them there (the packet is the only copy held). The size is checked before anything is read.
///
/// # Errors
/// As [`seal`]; [`Error::Io`] when `input` ends early.
pub fn seal_from(
    input: &mut dyn std::io::Read,
    len: usize,
    block: usize,
) -> Result<(Zeroizing<String>, DropKeys, Vec<u8>), Error> {
    if len + OVERHEAD > block {
        return Err(Error::TooLarge { plaintext: len, encoded: len + OVERHEAD, block });
    }
    let entropy = pipe::random_bytes::<16>()?;
    let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_ref()).map_err(|e| Error::Invalid(e.to_string()))?;
    let phrase = Zeroizing::new(mnemonic.to_string());
    let keys = derive(entropy.as_ref());
    let nonce = *pipe::random_bytes::<NONCE_LEN>()?;
    let mut packet = Vec::with_capacity(block);
    packet.extend_from_slice(&nonce);
    let sealed_len = u32::try_from(len + 16).map_err(|_| Error::TooLarge { plaintext: len, encoded: len, block })?;
    packet.extend_from_slice(&sealed_len.to_be_bytes());
    let start = packet.len();
    packet.resize(start + len, 0);
    input.read_exact(&mut packet[start..]).map_err(|e| Error::Io(format!("reading the data to drop: {e}")))?;
    let tag = pipe::aes256gcm_seal_in_place(&keys.aes_key, &nonce, b"", &mut packet[start..]);
    packet.extend_from_slice(&tag);
    let end = packet.len();
    packet.resize(block, 0);
    pipe::fill_random(&mut packet[end..])?;
    Ok((phrase, keys, packet))
}

/// The keys of a mnemonic (whitespace is normalised; the BIP39 checksum must hold).
///
/// # Errors
/// [`Error::Invalid`] when the words are not a valid English BIP39 mnemonic.
pub fn keys_of(phrase: &str) -> Result<DropKeys, Error> {
    let normalised = phrase.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
    let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalised)
        .map_err(|e| Error::Invalid(format!("not a valid BIP39 mnemonic: {e}")))?;
    let entropy = Zeroizing::new(mnemonic.to_entropy());
    Ok(derive(&entropy))
}

/// Decrypts a drop packet.
///
/// # Errors
/// A truncated packet or a failed decryption.
pub fn open(keys: &DropKeys, packet: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_owned(keys, packet.to_vec())
}

/// As [`open`], decrypting inside the downloaded buffer (never held twice).
///
/// # Errors
/// A truncated packet or a failed decryption.
pub fn open_owned(keys: &DropKeys, mut packet: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let truncated = || Error::Blob("drop packet truncated".into());
    let (nonce, rest) = packet.split_first_chunk::<NONCE_LEN>().ok_or_else(truncated)?;
    let nonce = *nonce;
    let (len, _) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let start = NONCE_LEN + 4;
    let end = start + u32::from_be_bytes(*len) as usize;
    let tag_at = end.checked_sub(16).filter(|&t| t >= start && end <= packet.len()).ok_or_else(truncated)?;
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&packet[tag_at..end]);
    pipe::aes256gcm_open_in_place(&keys.aes_key, &nonce, b"", &mut packet[start..tag_at], &tag)?;
    packet.truncate(tag_at);
    packet.drain(..start);
    Ok(Zeroizing::new(packet))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_drop_opens_with_its_mnemonic_only() {
        let (phrase, keys, packet) = seal(b"drop me", 4096).unwrap();
        assert_eq!(phrase.split(' ').count(), 12);
        let again = keys_of(&format!("  {}  ", phrase.to_uppercase())).unwrap();
        assert_eq!(again.lookup_hash, keys.lookup_hash);
        assert_eq!(&open(&again, &packet).unwrap()[..], b"drop me");
        let (other, _, _) = seal(b"", 4096).unwrap();
        assert!(open(&keys_of(&other).unwrap(), &packet).is_err());
        assert!(keys_of("abandon abandon abandon").is_err());
    }
}
