//! Secret helpers: constant-time compare, random tokens, systemd credential lookup.

use crypto::{credential_path, ct_eq, random_token};

#[test]
fn ct_eq_compares_contents_and_lengths() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"pgp_abc", b"pgp_abc"));
    assert!(!ct_eq(b"pgp_abc", b"pgp_abd"));
    assert!(!ct_eq(b"pgp_abc", b"pgp_ab"));
    assert!(!ct_eq(b"pgp_ab", b"pgp_abc"));
}

#[test]
fn random_token_is_prefix_plus_64_lowercase_hex_and_fresh() {
    let a = random_token("pgp_").expect("OS RNG");
    let b = random_token("pgp_").expect("OS RNG");
    assert_ne!(a, b);
    let hex = a.strip_prefix("pgp_").expect("prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')), "{a}");
}

// The only test in this binary that touches CREDENTIALS_DIRECTORY, so no other test races it.
#[test]
fn credential_path_finds_existing_files_in_credentials_directory_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("log-key"), [0u8; 32]).expect("write");
    std::fs::create_dir(dir.path().join("subdir")).expect("mkdir");

    // `std::env::set_var` is unsafe in edition 2024 (and racy with other test threads), so the
    // checks run in a child process started with the variable set.
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .args(["--exact", "credential_lookup_child", "--nocapture", "--include-ignored"])
        .env("CREDENTIALS_DIRECTORY", dir.path())
        .env("CHILD_EXPECT_DIR", dir.path())
        .output()
        .expect("run child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

/// Runs inside the child process spawned above (a no-op when run directly).
#[test]
fn credential_lookup_child() {
    let Some(dir) = std::env::var_os("CHILD_EXPECT_DIR") else {
        assert_eq!(credential_path("anything-that-does-not-exist-here"), None);
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    assert_eq!(credential_path("log-key"), Some(dir.join("log-key")));
    assert_eq!(credential_path("missing"), None);
    assert_eq!(credential_path("subdir"), None);
    assert_eq!(credential_path("../log-key"), None);
    assert_eq!(credential_path(".."), None);
    assert_eq!(credential_path(""), None);
}
