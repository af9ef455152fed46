//! `paramant release keygen|sign|verify|show` as a release manager and an appliance run them:
//! the real binary, exit statuses and what it prints.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_paramant");

fn release(args: &[&str]) -> Output {
    Command::new(BIN).arg("release").args(args).output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// SHA-256 computed independently of the crate, with coreutils.
fn sha256sum(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn release_cli_signs_verifies_shows_and_refuses_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, out, artifacts) = (dir.path().join("keys"), dir.path().join("out"), dir.path().join("a"));
    assert!(release(&["keygen", "--out", path(&keys)]).status.success());
    std::fs::create_dir(&artifacts).unwrap();
    std::fs::write(artifacts.join("paramantOS_0.2.0.efi"), b"uki").unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sign = release(&[
        "sign",
        "--keys",
        path(&keys),
        "--version",
        "0.2.0",
        "--source-commit",
        "89abcdef0123456789abcdef0123456789abcdef",
        "--toolchain",
        "rustc 1.95.0",
        "--cargo-lock",
        path(&repo.join("Cargo.lock")),
        "--flake-lock",
        path(&repo.join("flake.lock")),
        "--out",
        path(&out),
        path(&artifacts.join("paramantOS_0.2.0.efi")),
    ]);
    assert!(sign.status.success(), "{}", String::from_utf8_lossy(&sign.stderr));
    let public = keys.join("paramant-release.pub");
    let manifest = out.join("manifest.json");
    let verify =
        || release(&["verify", "--public-keys", path(&public), "--artifacts", path(&artifacts), path(&manifest)]);
    assert!(verify().status.success());

    let show = release(&["show", "--public-keys", path(&public), path(&manifest)]);
    let stdout = String::from_utf8(show.stdout).unwrap();
    assert!(show.status.success());
    assert!(stdout.starts_with("version 0.2.0\n"), "{stdout}");
    assert!(stdout.contains(&format!("artifact paramantOS_0.2.0.efi {} 3\n", sha256sum(b"uki"))), "{stdout}");

    // A changed artifact: verify fails; show, which reads no artifact, still succeeds.
    std::fs::write(artifacts.join("paramantOS_0.2.0.efi"), b"ukj").unwrap();
    let refused = verify();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("artifact paramantOS_0.2.0.efi"));
    assert!(release(&["show", "--public-keys", path(&public), path(&manifest)]).status.success());
    // A changed manifest: show fails too.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("0.2.0\"", "0.2.1\"")).unwrap();
    assert_eq!(release(&["show", "--public-keys", path(&public), path(&manifest)]).status.code(), Some(1));
    // A misspelt option is refused, not guessed.
    assert_eq!(release(&["verify", "--public-key", path(&public), path(&manifest)]).status.code(), Some(1));
}
