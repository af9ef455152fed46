//! TLS for the public listener (rustls with the aws-lc-rs provider, which negotiates the hybrid
//! post-quantum key exchange X25519MLKEM768 by default), HTTP/1.1 only (see `httpserve`).

use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Loads the certificate chain and key.
pub fn acceptor(tls: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .with_context(|| format!("cannot read {}", tls.cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("{} is not a PEM private key", tls.key_file.display()))?;
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
    // HTTP/2 is not offered: `httpserve` serves HTTP/1.1 only, so every per-request limit is
    // a per-connection limit.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
