//! A view is consumed only when the client's TCP stack acknowledged every byte of the body,
//! against the real relay binary: downloads cut at 0 %, 50 % and 99 % of a 5 MiB body, and a
//! client that stops reading, leave the blob for the retry; a complete download burns it, and
//! the owner then gets a receipt that confirms the burn.
//!
//! The cut clients use a small receive buffer: a kernel acknowledges what it has buffered, so a
//! client whose buffer holds the rest of the body has, as far as TCP can tell, received it.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;
use serde_json::json;

const BODY: usize = 5 << 20;

/// A download on a connection with a `rcvbuf`-byte receive buffer; returns the stream after the
/// response headers and `body_bytes` of the body were read.
fn partial_download(addr: SocketAddr, key: &str, hash: &str, rcvbuf: usize, body_bytes: usize) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "GET /v2/outbound/{hash} HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    let mut body = vec![0u8; body_bytes];
    stream.read_exact(&mut body).unwrap();
    stream
}

/// Downloads once the previous attempt's view is back (409 `in_delivery` until then).
fn retry_download(sector: &Sector, key: &str, hash: &str) -> Reply {
    wait_until("the interrupted view to be released", || {
        let reply = sector.download(key, hash);
        (reply.status != 409).then_some(reply)
    })
}

#[test]
fn downloads_cut_at_0_50_and_99_percent_leave_the_blob_for_the_retry() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    for (n, percent) in [0usize, 50, 99].into_iter().enumerate() {
        let data = payload(100 + n as u64, BODY);
        let hash = sector.upload_ok(&key, &data, json!({}));
        let cut = partial_download(sector.addr, &key, &hash, 8 * 1024, BODY * percent / 100);
        drop(cut);
        let retry = retry_download(&sector, &key, &hash);
        assert_eq!(retry.status, 200, "after a cut at {percent} %: {}", retry.text());
        assert_eq!(retry.body, data);
        wait_until("the burn", || (sector.status_of(&key, &hash).status == 404).then_some(()));
    }
}

#[test]
fn a_client_with_a_tiny_receive_buffer_that_stops_reading_keeps_the_view_and_is_reset() {
    // Whether the relay is still writing (the idle timeout applies) or has written everything
    // and waits for the acknowledgement (the ack timeout applies), the stall ends in 2 s.
    let sector =
        Sector::with_config("[connections]\nidle_timeout_secs = 2\n[transfers]\ndelivery_ack_timeout_secs = 2\n");
    let key = sector.key("enterprise");
    let data = payload(7, BODY);
    let hash = sector.upload_ok(&key, &data, json!({}));
    let mut stuck = partial_download(sector.addr, &key, &hash, 4 * 1024, 1024);
    // It stops reading; the view stays reserved until the deadline, then comes back.
    let retry = retry_download(&sector, &key, &hash);
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert_eq!(retry.body, data);
    // The stuck connection was reset: it can never complete the body now.
    let mut rest = Vec::new();
    let ended = stuck.read_to_end(&mut rest);
    assert!(ended.is_err() || rest.len() < BODY - 1024, "the stuck client got the whole body");
}

#[test]
fn a_complete_download_burns_and_the_owner_gets_a_receipt_confirming_the_burn() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(8, BODY);
    let hash = sector.upload_ok(&key, &data, json!({}));
    let download = sector.download(&key, &hash);
    assert_eq!(download.body, data);
    // The header receipt was signed before the body went out: it does not claim the burn.
    let early = download.header("x-paramant-receipt").unwrap();
    let verdict = sector.post("/v2/verify-receipt", None, &json!({ "receipt": early })).json();
    assert_eq!((verdict["valid"].clone(), verdict["burn_confirmed"].clone()), (json!(true), json!(false)));

    let status = wait_until("the confirmed burn", || {
        let reply = sector.status_of(&key, &hash);
        (reply.status == 404 && reply.json()["burned"] == json!(true)).then(|| reply.json())
    });
    let confirmed = status["burn_receipt"].as_str().unwrap();
    let verdict = sector.post("/v2/verify-receipt", None, &json!({ "receipt": confirmed })).json();
    assert_eq!(
        (verdict["valid"].clone(), verdict["blob_hash"].clone(), verdict["burn_confirmed"].clone()),
        (json!(true), json!(hash), json!(true)),
        "{verdict}"
    );
    // Signed by the log when first asked for, from the burn's delivery leaf: asked again, the
    // same receipt.
    assert_eq!(sector.status_of(&key, &hash).json()["burn_receipt"].as_str(), Some(confirmed));
    // Nobody else learns about it.
    let other = sector.key("enterprise");
    assert!(sector.status_of(&other, &hash).json().get("burn_receipt").is_none());
}
