//! Outgoing webhooks (`blob_ready`), safe against SSRF: the target host is resolved at delivery
//! time and every address must be public (no private, loopback, link-local, multicast or
//! reserved ranges) unless the operator allowed private targets; the connection goes to the
//! checked address, so DNS cannot be re-bound between check and connect. Bodies are signed with
//! HMAC-SHA256 of the registered secret (`X-Paramant-Sig`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonapi::{ApiError, ApiResult};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{DbError, WEBHOOKS};
use crate::keys::KeyHash;
use crate::state::{SharedState, now_ms};

/// Webhooks one device may have.
const MAX_HOOKS_PER_DEVICE: usize = 10;
/// Connect, TLS and answer, in all.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed webhook target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses `https://host[:port]/path` (or `http://` when private targets are allowed).
pub fn parse_target(url: &str, allow_plain_http: bool) -> Result<Target, &'static str> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://").filter(|_| allow_plain_http) {
        (false, rest)
    } else {
        return Err("url must be an https:// URL");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty()
        || authority.contains('@')
        || url.len() > 2048
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("url must have a plain host (no credentials, no spaces) and at most 2048 characters");
    }
    let (host, port) = split_host_port(authority, if https { 443 } else { 80 })?;
    let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    Ok(Target { https, host, port, path })
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or("bad IPv6 literal")?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if rest.is_empty() => default_port,
            None => return Err("bad authority"),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_ascii_lowercase(), port.parse().map_err(|_| "bad port")?)),
        None => Ok((authority.to_ascii_lowercase(), default_port)),
    }
}

/// Whether an address is on the public internet (what a webhook may reach by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] // NAT64 maps IPv4
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, deprecated
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

/// A registration as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Hook {
    url: String,
    target: Target,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    device_id: String,
    url: String,
    #[serde(default)]
    secret: String,
}

/// `POST /v2/webhook`: registers a URL told about uploads announced on a device.
pub async fn register(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    let request: RegisterRequest = jsonapi::json_body(body)?;
    crate::routes::devices::check_device_id(&request.device_id)?;
    let allow_private = state.config.webhook.danger_allow_private_targets;
    let target = parse_target(&request.url, allow_private).map_err(ApiError::bad_request)?;
    if !allow_private
        && let Ok(ip) = target.host.parse::<IpAddr>()
        && !is_public(ip)
    {
        return Err(ApiError::bad_request("url must not point at a private, loopback or link-local address"));
    }
    // The sandbox lets deliveries connect to these ports only (any port with private targets).
    let ports = &state.config.webhook.ports;
    if !allow_private && !ports.contains(&target.port) {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        return Err(ApiError::bad_request(format!("url port must be one of {} on this relay", ports.join(", "))));
    }
    if request.secret.len() > 256 {
        return Err(ApiError::bad_request("secret must be at most 256 bytes"));
    }
    let hook = Hook { url: request.url.clone(), target, secret: request.secret };
    let key = (caller.key_hash, request.device_id.as_str());
    state.db.write(|txn| {
        let mut table = txn.open_table(WEBHOOKS).map_err(DbError::from)?;
        let mut hooks: Vec<Hook> = match table.get(key).map_err(DbError::from)? {
            Some(raw) => serde_json::from_slice(raw.value()).map_err(DbError::from)?,
            None => Vec::new(),
        };
        hooks.retain(|h| h.url != hook.url);
        if hooks.len() >= MAX_HOOKS_PER_DEVICE {
            return Err(ApiError::rate_limited("at most 10 webhooks per device", 3600));
        }
        hooks.push(hook);
        let json = serde_json::to_vec(&hooks).map_err(DbError::from)?;
        table.insert(key, json.as_slice()).map_err(DbError::from)?;
        Ok(())
    })?;
    Ok(Json(json!({ "ok": true })))
}

/// Delivers webhook calls in the background.
pub struct Webhooks {
    tls: tokio_rustls::TlsConnector,
}

impl Default for Webhooks {
    fn default() -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) }
    }
}

