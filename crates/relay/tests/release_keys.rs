//! `/.well-known/paramant-release.pub`: the relay serves the configured release public keys,
//! answers 404 without them, and refuses to start with a key file that would not verify.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::{RELAY_BIN, Sector};

#[test]
fn the_relay_serves_the_release_public_keys() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = release::keygen(&keys_dir.path().join("k")).unwrap();
    let file = keys_dir.path().join("k").join(release::PUBLIC_KEYS_FILE);
    let sector = Sector::with_config(&format!("release_public_keys_file = \"{}\"\n", file.display()));
    let reply = sector.get("/.well-known/paramant-release.pub", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(reply.text(), std::fs::read_to_string(&file).unwrap());
    // What a client downloads is what `paramant release verify --public-keys` accepts.
    assert_eq!(release::PublicKeys::parse(&reply.text(), std::path::Path::new("served")).unwrap(), keys);
}

#[test]
fn without_release_keys_the_path_is_a_json_404() {
    let sector = Sector::start();
    let reply = sector.get("/.well-known/paramant-release.pub", None);
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"], "not_found");
}

#[test]
fn a_relay_refuses_to_start_with_a_key_file_missing_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("k");
    release::keygen(&keys).unwrap();
    // Only the ECDSA key: a release could not be verified with it.
    let half = dir.path().join("half.pub");
    std::fs::copy(keys.join(release::ECDSA_PUB_FILE), &half).unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "sector = \"relay\"\npublic_listen = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\n\
             state_dir = \"{state}\"\nrelease_public_keys_file = \"{half}\"\n\n\
             [ctlog]\ninternal_url = \"http://127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1\"\n",
            state = dir.path().join("state").display(),
            half = half.display()
        ),
    )
    .unwrap();
    let out = Command::new(RELAY_BIN).args(["run", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("release_public_keys_file") && stderr.contains("needs both"), "{stderr}");
}
