//! `paramant release keygen|sign|verify`: the command line of signed releases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{MANIFEST_FILE, PUBLIC_KEYS_FILE, PublicKeys, ReleaseInputs};

const USAGE: &str = "usage: paramant release keygen --out KEY_DIR
       paramant release sign --keys KEY_DIR --version V --source-commit COMMIT --toolchain TEXT
                             --cargo-lock FILE --flake-lock FILE --out RELEASE_DIR ARTIFACT...
       paramant release verify --public-keys FILE [--artifacts DIR] MANIFEST
       paramant release show --public-keys FILE MANIFEST
  keygen   makes both private release keys (mode 0600; keep them offline, never in the repository)
           and the public keys (paramant-release.pub holds both)
  sign     writes RELEASE_DIR/manifest.json, manifest.json.sig (ECDSA P-256, cosign blob format)
           and manifest.json.ml-dsa-65.sig, then verifies them
  verify   requires both signatures, then every artifact's SHA-256 (artifacts default to the
           manifest's directory); offline; exit status 1 when anything does not verify
  show     verifies both signatures (not the artifacts) and prints `version V` and one
           `artifact NAME SHA256 SIZE` line per artifact: what an updater may then download";

/// Runs `paramant release …` with `args` (after `release`).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant release: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--flag value` pairs and the positional arguments after them.
struct Args {
    flags: BTreeMap<String, String>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String], known: &[&str]) -> anyhow::Result<Self> {
        let (mut flags, mut positional) = (BTreeMap::new(), Vec::new());
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if let Some(name) = arg.strip_prefix("--") {
                anyhow::ensure!(known.contains(&name), "unknown option --{name}\n{USAGE}");
                let value = it.next().ok_or_else(|| anyhow::anyhow!("--{name} needs a value\n{USAGE}"))?;
                anyhow::ensure!(flags.insert(name.to_string(), value.clone()).is_none(), "--{name} given twice");
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Args { flags, positional })
    }

    fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.flags.get(name).map(String::as_str).ok_or_else(|| anyhow::anyhow!("--{name} is required\n{USAGE}"))
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    match command.as_str() {
        "keygen" => keygen(&Args::parse(rest, &["out"])?),
        "sign" => sign(&Args::parse(
            rest,
            &["keys", "version", "source-commit", "toolchain", "cargo-lock", "flake-lock", "out"],
        )?),
        "verify" => verify(&Args::parse(rest, &["public-keys", "artifacts"])?),
        "show" => show(&Args::parse(rest, &["public-keys"])?),
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn keygen(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.positional.is_empty(), "{USAGE}");
    let dir = Path::new(args.required("out")?);
    crate::keygen(dir)?;
    println!("release keys written to {}; publish {}", dir.display(), dir.join(PUBLIC_KEYS_FILE).display());
    Ok(())
}

fn sign(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.positional.is_empty(), "name at least one artifact\n{USAGE}");
    let artifacts: Vec<PathBuf> = args.positional.iter().map(PathBuf::from).collect();
    let out = Path::new(args.required("out")?);
    let inputs = ReleaseInputs {
        version: args.required("version")?,
        source_commit: args.required("source-commit")?,
        toolchain: args.required("toolchain")?,
        cargo_lock: Path::new(args.required("cargo-lock")?),
        flake_lock: Path::new(args.required("flake-lock")?),
        artifacts: &artifacts,
    };
    let manifest = crate::sign_release(Path::new(args.required("keys")?), &inputs, out)?;
    println!(
        "signed {} (version {}, {} artifacts) with ECDSA P-256 and ML-DSA-65",
        out.join(MANIFEST_FILE).display(),
        manifest.version,
        manifest.artifacts.len()
    );
    Ok(())
}

fn verify(args: &Args) -> anyhow::Result<()> {
    let [manifest] = args.positional.as_slice() else { anyhow::bail!("name one manifest\n{USAGE}") };
    let manifest = Path::new(manifest);
    let keys = PublicKeys::load(Path::new(args.required("public-keys")?))?;
    let artifacts = match args.flags.get("artifacts") {
        Some(dir) => PathBuf::from(dir),
        None => manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let verified = crate::verify_release(&keys, manifest, &artifacts)?;
    println!(
        "ok: release {} ({}) — ECDSA P-256 and ML-DSA-65 signatures valid, {} artifacts match",
        verified.version,
        verified.source_commit,
        verified.artifacts.len()
    );
    Ok(())
}

fn show(args: &Args) -> anyhow::Result<()> {
    let [manifest] = args.positional.as_slice() else { anyhow::bail!("name one manifest\n{USAGE}") };
    let keys = PublicKeys::load(Path::new(args.required("public-keys")?))?;
    let verified = crate::verify_manifest(&keys, Path::new(manifest))?;
    println!("version {}", verified.version);
    println!("source_commit {}", verified.source_commit);
    for a in &verified.artifacts {
        println!("artifact {} {} {}", a.name, a.sha256, a.size);
    }
    Ok(())
}
