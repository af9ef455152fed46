//! Canonical JSON matches JavaScript's `JSON.stringify` of a key-sorted object byte for byte,
//! except that integers stay exact over the whole u64 range. Expected strings were produced
//! with node v20 (`JSON.stringify`), as noted on each test.

use serde_json::{Value, json};
use wire::{Error, canonical_json, canonical_json_of};

fn canon(v: &Value) -> String {
    String::from_utf8(canonical_json(v).expect("canonical")).expect("utf-8")
}

#[test]
fn keys_are_sorted_at_every_level_without_whitespace() {
    let v = json!({"b": 1, "a": [true, null, {"z": "x", "y": {"d": 1, "c": 2}}], "c": {}});
    assert_eq!(canon(&v), r#"{"a":[true,null,{"y":{"c":2,"d":1},"z":"x"}],"b":1,"c":{}}"#);
}

#[test]
fn keys_sort_by_utf16_code_units_like_js() {
    // node: const o={}; for (const k of ["b","a","é","😀","\uffff","Z","","aa"].sort()) o[k]=1;
    //       JSON.stringify(o)  ->  {"":1,"Z":1,"a":1,"aa":1,"b":1,"é":1,"😀":1,"￿":1}
    // U+1F600 (surrogates D83D DE00) sorts before U+FFFF in JS, after it in UTF-8 byte order.
    let mut map = serde_json::Map::new();
    for k in ["b", "a", "é", "😀", "\u{ffff}", "Z", "", "aa"] {
        map.insert(k.to_owned(), json!(1));
    }
    assert_eq!(
        canon(&Value::Object(map)),
        "{\"\":1,\"Z\":1,\"a\":1,\"aa\":1,\"b\":1,\"\u{e9}\":1,\"\u{1f600}\":1,\"\u{ffff}\":1}"
    );
}

#[test]
fn strings_are_escaped_exactly_like_json_stringify() {
    // node: JSON.stringify("a\"b\\c\b\f\n\r\t\u0000\u0001\u001f\u007f\u0080é😀\u2028\u2029</script>")
    let input = "a\"b\\c\u{8}\u{c}\n\r\t\u{0}\u{1}\u{1f}\u{7f}\u{80}é😀\u{2028}\u{2029}</script>";
    let expected =
        "\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\u{7f}\u{80}\u{e9}\u{1f600}\u{2028}\u{2029}</script>\"";
    assert_eq!(canon(&json!(input)), expected);
    // Keys are escaped the same way.
    assert_eq!(canon(&json!({ input: 0 })), format!("{{{expected}:0}}"));
}

#[test]
fn integers_are_exact_over_the_whole_u64_and_i64_range() {
    // JS would print 18446744073709552000 here; DESIGN §6: never go through f64.
    let v: Value =
        serde_json::from_str(r#"{"max":18446744073709551615,"min":-9223372036854775808,"big":9007199254740993}"#)
            .expect("parse");
    assert_eq!(canon(&v), r#"{"big":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808}"#);
    assert_eq!(canonical_json_of(&u64::MAX).expect("u64"), b"18446744073709551615");
}

#[test]
fn floats_are_rejected() {
    for text in ["1.5", "1.0", "1e3", "-0.0", "18446744073709551616"] {
        let v: Value = serde_json::from_str(text).expect("parse");
        let err = canonical_json(&json!({ "n": v })).expect_err(text);
        assert!(matches!(err, Error::NonIntegerNumber(_)), "{text}: {err:?}");
    }
    assert!(canonical_json_of(&0.5f64).is_err());
}

#[test]
fn scalars_and_empty_containers() {
    assert_eq!(canon(&json!(null)), "null");
    assert_eq!(canon(&json!(true)), "true");
    assert_eq!(canon(&json!(false)), "false");
    assert_eq!(canon(&json!(0)), "0");
    assert_eq!(canon(&json!(-1)), "-1");
    assert_eq!(canon(&json!([])), "[]");
    assert_eq!(canon(&json!({})), "{}");
    assert_eq!(canon(&json!("")), "\"\"");
}

#[test]
fn canonical_json_of_a_struct_sorts_its_fields() {
    #[derive(serde::Serialize)]
    struct S {
        zeta: u64,
        alpha: Option<String>,
        mid: Vec<u8>,
    }
    let s = S { zeta: u64::MAX, alpha: None, mid: vec![1, 2] };
    assert_eq!(canonical_json_of(&s).expect("canonical"), br#"{"alpha":null,"mid":[1,2],"zeta":18446744073709551615}"#);
}
