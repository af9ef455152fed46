//! The check-in's HTTPS client: one connection per check-in, rustls with aws-lc-rs and only the
//! hybrid post-quantum key exchange X25519MLKEM768, TLS 1.3, a bounded answer, and one deadline
//! over connect, handshake and answer (a slow server counts as unreachable).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Largest answer read (a capability set is about 5 KiB).
const MAX_ANSWER: usize = 64 * 1024;

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (or IP literal) as in the URL.
    pub host: String,
    /// TCP port (443 by default).
    pub port: u16,
    /// Path and query.
    pub path: String,
}

impl Endpoint {
    /// Reads `https://HOST[:PORT]/PATH`.
    #[must_use]
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("https://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.ends_with(']') => (h, p.parse().ok()?),
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let valid = !host.is_empty() && port != 0 && !host.contains(['@', '/', ' ']);
        valid.then(|| Self {
            host: host.to_owned(),
            port,
            path: if path.is_empty() { "/".into() } else { path.to_owned() },
        })
    }
}

/// The HTTPS client of one configuration.
pub struct HttpsClient {
    tls: tokio_rustls::TlsConnector,
    endpoint: Endpoint,
    timeout: Duration,
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body (at most 64 KiB).
    pub body: Bytes,
}

impl HttpsClient {
    /// A client for `url` that trusts the Mozilla roots and the PEM certificates in `ca_pem`.
    ///
    /// # Errors
    /// A malformed URL or CA file.
    pub fn new(url: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(url).ok_or_else(|| anyhow::anyhow!("server_url must be an https:// URL"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert?)?;
            }
        }
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        // Post-quantum or nothing: the license key must not be recorded today and decrypted later.
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), endpoint, timeout })
    }

    /// POSTs `body` as JSON; errors are "unreachable" (connect, TLS, timeout, oversized answer).
    ///
    /// # Errors
    /// Anything short of a complete answer within the deadline.
    pub async fn post(&self, body: Vec<u8>) -> anyhow::Result<Answer> {
        tokio::time::timeout(self.timeout, self.exchange(body))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.timeout))?
    }

    async fn exchange(&self, body: Vec<u8>) -> anyhow::Result<Answer> {
        let e = &self.endpoint;
        let tcp = tokio::net::TcpStream::connect((e.host.as_str(), e.port)).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(e.host.clone())?;
        let tls = self.tls.connect(name, tcp).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let driver = tokio::spawn(connection);
        let authority = if e.port == 443 { e.host.clone() } else { format!("{}:{}", e.host, e.port) };
        let request = hyper::Request::post(&e.path)
            .header("host", authority)
            .header("content-type", "application/json")
            .header("user-agent", concat!("paramant-license/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("answer: {e}"))?
            .to_bytes();
        driver.abort();
        Ok(Answer { status, body })
    }
}
