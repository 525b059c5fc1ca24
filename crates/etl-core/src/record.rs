//! The record model: one JSON object per NDJSON line, keys in source order,
//! numbers kept as their source text.
//!
//! Why not `serde_json::Value`? Without the `arbitrary_precision` feature it
//! turns `12345678901234567890` into a float and `1.0` into `1`; with it, the
//! feature is unified across the whole build and breaks untagged-enum
//! deserialisation in dependencies (yup-oauth2's token replies). So values are
//! read through `serde_json::value::RawValue` (serde_json still does all the
//! parsing and validation) and numbers keep the exact bytes they arrived as:
//! `0.1`, `1.0`, `1e400` and 20-digit ids leave every stage as they entered.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The hasher of objects' key index: foldhash, seeded per process. Records
/// have a few short keys, where std's SipHash cost a tenth of etl-transform's
/// time; a per-process seed keeps the bucket layout unpredictable to input.
pub type KeyHasher = foldhash::fast::RandomState;

/// An object: keys in first-seen order (a repeated key keeps its first
/// position and its last value, as jq does).
pub type Map = IndexMap<String, Value, KeyHasher>;

/// An empty object with room for `n` keys.
pub fn map_with_capacity(n: usize) -> Map {
    Map::with_capacity_and_hasher(n, KeyHasher::default())
}

/// A record: one line of the stream.
pub type Record = Map;

/// A JSON number, stored as its (validated) source text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(Box<str>);

impl Number {
    /// The number's text exactly as it appeared in the input.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps `text` when it is a valid JSON number (RFC 8259 grammar).
    pub fn parse(text: &str) -> Option<Self> {
        is_json_number(text).then(|| Self(text.into()))
    }

    /// [`Self::parse`] of text already in a `String` (no second copy).
    pub fn parse_owned(text: String) -> Option<Self> {
        is_json_number(&text).then(|| Self(text.into_boxed_str()))
    }

