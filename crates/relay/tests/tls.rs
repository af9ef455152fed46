//! TLS on the public listener: the relay serves over rustls with a configured certificate and
//! agrees to the hybrid post-quantum key exchange X25519MLKEM768 when the client offers it.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::*;
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::kx_group;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup, ProtocolVersion, RootCertStore};

/// A client trusting `roots` that offers `groups`, in that order of preference.
fn client(roots: &RootCertStore, groups: Vec<&'static dyn SupportedKxGroup>) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups;
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    Arc::new(config)
}

/// `GET path` over TLS; returns the status, the body and what the handshake agreed on.
fn https_get(
    sector: &Sector,
    config: Arc<ClientConfig>,
    path: &str,
) -> std::io::Result<(u16, Vec<u8>, NamedGroup, ProtocolVersion)> {
    let mut connection = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut socket = TcpStream::connect(sector.addr)?;
    socket.set_read_timeout(Some(DEADLINE))?;
    let mut tls = rustls::Stream::new(&mut connection, &mut socket);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A server that closes without close_notify after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e),
    }
    let group = connection.negotiated_key_exchange_group().expect("a key exchange").name();
    let version = connection.protocol_version().expect("a protocol version");
    let (status, body) = parse_response(&response);
    Ok((status, body, group, version))
}

#[test]
fn the_relay_serves_tls_and_agrees_to_x25519mlkem768_when_offered() {
    // Both ring and aws-lc-rs may be linked into a test build; rustls builders need a choice.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_file, generated.cert.pem()).unwrap();
    std::fs::write(&key_file, generated.signing_key.serialize_pem()).unwrap();
    let sector = Sector::with_config(&format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert_file.display(),
        key_file.display()
    ));
    let mut roots = RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();

    let hybrid_first = client(&roots, vec![kx_group::X25519MLKEM768, kx_group::X25519]);
    let (status, body, group, version) = https_get(&sector, hybrid_first, "/health").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["ok"], true);
    assert_eq!((group, version), (NamedGroup::X25519MLKEM768, ProtocolVersion::TLSv1_3));

    let classical = client(&roots, vec![kx_group::X25519]);
    let (status, _, group, _) = https_get(&sector, classical, "/health").unwrap();
    assert_eq!((status, group), (200, NamedGroup::X25519), "classical clients still connect");

    let (status, _, _, _) = https_get(&sector, client(&roots, vec![kx_group::X25519MLKEM768]), "/v2/nope").unwrap();
    assert_eq!(status, 404, "the API is behind TLS, not just /health");

    let strangers = client(&RootCertStore::empty(), vec![kx_group::X25519MLKEM768]);
    assert!(
        https_get(&sector, strangers, "/health").is_err(),
        "a client that does not trust the certificate fails the handshake"
    );
    let plain = call(&format!("{}/health", sector.url), "GET", &[], None);
    assert!(plain.is_err() || plain.unwrap().status != 200, "no plain HTTP on the TLS port");
}
