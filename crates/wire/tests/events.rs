//! Log events: leaf hash vectors (expected values computed independently with Python's
//! hashlib and node's crypto/JSON.stringify), type bytes, JSON shape, validation.

use sha2::Digest as _;
use wire::{Error, LogEvent, MAX_FIELD_LEN};

const TS: &str = "2026-04-15T09:00:00.000Z";

fn transfer() -> LogEvent {
    LogEvent::Transfer {
        blob_hash: hex::encode(sha2::Sha256::digest(b"hello paramant")),
        sector: "health".into(),
        timestamp: TS.into(),
    }
}

#[test]
fn transfer_leaf_hash_matches_the_reference_formula() {
    // python3 -c "import hashlib; bh=hashlib.sha256(b'hello paramant').digest();
    //   print(hashlib.sha3_256(b'\x02'+bh+hashlib.sha3_256(b'health').digest()
    //   +b'2026-04-15T09:00:00.000Z').hexdigest())"
    const EXPECTED: &str = "07f439537969815877c418e1e1d5d254957ed4b7a3944d8f4d61c168cc68f081";
    let event = transfer();
    assert_eq!(hex::encode(event.leaf_hash().expect("leaf")), EXPECTED);

    // The same, computed here with sha3 directly.
    let mut pre = vec![0x02u8];
    pre.extend_from_slice(&sha2::Sha256::digest(b"hello paramant"));
    pre.extend_from_slice(&sha3::Sha3_256::digest(b"health"));
    pre.extend_from_slice(TS.as_bytes());
    assert_eq!(event.leaf_preimage().expect("preimage"), pre);
    assert_eq!(hex::encode(sha3::Sha3_256::digest(&pre)), EXPECTED);
}

#[test]
fn transfer_leaf_accepts_uppercase_hex_but_not_a_malformed_hash() {
    let LogEvent::Transfer { blob_hash, .. } = transfer() else { unreachable!() };
    let upper =
        LogEvent::Transfer { blob_hash: blob_hash.to_uppercase(), sector: "health".into(), timestamp: TS.into() };
    assert_eq!(upper.leaf_hash().expect("leaf"), transfer().leaf_hash().expect("leaf"));
    let bad = LogEvent::Transfer { blob_hash: "abc".into(), sector: "health".into(), timestamp: TS.into() };
    assert!(matches!(bad.leaf_hash(), Err(Error::HashHex { .. })));
}

#[test]
fn other_events_hash_their_type_byte_and_whole_canonical_record() {
    // Expected values: python3 json.dumps(ev, sort_keys=True, separators=(',',':'),
    // ensure_ascii=False), then hashlib.sha3_256(type_byte + json).hexdigest(); the admin
    // action also checked with node's JSON.stringify and crypto.createHash("sha3-256").
    let cases = [
        (
            LogEvent::DeviceRegistered {
                device_id: "receiver-001".into(),
                ecdh_pub: "BASE64ECDH==".into(),
                kyber_pub: "BASE64KYBER==".into(),
                dsa_pub: None,
                sector: "health".into(),
                timestamp: TS.into(),
            },
            0x03,
            r#"{"device_id":"receiver-001","ecdh_pub":"BASE64ECDH==","kyber_pub":"BASE64KYBER==","sector":"health","timestamp":"2026-04-15T09:00:00.000Z","type":"device_registered"}"#,
            "953a93b1efc08f871a1b7fc1c4654e8489b90cda3f3f7970a8394856a690e2ad",
        ),
        (
            LogEvent::DidRegistered {
                did: "did:paramant:abc".into(),
                device_id: "receiver-001".into(),
                ecdh_pub: "E".into(),
                dsa_pub: None,
                sector: "legal".into(),
                timestamp: TS.into(),
            },
            0x04,
            r#"{"device_id":"receiver-001","did":"did:paramant:abc","dsa_pub":null,"ecdh_pub":"E","sector":"legal","timestamp":"2026-04-15T09:00:00.000Z","type":"did_registered"}"#,
            "44e71205322d62cd8fe0520e002405abbff1b163b7be0bdd9a1d99a5b1ed4534",
        ),
        (
            LogEvent::AdminAction {
                action: "api_key_revoked".into(),
                actor: "admin".into(),
                subject: "pgp_\u{2026}".into(),
                detail: "line1\nline2 \"q\" \u{e9}".into(),
                timestamp: TS.into(),
            },
            0x06,
            "{\"action\":\"api_key_revoked\",\"actor\":\"admin\",\"detail\":\"line1\\nline2 \\\"q\\\" \u{e9}\",\"subject\":\"pgp_\u{2026}\",\"timestamp\":\"2026-04-15T09:00:00.000Z\",\"type\":\"admin_action\"}",
            "a7dd3aaf52ce15e1f1a5995043b9e470cc1bed9d23f182ab25da68b34410beeb",
        ),
    ];
    for (event, type_byte, record, leaf) in cases {
        assert_eq!(event.type_byte(), type_byte);
        let pre = event.leaf_preimage().expect("preimage");
        assert_eq!(pre[0], type_byte);
        assert_eq!(std::str::from_utf8(&pre[1..]).expect("utf-8"), record);
        assert_eq!(hex::encode(event.leaf_hash().expect("leaf")), leaf);
        // An auditor holding the JSON entry can recompute the leaf.
        let json = serde_json::to_string(&event).expect("json");
        let back: LogEvent = serde_json::from_str(&json).expect("parse");
        assert_eq!(hex::encode(back.leaf_hash().expect("leaf")), leaf);
    }
}

