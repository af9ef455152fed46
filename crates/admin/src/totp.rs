//! TOTP (RFC 6238 with one algorithm: HMAC-SHA-1, 6 digits, 30 s steps — what authenticator
//! apps implement; ±1 step), secrets sealed at rest, and backup codes.
//!
//! - Secrets are 20 random bytes, shown as Base32; stored sealed with AES-256-GCM under a key
//!   from the credentials directory, the subject's id as associated data (a sealed secret copied
//!   to another account does not open).
//! - A code names a time step; the step is accepted only if it is later than the last one
//!   accepted for that subject, and the new step is stored in the same write transaction that
//!   accepts it (see `accounts::check_code`), so a code is never accepted twice.
//! - Backup codes: 10 × `XXXX-XXXX-XXXX` over a 32-symbol alphabet (60 bits), stored as argon2id
//!   hashes, shown once.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Backup codes per set.
pub const BACKUP_CODES: usize = 10;
/// Alphabet of backup codes (no 0/O, 1/I): 32 symbols, so `byte % 32` is unbiased.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Failures of this module; none is the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed")]
    Rng,
    /// A sealed secret did not open.
    #[error("sealed value does not open (wrong key, subject or corrupted)")]
    Unseal,
    /// Hashing or checking a backup code failed.
    #[error("argon2: {0}")]
    Hash(String),
}

impl From<TotpError> for jsonapi::ApiError {
    fn from(e: TotpError) -> Self {
        jsonapi::ApiError::internal("totp", &e)
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, TotpError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut()).map_err(|_| TotpError::Rng)?;
    Ok(bytes)
}

/// The sealing key for TOTP secrets and provisional backup codes.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The AES-256-GCM key derived from the TOTP key file's token (SHA-256 with a label).
    pub fn new(token: &crypto::Secret) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"paramant-admin totp sealing key v1\0");
        hasher.update(token.danger_expose().as_bytes());
        let key = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        // Invariant: a 32-byte key is always a valid AES-256 key.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref()).expect("AES-256 key length");
        Self { key: LessSafeKey::new(unbound) }
    }

    fn aad(subject: &str, purpose: &str) -> Vec<u8> {
        format!("paramant-admin|{purpose}|{subject}").into_bytes()
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`.
    pub fn seal(&self, subject: &str, purpose: &str, plaintext: &[u8]) -> Result<String, TotpError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut in_out = Zeroizing::new(plaintext.to_vec());
        let aad = Self::aad(subject, purpose);
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(&aad[..]), &mut *in_out)
            .map_err(|_| TotpError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Ok(B64.encode(out))
    }

    /// Opens what [`Sealer::seal`] made for the same subject and purpose.
    pub fn open(&self, subject: &str, purpose: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
        let raw = B64.decode(sealed).map_err(|_| TotpError::Unseal)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(TotpError::Unseal);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TotpError::Unseal)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let aad = Self::aad(subject, purpose);
        let len = self.key.open_in_place(nonce, Aad::from(&aad[..]), &mut in_out).map_err(|_| TotpError::Unseal)?.len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

/// A fresh secret: 20 random bytes as unpadded Base32 (32 characters).
pub fn new_secret() -> Result<Zeroizing<String>, TotpError> {
    let bytes = random::<20>()?;
    Ok(Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes.as_ref())))
}

/// The `otpauth://` URI authenticator apps scan (SHA1, 6 digits, 30 s — stated explicitly).
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/Paramant:{}?secret={secret_b32}&issuer=Paramant&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(account)
    )
}

/// The QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build(),
        // An otpauth URI is far below a QR code's capacity; show nothing rather than fail.
        Err(_) => String::new(),
    }
}

/// Whether `code` (6 digits) is valid for `secret_b32` at one of the steps around `now_secs`
/// (totp-rs compares the tokens); returns the step it matched.
pub fn matching_step(secret_b32: &str, code: &str, now_secs: u64) -> Option<u64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).ok()?);
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .build()
        .ok()?;
    totp.check(code, now_secs)
}

/// A fresh set of backup codes (plaintext, to be shown once).
pub fn new_backup_codes() -> Result<Vec<String>, TotpError> {
    (0..BACKUP_CODES)
        .map(|_| {
            let bytes = random::<12>()?;
            let symbols: Vec<u8> = bytes.iter().map(|b| CODE_ALPHABET[usize::from(b % 32)]).collect();
            let text = String::from_utf8_lossy(&symbols).into_owned();
            Ok(format!("{}-{}-{}", &text[0..4], &text[4..8], &text[8..12]))
        })
        .collect()
}

