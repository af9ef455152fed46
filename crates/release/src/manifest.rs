//! The release manifest, signing a release directory, and verifying one: both signatures over
//! the exact manifest bytes first, then the manifest's content, then every artifact's SHA-256.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{PublicKeys, SigningKeys};
use crate::{ECDSA_SIG_FILE, Error, MANIFEST_FILE, ML_DSA_SIG_FILE};

/// The manifest's `format`: changes when its meaning does.
pub const FORMAT: &str = "paramant-release/1";

/// What a release is: signed as the bytes of `manifest.json` (pretty JSON, fields in this order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The release version, e.g. "0.1.0".
    pub version: String,
    /// The git commit the release was built from (40 or 64 hex digits).
    pub source_commit: String,
    /// The compiler that built it (`rustc -V`).
    pub toolchain: String,
    /// SHA-256 of `Cargo.lock` (the Rust dependency graph).
    pub cargo_lock_sha256: String,
    /// SHA-256 of `flake.lock` (the pinned nixpkgs of the image).
    pub flake_lock_sha256: String,
    /// The files of the release, by name (no directories), each with its SHA-256 and size.
    pub artifacts: Vec<Artifact>,
}

/// One file of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// File name in the release directory.
    pub name: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// What `sign_release` is told about the release it signs.
pub struct ReleaseInputs<'a> {
    /// The release's version (`0.1.0`).
    pub version: &'a str,
    /// The git commit the release was built from.
    pub source_commit: &'a str,
    /// The Rust toolchain that built it (`rustc --version`).
    pub toolchain: &'a str,
    /// The `Cargo.lock` to record (its SHA-256 goes into the manifest).
    pub cargo_lock: &'a Path,
    /// The `flake.lock` to record (its SHA-256 goes into the manifest).
    pub flake_lock: &'a Path,
    /// The artifacts; each is named by its file name in the manifest.
    pub artifacts: &'a [PathBuf],
}

fn is_hex(s: &str, lens: &[usize]) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

impl Manifest {
    /// Checks the content: format, hex fields, artifact names plain and unique.
    fn validate(&self, origin: &Path) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::format(origin, reason));
        if self.format != FORMAT {
            return bad(format!("format {:?} is not {FORMAT:?}", self.format));
        }
        if self.version.is_empty() || self.toolchain.is_empty() {
            return bad("version and toolchain must not be empty".into());
        }
        if !is_hex(&self.source_commit, &[40, 64]) {
            return bad("source_commit must be a git commit id (40 or 64 lower-case hex digits)".into());
        }
        for (field, value) in
            [("cargo_lock_sha256", &self.cargo_lock_sha256), ("flake_lock_sha256", &self.flake_lock_sha256)]
        {
            if !is_hex(value, &[64]) {
                return bad(format!("{field} must be 64 lower-case hex digits"));
            }
        }
        if self.artifacts.is_empty() {
            return bad("a release needs at least one artifact".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for a in &self.artifacts {
            if !is_plain_file_name(&a.name) || !names.insert(a.name.as_str()) || !is_hex(&a.sha256, &[64]) {
                return bad(format!("artifact {:?}: needs a unique plain file name and a SHA-256", a.name));
            }
        }
        Ok(())
    }

    /// The exact bytes that are signed and written as `manifest.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// SHA-256 and size of a file, read in chunks.
fn sha256_file(path: &Path) -> Result<(String, u64), Error> {
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    let (mut hasher, mut size, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 16]);
    loop {
        let n = file.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Builds the manifest of `inputs`, signs it with both keys in `key_dir`, writes
/// `manifest.json` and its two signature files into `out_dir`, and verifies the result with the
/// public keys before returning it.
///
/// # Errors
/// [`Error`] naming the file at fault.
pub fn sign_release(key_dir: &Path, inputs: &ReleaseInputs<'_>, out_dir: &Path) -> Result<Manifest, Error> {
    let keys = SigningKeys::load(key_dir)?;
    let artifacts = inputs
        .artifacts
        .iter()
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let (sha256, size) = sha256_file(path)?;
            Ok(Artifact { name, sha256, size })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: inputs.version.into(),
        source_commit: inputs.source_commit.into(),
        toolchain: inputs.toolchain.into(),
        cargo_lock_sha256: sha256_file(inputs.cargo_lock)?.0,
        flake_lock_sha256: sha256_file(inputs.flake_lock)?.0,
        artifacts,
    };
    manifest.validate(Path::new("<new manifest>"))?;
    let bytes = manifest.to_bytes();
    std::fs::create_dir_all(out_dir).map_err(Error::io(out_dir))?;
    let write = |name: &str, content: &[u8]| {
        let path = out_dir.join(name);
        std::fs::write(&path, content).map_err(Error::io(path))
    };
    write(MANIFEST_FILE, &bytes)?;
    write(ECDSA_SIG_FILE, STANDARD.encode(keys.sign_ecdsa(&bytes)?).as_bytes())?;
    write(ML_DSA_SIG_FILE, STANDARD.encode(keys.sign_ml_dsa(&bytes)).as_bytes())?;
    let artifacts_dir = inputs.artifacts.first().and_then(|p| p.parent()).unwrap_or(Path::new("."));
    verify_release(&keys.public_keys(), &out_dir.join(MANIFEST_FILE), artifacts_dir)
}

/// Reads a base64 signature file (cosign writes no trailing newline; one is tolerated).
fn read_signature(path: &Path) -> Result<Vec<u8>, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    STANDARD.decode(text.trim()).map_err(|e| Error::format(path, format!("not base64: {e}")))
}

