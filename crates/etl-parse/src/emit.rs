//! Building output records: the hot path of every format.
//!
//! Rows are serialised straight into the writer's buffer with keys escaped
//! once per file (`"order_id":` is computed when the header is read, not per
//! row), values escaped with a table-driven fast path, and the provenance and
//! carried manifest fields appended as one pre-built suffix. No `Value` tree
//! is built for delimited text or spreadsheets.

use std::io;

use etl_core::record::{write_record, write_str, Record};
use etl_core::{RecordWriter, Value};

/// How values are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueOpts {
    /// `--infer`: integers, decimals and booleans become JSON; empty becomes null.
    pub infer: bool,
}

/// One cell of a row, before it is written.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// Text (CSV fields, text cells).
    Text(&'a str),
    /// UTF-8 bytes known to need no JSON escaping (checked once per row).
    Plain(&'a [u8]),
    /// UTF-8 bytes (checked by the caller) that may need escaping.
    Bytes(&'a [u8]),
    /// A number's shortest decimal text (spreadsheet numeric cells).
    Number(&'a str),
    /// A boolean cell.
    Bool(bool),
    /// An empty cell.
    Empty,
}

/// Where the records of one input come from: the provenance and carried
/// fields appended to each of them.
#[derive(Debug, Default, Clone)]
pub struct Origin {
    /// `_source`, `_member`, `_sheet` (when `--provenance`), already serialised.
    before_row: Vec<u8>,
    /// Whether `_row` is written.
    row: bool,
    /// Carried manifest fields (`_date`, `_from`, ...), already serialised.
    after_row: Vec<u8>,
    /// For messages and rejects: `file.zip:member.csv[Sheet1]`.
    pub label: String,
}

impl Origin {
    /// The origin of `source` (a path, URL or `-`).
    pub fn new(source: &str, provenance: bool, carry: &[(String, Value)]) -> Self {
        let mut o = Origin {
            row: provenance,
            label: source.to_owned(),
            ..Origin::default()
        };
        if provenance {
            push_field(&mut o.before_row, "_source", &Value::from(source));
        }
        for (k, v) in carry {
            push_field(&mut o.after_row, &format!("_{k}"), v);
        }
        o
    }

    /// The same origin inside archive member `member`.
    #[must_use]
    pub fn member(&self, member: &str) -> Self {
        let mut o = self.clone();
        if o.row {
            push_field(&mut o.before_row, "_member", &Value::from(member));
        }
        o.label = format!("{}:{member}", self.label);
        o
    }

    /// The same origin on sheet `sheet`.
    #[must_use]
    pub fn sheet(&self, sheet: &str, with_field: bool) -> Self {
        let mut o = self.clone();
        if o.row || with_field {
            push_field(&mut o.before_row, "_sheet", &Value::from(sheet));
        }
        o.label = format!("{}[{sheet}]", self.label);
        o
    }

    /// True when nothing is appended to records.
    pub fn is_plain(&self) -> bool {
        !self.row && self.before_row.is_empty() && self.after_row.is_empty()
    }

    /// Appends the suffix for data row `row` (`first`: no field was written yet).
    pub fn write_suffix(&self, out: &mut Vec<u8>, row: u64, mut first: bool) {
        for part in [&self.before_row[..]] {
            if !part.is_empty() {
                out.extend_from_slice(if first { &part[1..] } else { part });
                first = false;
            }
        }
        if self.row {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"_row\":");
            out.extend_from_slice(itoa(row).as_bytes());
            first = false;
        }
        if !self.after_row.is_empty() {
            out.extend_from_slice(if first {
                &self.after_row[1..]
            } else {
                &self.after_row
            });
        }
    }
}

fn itoa(n: u64) -> String {
    n.to_string()
}

fn push_field(out: &mut Vec<u8>, key: &str, v: &Value) {
    out.push(b',');
    write_str(out, key);
    out.push(b':');
    etl_core::record::write_value(out, v);
}

/// Header keys pre-serialised as `"key":`.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<Vec<u8>>,
    /// For rows of clean strings: `{"a":"`, `","b":"`, ... (each key closes
    /// the previous value's quote and opens its own), so a field is two copies.
    /// They are kept end to end, then 16 bytes of padding (see [`put`]).
    string_keys_packed: Vec<u8>,
    /// Each string key's range in `string_keys_packed`.
    string_key_ranges: Vec<(usize, usize)>,
}

impl Keys {
    /// Keys for `names` (already unique).
    pub fn new(names: &[String]) -> Self {
        let keys = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut k = Vec::with_capacity(n.len() + 4);
                k.push(if i == 0 { b'{' } else { b',' });
                write_str(&mut k, n);
                k.push(b':');
                k
            })
            .collect::<Vec<Vec<u8>>>();
        let mut string_keys_packed = Vec::new();
        let mut string_key_ranges = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let from = string_keys_packed.len();
            if i > 0 {
                string_keys_packed.push(b'"');
            }
            string_keys_packed.extend_from_slice(k);
            string_keys_packed.push(b'"');
            string_key_ranges.push((from, string_keys_packed.len()));
        }
        string_keys_packed.extend_from_slice(&[0; 16]);
        Self {
            keys,
            string_keys_packed,
            string_key_ranges,
        }
    }

    /// The packed string-row chunks and each column's range in them (for
    /// the scanner's direct path).
    pub fn string_chunks(&self) -> (&[u8], &[(usize, usize)]) {
        (&self.string_keys_packed, &self.string_key_ranges)
    }

    /// The column count.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Writes records to stdout.
