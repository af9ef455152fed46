//! The offline `plk_` token: tokens made by Node's crypto in the reference's format verify;
//! forged, truncated, expired, wrongly-keyed and malformed ones grant nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use license::keys::TrustRoots;
use license::state::{self, Edition, UserLimit};
use license::token::{self, LicenseToken, Payload};
use proptest::prelude::*;

const NOW: u64 = 1_796_000_000_000; // 2026-12-01

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn seed() -> [u8; 32] {
    hex::decode(fixture("test-ed25519-license-signing.seed.hex").trim()).expect("hex").try_into().expect("32")
}

fn roots() -> TrustRoots {
    let mut roots = TrustRoots::embedded();
    roots.add_ed25519_hex(&token::public_key_hex(&seed())).expect("key");
    roots
}

fn node_token(name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&fixture("reference-tokens.json")).expect("json");
    assert_eq!(v["public_key_hex"], token::public_key_hex(&seed()), "the Node vector was signed by the fixture key");
    v["tokens"][name].as_str().expect("token").to_owned()
}

#[test]
fn a_token_issued_by_node_in_the_reference_format_verifies() {
    let license = LicenseToken::parse(&node_token("unlimited")).unwrap().verify(&roots(), NOW).unwrap();
    assert_eq!(license.max_users, UserLimit::Unlimited);
    assert_eq!(license.issued_to, "Acme Corp");
    let fifty = LicenseToken::parse(&node_token("fifty")).unwrap().verify(&roots(), NOW).unwrap();
    assert_eq!(fifty.max_users, UserLimit::Limited(50));
    assert_eq!(fifty.expires_at_ms, token::parse_date("2099-12-31T23:59:59.000Z").unwrap());
}

#[test]
fn our_issued_token_round_trips_and_is_bound_to_the_key() {
    let payload = Payload {
        max_keys: UserLimit::Limited(12),
        expires_at: "2030-01-01".into(),
        issued_to: "Example".into(),
        issued_at: Some("2026-01-01T00:00:00.000Z".into()),
    };
    let text = token::issue(&seed(), &payload).unwrap();
    let parsed = LicenseToken::parse(&text).unwrap();
    assert_eq!(parsed.verified_payload(&roots()).unwrap(), payload);
    // Only the embedded reference key: our fixture key is not trusted.
    assert_eq!(parsed.verify(&TrustRoots::embedded(), NOW), Err(license::Error::Signature));
}

#[test]
fn an_expired_token_is_community() {
    let t = node_token("expired");
    assert!(matches!(LicenseToken::parse(&t).unwrap().verify(&roots(), NOW), Err(license::Error::Expired(_))));
    let e = state::evaluate(Some(&t), None, &roots(), None, NOW);
    assert_eq!((e.edition, e.max_users), (Edition::Community, UserLimit::Limited(5)));
    assert!(e.notice.unwrap().contains("expired"));
}

#[test]
fn expiry_is_exact_to_the_millisecond() {
    let t = node_token("fifty");
    let end = token::parse_date("2099-12-31T23:59:59.000Z").unwrap();
    let parsed = LicenseToken::parse(&t).unwrap();
    assert!(parsed.verify(&roots(), end - 1).is_ok());
    assert!(parsed.verify(&roots(), end).is_err());
}

#[test]
fn a_token_issued_in_the_future_beyond_the_clock_skew_is_refused() {
    let payload = Payload {
        max_keys: UserLimit::Unlimited,
        expires_at: "2099-01-01".into(),
        issued_to: "Time Traveller".into(),
        issued_at: Some(wire::iso8601_ms(NOW + license::MAX_CLOCK_SKEW_MS + 1000)),
    };
    let parsed = LicenseToken::parse(&token::issue(&seed(), &payload).unwrap()).unwrap();
    assert!(matches!(parsed.verify(&roots(), NOW), Err(license::Error::FromTheFuture(_))));
    // Within the skew it is fine.
    assert!(parsed.verify(&roots(), NOW + 2000).is_ok());
}

#[test]
fn malformed_tokens_are_refused_with_a_reason() {
    let good = node_token("fifty");
    let cases: Vec<(String, license::Error)> = vec![
        ("pgp_abc".into(), license::Error::Prefix),
        ("plk_".into(), license::Error::Encoding),
        ("plk_ab!cd".into(), license::Error::Encoding),
        ("plk_AAAA".into(), license::Error::Truncated(3)),
        (format!("plk_{}", "A".repeat(5000)), license::Error::TooLong(5004)),
        (good[..good.len() - 10].to_owned(), license::Error::Signature),
    ];
    for (text, expected) in cases {
        let got = LicenseToken::parse(&text).and_then(|t| t.verify(&roots(), NOW).map(|_| ()));
        assert_eq!(got, Err(expected), "{text:.40}");
    }
}

#[test]
fn signed_but_malformed_payloads_grant_nothing() {
    for payload in [
        r#"{"max_keys":"NaN","expires_at":"2099-01-01","issued_to":"x"}"#,
        r#"{"max_keys":-3,"expires_at":"2099-01-01","issued_to":"x"}"#,
        r#"{"max_keys":5.5,"expires_at":"2099-01-01","issued_to":"x"}"#,
        r#"{"max_keys":5,"expires_at":"next tuesday","issued_to":"x"}"#,
        r#"{"max_keys":5,"expires_at":"2099-01-01","issued_to":""}"#,
        r#"{"max_keys":5,"issued_to":"x"}"#,
        "not json",
    ] {
        let text = token::issue_raw(&seed(), payload.as_bytes());
        let e = state::evaluate(Some(&text), None, &roots(), None, NOW);
        assert_eq!(e.edition, Edition::Community, "{payload}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any change to the decoded token (payload or signature) makes it Community.
    #[test]
    fn any_flipped_bit_is_community(index in 0usize..1000, bit in 0u8..8) {
        let text = node_token("unlimited");
        let mut bytes = wire::parse_b64url_lenient(&text[4..]).unwrap();
        let i = index % bytes.len();
        bytes[i] ^= 1 << bit;
        let forged = format!("plk_{}", wire::b64url(&bytes));
        let e = state::evaluate(Some(&forged), None, &roots(), None, NOW);
        prop_assert_eq!(e.edition, Edition::Community);
        prop_assert_eq!(e.max_users, UserLimit::Limited(5));
    }

    /// Arbitrary text never panics and never grants more than Community.
    #[test]
    fn arbitrary_text_is_community(text in "plk_[A-Za-z0-9_=-]{0,400}") {
        let e = state::evaluate(Some(&text), None, &roots(), None, NOW);
        prop_assert_eq!(e.edition, Edition::Community);
    }
}
