//! The log's listeners run the shared `httpserve` loop: against the real `paramant-ctlog`
//! binary, a client that never finishes its request head is cut off after the header timeout on
//! both listeners, and a client address beyond its connection cap gets the canned 503.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn addr(origin: &str) -> String {
    origin.trim_start_matches("http://").to_owned()
}

/// Sends a request head that never ends; returns once the log closes the connection.
fn stalled_head_lasts(origin: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr(origin)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET /v2/sth HTTP/1.1\r\nHost: log\r\nX-Slow: ").unwrap();
    let mut buf = [0u8; 256];
    let read = stream.read(&mut buf);
    assert!(matches!(read, Ok(0)) || read.is_err(), "expected a close, got {read:?}");
    started.elapsed()
}

#[test]
fn both_listeners_cut_off_an_unfinished_request_head_and_cap_connections_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[connections]\nheader_read_timeout_secs = 1\nmax_connections_per_ip = 4\n";
    let log = Log::configure(dir.path(), "log.test", extra).start();
    for origin in [&log.public, &log.internal] {
        let lasted = stalled_head_lasts(origin);
        assert!(lasted >= Duration::from_secs(1) && lasted < Duration::from_secs(30), "{origin}: {lasted:?}");
    }
    // Four idle connections from 127.0.0.1 fill its share of the public listener.
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr(&log.public)).unwrap()).collect();
    let mut fifth = TcpStream::connect(addr(&log.public)).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = fifth.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"), "{answer:?}");
    drop(idle);
}
