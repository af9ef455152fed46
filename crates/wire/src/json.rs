//! Canonical JSON: the exact bytes that get signed and hashed.
//!
//! The form is what JavaScript's `JSON.stringify` produces for an object whose keys were
//! inserted in sorted order, at every level: object keys sorted by UTF-16 code units (JS string
//! order), no whitespace, strings escaped exactly as `JSON.stringify` does. Two deliberate
//! differences from JS: integers are exact over the whole `u64`/`i64` range (JS rounds above
//! 2^53, and so do canonical-JSON crates that go through `f64`), and non-integer numbers are
//! rejected, because no signed format of ours has any.

use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// The canonical JSON bytes of `value` (see the module docs for the exact form).
///
/// # Errors
/// [`Error::NonIntegerNumber`] if `value` holds a number that is not an integer in the `u64` or
/// `i64` range.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out.into_bytes())
}

/// The canonical JSON bytes of any serializable value (serialized to a `serde_json::Value`
/// first; integers stay exact).
///
/// # Errors
/// [`Error::Json`] if `v` cannot be represented as JSON (e.g. a map with non-string keys),
/// [`Error::NonIntegerNumber`] as for [`canonical_json`].
pub fn canonical_json_of<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Error> {
    canonical_json(&serde_json::to_value(v)?)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_integer(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // JS compares strings by UTF-16 code units; that differs from Rust's byte order
            // only for keys with characters above U+FFFF versus U+E000..=U+FFFF.
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Writes an integer in plain decimal; anything else is an error.
fn write_integer(out: &mut String, n: &serde_json::Number) -> Result<(), Error> {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else {
        return Err(Error::NonIntegerNumber(n.to_string()));
    }
    Ok(())
}

/// Writes `s` as a JSON string exactly as `JSON.stringify` does (ECMA-262 `QuoteJSONString`):
/// `"` and `\` backslash-escaped; backspace, form feed, newline, carriage return and tab as
/// `\b \f \n \r \t`; other code points below U+0020 as `\u00xx` (lowercase hex); everything
/// else, DEL, U+2028 and U+2029 included, as raw UTF-8. (Lone surrogates, which JS would escape,
/// cannot occur in a Rust `str`.)
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters that need no escape are copied whole (signatures are 4.4 KB of base64).
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if u32::from(c) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        match short {
            Some(escape) => out.push_str(escape),
            None => out.push_str(&format!("\\u{:04x}", u32::from(c))),
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(canonical_json(v).expect("canonical")).expect("utf-8")
    }

    #[test]
    fn control_characters_use_js_short_or_lowercase_unicode_escapes() {
        for (c, want) in [('\u{0}', "\\u0000"), ('\u{1b}', "\\u001b"), ('\u{1f}', "\\u001f")] {
            assert_eq!(canon(&json!(c.to_string())), format!("\"{want}\""));
        }
    }
}
