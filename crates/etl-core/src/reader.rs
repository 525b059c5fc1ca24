//! The NDJSON record reader: one reused line buffer, bounded line length.
//!
//! It never holds more than one line (and never more than `max_line_bytes`
//! of it: the rest of an over-long line is consumed and dropped, keeping a
//! short preview for the reject), so a malformed multi-gigabyte "line" cannot
//! eat the memory of a 2 GB machine (vector's `newline_delimited` `max_length`
//! does the same). Every line that is not one JSON object becomes a
//! [`Reject`] with its line number and raw text; nothing is dropped silently.

use std::io::{self, BufRead};

use crate::record::{parse_record, Record, Value};

/// Default `--max-line-bytes`: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How much of an over-long line a reject keeps.
const OVERLONG_PREVIEW: usize = 1024;

/// What a reject carries of its input.
#[derive(Debug, Clone, PartialEq)]
pub enum RejectInput {
    /// The raw line, when it was valid UTF-8 but not a usable record.
    Raw(String),
    /// The raw bytes, when they were not valid UTF-8 (written as lossy text
    /// plus base64 of the exact bytes, so nothing is lost).
    Bytes(Vec<u8>),
    /// A parsed record that a later step could not process.
    Record(Record),
    /// Any other JSON value (e.g. a CSV row as an array of its fields).
    Value(Value),
    /// Only the first bytes of an over-long line, and its full length.
    Truncated { preview: String, len: usize },
}

/// A record (or line) that could not be processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// 1-based line number in its input.
    pub line: u64,
    /// What was wrong, naming the field where there is one.
    pub error: String,
    /// The input that was rejected.
    pub input: RejectInput,
    /// The input file, when not stdin.
    pub source: Option<String>,
}

impl Reject {
    /// A reject of a parsed record.
    pub fn record(line: u64, error: impl Into<String>, record: Record) -> Self {
        Self {
            line,
            error: error.into(),
            input: RejectInput::Record(record),
            source: None,
        }
    }

    /// The reject as the JSON object written to `--rejects` files.
    pub fn to_json_line(&self, stage: &str, run_id: &str) -> Vec<u8> {
        use crate::record::{write_record, write_str, write_value};
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(format!("{{\"line\":{},\"error\":", self.line).as_bytes());
        // The error and the source name may quote a URL; the input is data
        // and is kept byte-exact.
        write_str(&mut out, &crate::redact::urls_in(&self.error));
        out.extend_from_slice(b",\"stage\":");
        write_str(&mut out, stage);
        out.extend_from_slice(b",\"input\":");
        match &self.input {
            RejectInput::Raw(s) => write_str(&mut out, s),
            RejectInput::Record(r) => write_record(&mut out, r),
            RejectInput::Value(v) => write_value(&mut out, v),
            RejectInput::Bytes(b) => {
                write_str(&mut out, &String::from_utf8_lossy(b));
                out.extend_from_slice(b",\"input_base64\":");
                write_str(&mut out, &base64(b));
            }
            RejectInput::Truncated { preview, len } => {
                write_str(&mut out, preview);
                out.extend_from_slice(b",\"input_truncated\":true,\"input_bytes\":");
                write_value(&mut out, &Value::from(*len as u64));
            }
        }
        if let Some(src) = &self.source {
            out.extend_from_slice(b",\"source\":");
            write_str(&mut out, &crate::redact::urls_in(src));
        }
        out.extend_from_slice(b",\"run_id\":");
        write_str(&mut out, run_id);
        out.extend_from_slice(b"}\n");
        out
    }
}

/// Standard base64 (RFC 4648) of `bytes`; used only for rejected raw bytes.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `bytes` as text when they are UTF-8 (checked with SIMD: every line is
/// checked, so this is on every command's hot path).
fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// One item of the stream: a record, or a line that is not one.
#[derive(Debug)]
pub enum Item {
    /// A record and its 1-based line number.
    Record(u64, Record),
    /// A line that could not be read as a record.
    Reject(Reject),
}

/// Streams records from one input.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    buf: Vec<u8>,
    line: u64,
    max_line_bytes: usize,
    source: Option<String>,
    raw: (usize, usize),
}