#[derive(Debug)]
pub struct Emitter {
    out: RecordWriter<io::Stdout>,
    opts: ValueOpts,
}

impl Emitter {
    /// An emitter on stdout.
    pub fn new(opts: ValueOpts) -> Self {
        Self {
            out: RecordWriter::stdout(),
            opts,
        }
    }

    /// Writes one row. `cells` beyond the keys go to `_extra` (an array)
    /// when `keep_extra`; missing cells are written as `""` (or null with
    /// `--infer`).
    pub fn row<'c>(
        &mut self,
        keys: &Keys,
        cells: impl Iterator<Item = Cell<'c>>,
        extra: &[Cell<'c>],
        origin: &Origin,
        row: u64,
    ) -> io::Result<()> {
        let infer = self.opts.infer;
        self.out.write_with(|buf| {
            // Each key carries its separator (`{"a":`, `,"b":`): one copy per field.
            let mut n = 0;
            for (key, cell) in keys.keys.iter().zip(cells) {
                buf.extend_from_slice(key);
                write_cell(buf, cell, infer);
                n += 1;
            }
            for key in &keys.keys[n..] {
                buf.extend_from_slice(key);
                write_cell(buf, Cell::Empty, infer);
                n += 1;
            }
            if n == 0 {
                buf.push(b'{');
            }
            if !extra.is_empty() {
                if n > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"\"_extra\":[");
                for (i, c) in extra.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_cell(buf, *c, infer);
                }
                buf.push(b']');
                n += 1;
            }
            origin.write_suffix(buf, row, n == 0);
            buf.push(b'}');
        })
    }

    /// Writes a row of string fields, one per key (the common CSV row,
    /// without `--infer`): per field, its key and its content. `clean(i)`
    /// says field `i` needs no escaping (known from scanning); the others
    /// are escaped.
    pub fn string_row(
        &mut self,
        keys: &Keys,
        bytes: &[u8],
        ranges: &[(usize, usize)],
        clean: impl Fn(usize) -> bool,
        origin: &Origin,
        row: u64,
    ) -> io::Result<()> {
        self.out.write_with(|buf| {
            // The packed keys' length bounds the keys this row writes.
            buf.reserve(bytes.len() + keys.string_keys_packed.len() + 64);
            let packed = &keys.string_keys_packed;
            for (i, (&(ka, kb), &(a, b))) in keys.string_key_ranges.iter().zip(ranges).enumerate() {
                put(buf, packed, ka, kb);
                if clean(i) {
                    put(buf, bytes, a, b);
                } else {
                    let v = &bytes[a..b];
                    if crate::fastcsv::is_clean(v) {
                        buf.extend_from_slice(v);
                    } else {
                        etl_core::record::write_escaped_content(buf, v);
                    }
                }
            }
            if !keys.string_key_ranges.is_empty() {
                buf.push(b'"');
            }
            origin.write_suffix(buf, row, keys.string_key_ranges.is_empty());
            buf.push(b'}');
        })
    }

    /// Writes whole lines at once: `f` appends them to the output buffer
    /// (stopping once it holds `limit` bytes) and returns how many it wrote.
    pub fn lines(&mut self, f: impl FnOnce(&mut Vec<u8>, usize) -> u64) -> io::Result<()> {
        self.out.write_lines(f)
    }

    /// Whether `--infer` is on (the clean-row path writes strings only).
    pub fn infers(&self) -> bool {
        self.opts.infer
    }

    /// Writes a parsed record (JSON inputs) with the origin's suffix.
    pub fn record(&mut self, rec: &Record, origin: &Origin, row: u64) -> io::Result<()> {
        self.out.write_with(|buf| {
            write_record(buf, rec);
            if !origin.is_plain() {
                buf.pop(); // the closing brace
                origin.write_suffix(buf, row, rec.is_empty());
                buf.push(b'}');
            }
        })
    }

    /// Writes an NDJSON line unchanged (plus the origin's suffix, if any).
    pub fn raw(&mut self, line: &[u8], empty: bool, origin: &Origin, row: u64) -> io::Result<()> {
        if origin.is_plain() {
            return self.out.write_raw(line);
        }
        let trimmed = line.trim_ascii_end();
        self.out.write_with(|buf| {
            buf.extend_from_slice(&trimmed[..trimmed.len().saturating_sub(1)]);
            origin.write_suffix(buf, row, empty);
            buf.push(b'}');
        })
    }

    /// Writes an arbitrary record built by the caller (`--list-sheets`).
    pub fn plain(&mut self, rec: &Record) -> io::Result<()> {
        self.out.write(rec)
    }

    /// Flushes stdout.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Appends `src[a..b]`. A short run is copied as a fixed 16 bytes (read
