//! A streaming reader for the `POST /v2/inbound` body: `{"hash", "payload", "ttl_ms",
//! "max_views", "meta": {"device_id", "drop"}}` in any field order. It is fed the body as it
//! arrives and base64-decodes and SHA-256-hashes the payload on the way, so the upload's text is
//! never held whole and the payload is hashed by the time the last byte is in.
//!
//! It accepts exactly what `serde_json` accepts for that shape with `deny_unknown_fields`
//! (duplicate fields, unknown fields, trailing commas, lone surrogates, control characters,
//! numbers that are not unsigned integers in range: all refused), then standard padded base64 —
//! the differential property tests below hold it to that. One deliberate difference: serde's
//! derive also reads a struct from a JSON array of its fields; this reader wants objects.

use sha2::{Digest, Sha256};

/// Base64 text decoded and hashed per step (a multiple of 4): its 48 KiB of output are still
/// in the core's cache when they are hashed.
const BLOCK: usize = 64 * 1024;
/// Longest key worth reading: every key of the shape is shorter.
const MAX_KEY: usize = 16;

/// A parsed upload: the fields and the decoded, hashed payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Upload {
    pub hash: String,
    pub ttl_ms: Option<u64>,
    pub max_views: Option<u32>,
    pub meta: Option<UploadMeta>,
    pub payload: Vec<u8>,
    pub sha256: [u8; 32],
}

/// The `meta` object.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct UploadMeta {
    pub device_id: Option<String>,
    pub drop: bool,
}

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON of the inbound shape; the text says what.
    Json(&'static str),
    /// The payload is not standard padded base64.
    Base64,
    /// The decoded payload exceeds the limit.
    TooLarge,
}

type Result<T> = std::result::Result<T, ParseError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Top,
    Meta,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Hash,
    Payload,
    TtlMs,
    MaxViews,
    Meta,
    DeviceId,
    Drop,
}

/// Where inside a string the reader is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// `\u` and `n` hex digits so far.
    Unicode {
        value: u32,
        digits: u8,
    },
    /// After a high surrogate: expecting `\`.
    LowBackslash {
        high: u32,
    },
    /// After a high surrogate and `\`: expecting `u`.
    LowU {
        high: u32,
    },
    Low {
        high: u32,
        value: u32,
        digits: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Key(Level),
    Value(Field),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the top-level `{`.
    Start,
    /// After `{`: a key or `}`.
    Open(Level),
    /// After `,`: a key.
    NextKey(Level),
    /// Inside a string.
    Str(Target, Escape),
    /// After a key: `:`.
    Colon(Level),
    /// After `:`: the value of `field`.
    Value(Field),
    /// Digits of an integer.
    Number(Field),
    /// Matching `null`, `true` or `false`: the literal and how much of it was seen.
    Literal(Field, &'static [u8], u8),
    /// After a value: `,` or `}`.
    After(Level),
    /// After the top-level `}`: whitespace only.
    End,
}

/// Decodes base64 text straight from the body's chunks in whole quads (no copy of the text),
/// hashing each decoded block at once. Only the text's last 1–4 bytes wait in `held`: an
/// unfinished quad, or the last quad, which only the closing quote shows may carry padding.
struct Base64Sink {
    held: [u8; 4],
    held_len: usize,
    /// Zero-filled; the payload is `out[..written]`. The relay passes a buffer kept by its
    /// payload pool (pages already faulted in) or fresh zeroed pages; the decoder writes into
    /// it directly.
    out: Vec<u8>,
    written: usize,
    hasher: Sha256,
    max: usize,
}

/// Whether a block of text ends the payload (only then may it end in padding).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Inner,
    Last,
}

impl Base64Sink {
    fn new(max: usize, out: Vec<u8>) -> Self {
        Self { held: [0; 4], held_len: 0, out, written: 0, hasher: Sha256::new(), max }
    }