impl<R: BufRead> RecordReader<R> {
    /// A reader over `inner`; `source` names it in rejects (None for stdin).
    pub fn new(inner: R, max_line_bytes: usize, source: Option<String>) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(8 * 1024),
            line: 0,
            max_line_bytes,
            source,
            raw: (0, 0),
        }
    }

    /// The exact bytes of the line the last record was parsed from (without
    /// BOM, `\r` or `\n`), for commands that pass records through unchanged.
    pub fn raw_line(&self) -> &[u8] {
        &self.buf[self.raw.0..self.raw.1]
    }

    /// The underlying reader (what it had buffered ahead stays in it).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The number of lines read so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads one raw line into `self.buf` (without its `\n`). Returns
    /// `Ok(None)` at end of input and the full length when it was over the cap.
    fn read_line(&mut self) -> io::Result<Option<usize>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(any.then_some(total));
            }
            any = true;
            let (chunk, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], Some(i + 1)),
                None => (avail, None),
            };
            let room = (self.max_line_bytes + 1).saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            total += chunk.len();
            let used = done.unwrap_or(chunk.len());
            self.inner.consume(used);
            if done.is_some() {
                return Ok(Some(total));
            }
        }
    }

    /// The next record or reject; `None` at the end of input. I/O errors are
    /// returned as they are (the caller knows whether this is stdin or a file).
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        Ok(match self.next_raw()? {
            None => None,
            Some(Err(reject)) => Some(Item::Reject(reject)),
            Some(Ok(line)) => {
                let (start, end) = self.raw;
                let text = utf8(&self.buf[start..end]).unwrap_or_default();
                Some(match parse_record(text) {
                    Ok(rec) => Item::Record(line, rec),
                    Err(e) => Item::Reject(self.reject_raw(e.0)),
                })
            }
        })
    }

    /// The next non-blank line as UTF-8 text, unparsed (see [`Self::raw_line`]),
    /// or a reject for an over-long or non-UTF-8 line; `None` at the end of
    /// input. For commands that parse records their own way; a line they
    /// cannot parse becomes a reject through [`Self::reject_raw`].
    pub fn next_raw(&mut self) -> io::Result<Option<std::result::Result<u64, Reject>>> {
        loop {
            let Some(len) = self.read_line()? else {
                return Ok(None);
            };
            self.line += 1;
            let mut bytes: &[u8] = &self.buf;
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if let Some(b) = bytes.strip_suffix(b"\r") {
                bytes = b;
            }
            if len > self.max_line_bytes {
                let cut = &bytes[..bytes.len().min(OVERLONG_PREVIEW)];
                return Ok(Some(Err(self.reject_with(
                    format!(
                        "line longer than --max-line-bytes ({} bytes)",
                        self.max_line_bytes
                    ),
                    RejectInput::Truncated {
                        preview: String::from_utf8_lossy(cut).into_owned(),
                        len,
                    },
                ))));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if utf8(bytes).is_none() {
                let at = std::str::from_utf8(bytes)
                    .err()
                    .map_or(0, |e| e.valid_up_to());
                let input = RejectInput::Bytes(bytes.to_vec());
                return Ok(Some(Err(
                    self.reject_with(format!("invalid UTF-8 at byte {}", at + 1), input)
                )));
            }
            let start = self.buf.len() - bytes.len() - usize::from(self.buf.ends_with(b"\r"));
            self.raw = (start, start + bytes.len());
            return Ok(Some(Ok(self.line)));
        }
    }

    /// The text of the line [`Self::next_raw`] returned (valid UTF-8).
    pub fn raw_text(&self) -> &str {
        utf8(self.raw_line()).unwrap_or_default()
    }

    /// A reject of the current raw line, keeping its text.
    pub fn reject_raw(&self, error: String) -> Reject {
        self.reject_with(error, RejectInput::Raw(self.raw_text().to_owned()))
    }

    fn reject_with(&self, error: String, input: RejectInput) -> Reject {
        Reject {
            line: self.line,
            error,
            input,
            source: self.source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8], max: usize) -> Vec<Item> {
        let mut r = RecordReader::new(input, max, None);
        let mut v = Vec::new();
        while let Some(i) = r.next_item().unwrap() {
            v.push(i);
        }
        v
    }

    fn lines(items: &[Item]) -> Vec<(u64, bool)> {
        items
            .iter()
            .map(|i| match i {
                Item::Record(n, _) => (*n, true),
                Item::Reject(r) => (r.line, false),
            })
            .collect()
    }

    #[test]
    fn bom_crlf_blank_lines_and_missing_final_newline() {
        let got = items(b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n   \n{\"a\":2}", 100);
        assert_eq!(lines(&got), vec![(1, true), (4, true)]);
        let Item::Record(_, r) = &got[0] else {
            panic!()
        };
        assert_eq!(r["a"].to_json(), "1");
    }

    #[test]
    fn raw_line_is_the_record_text_without_bom_or_cr() {
        let mut r = RecordReader::new(&b"\xEF\xBB\xBF{\"a\": 1.0}\r\n{\"b\":2}"[..], 100, None);
        r.next_item().unwrap();
        assert_eq!(r.raw_line(), b"{\"a\": 1.0}");
        r.next_item().unwrap();
        assert_eq!(r.raw_line(), b"{\"b\":2}");
    }

    #[test]
    fn bad_lines_become_rejects_with_line_numbers_and_raw_text() {
        let got = items(b"{\"id\":1}\nnot json\n[1]\n\"s\"\n{\"id\":2}\n", 100);
        assert_eq!(
            lines(&got),
            vec![(1, true), (2, false), (3, false), (4, false), (5, true)]
        );
        let Item::Reject(r) = &got[1] else { panic!() };
        assert_eq!(r.input, RejectInput::Raw("not json".into()));
        assert!(r.error.starts_with("invalid JSON"), "{}", r.error);
    }

    #[test]
    fn invalid_utf8_is_kept_byte_exact() {
        let got = items(b"{\"a\":\"\xff\xfe\"}\n", 100);
        let Item::Reject(r) = &got[0] else { panic!() };
        assert_eq!(
            r.input,
            RejectInput::Bytes(b"{\"a\":\"\xff\xfe\"}".to_vec())
        );
        let line = String::from_utf8(r.to_json_line("t", "run")).unwrap();
        // base64 of the exact bytes, checked with coreutils' base64.
        assert!(
            line.contains("\"input_base64\":\"eyJhIjoi//4ifQ==\""),
            "{line}"
        );
    }

    #[test]
    fn overlong_line_is_a_reject_and_the_next_line_still_reads() {
        let mut input = b"{\"a\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\"}\n{\"b\":1}\n");
        // A tiny BufReader capacity forces the line across many fill_buf calls.
        let mut r = RecordReader::new(io::BufReader::with_capacity(7, &input[..]), 64, None);
        let Some(Item::Reject(rej)) = r.next_item().unwrap() else {
            panic!()
        };
        assert_eq!(rej.line, 1);
        match rej.input {
            RejectInput::Truncated { preview, len } => {
                assert_eq!(len, 5008);
                assert!(preview.len() <= 65);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            r.buf.capacity() < 8 * 1024 + 128,
            "buffered more than the cap"
        );
        let Some(Item::Record(2, rec)) = r.next_item().unwrap() else {
            panic!()
        };
        assert_eq!(rec["b"].to_json(), "1");
    }

    #[test]
    fn exactly_max_bytes_is_accepted() {
        let line = br#"{"a":"xxxx"}"#; // 12 bytes
        assert_eq!(lines(&items(line, 12)), vec![(1, true)]);
        assert_eq!(lines(&items(line, 11)), vec![(1, false)]);
    }

    #[test]
    fn reject_json_line_shape() {
        let r = Reject {
            line: 3,
            error: "bad".into(),
            input: RejectInput::Raw("x\"y".into()),
            source: Some("f.ndjson".into()),
        };
        let v = Value::parse(std::str::from_utf8(&r.to_json_line("etl-x", "R1")).unwrap()).unwrap();
        assert_eq!(
            v.to_json(),
            r#"{"line":3,"error":"bad","stage":"etl-x","input":"x\"y","source":"f.ndjson","run_id":"R1"}"#
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
