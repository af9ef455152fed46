//! Connection limits of the real relay binary (`httpserve`): a flood of idle connections larger
//! than the relay's descriptor limit does not stop `/health` from answering, the excess is
//! refused with a canned 503, and a slowloris client is cut off after the header timeout.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all ours).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}

/// Descriptors the relay gets in the flood test: fewer than the flood's connections, so a relay
/// that accepted them all would run out and stop answering.
const RELAY_FDS: u64 = 8_000;

#[test]
fn twenty_thousand_idle_connections_do_not_stop_health_and_the_excess_gets_503() {
    let sector = Sector::with_config_and_fd_limit("[connections]\nmax_connections_per_ip = 200\n", Some(RELAY_FDS));
    // As many connections as this process may open (20,000 descriptors here), from 20 source
    // addresses: each address gets its 200, the rest is refused.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // 21,000 descriptors if allowed (root may raise its hard limit), else the hard limit.
    if setrlimit(Resource::RLIMIT_NOFILE, 21_000, 21_000).is_err() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let flood = (hard.min(20_900) - 400) as usize;
    assert!(flood as u64 > RELAY_FDS, "this process may open only {hard} descriptors");
    let per_address = flood.div_ceil(20);
    let mut idle = Vec::with_capacity(flood);
    for i in 0..flood {
        let from = Ipv4Addr::new(127, 0, 1, 1 + (i / per_address) as u8);
        idle.push(connect_from(from, sector.addr).unwrap());
    }
    let reply = sector.get("/health", None);
    assert_eq!(reply.status, 200, "{}", reply.text());

    // The newest connection of a flooding address was refused: the canned 503, then closed.
    let mut refused = idle.pop().unwrap();
    refused.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too_many_connections"), "{answer:?}");
    drop(idle);
    assert_eq!(sector.get("/health", None).status, 200);

    // Every refusal is counted where an operator looks (the internal listener's /metrics).
    let scrape = call(&format!("{}/metrics", sector.internal), "GET", &[], None).unwrap().text();
    let refused: f64 = scrape
        .lines()
        .find(|l| l.starts_with("paramant_rejected_connections_total{service=\"relay\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(refused >= 1.0, "no refused connection counted:\n{scrape}");
}

/// Sends a request's headers one byte per `pace`; returns how long the relay let it go on.
fn slowloris(addr: SocketAddr, pace: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(pace)).unwrap();
    let header = b"GET /health HTTP/1.1\r\nHost: relay\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
    let mut buf = [0u8; 512];
    for byte in header {
        assert!(started.elapsed() < DEADLINE, "the relay kept a slowloris connection open for {DEADLINE:?}");
        if stream.write_all(&[*byte]).is_err() {
            return started.elapsed();
        }
        // The pause between two bytes: the slow client under test, not synchronisation.
        match stream.read(&mut buf) {
            Ok(_) => return started.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return started.elapsed(),
        }
    }
    unreachable!("the header never ends")
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_header_timeout() {
    let sector = Sector::with_config("[connections]\nheader_read_timeout_secs = 2\nidle_timeout_secs = 60\n");
    let lasted = slowloris(sector.addr, Duration::from_millis(100));
    assert!(lasted >= Duration::from_secs(2), "cut off before the header timeout: {lasted:?}");
    // The relay still serves.
    assert_eq!(sector.get("/health", None).status, 200);
}

#[test]
fn a_client_that_never_sends_a_byte_is_closed_after_the_header_timeout() {
    let sector = Sector::with_config("[connections]\nheader_read_timeout_secs = 1\n");
    let started = Instant::now();
    let mut silent = TcpStream::connect(sector.addr).unwrap();
    silent.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    assert!(matches!(read, Ok(0)) || read.is_err(), "expected the relay to close, got {read:?}");
    assert!(started.elapsed() >= Duration::from_secs(1) && started.elapsed() < DEADLINE);
}

/// Reads what the relay answers until it closes; a reset instead of an orderly close fails.
fn read_answer(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&answer)),
        }
    }
}

#[test]
fn a_refused_client_reads_the_503_even_when_it_already_sent_its_request() {
    let sector = Sector::with_config("[connections]\nmax_connections_per_ip = 2\n");
    let from = Ipv4Addr::new(127, 0, 2, 1);
    let _held: Vec<TcpStream> = (0..2).map(|_| connect_from(from, sector.addr).unwrap()).collect();
    // The third connection from that address is refused. Its client sends a request with a
    // body larger than a socket buffer before reading: a close with those bytes unread would
    // be a reset, which destroys the 503 before the client reads it.
    let mut refused = connect_from(from, sector.addr).unwrap();
    let body = vec![b'x'; 200_000];
    let head = format!("POST /v2/inbound HTTP/1.1\r\nHost: relay\r\nContent-Length: {}\r\n\r\n", body.len());
    refused.set_write_timeout(Some(DEADLINE)).unwrap();
    refused.write_all(head.as_bytes()).unwrap();
    refused.write_all(&body).unwrap();
    let answer = read_answer(&mut refused);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too_many_connections"), "{answer:?}");
}

#[test]
fn a_full_relay_closes_its_oldest_idle_connection_for_a_new_client_and_keeps_busy_ones() {
    const CAP: usize = 60;
    let sector = Sector::with_config(&format!("[connections]\nmax_connections = {CAP}\nmax_connections_per_ip = 4\n"));
    let key = sector.key("pro");
    // The oldest connection is busy: an upload whose body has not arrived yet. Its handler
    // runs (and asks for the body) once the relay answers `100 Continue`.
    let payload = payload(7, 1024);
    let body =
        serde_json::to_vec(&serde_json::json!({"hash": sha256_hex(&payload), "payload": b64(&payload)})).unwrap();
    let mut busy = connect_from(Ipv4Addr::new(127, 0, 3, 1), sector.addr).unwrap();
    let head = format!(
        "POST /v2/inbound HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    busy.write_all(head.as_bytes()).unwrap();
    let interim = read_answer_head(&mut busy);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    // Every other slot filled with idle connections from many addresses (4 per address).
    let mut idle = Vec::new();
    for i in 0..CAP - 1 {
        let from = Ipv4Addr::new(127, 0, 4 + (i / 4 / 250) as u8, 1 + (i / 4 % 250) as u8);
        idle.push(connect_from(from, sector.addr).unwrap());
    }
    // A new client is served: the oldest idle connection made room, the busy one did not.
    let reply = sector.get("/health", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(read_answer(&mut idle[0]), "", "the oldest idle connection is closed without an answer");
    busy.write_all(&body).unwrap();
    let answer = read_answer_head(&mut busy);
    assert!(answer.starts_with("HTTP/1.1 200"), "the busy upload was cut off: {answer:?}");
}

/// Reads until the end of a response head.
fn read_answer_head(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&answer)),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