/// past `b` when `src` has them) and the surplus cut off again: two inline
/// moves instead of a `memcpy` call, which for the ~10 short fields of a
/// row was a third of the time spent writing it. Always inlined: as a call
/// it cost the direct path (`fastcsv::direct`) a tenth of its time.
#[allow(clippy::inline_always)]
#[inline(always)]
pub(crate) fn put(buf: &mut Vec<u8>, src: &[u8], a: usize, b: usize) {
    match src.get(a..).and_then(<[u8]>::first_chunk::<16>) {
        Some(run) if b - a <= 16 => {
            buf.extend_from_slice(run);
            buf.truncate(buf.len() - (16 - (b - a)));
        }
        _ => buf.extend_from_slice(&src[a..b]),
    }
}

/// Appends one cell as a JSON value.
fn write_cell(buf: &mut Vec<u8>, cell: Cell<'_>, infer: bool) {
    match cell {
        Cell::Text(s) => write_cell(buf, Cell::Bytes(s.as_bytes()), infer),
        Cell::Plain(s) | Cell::Bytes(s) if infer => match infer_text(s) {
            Inferred::Number => buf.extend_from_slice(s),
            Inferred::Bool(true) => buf.extend_from_slice(b"true"),
            Inferred::Bool(false) => buf.extend_from_slice(b"false"),
            Inferred::Null => buf.extend_from_slice(b"null"),
            Inferred::Text => write_bytes(buf, s),
        },
        Cell::Bytes(s) => write_bytes(buf, s),
        Cell::Plain(s) => {
            buf.push(b'"');
            buf.extend_from_slice(s);
            buf.push(b'"');
        }
        Cell::Number(n) if infer => buf.extend_from_slice(n.as_bytes()),
        Cell::Number(n) => {
            buf.push(b'"');
            buf.extend_from_slice(n.as_bytes());
            buf.push(b'"');
        }
        Cell::Bool(b) if infer => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        Cell::Bool(b) => buf.extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" }),
        Cell::Empty if infer => buf.extend_from_slice(b"null"),
        Cell::Empty => buf.extend_from_slice(b"\"\""),
    }
}

/// A JSON string from UTF-8 bytes: most fields need no escaping, so they
/// are copied whole after a vectorised check.
#[inline]
pub fn write_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    if crate::fastcsv::is_clean(s) {
        buf.push(b'"');
        buf.extend_from_slice(s);
        buf.push(b'"');
    } else {
        etl_core::record::write_escaped(buf, s);
    }
}

