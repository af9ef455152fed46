//! A graceful stop: on SIGTERM the relay stops taking uploads, lets a download in flight finish
//! with every byte, logs its burn, and exits cleanly.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

use common::*;
use serde_json::json;

/// A connection whose receive buffer is tiny (set before connecting, so the window stays
/// small): the relay cannot push a large body into kernel buffers and call it sent, so the
/// download stays in flight for as long as the test does not read.
fn slow_reader(addr: SocketAddr) -> TcpStream {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt};
    let SocketAddr::V4(v4) = addr else { panic!("loopback IPv4 expected") };
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Reads the response head; returns (status, Content-Length, body bytes already read).
fn read_head(stream: &mut TcpStream) -> (u16, usize, Vec<u8>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the response head");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("a Content-Length");
            return (status, length, buffer[end + 4..].to_vec());
        }
    }
}

#[test]
fn sigterm_refuses_new_uploads_while_a_download_in_flight_completes() {
    const SIZE: usize = 8 << 20;
    let mut sector = Sector::with_config(&format!("[limits]\nmax_blob_bytes = {SIZE}\n"));
    let key = sector.key("enterprise");
    let data = payload(1, SIZE);
    let hash = sector.upload_ok(&key, &data, json!({}));

    let mut download = slow_reader(sector.addr);
    write!(
        download,
        "GET /v2/outbound/{hash} HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, length, mut body) = read_head(&mut download);
    assert_eq!((status, length), (200, SIZE));
    assert!(body.len() < SIZE / 2, "the body is still on its way ({} bytes read)", body.len());
    assert_eq!(sector.status_of(&key, &hash).json()["views_left"], 1, "the delivery has not completed");

    sector.sigterm();
    // Until the signal is handled an upload may still land; then uploads are refused with
    // 503 draining, and once the listener is closed connections are refused outright.
    let mut seen_draining = false;
    let small = payload(2, 100);
    let upload = serde_json::to_vec(&json!({ "hash": sha256_hex(&small), "payload": b64(&small) })).unwrap();
    wait_until("the relay to refuse new connections", || {
        let reply = call(
            &format!("{}/v2/inbound", sector.url),
            "POST",
            &[("x-api-key", &key), ("content-type", "application/json")],
            Some(upload.clone()),
        );
        match reply {
            Err(_) => Some(()),
            Ok(r) if r.status == 503 => {
                r.assert_error(503, "draining");
                assert!(r.header("retry-after").is_some());
                seen_draining = true;
                None
            }
            Ok(r) => {
                assert!(!seen_draining, "an upload was accepted after the relay started draining: {}", r.text());
                assert!(r.status == 200 || r.status == 409, "{} {}", r.status, r.text());
                None
            }
        }
    });
    assert!(TcpStream::connect(sector.addr).is_err(), "the listener is closed");

    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    body.extend(rest);
    assert_eq!(body.len(), SIZE, "the download in flight got every byte");
    assert_eq!(sha256_hex(&body), hash);
    assert!(sector.wait_for_exit().success(), "{}", sector.relay_stderr());

    // The burn reached the log before the relay exited (the log is still running).
    let burned = call(&format!("{}/v2/ct/log?limit=100", sector.log_public), "GET", &[], None).unwrap().json();
    let logged = burned["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "delivery" && e["blob_hash"] == hash.as_str() && e["burned"] == true);
    assert!(logged, "the burn of the drained download is in the log: {burned}");
}
