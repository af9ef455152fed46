//! Uploads under hostile clients, against the real relay binary: strangers are refused from
//! the headers, bodies in flight count against the blob budget (the relay's RSS stays within
//! the budget + 64 MiB while hundreds of connections hold nearly complete 7 MB bodies), a slow
//! body is cut off, a malformed chunked body is a 400, and one key cannot fill the budget.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

fn upload_head(key: &str, length: usize) -> String {
    format!(
        "POST /v2/inbound HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// Reads whatever answer arrived (the relay answers refusals before reading the body).
fn answer_of(stream: &mut TcpStream) -> Option<(u16, Value)> {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    if bytes.is_empty() {
        return None;
    }
    let (status, body) = parse_response(&bytes);
    Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn vm_rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn a_stranger_is_refused_before_a_byte_of_the_body_is_read() {
    let sector = Sector::start();
    let mut stream = TcpStream::connect(sector.addr).unwrap();
    // The headers promise 7 MB; none of it is sent: the answer must come anyway.
    stream.write_all(upload_head("pgp_bogus", 7_000_000).as_bytes()).unwrap();
    let (status, body) = answer_of(&mut stream).expect("an answer without the body");
    assert_eq!((status, body["error"].clone()), (401, json!("unauthorized")), "{body}");

    let key = sector.key("enterprise");
    let mut stream = TcpStream::connect(sector.addr).unwrap();
    stream.write_all(upload_head(&key, 50_000_000).as_bytes()).unwrap();
    let (status, body) = answer_of(&mut stream).expect("an answer without the body");
    assert_eq!((status, body["error"].clone()), (413, json!("payload_too_large")), "{body}");
}

#[test]
fn hundreds_of_nearly_complete_7_mb_bodies_keep_the_relay_within_budget_plus_64_mib() {
    const BUDGET: u64 = 32 * MIB;
    // ~7 MB: the JSON of a payload just under the 5 MiB limit.
    const BODY: usize = 6_990_000;
    let sector = Sector::with_config(&format!(
        "[limits]\nblob_budget_bytes = {BUDGET}\n\
         [transfers]\nmax_key_share_percent = 100\nconcurrent_uploads_per_key = 300\nconcurrent_uploads_per_ip = 300\n\
         concurrent_uploads = 300\n"
    ));
    let key = sector.key("enterprise");
    let pid = sector.relay_pid().as_raw();
    // A valid JSON prefix: the relay decodes it as it arrives, and waits for the rest.
    let mut body = format!("{{\"hash\":\"{}\",\"payload\":\"", "0".repeat(64)).into_bytes();
    body.resize(BODY - 1, b'A');
    let mut held = Vec::new();
    let (mut admitted, mut refused, mut strangers) = (0, 0, 0);
    for i in 0..300 {
        let from = Ipv4Addr::new(127, 0, 2, 1 + (i % 50) as u8);
        let mut stream = connect_from(from, sector.addr);
        // A third are strangers with a key that does not authenticate.
        let k = if i % 3 == 0 { "pgp_not_a_key" } else { key.as_str() };
        stream.write_all(upload_head(k, BODY).as_bytes()).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        // All but the last byte; a refused upload is answered and closed before it is read.
        match stream.write_all(&body) {
            Ok(()) => {
                admitted += 1;
                held.push(stream);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The relay stopped reading: it answered already.
                let (status, answer) = answer_of(&mut stream).expect("an answer");
                match status {
                    401 => strangers += 1,
                    503 => refused += 1,
                    other => panic!("unexpected {other}: {answer}"),
                }
            }
            Err(_) => {
                let (status, answer) = answer_of(&mut stream).unwrap_or((0, Value::Null));
                match status {
                    401 => strangers += 1,
                    503 | 0 => refused += 1,
                    other => panic!("unexpected {other}: {answer}"),
                }
            }
        }
    }
    let rss = vm_rss_bytes(pid);
    eprintln!("admitted {admitted}, refused {refused}, strangers {strangers}, relay RSS {} MiB", rss / MIB);
    assert!(admitted >= 1 && admitted <= (BUDGET / (5 * MIB)) as usize, "admitted {admitted}");
    assert!(rss <= BUDGET + 64 * MIB, "relay RSS {} MiB with {admitted} bodies held", rss / MIB);
    assert_eq!(sector.get("/health", None).status, 200);

    // Once they are gone, their reservations are too: a full-size upload fits again.
    drop(held);
    let data = payload(1, 5 * MIB as usize);
    wait_until("the reservations to be released", || {
        (sector.upload(&key, &data, json!({})).status == 200).then_some(())
    });
    assert!(vm_rss_bytes(pid) <= BUDGET + 64 * MIB);
}

#[test]
fn a_body_slower_than_the_minimum_rate_is_cut_off_with_408() {
    let sector = Sector::with_config("[transfers]\nmin_upload_bytes_per_sec = 1000\nbody_grace_secs = 1\n");
    let key = sector.key("enterprise");
    let mut stream = TcpStream::connect(sector.addr).unwrap();
    // 2,000 bytes at 1,000 B/s + 1 s grace: 3 s. Ten bytes are sent, then nothing.
    stream.write_all(upload_head(&key, 2_000).as_bytes()).unwrap();
    stream.write_all(b"{\"hash\":\"a").unwrap();
    let (status, body) = answer_of(&mut stream).expect("an answer");
    assert_eq!((status, body["error"].clone()), (408, json!("body_timeout")), "{body}");
}

#[test]
fn a_malformed_chunked_body_is_400_not_413() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    for path in ["/v2/inbound", "/v2/verify-receipt"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = sector.raw(&head, b"5\r\n{\"a\":\r\nzz-not-a-size\r\n\r\n");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, body["error"].clone()), (400, json!("bad_request")), "{path}: {body}");
    }
}

