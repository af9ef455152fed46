//! The relay registration: canonical JSON with a fixed purpose is what is signed; any change
//! to a field breaks the signature; malformed fields are refused before any signature work.

use logkey::LogSigningKey;
use wire::{REGISTRATION_PURPOSE, RelayRegistration, SignedRegistration};

fn body() -> RelayRegistration {
    RelayRegistration {
        url: "https://health.example.org".into(),
        sector: "health".into(),
        version: "0.1.0".into(),
        edition: "community".into(),
        timestamp: "2026-12-06T07:00:00.000Z".into(),
    }
}

#[test]
fn signed_bytes_are_canonical_json_with_the_purpose() {
    let bytes = String::from_utf8(body().signed_bytes()).unwrap();
    assert_eq!(
        bytes,
        format!(
            r#"{{"edition":"community","purpose":"{REGISTRATION_PURPOSE}","sector":"health","timestamp":"2026-12-06T07:00:00.000Z","url":"https://health.example.org","version":"0.1.0"}}"#
        )
    );
}

#[test]
fn a_signed_registration_verifies_and_any_changed_field_does_not() {
    let key = LogSigningKey::from_seed(&[9; 32]);
    let signed = body().sign(&key);
    assert_eq!(signed.verify().unwrap(), key.verifying_key());
    let json = serde_json::to_value(&signed).unwrap();
    for field in ["url", "sector", "version", "edition"] {
        let mut tampered = json.clone();
        tampered[field] = serde_json::json!(format!("{}x", json[field].as_str().unwrap()));
        let tampered: SignedRegistration = serde_json::from_value(tampered).unwrap();
        assert!(matches!(tampered.verify(), Err(wire::Error::Signature(_))), "{field}");
    }
    let mut bad_url = body();
    bad_url.url = "ftp://x".into();
    assert!(matches!(bad_url.sign(&key).verify(), Err(wire::Error::InvalidField { field: "url", .. })));
}
