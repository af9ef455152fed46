//! Signed releases end to end through the library: keygen, sign, verify; every tampering and
//! every missing half of the double signature fails; the ECDSA half is checked by OpenSSL
//! (an independent verifier of cosign's blob format: DER ECDSA-SHA256, base64, SPKI PEM key).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use release::{Error, PublicKeys, ReleaseInputs};

struct Release {
    dir: tempfile::TempDir,
    keys: PublicKeys,
}

impl Release {
    fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn manifest(&self) -> PathBuf {
        self.out().join(release::MANIFEST_FILE)
    }
    fn artifacts(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }
    fn verify(&self) -> Result<release::Manifest, Error> {
        release::verify_release(&self.keys, &self.manifest(), &self.artifacts())
    }
}

/// A signed release of two artifacts in a fresh temp directory.
fn signed_release() -> Release {
    let dir = tempfile::tempdir().unwrap();
    let keys = release::keygen(&dir.path().join("keys")).unwrap();
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    std::fs::write(artifacts.join("paramant"), b"\x7fELF pretend binary").unwrap();
    std::fs::write(artifacts.join("paramantOS_0.1.0.efi"), vec![7u8; 200_000]).unwrap();
    std::fs::write(dir.path().join("Cargo.lock"), "# lock\n").unwrap();
    std::fs::write(dir.path().join("flake.lock"), "{}\n").unwrap();
    let inputs = ReleaseInputs {
        version: "0.1.0",
        source_commit: "0123456789abcdef0123456789abcdef01234567",
        toolchain: "rustc 1.95.0 (59807616e 2026-04-14)",
        cargo_lock: &dir.path().join("Cargo.lock"),
        flake_lock: &dir.path().join("flake.lock"),
        artifacts: &[artifacts.join("paramant"), artifacts.join("paramantOS_0.1.0.efi")],
    };
    release::sign_release(&dir.path().join("keys"), &inputs, &dir.path().join("out")).unwrap();
    Release { dir, keys }
}

#[test]
fn a_signed_release_verifies_offline_with_both_keys() {
    let r = signed_release();
    let manifest = r.verify().unwrap();
    assert_eq!(manifest.version, "0.1.0");
    assert_eq!(manifest.artifacts.len(), 2);
    assert_eq!(manifest.artifacts[1].size, 200_000);
    // The public-key file on disk is the one verification uses.
    let from_file = PublicKeys::load(&r.keys_dir().join(release::PUBLIC_KEYS_FILE)).unwrap();
    assert_eq!(from_file, r.keys);
}

#[test]
fn a_tampered_manifest_fails() {
    let r = signed_release();
    let text = std::fs::read_to_string(r.manifest()).unwrap();
    std::fs::write(r.manifest(), text.replace("\"0.1.0\"", "\"0.1.1\"")).unwrap();
    assert!(matches!(r.verify(), Err(Error::EcdsaSignature(_))));
}

#[test]
fn a_tampered_artifact_fails() {
    let r = signed_release();
    let path = r.artifacts().join("paramantOS_0.1.0.efi");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = r.verify().unwrap_err();
    assert!(matches!(&err, Error::Artifact { name, .. } if name == "paramantOS_0.1.0.efi"), "{err}");
}

#[test]
fn a_missing_artifact_fails() {
    let r = signed_release();
    std::fs::remove_file(r.artifacts().join("paramant")).unwrap();
    assert!(matches!(r.verify(), Err(Error::Artifact { .. })));
}

#[test]
fn one_valid_signature_is_not_enough() {
    // Without the ML-DSA-65 signature file.
    let r = signed_release();
    std::fs::remove_file(r.out().join(release::ML_DSA_SIG_FILE)).unwrap();
    assert!(matches!(r.verify(), Err(Error::Io { .. })));
    // With an ML-DSA-65 signature of other bytes (a valid signature, wrong message).
    let r = signed_release();
    let other = signed_release();
    std::fs::copy(other.out().join(release::ML_DSA_SIG_FILE), r.out().join(release::ML_DSA_SIG_FILE)).unwrap();
    assert!(matches!(r.verify(), Err(Error::MlDsaSignature(_))));
    // Without the ECDSA signature.
    let r = signed_release();
    std::fs::write(r.out().join(release::ECDSA_SIG_FILE), "").unwrap();
    assert!(matches!(r.verify(), Err(Error::EcdsaSignature(_))));
}