#[test]
fn one_key_cannot_fill_the_shared_budget_alone() {
    let sector = Sector::with_config(
        "[limits]\nmax_blob_bytes = 1048576\nblob_budget_bytes = 4194304\n[transfers]\nmax_key_share_percent = 50\n",
    );
    let (greedy, other) = (sector.key("enterprise"), sector.key("enterprise"));
    let blob = |n| payload(n, 1 << 20);
    sector.upload_ok(&greedy, &blob(1), json!({}));
    sector.upload_ok(&greedy, &blob(2), json!({}));
    // Refused from the headers, before the 1.4 MB body is read (a client writing the whole body
    // first may see its connection reset instead): read the answer without sending the body.
    let mut stream = TcpStream::connect(sector.addr).unwrap();
    stream.write_all(upload_head(&greedy, 1_400_000).as_bytes()).unwrap();
    let (status, body) = answer_of(&mut stream).expect("an answer without the body");
    assert_eq!((status, body["error"].clone()), (503, json!("key_share_full")), "{body}");
    // The rest of the budget is still there for everyone else.
    sector.upload_ok(&other, &blob(4), json!({}));
    sector.upload_ok(&other, &blob(5), json!({}));
}

/// Minor page faults of process `pid` so far (`/proc/PID/stat`, field 10).
fn minor_faults(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split_whitespace().nth(7).unwrap().parse().unwrap()
}

#[test]
fn large_payload_buffers_are_reused_within_the_budget_and_returned_when_traffic_stops() {
    const BUDGET: u64 = 48 * MIB;
    const SIZE: usize = 4 << 20;
    let sector = Sector::with_config(&format!(
        "[limits]\nblob_budget_bytes = {BUDGET}\n[transfers]\nmax_key_share_percent = 100\n"
    ));
    let key = sector.key("enterprise");
    let pid = sector.relay_pid().as_raw();
    let idle_rss = vm_rss_bytes(pid);
    let cycle = |seed: u64| {
        let data = payload(seed, SIZE);
        let hash = sector.upload_ok(&key, &data, json!({}));
        let reply = sector.download(&key, &hash);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body.len(), SIZE);
    };
    for seed in 0..5 {
        cycle(seed);
    }
    // A burned blob's buffer serves the next upload of its size: no fresh pages to fault in
    // (without the pool, each cycle faults in all 1,024 pages of its payload).
    let before = minor_faults(pid);
    for seed in 5..15 {
        cycle(seed);
        assert!(vm_rss_bytes(pid) <= BUDGET + 64 * MIB);
    }
    let faults = minor_faults(pid) - before;
    assert!(faults < 10 * 1024 / 4, "{faults} minor faults in 10 cycles of 4 MiB");

    // Blobs that fill the budget are within it, kept buffers included.
    let stored: Vec<String> =
        (100..110).map(|seed| sector.upload_ok(&key, &payload(seed, SIZE), json!({ "ttl_ms": 1000 }))).collect();
    assert_eq!(stored.len(), 10);
    assert!(vm_rss_bytes(pid) <= BUDGET + 64 * MIB, "{} MiB", vm_rss_bytes(pid) / MIB);

    // Once they have expired and nobody uploads, the kept buffers go back to the kernel.
    wait_until("the relay to give the payload memory back", || {
        (vm_rss_bytes(pid) <= idle_rss + 16 * MIB).then_some(())
    });
}