    /// The value as an `i64`, when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Self(n.to_string().into())
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Self {
        Self(n.to_string().into())
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`: the JSON number
/// grammar (RFC 8259), for readers that scan JSON text themselves.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A JSON value whose numbers keep their text.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, textually exact.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in order.
    Object(Map),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl Value {
    /// Converts one already-validated raw JSON value.
    pub fn from_raw(raw: &RawValue) -> Result<Self, serde_json::Error> {
        Self::from_raw_at(raw, 0)
    }

    fn from_raw_at(raw: &RawValue, depth: usize) -> Result<Self, serde_json::Error> {
        // serde_json skips a RawValue iteratively, without its recursion
        // limit, so the limit is enforced here: 100k nested brackets must be
        // an error, not a stack overflow.
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let s = raw.get();
        Ok(match s.as_bytes().first() {
            Some(b'"') => {
                // RawValue has validated the string: without a backslash its
                // content is the literal text between the quotes.
                if s.contains('\\') {
                    Value::String(serde_json::from_str(s)?)
                } else {
                    Value::String(s[1..s.len() - 1].to_owned())
                }
            }
            Some(b'{') => Value::Object(parse_object(s, depth + 1)?),
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(s)?;
                Value::Array(
                    items
                        .into_iter()
                        .map(|r| Value::from_raw_at(r, depth + 1))
                        .collect::<Result<_, _>>()?,
                )
            }
            Some(b't') => Value::Bool(true),
            Some(b'f') => Value::Bool(false),
            Some(b'n') => Value::Null,
            _ => Value::Number(Number(s.into())),
        })
    }

    /// Parses any JSON text into a value (numbers kept textually).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Self::from_raw(raw)
    }

    /// The JSON type name, for error messages ("expected a number, found string").
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The string inside, for `Value::String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Compact JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        write_value(&mut out, self);
        // Only valid UTF-8 is ever written: strings come from `String`s.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The text a shell user expects: strings without quotes, everything
    /// else as compact JSON (like `jq -r`).
    pub fn to_raw_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => other.to_json(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// How deeply values may nest (serde_json's own default limit).
const MAX_DEPTH: usize = 128;

/// Parses a JSON object whose values are converted from raw text.
fn parse_object(text: &str, depth: usize) -> Result<Map, serde_json::Error> {
    struct V(usize);
    impl<'de> Visitor<'de> for V {
        type Value = Map;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map, A::Error> {
            let mut out = map_with_capacity(map.size_hint().unwrap_or(8));
            while let Some(key) = map.next_key::<String>()? {
                let raw: &'de RawValue = map.next_value()?;
                out.insert(
                    key,
                    Value::from_raw_at(raw, self.0).map_err(de::Error::custom)?,
                );
            }
            Ok(out)
        }
    }
    let mut d = serde_json::Deserializer::from_str(text);
    let m = d.deserialize_map(V(depth))?;
    d.end()?;
    Ok(m)
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses one NDJSON line into a record. The line must hold exactly one JSON
/// object (surrounding whitespace allowed).
pub fn parse_record(line: &str) -> Result<Record, ParseError> {
    let first = line
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first();
    let found = match first {
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        None => Some("an empty line"),
        // An object, or a syntax error serde_json will name.
        Some(_) => None,
    };
    if let Some(found) = found {
        // Valid JSON of the wrong type vs. invalid JSON get different messages.
        return Err(ParseError(match serde_json::from_str::<&RawValue>(line) {
            Ok(_) => format!("not a JSON object: found {found}"),
            Err(e) => format!("invalid JSON: {e}"),
        }));
    }
    parse_object(line, 0).map_err(|e| ParseError(format!("invalid JSON: {e}")))
}

/// Parses one line into its fields without copying: keys and values borrow
/// the line (a key with escapes is unescaped into an owned string). For
/// commands that look at a record's fields without building it (etl-merge's
/// staging, etl-push-sheets' first pass); the error is [`parse_record`]'s.
pub fn parse_fields(text: &str) -> Result<Vec<(Cow<'_, str>, &RawValue)>, String> {
    use serde::de::DeserializeSeed;
    let mut out = Vec::with_capacity(16);
    let mut de = serde_json::Deserializer::from_str(text);
    let ok = Fields(&mut out)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match ok {
        Ok(()) => Ok(out),
        // The canonical message (wrong type vs. invalid JSON) from etl-core.
        Err(e) => Err(parse_record(text)
            .err()
            .map_or_else(|| format!("invalid JSON: {e}"), |p| p.0)),
    }
}

struct Fields<'a, 'b>(&'b mut Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::de::DeserializeSeed<'de> for Fields<'de, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Fields<'de, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            self.0.push((k, v));
        }
        Ok(())
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Appends `rec` as compact JSON (no newline).
pub fn write_record(out: &mut Vec<u8>, rec: &Record) {
    write_object(out, rec);
}

fn write_object(out: &mut Vec<u8>, map: &Map) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Appends `v` as compact JSON.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.0.as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// Appends `s` as a JSON string: only `"`, `\` and control characters are
/// escaped; everything else is copied as UTF-8.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes());
}

/// [`write_str`] for bytes the caller has already checked are UTF-8 (so
/// hot loops need not build a `&str`): quotes, then escaped content.
pub fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    write_escaped_content(out, bytes);
    out.push(b'"');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` (eight bytes, little-endian) that is
/// `"`, `\` or a control character: the bytes a JSON string cannot hold
/// as they are. A bit can be set wrongly only above a byte that is one of
/// them (a borrow), so the lowest set bit is exact.
pub fn json_specials(w: u64) -> u64 {
    let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGHS;
    below(w ^ (ONES * u64::from(b'"')), 1)
        | below(w ^ (ONES * u64::from(b'\\')), 1)
        | below(w, 0x20)
}

/// The index of the first byte of `bytes[from..]` that is `"`, `\` or a
/// control character, or `bytes.len()`.
pub fn next_json_special(bytes: &[u8], mut from: usize) -> usize {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = json_specials(u64::from_le_bytes(w));
        if m != 0 {
            return from + (m.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while let Some(&b) = bytes.get(from) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return from;
        }
        from += 1;
    }
    bytes.len()
}

/// The escaped content of a JSON string, without its quotes (for writers
/// that put the quotes elsewhere, like etl-parse's pre-built key prefixes).
pub fn write_escaped_content(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    loop {
        let i = next_json_special(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else {
            return;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => {
                // serde_json writes a RawValue verbatim: exact digits survive.
                let raw =
                    RawValue::from_string(n.0.to_string()).map_err(serde::ser::Error::custom)?;
                raw.serialize(s)
            }
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Exact only with serde_json's deserializer (the only format etlkit
    /// reads), which is what `RawValue` requires.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        Value::from_raw(&raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(line: &str) -> String {
        let rec = parse_record(line).expect(line);
        let mut out = Vec::new();
        write_record(&mut out, &rec);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_pass_through_textually() {
        let line = r#"{"big":12345678901234567890,"tenth":0.1,"one":1.0,"huge":1e400,"neg":-0,"e":2.5E-3}"#;
        assert_eq!(roundtrip(line), line);
    }

    #[test]
    fn nested_numbers_keep_their_text_too() {
        let line = r#"{"a":{"x":1.50,"y":[1.0,2e10,{"z":99999999999999999999}]}}"#;
        assert_eq!(roundtrip(line), line);
    }

    #[test]
    fn key_order_is_kept_not_sorted() {
        assert_eq!(
            roundtrip(r#"{"z":1,"a":2,"m":3}"#),
            r#"{"z":1,"a":2,"m":3}"#
        );
    }

    #[test]
    fn repeated_key_keeps_first_position_and_last_value() {
        assert_eq!(roundtrip(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn strings_are_unescaped_and_reescaped_minimally() {
        assert_eq!(
            roundtrip(r#"{"s":"caf\u00e9 \"q\" \\ \n\t\u0001 é €"}"#),
            "{\"s\":\"café \\\"q\\\" \\\\ \\n\\t\\u0001 é €\"}"
        );
        let rec = parse_record(r#"{"s":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(rec["s"].as_str(), Some("😀"));
    }

    #[test]
    fn strings_escape_as_serde_json_escapes_them_wherever_the_special_byte_sits() {
        // The escaper skips eight bytes at a time: put each kind of byte
        // that needs escaping at every offset of strings of many lengths.
        for len in 0..40 {
            for at in 0..=len {
                for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "\u{7f}", " "] {
                    let mut s: String = "abcdefghij".chars().cycle().take(len).collect();
                    s.insert_str(at, special);
                    let mut out = Vec::new();
                    write_str(&mut out, &s);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&s).unwrap(),
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn whitespace_inside_is_normalised() {
        assert_eq!(
            roundtrip(" { \"a\" : [ 1 , 2 ] , \"b\" : null } "),
            r#"{"a":[1,2],"b":null}"#
        );
    }

    #[test]
    fn non_objects_are_named() {
        assert_eq!(
            parse_record("[1,2]").unwrap_err().0,
            "not a JSON object: found an array"
        );
        assert_eq!(
            parse_record("42").unwrap_err().0,
            "not a JSON object: found a number"
        );
        assert_eq!(
            parse_record("\"x\"").unwrap_err().0,
            "not a JSON object: found a string"
        );
        assert_eq!(
            parse_record("null").unwrap_err().0,
            "not a JSON object: found null"
        );
        assert!(parse_record("not json")
            .unwrap_err()
            .0
            .starts_with("invalid JSON"));
        assert!(parse_record("{\"a\":1} x")
            .unwrap_err()
            .0
            .starts_with("invalid JSON"));
        assert!(parse_record("{\"a\":01}")
            .unwrap_err()
            .0
            .starts_with("invalid JSON"));
        assert!(parse_record("[1,")
            .unwrap_err()
            .0
            .starts_with("invalid JSON"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_record(&deep).is_err());
    }

    #[test]
    fn number_grammar() {
        for ok in [
            "0",
            "-0",
            "1.5",
            "1e5",
            "1E+5",
            "-1.25e-3",
            "12345678901234567890",
        ] {
            assert!(Number::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "+1", "1e+", "NaN", "0x10", "1 ",
        ] {
            assert!(Number::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn serde_roundtrip_is_exact() {
        let v = Value::parse(r#"{"n":1e400,"m":[0.10]}"#).unwrap();
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"n":1e400,"m":[0.10]}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(pretty.contains("1e400"));
    }

    #[test]
    fn raw_text_is_unquoted_for_strings_only() {
        assert_eq!(Value::from("a b").to_raw_text(), "a b");
        assert_eq!(Value::parse("1.50").unwrap().to_raw_text(), "1.50");
    }
}