/// A backup code as typed, normalised: trimmed, uppercase, dashes and spaces removed, then
/// grouped again. `None` when it cannot be a code.
pub fn normalise_backup_code(typed: &str) -> Option<String> {
    let compact: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    let valid = compact.len() == 12 && compact.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then(|| format!("{}-{}-{}", &compact[0..4], &compact[4..8], &compact[8..12]))
}

/// argon2id hash (PHC string) of a backup code, with a random salt.
pub fn hash_backup_code(code: &str) -> Result<String, TotpError> {
    let salt_bytes = random::<16>()?;
    let salt = SaltString::encode_b64(salt_bytes.as_ref()).map_err(|e| TotpError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(code.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| TotpError::Hash(e.to_string()))
}

/// The index of the hash in `hashes` that `code` matches, if any (argon2 verify, ~tens of ms each).
pub fn find_backup_code(hashes: &[String], code: &str) -> Option<usize> {
    hashes.iter().position(|hash| {
        PasswordHash::new(hash)
            .is_ok_and(|parsed| argon2::Argon2::default().verify_password(code.as_bytes(), &parsed).is_ok())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890", 8-digit codes; the last six
    // digits are the 6-digit codes.
    const RFC_SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_6238_sha1_vectors_match_their_step() {
        for (time, code8) in [(59u64, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924")] {
            let code = &code8[2..];
            assert_eq!(matching_step(RFC_SECRET_B32, code, time), Some(time / STEP_SECS));
        }
    }

    #[test]
    fn a_code_is_valid_one_step_either_side_and_not_two() {
        let code = &"89005924"[2..];
        let step = 1_234_567_890 / STEP_SECS;
        assert_eq!(matching_step(RFC_SECRET_B32, code, (step + 1) * STEP_SECS), Some(step));
        assert_eq!(matching_step(RFC_SECRET_B32, code, (step - 1) * STEP_SECS), Some(step));
        assert_eq!(matching_step(RFC_SECRET_B32, code, (step + 2) * STEP_SECS), None);
        assert_eq!(matching_step(RFC_SECRET_B32, "12345", 1_234_567_890), None);
        assert_eq!(matching_step(RFC_SECRET_B32, "abcdef", 1_234_567_890), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_subject() {
        let sealer = Sealer::new(&crypto::Secret::new("ptk_test".into()));
        let sealed = sealer.seal("usr_a", "secret", b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(&sealer.open("usr_a", "secret", &sealed).unwrap()[..], b"JBSWY3DPEHPK3PXP");
        assert!(sealer.open("usr_b", "secret", &sealed).is_err());
        assert!(sealer.open("usr_a", "codes", &sealed).is_err());
        let other = Sealer::new(&crypto::Secret::new("ptk_other".into()));
        assert!(other.open("usr_a", "secret", &sealed).is_err());
    }

    #[test]
    fn backup_codes_hash_verify_and_normalise() {
        let codes = new_backup_codes().unwrap();
        assert_eq!(codes.len(), BACKUP_CODES);
        let hashes: Vec<String> = codes[..2].iter().map(|c| hash_backup_code(c).unwrap()).collect();
        assert!(hashes[0].starts_with("$argon2id$"));
        let typed = codes[1].to_lowercase().replace('-', " ");
        let normal = normalise_backup_code(&typed).unwrap();
        assert_eq!(find_backup_code(&hashes, &normal), Some(1));
        assert_eq!(find_backup_code(&hashes, &codes[2]), None);
        assert_eq!(normalise_backup_code("0000-0000-0000"), None);
    }

    #[test]
    fn the_otpauth_uri_states_sha1_and_escapes_the_account() {
        let uri = otpauth_uri("JBSWY3DPEHPK3PXP", "jane+x@example.com");
        assert!(uri.starts_with("otpauth://totp/Paramant:jane%2Bx%40example%2Ecom?secret=JBSWY3DPEHPK3PXP"));
        assert!(uri.contains("algorithm=SHA1&digits=6&period=30"));
        assert!(qr_svg(&uri).contains("<svg"));
    }
}