/// Verifies the two signatures next to `manifest_path` over its exact bytes — the ECDSA P-256
/// one (`<manifest>.sig`) and the ML-DSA-65 one (`<manifest>.ml-dsa-65.sig`), both required —
/// and only then reads the manifest. Artifacts are not looked at (see [`verify_release`]).
///
/// # Errors
/// The first failure, naming the file: a missing or invalid signature, a malformed manifest.
pub fn verify_manifest(keys: &PublicKeys, manifest_path: &Path) -> Result<Manifest, Error> {
    let bytes = std::fs::read(manifest_path).map_err(Error::io(manifest_path))?;
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let name = manifest_path.file_name().and_then(|n| n.to_str()).unwrap_or(MANIFEST_FILE);
    let ecdsa_path = dir.join(format!("{name}.sig"));
    let ml_dsa_path = dir.join(format!("{name}.ml-dsa-65.sig"));
    if !keys.ecdsa_verifies(&bytes, &read_signature(&ecdsa_path)?) {
        return Err(Error::EcdsaSignature(ecdsa_path));
    }
    if !keys.ml_dsa_verifies(&bytes, &read_signature(&ml_dsa_path)?) {
        return Err(Error::MlDsaSignature(ml_dsa_path));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(manifest_path, format!("not a release manifest: {e}")))?;
    manifest.validate(manifest_path)?;
    Ok(manifest)
}

/// Verifies a release offline: [`verify_manifest`], then every artifact it names must be in
/// `artifacts_dir` with its SHA-256 and size.
///
/// # Errors
/// The first failure, naming the file: a missing or invalid signature, a malformed manifest, a
/// missing or different artifact.
pub fn verify_release(keys: &PublicKeys, manifest_path: &Path, artifacts_dir: &Path) -> Result<Manifest, Error> {
    let manifest = verify_manifest(keys, manifest_path)?;
    for artifact in &manifest.artifacts {
        let path = artifacts_dir.join(&artifact.name);
        let (sha256, size) =
            sha256_file(&path).map_err(|e| Error::Artifact { name: artifact.name.clone(), reason: e.to_string() })?;
        if sha256 != artifact.sha256 || size != artifact.size {
            return Err(Error::Artifact {
                name: artifact.name.clone(),
                reason: format!(
                    "SHA-256 {sha256} ({size} bytes) is not the signed {} ({} bytes)",
                    artifact.sha256, artifact.size
                ),
            });
        }
    }
    Ok(manifest)
}
