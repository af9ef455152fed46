//! Key file behaviour: created once with mode 0600, loaded afterwards, malformed files rejected
//! with an error that names the path and never the bytes.

use std::os::unix::fs::PermissionsExt;

use crypto::{Error, KeyFile, KeyOrigin, LogSigningKey};

#[test]
fn missing_key_file_is_generated_with_mode_0600_and_reloaded_on_second_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.key");

    let (first, origin) = LogSigningKey::load_or_generate(&path).expect("generate");
    assert_eq!(origin, KeyOrigin::Generated);
    let meta = std::fs::metadata(&path).expect("key file exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);

    let (second, origin) = LogSigningKey::load_or_generate(&path).expect("load");
    assert_eq!(origin, KeyOrigin::Loaded);
    assert_eq!(first.verifying_key(), second.verifying_key());
    let third = LogSigningKey::load(&path).expect("load");
    assert_eq!(first.verifying_key(), third.verifying_key());

    // Only the key file is left behind: no temporary files.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("read dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("log.key")]);
}

#[test]
fn key_file_holds_the_raw_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.key");
    let seed = [7u8; 32]; // test-only seed
    std::fs::write(&path, seed).expect("write");
    let key = LogSigningKey::load(&path).expect("load");
    assert_eq!(key.verifying_key(), LogSigningKey::from_seed(&seed).verifying_key());
}

#[test]
fn key_file_of_wrong_length_is_rejected_naming_the_path_not_the_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.key");
    for len in [0usize, 31, 33, 64] {
        std::fs::write(&path, vec![0xabu8; len]).expect("write");
        let err = LogSigningKey::load_or_generate(&path).expect_err("wrong length");
        assert!(matches!(&err, Error::KeyFileFormat { path: p, .. } if *p == path), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains("abab") && !msg.contains("ABAB"), "{msg}");
        // The file is left alone: an operator must look at it.
        assert_eq!(std::fs::read(&path).expect("still there").len(), len);
    }
}

#[test]
fn key_path_that_is_a_directory_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LogSigningKey::load_or_generate(dir.path()).expect_err("a directory");
    assert!(matches!(err, Error::KeyFileNotRegular { .. }), "{err:?}");
}

#[test]
fn load_of_missing_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.key");
    let err = LogSigningKey::load(&path).expect_err("missing");
    assert!(matches!(&err, Error::KeyFileIo { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert!(err.to_string().contains("absent.key"));
    assert!(!path.exists(), "load must not create the file");
}

#[test]
fn generation_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-dir").join("log.key");
    let err = LogSigningKey::load_or_generate(&path).expect_err("missing directory");
    assert!(matches!(err, Error::KeyFileIo { .. }), "{err:?}");
}