#[test]
fn another_key_pair_does_not_verify() {
    let r = signed_release();
    let stranger = release::keygen(&r.dir.path().join("stranger")).unwrap();
    assert!(matches!(release::verify_release(&stranger, &r.manifest(), &r.artifacts()), Err(Error::EcdsaSignature(_))));
    // Mixing: our ECDSA key with a stranger's ML-DSA key.
    let ours = std::fs::read_to_string(r.keys_dir().join(release::ECDSA_PUB_FILE)).unwrap();
    let theirs = std::fs::read_to_string(r.dir.path().join("stranger").join(release::ML_DSA_PUB_FILE)).unwrap();
    let mixed = PublicKeys::parse(&format!("{ours}{theirs}"), Path::new("mixed")).unwrap();
    assert!(matches!(release::verify_release(&mixed, &r.manifest(), &r.artifacts()), Err(Error::MlDsaSignature(_))));
}

#[test]
fn the_public_key_file_must_hold_both_keys() {
    let r = signed_release();
    let ecdsa = std::fs::read_to_string(r.keys_dir().join(release::ECDSA_PUB_FILE)).unwrap();
    let ml_dsa = std::fs::read_to_string(r.keys_dir().join(release::ML_DSA_PUB_FILE)).unwrap();
    for text in [ecdsa.clone(), ml_dsa.clone(), format!("{ecdsa}{ecdsa}{ml_dsa}"), format!("{ecdsa}{ml_dsa}junk\n")] {
        assert!(matches!(PublicKeys::parse(&text, Path::new("keys")), Err(Error::Format { .. })), "{text}");
    }
    // Order does not matter.
    assert_eq!(PublicKeys::parse(&format!("{ml_dsa}{ecdsa}"), Path::new("keys")).unwrap(), r.keys);
}

#[test]
fn keygen_keeps_private_keys_private_and_never_overwrites() {
    let r = signed_release();
    for name in [release::ECDSA_KEY_FILE, release::ML_DSA_KEY_FILE] {
        let mode = std::fs::metadata(r.keys_dir().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let before = std::fs::read(r.keys_dir().join(release::ECDSA_KEY_FILE)).unwrap();
    assert!(matches!(release::keygen(&r.keys_dir()), Err(Error::Exists(_))));
    assert_eq!(std::fs::read(r.keys_dir().join(release::ECDSA_KEY_FILE)).unwrap(), before);
}

#[test]
fn the_ecdsa_signature_is_cosign_blob_format_as_openssl_reads_it() {
    // cosign sign-blob --key writes base64(DER ECDSA-P256-SHA256(blob)); cosign verify-blob --key
    // reads a SubjectPublicKeyInfo PEM. OpenSSL checks the same bytes independently.
    let r = signed_release();
    let sig_b64 = std::fs::read_to_string(r.out().join(release::ECDSA_SIG_FILE)).unwrap();
    let der = base64::engine::general_purpose::STANDARD.decode(sig_b64.trim()).unwrap();
    assert_eq!(der[0], 0x30, "a DER SEQUENCE (r, s)");
    let sig_path = r.dir.path().join("sig.der");
    std::fs::write(&sig_path, &der).unwrap();
    let openssl = |public_key: &Path, file: &Path| {
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_key)
            .arg("-signature")
            .arg(&sig_path)
            .arg(file)
            .output()
            .expect("openssl is needed for this test (apt-get install openssl)");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let cosign_pub = r.keys_dir().join(release::ECDSA_PUB_FILE);
    assert_eq!(openssl(&cosign_pub, &r.manifest()), (true, "Verified OK\n".to_string()));
    // The combined file served by the relay starts with the same key (cosign and OpenSSL read
    // the first PEM block).
    assert!(openssl(&r.keys_dir().join(release::PUBLIC_KEYS_FILE), &r.manifest()).0);
    // And OpenSSL refuses it for other bytes.
    std::fs::write(r.dir.path().join("other"), b"other bytes").unwrap();
    assert!(!openssl(&cosign_pub, &r.dir.path().join("other")).0);
}
