//! PEM (RFC 7468) encoding and strict decoding, and the two SubjectPublicKeyInfo layouts the
//! release keys use (fixed prefixes: both keys have a fixed length).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// SPKI of an uncompressed P-256 point: id-ecPublicKey, prime256v1, BIT STRING of 65 bytes.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The length of an uncompressed P-256 point (0x04 ‖ X ‖ Y).
pub const P256_POINT_LEN: usize = 65;
/// SPKI of ML-DSA-65 (FIPS 204; OID 2.16.840.1.101.3.4.3.18, no parameters), BIT STRING of 1952 bytes.
const ML_DSA_65_SPKI_PREFIX: [u8; 22] = [
    0x30, 0x82, 0x07, 0xb2, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12, 0x03, 0x82,
    0x07, 0xa1, 0x00,
];

/// The key types a release public-key file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    MlDsa65,
}

/// Wraps `der` in `-----BEGIN label-----` lines of 64 base64 characters.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block of `text` as (label, DER); anything outside blocks but blank lines and `#`
/// comments is an error, as is a block without its END line.
pub fn decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let label = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            .ok_or_else(|| format!("unexpected line outside a PEM block: {:.40}", line))?;
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                Some(l) if l == end => break,
                Some(l) => body.push_str(l.trim()),
                None => return Err(format!("PEM block {label} has no END line")),
            }
        }
        let der = STANDARD.decode(body).map_err(|e| format!("PEM block {label}: {e}"))?;
        blocks.push((label.to_string(), der));
    }
    Ok(blocks)
}

/// The SPKI DER of a key of `kind` with raw public key bytes `raw`.
pub fn spki(kind: KeyKind, raw: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match kind {
        KeyKind::EcdsaP256 => &P256_SPKI_PREFIX,
        KeyKind::MlDsa65 => &ML_DSA_65_SPKI_PREFIX,
    };
    [prefix, raw].concat()
}

/// The key type and raw public key of an SPKI DER, when it is one of the two release key types.
pub fn parse_spki(der: &[u8]) -> Option<(KeyKind, &[u8])> {
    if let Some(raw) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        return (raw.len() == P256_POINT_LEN && raw[0] == 0x04).then_some((KeyKind::EcdsaP256, raw));
    }
    let raw = der.strip_prefix(&ML_DSA_65_SPKI_PREFIX[..])?;
    (raw.len() == crypto::ML_DSA_65_PUBLIC_KEY_LEN).then_some((KeyKind::MlDsa65, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_rejects_stray_text() {
        let der: Vec<u8> = (0..=255u8).collect();
        let text = encode("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_all(&format!("# comment\n\n{text}")).unwrap(), vec![("PUBLIC KEY".to_string(), der)]);
        assert!(decode_all(&format!("garbage\n{text}")).is_err());
        assert!(decode_all(text.trim_end().trim_end_matches("-----END PUBLIC KEY-----")).is_err());
    }

    #[test]
    fn spki_prefixes_encode_their_lengths() {
        // DER lengths inside the fixed prefixes must match the key sizes they are used with.
        let p256 = spki(KeyKind::EcdsaP256, &[4; P256_POINT_LEN]);
        assert_eq!(p256.len(), 2 + 0x59);
        let ml = spki(KeyKind::MlDsa65, &[0; crypto::ML_DSA_65_PUBLIC_KEY_LEN]);
        assert_eq!(ml.len(), 4 + 0x07b2);
        assert_eq!(parse_spki(&ml).map(|(k, _)| k), Some(KeyKind::MlDsa65));
        assert_eq!(parse_spki(&p256[..p256.len() - 1]), None);
    }
}