#[test]
fn type_bytes_are_distinct_and_never_0x00_or_0x01() {
    let events = [
        transfer(),
        LogEvent::DeviceRegistered {
            device_id: "d".into(),
            ecdh_pub: "e".into(),
            kyber_pub: "k".into(),
            dsa_pub: None,
            sector: "s".into(),
            timestamp: TS.into(),
        },
        LogEvent::DidRegistered {
            did: "x".into(),
            device_id: "d".into(),
            ecdh_pub: "e".into(),
            dsa_pub: Some("p".into()),
            sector: "s".into(),
            timestamp: TS.into(),
        },
        LogEvent::Delivery { blob_hash: "00".repeat(32), sector: "s".into(), burned: true, timestamp: TS.into() },
        LogEvent::AdminAction {
            action: "a".into(),
            actor: "b".into(),
            subject: "c".into(),
            detail: String::new(),
            timestamp: TS.into(),
        },
        LogEvent::LicenseEvent {
            action: "check_in".into(),
            role: "relay".into(),
            detail: String::new(),
            timestamp: TS.into(),
        },
    ];
    let bytes: Vec<u8> = events.iter().map(LogEvent::type_byte).collect();
    assert_eq!(bytes, [0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
    for e in &events {
        e.validate().unwrap_or_else(|err| panic!("{e:?}: {err}"));
        assert_eq!(e.timestamp(), TS);
    }
}

#[test]
fn events_serialize_with_a_snake_case_type_tag_and_reject_unknown_fields() {
    let json = serde_json::to_value(LogEvent::Delivery {
        blob_hash: "ab".repeat(32),
        sector: "iot".into(),
        burned: false,
        timestamp: TS.into(),
    })
    .expect("json");
    assert_eq!(json["type"], "delivery");
    assert_eq!(json["burned"], false);
    let license = serde_json::to_value(LogEvent::LicenseEvent {
        action: "a".into(),
        role: "r".into(),
        detail: "d".into(),
        timestamp: TS.into(),
    })
    .expect("json");
    assert_eq!(license["type"], "license_event");

    let mut extra = json.clone();
    extra["note"] = "x".into();
    assert!(serde_json::from_value::<LogEvent>(extra).is_err());
    let mut unknown_type = json;
    unknown_type["type"] = "burn".into();
    assert!(serde_json::from_value::<LogEvent>(unknown_type).is_err());
}

#[test]
fn validation_rejects_long_fields_bad_hashes_bad_timestamps_and_empty_ids() {
    let long = "x".repeat(MAX_FIELD_LEN + 1);
    let at_limit = "x".repeat(MAX_FIELD_LEN);
    let admin = |detail: &str| LogEvent::AdminAction {
        action: "a".into(),
        actor: "b".into(),
        subject: "c".into(),
        detail: detail.into(),
        timestamp: TS.into(),
    };
    admin(&at_limit).validate().expect("at the limit");
    assert!(matches!(admin(&long).validate(), Err(Error::FieldTooLong { field: "detail", .. })));

    let delivery = |blob_hash: String, timestamp: &str| LogEvent::Delivery {
        blob_hash,
        sector: "health".into(),
        burned: true,
        timestamp: timestamp.into(),
    };
    assert!(matches!(delivery("AB".repeat(32), TS).validate(), Err(Error::InvalidField { field: "blob_hash", .. })));
    assert!(matches!(delivery("ab".repeat(31), TS).validate(), Err(Error::InvalidField { field: "blob_hash", .. })));
    assert!(matches!(delivery("ab".repeat(32), "2026-04-15T09:00:00Z").validate(), Err(Error::Timestamp { .. })));

    let device = LogEvent::DeviceRegistered {
        device_id: String::new(),
        ecdh_pub: "e".into(),
        kyber_pub: "k".into(),
        dsa_pub: None,
        sector: "s".into(),
        timestamp: TS.into(),
    };
    assert!(matches!(device.validate(), Err(Error::InvalidField { field: "device_id", .. })));

    let did = LogEvent::DidRegistered {
        did: "x".into(),
        device_id: "d".into(),
        ecdh_pub: "e".into(),
        dsa_pub: Some(long),
        sector: "s".into(),
        timestamp: TS.into(),
    };
    assert!(matches!(did.validate(), Err(Error::FieldTooLong { field: "dsa_pub", .. })));
}