    fn push(&mut self, mut text: &[u8]) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if self.held_len == 4 {
            self.decode_held(Block::Inner)?;
        }
        if self.held_len > 0 {
            let fill = (4 - self.held_len).min(text.len());
            self.held[self.held_len..self.held_len + fill].copy_from_slice(&text[..fill]);
            self.held_len += fill;
            text = &text[fill..];
            if text.is_empty() {
                return Ok(());
            }
            self.decode_held(Block::Inner)?;
        }
        // Keep back 1–4 bytes: the last quad may be the payload's last.
        let take = (text.len() - 1) / 4 * 4;
        for block in text[..take].chunks(BLOCK) {
            self.decode(block, Block::Inner)?;
        }
        let rest = &text[take..];
        self.held[..rest.len()].copy_from_slice(rest);
        self.held_len = rest.len();
        Ok(())
    }

    fn decode_held(&mut self, kind: Block) -> Result<()> {
        let held = self.held;
        let len = std::mem::take(&mut self.held_len);
        self.decode(&held[..len], kind)
    }

    /// Decodes and hashes `text` (whole quads unless it is the last block).
    fn decode(&mut self, text: &[u8], kind: Block) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        // Padding may end only the whole text: in an inner block the engine would take it.
        if kind == Block::Inner && text[text.len().saturating_sub(4)..].contains(&b'=') {
            return Err(ParseError::Base64);
        }
        let room = text.len().div_ceil(4) * 3;
        if (self.written + room).saturating_sub(2) > self.max {
            return Err(ParseError::TooLarge);
        }
        if self.out.len() < self.written + room {
            // Only when the body was longer than announced (or chunked): grow by doubling.
            let grown =
                (self.out.len() * 2).clamp(self.written + room, self.max.saturating_add(3).max(self.written + room));
            self.out.resize(grown, 0);
        }
        // SIMD decoding: about 4x the `base64` crate's speed on this path (README). It is
        // exactly as strict (padding, canonical trailing bits): the differential tests below
        // hold it to the `base64` crate's STANDARD engine.
        let decoded = base64_simd::STANDARD
            .decode(text, base64_simd::Out::from_slice(&mut self.out[self.written..self.written + room]))
            .map_err(|_| ParseError::Base64)?
            .len();
        let end = self.written + decoded;
        if end > self.max {
            return Err(ParseError::TooLarge);
        }
        self.hasher.update(&self.out[self.written..end]);
        self.written = end;
        Ok(())
    }

    /// The payload and its SHA-256, after the last block.
    fn finish(mut self) -> Result<(Vec<u8>, [u8; 32])> {
        self.decode_held(Block::Last)?;
        let mut out = self.out;
        out.truncate(self.written);
        if out.capacity() - out.len() > 4096 {
            // A size hint far above the payload (a chunked body): give the rest back.
            out.shrink_to_fit();
        }
        Ok((out, self.hasher.finalize().into()))
    }
}

/// The streaming reader; see the module doc.
pub struct UploadParser {
    state: State,
    /// The string being read (a key, `hash` or `device_id`).
    text: Vec<u8>,
    payload: Option<Base64Sink>,
    number: u64,
    hash: Option<String>,
    payload_done: bool,
    ttl_ms: Option<Option<u64>>,
    max_views: Option<Option<u32>>,
    meta: Option<Option<UploadMeta>>,
    device_id: Option<Option<String>>,
    drop: Option<bool>,
}

impl UploadParser {
    /// A reader for a payload of at most `max_payload` decoded bytes; `size_hint` is the
    /// expected decoded size (from `Content-Length`), for one allocation. (The relay passes a
    /// buffer from its payload pool instead: [`UploadParser::with_buffer`].)
    #[cfg(test)]
    pub fn new(max_payload: usize, size_hint: usize) -> Self {
        Self::with_buffer(max_payload, vec![0; Self::buffer_len(max_payload, size_hint)])
    }

    /// The length of the zero-filled buffer [`UploadParser::with_buffer`] wants for these limits.
    pub fn buffer_len(max_payload: usize, size_hint: usize) -> usize {
        size_hint.min(max_payload).saturating_add(3)
    }

    /// [`UploadParser::new`] decoding into `buffer`, zero-filled, of
    /// [`UploadParser::buffer_len`] bytes (it grows if the body is longer than announced).
    pub fn with_buffer(max_payload: usize, buffer: Vec<u8>) -> Self {
        Self {
            state: State::Start,
            text: Vec::new(),
            payload: Some(Base64Sink::new(max_payload, buffer)),
            number: 0,
            hash: None,
            payload_done: false,
            ttl_ms: None,
            max_views: None,
            meta: None,
            device_id: None,
            drop: None,
        }
    }

