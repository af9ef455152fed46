//! The release keys: generation into a key directory, loading the private keys to sign, and the
//! public-key file (both keys, SPKI PEM) that verification requires.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use crypto::{KeyFile, KeyOrigin, LogSigningKey, LogVerifyingKey};
use zeroize::Zeroizing;

use crate::pem::{self, KeyKind};
use crate::{ECDSA_KEY_FILE, ECDSA_PUB_FILE, Error, ML_DSA_KEY_FILE, ML_DSA_PUB_FILE, PUBLIC_KEYS_FILE};

/// The two private release keys. Hidden from `Debug` (neither key type prints its secret).
pub struct SigningKeys {
    ecdsa: EcdsaKeyPair,
    ml_dsa: LogSigningKey,
}

/// The two public release keys; a release verifies only when both signatures do.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKeys {
    /// Uncompressed P-256 point.
    ecdsa: Vec<u8>,
    ml_dsa: LogVerifyingKey,
}

/// Creates a key directory: both private keys (mode 0600, never overwritten) and the public
/// key files. Returns the public keys.
///
/// # Errors
/// [`Error::Exists`] when any of the files is there already, [`Error::Io`], [`Error::Rng`].
pub fn keygen(dir: &Path) -> Result<PublicKeys, Error> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(Error::io(dir))?;
    for name in [ECDSA_KEY_FILE, ML_DSA_KEY_FILE, ECDSA_PUB_FILE, ML_DSA_PUB_FILE, PUBLIC_KEYS_FILE] {
        if dir.join(name).exists() {
            return Err(Error::Exists(dir.join(name)));
        }
    }
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).map_err(|_| Error::Rng)?;
    let pem = Zeroizing::new(pem::encode("PRIVATE KEY", pkcs8.as_ref()));
    write_new(&dir.join(ECDSA_KEY_FILE), pem.as_bytes(), 0o600)?;
    let ml_path = dir.join(ML_DSA_KEY_FILE);
    match LogSigningKey::load_or_generate(&ml_path) {
        Ok((_, KeyOrigin::Generated)) => {}
        Ok((_, KeyOrigin::Loaded)) => return Err(Error::Exists(ml_path)),
        Err(e) => return Err(Error::format(ml_path, e.to_string())),
    }
    let public = SigningKeys::load(dir)?.public_keys();
    write_new(&dir.join(ECDSA_PUB_FILE), public.ecdsa_pem().as_bytes(), 0o644)?;
    write_new(&dir.join(ML_DSA_PUB_FILE), public.ml_dsa_pem().as_bytes(), 0o644)?;
    write_new(&dir.join(PUBLIC_KEYS_FILE), public.to_pem().as_bytes(), 0o644)?;
    Ok(public)
}

/// Writes a file that must not exist yet, with `mode`, and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists { Error::Exists(path.into()) } else { Error::io(path)(e) }
    })?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(Error::io(path))
}

fn read(path: &Path) -> Result<Zeroizing<String>, Error> {
    std::fs::read_to_string(path).map(Zeroizing::new).map_err(Error::io(path))
}

impl SigningKeys {
    /// Loads both private keys from a key directory made by [`keygen`].
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] naming the file.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let ecdsa_path = dir.join(ECDSA_KEY_FILE);
        let blocks = pem::decode_all(&read(&ecdsa_path)?).map_err(|e| Error::format(&ecdsa_path, e))?;
        let der = match blocks.as_slice() {
            [(label, der)] if label == "PRIVATE KEY" => Zeroizing::new(der.clone()),
            _ => return Err(Error::format(&ecdsa_path, "expected one PKCS#8 PRIVATE KEY block")),
        };
        let ecdsa = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
            .map_err(|e| Error::format(&ecdsa_path, format!("not an ECDSA P-256 PKCS#8 key: {e}")))?;
        let ml_path = dir.join(ML_DSA_KEY_FILE);
        let ml_dsa = LogSigningKey::load(&ml_path).map_err(|e| Error::format(&ml_path, e.to_string()))?;
        Ok(SigningKeys { ecdsa, ml_dsa })
    }

    /// The matching public keys.
    pub fn public_keys(&self) -> PublicKeys {
        PublicKeys { ecdsa: self.ecdsa.public_key().as_ref().to_vec(), ml_dsa: self.ml_dsa.verifying_key() }
    }

    /// ECDSA P-256 over SHA-256 of `message`, DER encoded (what cosign's blob signatures hold).
    ///
    /// # Errors
    /// [`Error::Rng`] when the nonce cannot be drawn.
    pub fn sign_ecdsa(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature = self.ecdsa.sign(&SystemRandom::new(), message).map_err(|_| Error::Rng)?;
        Ok(signature.as_ref().to_vec())
    }

    /// ML-DSA-65 (pure, empty context, deterministic) over `message`.
    pub fn sign_ml_dsa(&self, message: &[u8]) -> Vec<u8> {
        self.ml_dsa.sign(message)
    }
}

impl PublicKeys {
    /// Reads a public-key file: exactly one P-256 and one ML-DSA-65 `PUBLIC KEY` block (SPKI),
    /// in any order; `#` comment lines are allowed, anything else is an error.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::parse(&read(path)?, path)
    }

    /// [`PublicKeys::load`] on text already read; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Format`].
    pub fn parse(text: &str, origin: &Path) -> Result<Self, Error> {
        let bad = |reason: &str| Error::format(origin, reason.to_string());
        let (mut ecdsa, mut ml_dsa) = (None, None);
        for (label, der) in pem::decode_all(text).map_err(|e| bad(&e))? {
            if label != "PUBLIC KEY" {
                return Err(bad(&format!("unexpected PEM block {label}")));
            }
            match pem::parse_spki(&der) {
                Some((KeyKind::EcdsaP256, raw)) if ecdsa.is_none() => ecdsa = Some(raw.to_vec()),
                Some((KeyKind::MlDsa65, raw)) if ml_dsa.is_none() => {
                    ml_dsa = Some(LogVerifyingKey::from_bytes(raw).map_err(|e| bad(&e.to_string()))?);
                }
                Some(_) => return Err(bad("holds two keys of one type")),
                None => return Err(bad("holds a key that is neither ECDSA P-256 nor ML-DSA-65")),
            }
        }
        match (ecdsa, ml_dsa) {
            (Some(ecdsa), Some(ml_dsa)) => Ok(PublicKeys { ecdsa, ml_dsa }),
            _ => Err(bad("needs both the ECDSA P-256 and the ML-DSA-65 public key")),
        }
    }

    /// The public-key file: both keys, the cosign-compatible P-256 key first.
    pub fn to_pem(&self) -> String {
        format!(
            "# paramant release public keys: ECDSA P-256 (cosign verify-blob --key) and ML-DSA-65.\n\
             # A release is genuine only when its manifest carries valid signatures by both.\n{}{}",
            self.ecdsa_pem(),
            self.ml_dsa_pem()
        )
    }

    fn ecdsa_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &pem::spki(KeyKind::EcdsaP256, &self.ecdsa))
    }

    fn ml_dsa_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &pem::spki(KeyKind::MlDsa65, &self.ml_dsa.to_bytes()))
    }

    /// Whether `signature` (DER) is a valid ECDSA P-256 / SHA-256 signature of `message`.
    pub fn ecdsa_verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.ecdsa).verify(message, signature).is_ok()
    }

    /// Whether `signature` is a valid ML-DSA-65 signature of `message`.
    pub fn ml_dsa_verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.ml_dsa.verify(message, signature).is_ok()
    }
}
