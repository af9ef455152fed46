//! Outgoing calls (webhooks' `blob_ready`, the registry announcement), safe against SSRF: the
//! target host is resolved at delivery time and every address must be public ([`is_public`]:
//! global unicast only) unless the operator allowed private targets; the connection goes to the
//! checked address, so DNS cannot be re-bound between check and connect. Registration checks
//! the same rule ahead ([`check_registration`]). Bodies are signed with HMAC-SHA256 of the
//! registered secret (`X-Paramant-Sig`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::Sha256;

use crate::clock::now_ms;
use crate::db::{Hook, RelayDb};
use crate::ids::{DeviceId, WebhookTarget};
use crate::keys::KeyHash;

/// Connect, TLS and answer, in all.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a registration waits for the resolver.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether an address is on the public internet (what a webhook may reach by default).
/// IPv6: global unicast (`2000::/3`) only, without the ranges that embed or tunnel to IPv4 or
/// are not routed — so `::ffff:0:0/96` (mapped), `64:ff9b::/96` and `64:ff9b:1::/48` (NAT64),
/// `::/96` (compatible), `100::/64` (discard), link-local, unique-local and multicast all fall
/// outside, and `2001::/23` (IETF protocol assignments: Teredo `2001::/32`, benchmarking,
/// ORCHID), `2001:db8::/32` and `3fff::/20` (documentation) and `2002::/16` (6to4) are refused
/// inside it. An embedded IPv4 address could be private, and the relay cannot see where a
/// tunnel ends.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let [a, b, ..] = v6.segments();
            let global_unicast = (a & 0xe000) == 0x2000;
            let refused = match a {
                // 2001::/23 IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID)
                // and 2001:db8::/32 documentation.
                0x2001 => b < 0x0200 || b == 0x0db8,
                0x2002 => true,              // 6to4
                _ => (a & 0xfff0) == 0x3ff0, // 3fff::/20 documentation
            };
            global_unicast && !refused
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
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

/// Checks a webhook target when it is registered: its port must be one the sandbox lets the
/// relay reach, and every address it has now must be public ([`is_public`]) — an IP literal
/// directly, a host name as the resolver answers. A name that does not resolve (yet) is
/// accepted: delivery resolves and checks again. With `Reach::Any` only the syntax counts.
pub async fn check_registration(target: &WebhookTarget, reach: Reach, ports: &[u16]) -> Result<(), String> {
    if matches!(reach, Reach::Any) {
        return Ok(());
    }
    if !ports.contains(&target.port) {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        return Err(format!("url port must be one of {} on this relay", ports.join(", ")));
    }
    let private = "url must not point at a private, loopback, link-local or tunnelled address";
    if let Some(ip) = target.ip_literal() {
        return if is_public(ip) { Ok(()) } else { Err(private.into()) };
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => return Ok(()),
    };
    if addrs.iter().all(|a| is_public(a.ip())) {
        Ok(())
    } else {
        Err(format!("{private} (the host name resolves to one)"))
    }
}

/// Delivers webhook calls in the background; cheap to clone (one shared TLS configuration).
#[derive(Clone)]
pub struct Webhooks {
    tls: tokio_rustls::TlsConnector,
    reach: Reach,
}

impl Webhooks {
    /// A sender that reaches only public addresses, or any with `Reach::Any` (the operator's
    /// `danger_allow_private_targets`).
    pub fn new(reach: Reach) -> Self {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), reach }
    }

    /// Whom webhooks may reach.
    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// Tells every hook of `(key, device)` that a blob is ready; never blocks the upload.
    pub fn blob_ready(&self, db: &RelayDb, key: &KeyHash, device: &DeviceId, hash: &str, size: u64, ttl_ms: u64) {
        let hooks: Vec<Hook> = match db.hooks(key, device) {
            Ok(h) if !h.is_empty() => h,
            _ => return,
        };
        let body = json!({ "event": "blob_ready", "device_id": device, "hash": hash, "size": size, "ttl_ms": ttl_ms, "ts": wire::iso8601_ms(now_ms()) });
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        for hook in hooks {
            let (sender, body) = (self.clone(), body.clone());
            tokio::spawn(async move {
                let result = tokio::time::timeout(DELIVERY_TIMEOUT, sender.send(&hook, body)).await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => crate::DAEMON.log(format_args!("webhook to {} failed: {e}", hook.target.host)),
                    Err(_) => crate::DAEMON.log(format_args!("webhook to {} timed out", hook.target.host)),
                }
            });
        }
    }

    async fn send(&self, hook: &Hook, body: Bytes) -> Result<(), String> {
        let signature = {
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(hook.secret.as_bytes()).map_err(|e| e.to_string())?;
            mac.update(&body);
            hex::encode(mac.finalize().into_bytes())
        };
        let reach = self.reach;
        let headers = [("x-paramant-event", "blob_ready"), ("x-paramant-sig", signature.as_str())];
        let status = self.post(&hook.target, reach, &headers, body).await?;
        if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
    }

    /// POSTs JSON to `target` (https with the Mozilla roots, or plain http), connecting to the
    /// address that was checked against `reach`.
    pub async fn post(
        &self,
        target: &WebhookTarget,
        reach: Reach,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<hyper::StatusCode, String> {
        let mut request = hyper::Request::post(target.path.as_str()).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(self.send_checked(target, reach, request, Full::new(body)).await?.status())
    }

    /// GETs `target` like [`Self::post`] and reads at most `limit` bytes of the answer (a longer
    /// body is an error). The caller bounds the time.
    pub async fn get_small(
        &self,
        target: &WebhookTarget,
        reach: Reach,
        limit: usize,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(target.path.as_str());
        let response = self.send_checked(target, reach, request, Full::new(Bytes::new())).await?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// Resolves `target`, refuses it unless every address is allowed by `reach`, and sends the
    /// request to the checked address (https with the Mozilla roots, or plain http).
    async fn send_checked(
        &self,
        target: &WebhookTarget,
        reach: Reach,
        request: hyper::http::request::Builder,
        body: Full<Bytes>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("resolve: {e}"))?
            .collect();
        let refused = matches!(reach, Reach::PublicOnly) && addrs.iter().any(|a| !is_public(a.ip()));
        if addrs.is_empty() || refused {
            return Err("the host resolves to a non-public address; refused".into());
        }
        let stream = tokio::net::TcpStream::connect(addrs[0]).await.map_err(|e| format!("connect: {e}"))?;
        let request = request
            .header("host", &target.host)
            .header("user-agent", concat!("paramant-relay/", env!("CARGO_PKG_VERSION")))
            .body(body)
            .map_err(|e| e.to_string())?;
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only public internet addresses (webhooks: SSRF protection).
    PublicOnly,
    /// Anything (operator-configured targets, or private webhooks when allowed).
    Any,
}

async fn send_http1<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(request).await.map_err(|e| e.to_string())
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
            "::ffff:1.1.1.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "::7f00:1",
            "fec0::1",
            "192.88.99.1",
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
}
