//! `paramant … | head -1`: output to a pipe whose reader has gone ends the program quietly, by
//! SIGPIPE like any Unix filter (a shell shows 141), never with a panic.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_paramant");

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// Runs `paramant args` with standard output a pipe whose read end is already closed; the exit
/// status as a shell shows it (128 + the signal that ended it) and standard error.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN).args(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let status = out.status.code().or_else(|| out.status.signal().map(|s| 128 + s));
    (status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn printing_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    let seed_path = seed.to_str().unwrap();
    // A token to show (keygen and issue print too: both into a closed pipe first).
    assert_eq!(into_closed_pipe(&["license", "keygen", "--out", seed_path]), (Some(128 + SIGPIPE), String::new()));
    let issue =
        ["license", "issue", "--key", seed_path, "--max-keys", "5", "--expires", "2099-01-01", "--issued-to", "X"];
    assert_eq!(into_closed_pipe(&issue), (Some(128 + SIGPIPE), String::new()));
    let token = String::from_utf8(Command::new(BIN).args(issue).output().unwrap().stdout).unwrap();
    let db = dir.path().join("db.json");
    for args in [
        vec!["license", "show", token.trim()],
        vec!["license", "server", "show", "--db", db.to_str().unwrap()],
        vec!["license"],
        vec!["release"],
        vec!["--version"],
        vec!["up", "--help"],
    ] {
        let (code, stderr) = into_closed_pipe(&args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // 141 from our printing, 0 where clap drops the write error, a usage message on stderr.
        assert!(matches!(code, Some(141 | 0)) || stderr.contains("usage"), "{args:?}: {code:?} {stderr}");
    }
}
