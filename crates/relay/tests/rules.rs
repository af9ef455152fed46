//! The relay's rules under hostile clients: request limits that a bogus key or a flood of
//! source addresses cannot get around or turn into a lockout (M3, M9), and drops that can
//! neither squat a content hash (M8) nor leak their lookup id into the public log (M7).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

#[test]
fn a_key_that_does_not_authenticate_counts_against_the_address_limit() {
    let sector = Sector::with_config("[limits]\nrequests_per_ip_per_minute = 6\n");
    let key = sector.key("community");
    let bogus = "pgp_bogus_key_that_was_never_minted";
    for i in 0..6 {
        // Alternate anonymous and bogus-keyed requests: both count against the address.
        let reply = if i % 2 == 0 { sector.get("/health", None) } else { sector.get("/health", Some(bogus)) };
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    for _ in 0..20 {
        sector.get("/health", Some(bogus)).assert_error(429, "rate_limited");
        sector.get("/v2/check-key", Some(bogus)).assert_error(429, "rate_limited");
    }
    sector.get("/health", None).assert_error(429, "rate_limited");
    // A valid key is limited per key, not per address.
    let keyed = sector.get("/health", Some(&key));
    assert_eq!(keyed.status, 200, "{}", keyed.text());
    assert_eq!(sector.get("/v2/check-key", Some(&key)).json()["valid"], true);
}

/// A `GET` to a path that does not exist, from the loopback source address `from`: the status.
fn get_from(relay: SocketAddr, from: Ipv4Addr) -> u16 {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0))).unwrap();
    let SocketAddr::V4(to) = relay else { panic!("the relay listens on IPv4 loopback") };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)).unwrap();
    let mut stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"GET /nowhere HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    parse_response(&answer).0
}

#[test]
fn a_hundred_thousand_source_addresses_do_not_lock_out_a_new_one() {
    // The old per-address table held 100,000 addresses and then refused every new one.
    const ADDRESSES: u32 = 100_001;
    const THREADS: u32 = 4;
    let sector = Sector::start();
    let relay = sector.addr;
    let refused: u32 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut refused = 0;
                    // 127.1.0.0 upwards: every address its own, none the test's 127.0.0.1.
                    for i in (t..ADDRESSES).step_by(THREADS as usize) {
                        let from = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + i);
                        if get_from(relay, from) == 429 {
                            refused += 1;
                        }
                    }
                    refused
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(refused, 0, "one request per address is within every address's limit");
    assert_eq!(get_from(relay, Ipv4Addr::new(127, 254, 254, 254)), 404, "a never-seen address is served");
    let reply = sector.get("/health", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The blob hash a signed receipt names.
fn receipt_blob_hash(reply: &Reply) -> String {
    let header = reply.header("x-paramant-receipt").expect("receipt header");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).unwrap();
    serde_json::from_slice::<Value>(&json).unwrap()["blob_hash"].as_str().unwrap().to_owned()
}

#[test]
fn a_drop_lookup_id_never_appears_in_the_public_log() {
    let sector = Sector::start();
    let key = sector.key("professional");
    let lookup = sha256_hex(b"the mnemonic's lookup id");
    let contents = payload(7, 3000);
    let drop = json!({ "hash": lookup, "payload": b64(&contents), "max_views": 3, "meta": { "drop": true } });
    let reply = sector.post("/v2/inbound", Some(&key), &drop);
    assert_eq!((reply.status, reply.json()["hash"].clone()), (200, json!(lookup)), "{}", reply.text());

    let first = sector.get(&format!("/v2/outbound/{lookup}"), None);
    assert_eq!((first.status, first.body.clone()), (200, contents.clone()), "the drop is picked up by its id");
    assert_eq!(first.header("x-paramant-burned").as_deref(), Some("false"), "two views are left");
    assert_eq!(receipt_blob_hash(&first), sha256_hex(&contents), "the receipt names the payload, not the id");
    let delivered = wait_until("the delivery to be logged", || {
        let entries = sector.log_entries();
        entries.iter().any(|e| e["type"] == "delivery").then_some(entries)
    });

    // Everything an auditor can read: no entry carries the id, and nothing in it downloads the drop.
    let public = serde_json::to_string(&delivered).unwrap();
    assert!(!public.contains(&lookup), "the lookup id is in the public log: {public}");
    for entry in &delivered {
        for value in entry.as_object().unwrap().values().filter_map(Value::as_str) {
            if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                let attempt = sector.get(&format!("/v2/outbound/{value}"), None);
                assert_ne!(attempt.status, 200, "{value} from the log downloads something");
            }
        }
    }
    let second = sector.get(&format!("/v2/outbound/{lookup}"), None);
    assert_eq!((second.status, second.body), (200, contents), "the drop itself is still there");
}

#[test]
fn no_key_can_squat_another_blobs_hash_as_a_drop() {
    let sector = Sector::start();
    let (attacker, victim) = (sector.key("professional"), sector.key("professional"));
    let real = payload(1, 2000);
    let real_hash = sha256_hex(&real);
    let fake = payload(2, 2000);

    // The attacker takes the hash of a blob the victim is about to upload, as a drop.
    let squat = json!({ "hash": real_hash, "payload": b64(&fake), "max_views": 5, "meta": { "drop": true } });
    let reply = sector.post("/v2/inbound", Some(&attacker), &squat);
    assert_eq!(reply.status, 200, "drops have their own namespace: {}", reply.text());

    let upload = sector.upload(&victim, &real, json!({}));
    assert_eq!((upload.status, upload.json()["hash"].clone()), (200, json!(real_hash)), "{}", upload.text());
    let got = sector.download(&victim, &real_hash);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, real, "the owner gets the real bytes, not the attacker's");
    assert_eq!(got.header("x-paramant-hash"), Some(real_hash.clone()));
    assert_eq!(receipt_blob_hash(&got), real_hash);

    // Whoever gets the attacker's bytes under that path is told what they are.
    let anonymous = sector.get(&format!("/v2/outbound/{real_hash}"), None);
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    assert_eq!(anonymous.body, fake);
    assert_eq!(anonymous.header("x-paramant-hash"), Some(sha256_hex(&fake)));
    assert_eq!(receipt_blob_hash(&anonymous), sha256_hex(&fake), "no receipt vouches for the wrong bytes");

    // The other order: a content blob first, then a drop under its hash, changes nothing for it.
    let second = payload(3, 500);
    let second_hash = sector.upload_ok(&victim, &second, json!({}));
    let late = json!({ "hash": second_hash, "payload": b64(&fake), "meta": { "drop": true } });
    assert_eq!(sector.post("/v2/inbound", Some(&attacker), &late).status, 200);
    assert_eq!(sector.download(&victim, &second_hash).body, second);
    // A drop announced on a device is refused: drops are anonymous.
    let device_drop =
        json!({ "hash": sha256_hex(b"x"), "payload": b64(b"x"), "meta": { "drop": true, "device_id": "d" } });
    sector.post("/v2/inbound", Some(&attacker), &device_drop).assert_error(400, "bad_request");
}
