//! Hex and base64 helpers.

use wire::{b64, b64url, hash_hex, parse_b64, parse_b64url_lenient, parse_hash_hex};

#[test]
fn hash_hex_is_lowercase_and_parses_either_case() {
    let h: [u8; 32] = core::array::from_fn(|i| i as u8 * 8);
    let s = hash_hex(&h);
    assert_eq!(s.len(), 64);
    assert_eq!(s, s.to_lowercase());
    assert_eq!(parse_hash_hex(&s).expect("lower"), h);
    assert_eq!(parse_hash_hex(&s.to_uppercase()).expect("upper"), h);
}

#[test]
fn hash_hex_of_wrong_length_or_alphabet_is_rejected() {
    let ok = "ab".repeat(32);
    for bad in [String::new(), "ab".repeat(31), "ab".repeat(33), format!("{}g", &ok[..63]), format!("0x{}", &ok[..62])]
    {
        assert!(parse_hash_hex(&bad).is_err(), "{bad}");
    }
}

#[test]
fn standard_base64_is_padded_and_strict() {
    assert_eq!(b64(b"ab"), "YWI=");
    assert_eq!(parse_b64("YWI=").expect("padded"), b"ab");
    assert!(parse_b64("YWI").is_err(), "padding required");
    assert!(parse_b64("YW-_").is_err(), "url alphabet rejected");
}

#[test]
fn base64url_is_unpadded_and_parses_with_or_without_padding() {
    let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
    assert_eq!(b64url(bytes), "-_-_AQ");
    assert_eq!(parse_b64url_lenient("-_-_AQ").expect("unpadded"), bytes);
    assert_eq!(parse_b64url_lenient("-_-_AQ==").expect("padded"), bytes);
    // The Python SDK re-encodes receipts as padded standard base64: both alphabets decode.
    assert_eq!(parse_b64url_lenient("+/+/AQ==").expect("standard alphabet"), bytes);
    assert!(parse_b64url_lenient("-_-_AQ!").is_err(), "foreign characters rejected");
    assert!(parse_b64url_lenient("-_-_A").is_err(), "impossible length");
}