    /// Reads the next bytes of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            if self.state == State::Str(Target::Value(Field::Payload), Escape::None) {
                // The bulk of every body: pass runs of payload text to the decoder unexamined.
                let run = memchr::memchr2(b'"', b'\\', chunk).unwrap_or(chunk.len());
                self.sink()?.push(&chunk[..run])?;
                chunk = &chunk[run..];
                if chunk.is_empty() {
                    break;
                }
            }
            self.byte(chunk[0])?;
            chunk = &chunk[1..];
        }
        Ok(())
    }

    /// The whole body was read: the upload, or why not.
    pub fn finish(mut self) -> Result<Upload> {
        if self.state != State::End {
            return Err(ParseError::Json("the body ends before its JSON object"));
        }
        let hash = self.hash.take().ok_or(ParseError::Json("missing field `hash`"))?;
        if !self.payload_done {
            return Err(ParseError::Json("missing field `payload`"));
        }
        let sink = self.payload.take().ok_or(ParseError::Json("missing field `payload`"))?;
        let (payload, sha256) = sink.finish()?;
        Ok(Upload {
            hash,
            ttl_ms: self.ttl_ms.flatten(),
            max_views: self.max_views.flatten(),
            meta: self.meta.flatten(),
            payload,
            sha256,
        })
    }

    fn sink(&mut self) -> Result<&mut Base64Sink> {
        self.payload.as_mut().ok_or(ParseError::Json("duplicate field `payload`"))
    }

    fn byte(&mut self, b: u8) -> Result<()> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        self.state = match self.state {
            State::Start | State::End | State::Open(_) | State::NextKey(_) | State::Colon(_) | State::After(_)
                if ws =>
            {
                self.state
            }
            State::Value(_) if ws => self.state,
            State::Start if b == b'{' => State::Open(Level::Top),
            State::Start => return Err(ParseError::Json("expected a JSON object")),
            State::Open(level) if b == b'}' => self.close(level)?,
            State::Open(level) | State::NextKey(level) if b == b'"' => {
                self.text.clear();
                State::Str(Target::Key(level), Escape::None)
            }
            State::Open(_) | State::NextKey(_) => return Err(ParseError::Json("expected a key")),
            State::Colon(level) if b == b':' => {
                let field = self.field(level)?;
                State::Value(field)
            }
            State::Colon(_) => return Err(ParseError::Json("expected `:`")),
            State::Value(field) => self.value_start(field, b)?,
            State::Str(target, escape) => self.string_byte(target, escape, b)?,
            State::Number(field) => match b {
                b'0'..=b'9' if self.number != 0 => {
                    self.number = self
                        .number
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(b - b'0')))
                        .ok_or(ParseError::Json("integer out of range"))?;
                    State::Number(field)
                }
                b'0'..=b'9' => return Err(ParseError::Json("invalid number")),
                _ => {
                    self.set_number(field)?;
                    return self.after_value_byte(field, b);
                }
            },
            State::Literal(field, word, seen) => {
                let seen = usize::from(seen);
                if seen < word.len() {
                    if word[seen] != b {
                        return Err(ParseError::Json("invalid literal"));
                    }
                    State::Literal(field, word, seen as u8 + 1)
                } else {
                    self.set_literal(field, word)?;
                    return self.after_value_byte(field, b);
                }
            }
            State::After(level) if b == b',' => State::NextKey(level),
            State::After(level) if b == b'}' => self.close(level)?,
            State::After(_) => return Err(ParseError::Json("expected `,` or `}`")),
            State::End => return Err(ParseError::Json("trailing characters")),
        };
        Ok(())
    }

    /// A value ended at byte `b` (a number or literal has no closing quote): handle `b` as the
    /// first byte after the value.
    fn after_value_byte(&mut self, field: Field, b: u8) -> Result<()> {
        self.state = State::After(level_of(field));
        self.byte(b)
    }

    fn close(&mut self, level: Level) -> Result<State> {
        match level {
            Level::Top => Ok(State::End),
            Level::Meta => {
                let meta =
                    UploadMeta { device_id: self.device_id.take().flatten(), drop: self.drop.take().unwrap_or(false) };
                self.meta = Some(Some(meta));
                Ok(State::After(Level::Top))
            }
        }
    }

    /// The key just read, as a field of `level`; unknown and repeated keys are refused.
    fn field(&mut self, level: Level) -> Result<Field> {
        let field = match (level, self.text.as_slice()) {
            (Level::Top, b"hash") => Field::Hash,
            (Level::Top, b"payload") => Field::Payload,
            (Level::Top, b"ttl_ms") => Field::TtlMs,
            (Level::Top, b"max_views") => Field::MaxViews,
            (Level::Top, b"meta") => Field::Meta,
            (Level::Meta, b"device_id") => Field::DeviceId,
            (Level::Meta, b"drop") => Field::Drop,
            _ => return Err(ParseError::Json("unknown field")),
        };
        let seen = match field {
            Field::Hash => self.hash.is_some(),
            Field::Payload => self.payload_done,
            Field::TtlMs => self.ttl_ms.is_some(),
            Field::MaxViews => self.max_views.is_some(),
            Field::Meta => self.meta.is_some(),
            Field::DeviceId => self.device_id.is_some(),
            Field::Drop => self.drop.is_some(),
        };
        if seen {
            return Err(ParseError::Json("duplicate field"));
        }
        Ok(field)
    }

    fn value_start(&mut self, field: Field, b: u8) -> Result<State> {
        let string_field = matches!(field, Field::Hash | Field::Payload | Field::DeviceId);
        Ok(match b {
            b'"' if string_field => {
                self.text.clear();
                State::Str(Target::Value(field), Escape::None)
            }
            b'0'..=b'9' if matches!(field, Field::TtlMs | Field::MaxViews) => {
                self.number = u64::from(b - b'0');
                State::Number(field)
            }
            b'{' if field == Field::Meta => {
                self.device_id = None;
                self.drop = None;
                State::Open(Level::Meta)
            }
            b'n' if matches!(field, Field::TtlMs | Field::MaxViews | Field::Meta | Field::DeviceId) => {
                State::Literal(field, b"null", 1)
            }
            b't' if field == Field::Drop => State::Literal(field, b"true", 1),
            b'f' if field == Field::Drop => State::Literal(field, b"false", 1),
            _ => return Err(ParseError::Json("invalid type or value")),
        })
    }

    fn set_number(&mut self, field: Field) -> Result<()> {
        match field {
            Field::TtlMs => self.ttl_ms = Some(Some(self.number)),
            Field::MaxViews => {
                let views = u32::try_from(self.number).map_err(|_| ParseError::Json("max_views out of range"))?;
                self.max_views = Some(Some(views));
            }
            _ => return Err(ParseError::Json("invalid type")),
        }
        Ok(())
    }

    fn set_literal(&mut self, field: Field, word: &'static [u8]) -> Result<()> {
        match (field, word) {
            (Field::TtlMs, b"null") => self.ttl_ms = Some(None),
            (Field::MaxViews, b"null") => self.max_views = Some(None),
            (Field::Meta, b"null") => self.meta = Some(None),
            (Field::DeviceId, b"null") => self.device_id = Some(None),
            (Field::Drop, b"true") => self.drop = Some(true),
            (Field::Drop, b"false") => self.drop = Some(false),
            _ => return Err(ParseError::Json("invalid type")),
        }
        Ok(())
    }

    fn string_byte(&mut self, target: Target, escape: Escape, b: u8) -> Result<State> {
        let next = match escape {
            Escape::None => match b {
                b'"' => return self.string_end(target),
                b'\\' => Escape::Backslash,
                0x00..=0x1f => return Err(ParseError::Json("control character in a string")),
                _ => {
                    self.string_push(target, &[b])?;
                    Escape::None
                }
            },
            Escape::Backslash => {
                let plain = match b {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => return Ok(State::Str(target, Escape::Unicode { value: 0, digits: 0 })),
                    _ => return Err(ParseError::Json("invalid escape")),
                };
                self.string_push(target, &[plain])?;
                Escape::None
            }
            Escape::Unicode { value, digits } => {
                let value = value << 4 | hex_digit(b)?;
                if digits < 3 {
                    Escape::Unicode { value, digits: digits + 1 }
                } else if (0xD800..0xDC00).contains(&value) {
                    Escape::LowBackslash { high: value }
                } else if (0xDC00..0xE000).contains(&value) {
                    return Err(ParseError::Json("lone surrogate"));
                } else {
                    self.push_char(target, value)?;
                    Escape::None
                }
            }
            Escape::LowBackslash { high } if b == b'\\' => Escape::LowU { high },
            Escape::LowU { high } if b == b'u' => Escape::Low { high, value: 0, digits: 0 },
            Escape::LowBackslash { .. } | Escape::LowU { .. } => return Err(ParseError::Json("lone surrogate")),
            Escape::Low { high, value, digits } => {
                let value = value << 4 | hex_digit(b)?;
                if digits < 3 {
                    Escape::Low { high, value, digits: digits + 1 }
                } else if (0xDC00..0xE000).contains(&value) {
                    self.push_char(target, 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00))?;
                    Escape::None
                } else {
                    return Err(ParseError::Json("lone surrogate"));
                }
            }
        };
        Ok(State::Str(target, next))
    }

    fn push_char(&mut self, target: Target, code: u32) -> Result<()> {
        let c = char::from_u32(code).ok_or(ParseError::Json("invalid unicode escape"))?;
        let mut utf8 = [0u8; 4];
        self.string_push(target, c.encode_utf8(&mut utf8).as_bytes())
    }

    fn string_push(&mut self, target: Target, bytes: &[u8]) -> Result<()> {
        match target {
            Target::Value(Field::Payload) => self.sink()?.push(bytes),
            Target::Key(_) if self.text.len() + bytes.len() > MAX_KEY => Err(ParseError::Json("unknown field")),
            _ => {
                self.text.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn string_end(&mut self, target: Target) -> Result<State> {
        let level = match target {
            // A key that is not UTF-8 matches no field and is refused as unknown.
            Target::Key(level) => return Ok(State::Colon(level)),
            Target::Value(field) => level_of(field),
        };
        let text = std::mem::take(&mut self.text);
        let text = || String::from_utf8(text).map_err(|_| ParseError::Json("invalid UTF-8"));
        match target {
            Target::Value(Field::Hash) => self.hash = Some(text()?),
            Target::Value(Field::DeviceId) => self.device_id = Some(Some(text()?)),
            _ => self.payload_done = true,
        }
        Ok(State::After(level))
    }
}

fn level_of(field: Field) -> Level {
    if matches!(field, Field::DeviceId | Field::Drop) { Level::Meta } else { Level::Top }
}

fn hex_digit(b: u8) -> Result<u32> {
    char::from(b).to_digit(16).ok_or(ParseError::Json("invalid hex escape"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;
    use base64::Engine;

    /// The shape as serde reads it (the relay's former whole-body parser).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reference<'a> {
        #[serde(borrow)]
        hash: Cow<'a, str>,
        #[serde(borrow)]
        payload: Cow<'a, str>,
        #[serde(default)]
        ttl_ms: Option<u64>,
        #[serde(default)]
        max_views: Option<u32>,
        #[serde(default)]
        meta: Option<ReferenceMeta>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ReferenceMeta {
        #[serde(default)]
        device_id: Option<String>,
        #[serde(default)]
        drop: bool,
    }

    /// What serde accepts, except that serde's derive also takes a struct as a JSON array of
    /// its fields in order (`"meta": []`, `["h", "p"]`): the inbound shape is objects only.
    fn reference(body: &[u8]) -> Option<Upload> {
        let shape: serde_json::Value = serde_json::from_slice(body).ok()?;
        if shape.is_array() || shape.get("meta").is_some_and(serde_json::Value::is_array) {
            return None;
        }
        let r: Reference = serde_json::from_slice(body).ok()?;
        let payload = base64::engine::general_purpose::STANDARD.decode(r.payload.as_bytes()).ok()?;
        Some(Upload {
            hash: r.hash.into_owned(),
            ttl_ms: r.ttl_ms,
            max_views: r.max_views,
            meta: r.meta.map(|m| UploadMeta { device_id: m.device_id, drop: m.drop }),
            sha256: Sha256::digest(&payload).into(),
            payload,
        })
    }

    fn streamed(body: &[u8], cuts: &[usize]) -> Option<Upload> {
        streamed_with_hint(body, cuts, 0)
    }

    /// `hint`: the expected payload size the relay derives from `Content-Length` (0: a chunked
    /// body, so the buffer grows; right or too large: one buffer).
    fn streamed_with_hint(body: &[u8], cuts: &[usize], hint: usize) -> Option<Upload> {
        let mut parser = UploadParser::new(usize::MAX, hint);
        let mut at = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.sort_unstable();
        for cut in points.into_iter().chain([body.len()]) {
            parser.feed(&body[at..cut]).ok()?;
            at = cut;
        }
        parser.finish().ok()
    }

    fn check(body: &[u8], cuts: &[usize]) -> std::result::Result<(), TestCaseError> {
        let expected = reference(body);
        let got = streamed(body, cuts);
        prop_assert_eq!(got, expected, "body: {:?}", String::from_utf8_lossy(body));
        Ok(())
    }

    /// JSON text for one value of a field: valid ones, near misses and escapes.
    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-f]{64}".prop_map(|s| format!("\"{s}\"")),
            "[a-zA-Z0-9 _\\-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            Just("\"\\u0061\\n\\/\\\\\\\"\\ud83d\\ude00\"".to_string()),
            Just("\"\\ud800\"".to_string()),
            Just("\"\\udc00x\"".to_string()),
            Just("\"\\x\"".to_string()),
            Just("\"é\"".to_string()),
            Just("null".to_string()),
            Just("7".to_string()),
        ]
    }

    fn payload_text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|b| format!("\"{}\"", base64::engine::general_purpose::STANDARD.encode(b))),
            Just("\"QUJD\"".to_string()),
            Just("\"QUI=\"".to_string()),
            Just("\"QUI\"".to_string()),
            Just("\"QR==\"".to_string()),
            Just("\"QQ==QUJD\"".to_string()),
            Just("\"\\u0051UJD\"".to_string()),
            Just("\"QU\\/D\"".to_string()),
            Just("\"QU JD\"".to_string()),
            Just("\"\"".to_string()),
            Just("5".to_string()),
        ]
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u32>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_string()),
            Just("4294967296".to_string()),
            Just("0".to_string()),
            Just("00".to_string()),
            Just("01".to_string()),
            Just("-0".to_string()),
            Just("-1".to_string()),
            Just("1.0".to_string()),
            Just("1e3".to_string()),
            Just("null".to_string()),
            Just("nul".to_string()),
            Just("true".to_string()),
            Just("\"5\"".to_string()),
        ]
    }

    fn meta() -> impl Strategy<Value = String> {
        let device = prop_oneof![json_string().prop_map(|s| format!("\"device_id\":{s}")), Just(String::new())];
        let drop = prop_oneof![
            Just("\"drop\":true".to_string()),
            Just("\"drop\":false".to_string()),
            Just("\"drop\":null".to_string()),
            Just("\"drop\":tru".to_string()),
            Just(String::new()),
        ];
        prop_oneof![
            (device, drop).prop_map(|(d, r)| {
                let parts: Vec<String> = [d, r].into_iter().filter(|p| !p.is_empty()).collect();
                format!("{{{}}}", parts.join(","))
            }),
            Just("null".to_string()),
            Just("{\"device_id\":\"a\",\"device_id\":\"b\"}".to_string()),
            Just("{\"other\":1}".to_string()),
            Just("[]".to_string()),
        ]
    }

    /// A body: some of the fields, in any order, with any whitespace, sometimes a stray one.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let fields = (
            proptest::option::weighted(0.9, json_string()),
            proptest::option::weighted(0.9, payload_text()),
            proptest::option::of(number()),
            proptest::option::of(number()),
            proptest::option::of(meta()),
            proptest::option::weighted(0.05, Just("\"extra\":1".to_string())),
        );
        let ws = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
        (fields, any::<u64>(), ws).prop_map(|(f, order, ws)| {
            let (hash, payload, ttl, views, meta, extra) = f;
            let mut parts: Vec<String> = [
                hash.map(|v| format!("\"hash\"{ws}:{ws}{v}")),
                payload.map(|v| format!("\"payload\":{ws}{v}")),
                ttl.map(|v| format!("\"ttl_ms\":{v}{ws}")),
                views.map(|v| format!("{ws}\"max_views\":{v}")),
                meta.map(|v| format!("\"meta\":{v}")),
                extra,
            ]
            .into_iter()
            .flatten()
            .collect();
            // A deterministic shuffle from the drawn number: any field order.
            let mut state = order | 1;
            for i in (1..parts.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                parts.swap(i, (state % (i as u64 + 1)) as usize);
            }
            format!("{ws}{{{ws}{}{ws}}}{ws}", parts.join(&format!(",{ws}"))).into_bytes()
        })
    }

    /// A body with a few bytes flipped, inserted or removed.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let edit = (
            any::<usize>(),
            0u8..3,
            prop_oneof![
                Just(b'"'),
                Just(b','),
                Just(b'}'),
                Just(b'{'),
                Just(b'\\'),
                Just(b'='),
                Just(b' '),
                Just(b'0'),
                Just(0x00u8),
                Just(0xC3u8),
                any::<u8>()
            ],
        );
        (body(), proptest::collection::vec(edit, 1..4)).prop_map(|(mut body, edits)| {
            for (at, kind, byte) in edits {
                let at = at % (body.len() + 1);
                match kind {
                    0 if at < body.len() => body[at] = byte,
                    1 => body.insert(at, byte),
                    _ if at < body.len() => {
                        body.remove(at);
                    }
                    _ => {}
                }
            }
            body
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn generated_bodies_parse_as_serde_json_does_in_any_chunking(
            body in body(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            check(&body, &cuts)?;
        }

        #[test]
        fn mutated_bodies_are_refused_or_accepted_as_serde_json_does(
            body in mutated(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            check(&body, &cuts)?;
        }
    }

    /// A body around a payload of `len` bytes, optionally with one byte of its base64 text
    /// replaced (`edit`: position, byte) — near block and quad boundaries included.
    fn large_body(len: usize, edit: Option<(usize, u8)>) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut text = base64::engine::general_purpose::STANDARD.encode(&data).into_bytes();
        if let Some((at, byte)) = edit
            && !text.is_empty()
        {
            let at = at % text.len();
            text[at] = byte;
        }
        let mut body = b"{\"hash\":\"h\",\"payload\":\"".to_vec();
        body.extend_from_slice(&text);
        body.extend_from_slice(b"\"}");
        body
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Payloads spanning several decode blocks, cut anywhere (also inside a quad and right
        /// around block boundaries), with the buffer sized from a right, short or absent hint.
        #[test]
        fn large_payloads_decode_as_the_reference_in_any_chunking_and_buffer_size(
            len in prop_oneof![0usize..64, (BLOCK / 4 * 3 - 8)..(BLOCK / 4 * 3 + 8), 100_000usize..200_000],
            edit in proptest::option::weighted(0.3, (any::<usize>(), prop_oneof![Just(b'='), Just(b' '), Just(b'-'), Just(b'A'), any::<u8>()])),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            hint in prop_oneof![Just(0usize), Just(usize::MAX), 0usize..300_000],
        ) {
            let body = large_body(len, edit);
            let hint = if hint == usize::MAX { len } else { hint };
            prop_assert_eq!(streamed_with_hint(&body, &cuts, hint), reference(&body));
        }
    }

    #[test]
    fn the_payload_limit_is_exact() {
        let body = large_body(70_000, None);
        for (max, ok) in [(70_000, true), (69_999, false)] {
            let mut parser = UploadParser::new(max, 70_000);
            let result = parser.feed(&body).and_then(|()| parser.finish());
            assert_eq!(result.is_ok(), ok, "max {max}");
            if !ok {
                assert_eq!(result.err(), Some(ParseError::TooLarge));
            }
        }
    }

    #[test]
    fn a_large_payload_is_decoded_across_stage_boundaries_byte_by_byte_and_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let body =
            format!("{{\"payload\":\"{}\",\"hash\":\"h\"}}", base64::engine::general_purpose::STANDARD.encode(&data))
                .into_bytes();
        let expected = reference(&body).unwrap();
        assert_eq!(streamed(&body, &[]), Some(expected));
        let mut parser = UploadParser::new(usize::MAX, 0);
        for b in &body {
            parser.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(parser.finish().unwrap().payload, data);
    }

    #[test]
    fn a_payload_over_the_limit_is_refused_while_streaming() {
        let body = format!(
            "{{\"hash\":\"h\",\"payload\":\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(vec![0u8; 300_000])
        );
        let mut parser = UploadParser::new(100_000, 0);
        assert_eq!(parser.feed(body.as_bytes()), Err(ParseError::TooLarge));
    }

    #[test]
    fn padding_inside_the_payload_is_refused_even_at_a_block_boundary() {
        let mut text = "QUJD".repeat(BLOCK / 4);
        text.replace_range(BLOCK - 2.., "==");
        text.push_str("QUJDQUJD");
        let body = format!("{{\"hash\":\"h\",\"payload\":\"{text}\"}}");
        assert!(reference(body.as_bytes()).is_none());
        assert!(streamed(body.as_bytes(), &[]).is_none());
    }
}