impl Webhooks {
    /// Tells every hook of `(key, device)` that a blob is ready; never blocks the upload.
    pub fn blob_ready(&self, state: SharedState, key: KeyHash, device: &str, hash: &str, size: u64, ttl_ms: u64) {
        let hooks: Vec<Hook> = match load_hooks(&state, key, device) {
            Ok(h) if !h.is_empty() => h,
            _ => return,
        };
        let body = json!({ "event": "blob_ready", "device_id": device, "hash": hash, "size": size, "ttl_ms": ttl_ms, "ts": wire::iso8601_ms(now_ms()) });
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        for hook in hooks {
            let (state, body) = (state.clone(), body.clone());
            tokio::spawn(async move {
                let allow_private = state.config.webhook.danger_allow_private_targets;
                let result =
                    tokio::time::timeout(DELIVERY_TIMEOUT, state.webhooks.send(&hook, body, allow_private)).await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => crate::DAEMON.log(format_args!("webhook to {} failed: {e}", hook.target.host)),
                    Err(_) => crate::DAEMON.log(format_args!("webhook to {} timed out", hook.target.host)),
                }
            });
        }
    }

    async fn send(&self, hook: &Hook, body: Bytes, allow_private: bool) -> Result<(), String> {
        let signature = {
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(hook.secret.as_bytes()).map_err(|e| e.to_string())?;
            mac.update(&body);
            hex::encode(mac.finalize().into_bytes())
        };
        let reach = if allow_private { Reach::Any } else { Reach::PublicOnly };
        let headers = [("x-paramant-event", "blob_ready"), ("x-paramant-sig", signature.as_str())];
        let status = self.post(&hook.target, reach, &headers, body).await?;
        if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
    }

    /// POSTs JSON to `target` (https with the Mozilla roots, or plain http), connecting to the
    /// address that was checked against `reach`.
    pub async fn post(
        &self,
        target: &Target,
        reach: Reach,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<hyper::StatusCode, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("resolve: {e}"))?
            .collect();
        let refused = matches!(reach, Reach::PublicOnly) && addrs.iter().any(|a| !is_public(a.ip()));
        if addrs.is_empty() || refused {
            return Err("the host resolves to a non-public address; refused".into());
        }
        let stream = tokio::net::TcpStream::connect(addrs[0]).await.map_err(|e| format!("connect: {e}"))?;
        let mut request = hyper::Request::post(target.path.as_str())
            .header("host", &target.host)
            .header("content-type", "application/json")
            .header("user-agent", concat!("paramant-relay/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| e.to_string())?;
            let tls = self.tls.connect(name, stream).await.map_err(|e| format!("tls: {e}"))?;
            send_http1(TokioIo::new(tls), request).await
        } else {
            send_http1(TokioIo::new(stream), request).await
        }
    }
}

/// Which addresses an outgoing call may reach.
#[derive(Clone, Copy, Debug)]
pub enum Reach {
    /// Only public internet addresses (webhooks: SSRF protection).
    PublicOnly,
    /// Anything (operator-configured targets, or private webhooks when allowed).
    Any,
}

async fn send_http1<T>(io: T, request: hyper::Request<Full<Bytes>>) -> Result<hyper::StatusCode, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status())
}

fn load_hooks(state: &SharedState, key: KeyHash, device: &str) -> Result<Vec<Hook>, DbError> {
    let txn = state.db.read()?;
    let table = txn.open_table(WEBHOOKS)?;
    match table.get((key, device))? {
        Some(raw) => Ok(serde_json::from_slice(raw.value())?),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_not_public() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must not be public");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn only_plain_https_urls_parse_by_default() {
        assert_eq!(
            parse_target("https://hooks.example.com/x?y=1", false),
            Ok(Target { https: true, host: "hooks.example.com".into(), port: 443, path: "/x?y=1".into() })
        );
        assert_eq!(
            parse_target("https://[2606:4700::1]:8443", false).map(|t| (t.host, t.port)),
            Ok(("2606:4700::1".into(), 8443))
        );
        assert!(parse_target("http://example.com/", false).is_err());
        assert!(parse_target("https://user:pw@example.com/", false).is_err());
        assert!(parse_target("ftp://example.com/", false).is_err());
        assert!(parse_target("https://", false).is_err());
        assert!(parse_target("https://example.com:99999/", false).is_err());
        assert!(parse_target("http://127.0.0.1:9/", true).is_ok(), "allowed for closed networks and tests");
    }
}