/// What `--infer` makes of a text value.
#[derive(Debug, PartialEq, Eq)]
pub enum Inferred {
    /// A JSON number, digits unchanged.
    Number,
    /// `true`/`false` in any case.
    Bool(bool),
    /// An empty value.
    Null,
    /// Stays a string.
    Text,
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: integers and plain decimals only, so
/// leading zeros (`00123`), exponents (`1e5`), hex and `NaN` stay strings.
pub fn infer_text(s: &[u8]) -> Inferred {
    if s.is_empty() {
        return Inferred::Null;
    }
    if s.eq_ignore_ascii_case(b"true") {
        return Inferred::Bool(true);
    }
    if s.eq_ignore_ascii_case(b"false") {
        return Inferred::Bool(false);
    }
    let b = s;
    let mut i = usize::from(b[0] == b'-');
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return Inferred::Text;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac {
            return Inferred::Text;
        }
    }
    if i == b.len() {
        Inferred::Number
    } else {
        Inferred::Text
    }
}

/// Column names from a header row: empty names become `col_N`, names are
/// normalised if asked, and duplicates become `name`, `name_2`, `name_3`...
pub fn header_names<'a>(raw: impl Iterator<Item = &'a str>, normalize: Normalize) -> Vec<String> {
    let base: Vec<String> = raw
        .enumerate()
        .map(|(i, h)| {
            let h = match normalize {
                Normalize::None => h.to_owned(),
                Normalize::Snake => snake(h),
                Normalize::Lower => h.trim().to_lowercase(),
                Normalize::Trim => h.trim().to_owned(),
            };
            if h.is_empty() {
                format!("col_{}", i + 1)
            } else {
                h
            }
        })
        .collect();
    dedupe(base)
}

/// `col_1..col_N`.
pub fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("col_{i}")).collect()
}

fn dedupe(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let taken: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if seen.insert(n.clone()) {
            out.push(n);
            continue;
        }
        let mut k = 2;
        loop {
            let cand = format!("{n}_{k}");
            if !seen.contains(&cand) && !taken.contains(&cand) {
                seen.insert(cand.clone());
                out.push(cand);
                break;
            }
            k += 1;
        }
    }
    out
}

/// `--normalize-headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Normalize {
    /// Keep names as they are.
    #[default]
    None,
    /// `Order ID` -> `order_id`, `unitPrice` -> `unit_price`.
    Snake,
    /// Lower case, trimmed.
    Lower,
    /// Trimmed.
    Trim,
}

pub use etl_core::names::snake;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infer_keeps_digits_and_refuses_lookalikes() {
        for n in [
            "0",
            "-0",
            "12",
            "-12",
            "3.50",
            "0.1",
            "12345678901234567890",
        ] {
            assert_eq!(infer_text(n.as_bytes()), Inferred::Number, "{n}");
        }
        for t in [
            "00123", "1e5", "0x10", "NaN", "1.", ".5", "+1", "1,000", " 1", "--1", "-",
        ] {
            assert_eq!(infer_text(t.as_bytes()), Inferred::Text, "{t}");
        }
        assert_eq!(infer_text(b"TRUE"), Inferred::Bool(true));
        assert_eq!(infer_text(b"false"), Inferred::Bool(false));
        assert_eq!(infer_text(b""), Inferred::Null);
    }

    #[test]
    fn header_names_dedupe_and_fill() {
        let h = header_names(["a", "", "a", "a_2", "b", "a"].into_iter(), Normalize::None);
        assert_eq!(h, ["a", "col_2", "a_3", "a_2", "b", "a_4"]);
        let h = header_names(
            [
                "Order ID",
                "unitPrice",
                " Total (EUR) ",
                "Über-Größe",
                "ID2Name",
            ]
            .into_iter(),
            Normalize::Snake,
        );
        assert_eq!(
            h,
            [
                "order_id",
                "unit_price",
                "total_eur",
                "über_größe",
                "id2_name"
            ]
        );
    }

    #[test]
    fn rows_pad_extra_and_provenance() {
        let keys = Keys::new(&["a".into(), "b\"q".into()]);
        let origin = Origin::new("f.csv", true, &[("from".into(), Value::from("x@y"))]);
        let mut buf = Vec::new();
        // Exercise the same code the emitter runs, on a Vec.
        buf.extend_from_slice(&keys.keys[0]);
        write_cell(&mut buf, Cell::Text("1\n"), false);
        origin.write_suffix(&mut buf, 7, false);
        buf.push(b'}');
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"a":"1\n","_source":"f.csv","_row":7,"_from":"x@y"}"#
        );
        let mut buf = Vec::new();
        Origin::new("f", false, &[("d".into(), Value::from(1_u64))])
            .write_suffix(&mut buf, 1, true);
        assert_eq!(String::from_utf8(buf).unwrap(), r#""_d":1"#);
    }
}
