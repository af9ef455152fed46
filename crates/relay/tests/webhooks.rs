//! Outgoing webhooks: a device's upload is announced to its registered URL with an HMAC
//! signature, and by default no webhook may point at a private, loopback or plain-HTTP target.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

/// One HTTP request as a receiver saw it.
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on a loopback port: a thread that accepts one connection, reads one
/// request, answers 200 and hands the request over.
fn receiver() -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (&stream).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        let _ = tx.send(Received { request_line: request_line.trim_end().to_owned(), headers, body });
    });
    (port, rx)
}

#[test]
fn a_device_upload_posts_a_signed_blob_ready_event_to_its_webhook() {
    let sector = Sector::with_config("[webhook]\ndanger_allow_private_targets = true\n");
    let key = sector.key("enterprise");
    let (port, received) = receiver();
    let secret = "webhook-secret-1";
    let register =
        json!({ "device_id": "cam-1", "url": format!("http://127.0.0.1:{port}/hook?x=1"), "secret": secret });
    let reply = sector.post("/v2/webhook", Some(&key), &register);
    assert_eq!(reply.status, 200, "{}", reply.text());

    let data = payload(1, 777);
    let hash = sector.upload_ok(&key, &data, json!({ "meta": { "device_id": "cam-1" }, "ttl_ms": 60_000 }));
    let call = received.recv_timeout(DEADLINE).expect("the webhook was called");

    assert_eq!(call.request_line, "POST /hook?x=1 HTTP/1.1");
    assert_eq!(call.header("x-paramant-event"), Some("blob_ready"));
    assert_eq!(call.header("content-type"), Some("application/json"));
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&call.body);
    assert_eq!(
        call.header("x-paramant-sig"),
        Some(hex::encode(mac.finalize().into_bytes()).as_str()),
        "HMAC-SHA256 of the body"
    );
    let event: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        (event["event"].clone(), event["hash"].clone(), event["device_id"].clone()),
        (json!("blob_ready"), json!(hash), json!("cam-1"))
    );
    assert_eq!((event["size"].clone(), event["ttl_ms"].clone()), (json!(777), json!(60_000)));
    assert_eq!(sector.download(&key, &hash).body, data, "announcing burns nothing");
}

#[test]
fn webhooks_to_private_loopback_or_plain_http_targets_are_refused_by_default() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let refused = [
        "http://127.0.0.1:9/x",
        "http://hooks.example.com/x",
        "https://10.0.0.1/x",
        "https://127.0.0.1/x",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        // Ranges that embed or tunnel to IPv4 (which may be private), or are not routed.
        "https://[::ffff:1.1.1.1]/x",
        "https://[2002:7f00:1::1]/x",
        "https://[2002:a00:1::1]/x",
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x",
        "https://[64:ff9b::a00:1]/x",
        "https://[64:ff9b:1::a00:1]/x",
        "https://[::7f00:1]/x",
        "https://[2001:db8::1]/x",
        "https://[fec0::1]/x",
        // A host name is resolved at registration: this one is loopback.
        "https://localhost/x",
        "https://0.0.0.0/",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
        "https://",
        "https://hooks.example.com:99999/",
        "not a url",
    ];
    for url in refused {
        let reply = sector.post("/v2/webhook", Some(&key), &json!({ "device_id": "cam-1", "url": url }));
        assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "{url}: {}", reply.text());
    }
    // A public host name is accepted (registration does not connect anywhere).
    let ok = sector.post(
        "/v2/webhook",
        Some(&key),
        &json!({ "device_id": "cam-1", "url": "https://hooks.example.com/paramant" }),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad_device = json!({ "device_id": "bad id", "url": "https://hooks.example.com/x" });
    sector.post("/v2/webhook", Some(&key), &bad_device).assert_error(400, "bad_request");
    let long_secret = json!({ "device_id": "cam-1", "url": "https://hooks.example.com/x", "secret": "s".repeat(300) });
    sector.post("/v2/webhook", Some(&key), &long_secret).assert_error(400, "bad_request");
    sector
        .post("/v2/webhook", None, &json!({ "device_id": "cam-1", "url": "https://hooks.example.com/x" }))
        .assert_error(401, "unauthorized");
}
