//! The API reference's names are real binaries: `paramant-verify-sth`, `paramant-verify-peers`,
//! `paramant-receipt` each run their one command, with its help and exit codes.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(args)
        .env("PARAMANT_HOME", home.path())
        .env_remove("PARAMANT_RELAY")
        .env_remove("PARAMANT_DEV")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn each_name_runs_its_command() {
    let sth = env!("CARGO_BIN_EXE_paramant-verify-sth");
    let (code, help) = run(sth, &["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Usage: paramant-verify-sth [OPTIONS]") && help.contains("--pubkey-hash"), "{help}");
    assert_eq!(run(sth, &[]).0, 2, "no relay: usage error");
    assert_eq!(run(sth, &["--relay", "ftp://x"]).0, 2);
    // Nothing listens on port 1 of loopback: unavailable.
    assert_eq!(run(sth, &["--relay", "http://127.0.0.1:1"]).0, 3);

    let peers = env!("CARGO_BIN_EXE_paramant-verify-peers");
    let (code, help) = run(peers, &["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--peer"), "{help}");

    let receipt = env!("CARGO_BIN_EXE_paramant-receipt");
    assert_eq!(run(receipt, &[]).0, 2, "--verify or --hash is required");
    assert_eq!(run(receipt, &["--verify", "not a receipt", "--relay", "http://127.0.0.1:1"]).0, 1);
    let (code, out) = run(receipt, &["--hash", &"ab".repeat(32)]);
    assert_eq!(code, 2, "{out}");
    assert!(run(receipt, &["--version"]).1.contains(env!("CARGO_PKG_VERSION")));
}
