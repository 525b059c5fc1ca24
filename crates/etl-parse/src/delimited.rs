//! Delimited text (CSV, TSV, `;`/`|` files) to records, in constant memory.
//!
//! The csv crate does the RFC 4180 work (quotes, doubled quotes, quoted
//! newlines, CRLF/LF/bare-CR line ends, a final line without newline); one
//! `ByteRecord` is reused for every row, each row is checked for UTF-8 once
//! as a whole, and fields are written straight into the output buffer (see
//! `emit`). Preamble lines (`--skip-rows`) are skipped on raw lines before
//! the csv reader starts, so a title row with a different shape cannot
//! confuse the delimiter sniffer.

use std::io::{self, BufRead, BufReader, Read};

use etl_core::reader::RejectInput;
use etl_core::{Error, Exit, Reject, Result, Run, Value};

use crate::detect::sniff_delimiter;
use crate::emit::{header_names, numbered, Cell, Emitter, Keys, Normalize, Origin};
use crate::input::{read_head, Limits};

/// `--ragged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Ragged {
    /// A row with more fields than the header is a reject.
    #[default]
    Reject,
    /// Extra fields go into `_extra` (an array).
    Keep,
}

/// Options for delimited text.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--delimiter` (None: sniffed).
    pub delimiter: Option<u8>,
    /// `--quote`.
    pub quote: u8,
    /// `--escape` (None: quotes are escaped by doubling them).
    pub escape: Option<u8>,
    /// `--comment`.
    pub comment: Option<u8>,
    /// `--no-header`.
    pub no_header: bool,
    /// `--skip-rows`.
    pub skip_rows: u64,
    /// `--normalize-headers`.
    pub normalize: Normalize,
    /// `--ragged`.
    pub ragged: Ragged,
}

/// Skips `n` lines (`\n`, `\r\n` or a bare `\r` each end one).
fn skip_lines(r: &mut impl BufRead, n: u64) -> io::Result<()> {
    let mut left = n;
    let mut after_cr = false;
    while left > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut used = 0;
        for &b in buf {
            if after_cr {
                after_cr = false;
                if b == b'\n' {
                    used += 1;
                    continue;
                }
            }
            if left == 0 {
                break;
            }
            used += 1;
            match b {
                b'\n' => left -= 1,
                b'\r' => {
                    left -= 1;
                    after_cr = true;
                }
                _ => {}
            }
        }
        r.consume(used);
        if left == 0 && !after_cr {
            return Ok(());
        }
        if left == 0 {
            // Swallow the \n of a \r\n that straddles a buffer boundary.
            let buf = r.fill_buf()?;
            if buf.first() == Some(&b'\n') {
                r.consume(1);
            }
            return Ok(());
        }
    }
    Ok(())
}

/// Parses one delimited-text stream (already UTF-8).
pub fn parse(
    input: Box<dyn Read + '_>,
    tsv: bool,
    opts: &Opts,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
    limits: &Limits,
) -> Result<()> {
    let name = origin.label.as_str();
    let io_err = |e: io::Error| {
        limits
            .error(name)
            .unwrap_or_else(|| Error::new(Exit::IoErr, format!("{name}: {e}")))
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, input);
    skip_lines(&mut buffered, opts.skip_rows).map_err(io_err)?;
    let sample = read_head(&mut buffered, 64 * 1024).map_err(io_err)?;
    let complete = sample.len() < 64 * 1024;
    let delimiter = opts
        .delimiter
        .or(if tsv { Some(b'\t') } else { None })
        .or_else(|| sniff_delimiter(&sample, opts.quote, complete))
        .unwrap_or(b',');
    let reader = io::Cursor::new(sample).chain(buffered);
    // csv-core reads a comment on the last line without a newline as an
    // empty record: give such input its final newline.
    let reader: Box<dyn Read + '_> = if opts.comment.is_some() {
        Box::new(FinalNewline {
            inner: reader,
            last: b'\n',
            done: false,
        })
    } else {
        Box::new(reader)
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(opts.quote)
        .double_quote(true)
        .escape(opts.escape)
        .comment(opts.comment)
        .flexible(true)
        .has_headers(false)
        .buffer_capacity(64 * 1024)
        .from_reader(reader);

    let mut rec = csv::ByteRecord::new();
    let mut keys: Option<Keys> = None;
    let mut row: u64 = 0;
    let line_offset = opts.skip_rows;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(e) => io_err(e),
                    other => Error::data(format!("{name}: {other:?}")),
                })
            }
        }
        let line = rec.position().map_or(0, csv::Position::line) + line_offset;
        let bytes = rec.as_slice();
        // NUL never belongs in text: a binary file, or UTF-16 without a BOM.
        let bad = if bytes.contains(&0) {
            Some(
                "NUL byte in text (binary data, or UTF-16 without a BOM: try --encoding utf-16le)"
                    .to_owned(),
            )
        } else {
            std::str::from_utf8(bytes)
                .err()
                .map(|e| format!("invalid UTF-8 at byte {} of the row", e.valid_up_to() + 1))
        };
        if let Some(error) = bad {
            if keys.is_some() || opts.no_header {
                row += 1;
            }
            run.records_in += 1;
            let fields: Vec<Value> = rec
                .iter()
                .map(|f| Value::from(String::from_utf8_lossy(f).replace('\0', "\u{FFFD}")))
                .collect();
            run.reject(&Reject {
                line,
                error,
                input: RejectInput::Value(Value::Array(fields)),
                source: Some(name.to_owned()),
            })?;
            continue;
        }
        let whole = std::str::from_utf8(bytes).unwrap_or_default();
        let field = |i: usize| rec.range(i).and_then(|r| whole.get(r)).unwrap_or("");
        if keys.is_none() {
            if opts.no_header {
                keys = Some(Keys::new(numbered(rec.len())));
            } else {
                keys = Some(Keys::new(header_names(
                    (0..rec.len()).map(field),
                    opts.normalize,
                )));
                continue;
            }
        }
        if let Some(k) = &keys {
            emit_row(em, run, k, &rec, whole, origin, opts.ragged, &mut row, line)?;
        }
    }
    Ok(())
}

/// Adds a `\n` at the end of input that does not end with one.
struct FinalNewline<R> {
    inner: R,
    last: u8,
    done: bool,
}

impl<R: Read> Read for FinalNewline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last = buf[n - 1];
            return Ok(n);
        }
        self.done = true;
        if self.last == b'\n' || self.last == b'\r' {
            return Ok(0);
        }
        buf[0] = b'\n';
        Ok(1)
    }
}

#[allow(clippy::too_many_arguments)] // the hot loop's state, kept out of a struct on purpose
fn emit_row(
    em: &mut Emitter,
    run: &mut Run,
    keys: &Keys,
    rec: &csv::ByteRecord,
    whole: &str,
    origin: &Origin,
    ragged: Ragged,
    row: &mut u64,
    line: u64,
) -> Result<()> {
    *row += 1;
    run.records_in += 1;
    run.progress.tick(rec.as_slice().len() + rec.len());
    let field = |i: usize| rec.range(i).and_then(|r| whole.get(r)).unwrap_or("");
    let n = rec.len();
    let cells = (0..n.min(keys.len())).map(|i| Cell::Text(field(i)));
    if n > keys.len() {
        if ragged == Ragged::Reject {
            let fields: Vec<Value> = (0..n).map(|i| Value::from(field(i))).collect();
            return run.reject(&Reject {
                line,
                error: format!(
                    "row has {n} fields, the header has {} (see --ragged keep)",
                    keys.len()
                ),
                input: RejectInput::Value(Value::Array(fields)),
                source: Some(origin.label.clone()),
            });
        }
        let extra: Vec<Cell<'_>> = (keys.len()..n).map(|i| Cell::Text(field(i))).collect();
        em.row(keys, cells, &extra, origin, *row)
            .map_err(|e| Error::stdout(&e))?;
    } else {
        em.row(keys, cells, &[], origin, *row)
            .map_err(|e| Error::stdout(&e))?;
    }
    run.records_out += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(input: &[u8], n: u64, cap: usize) -> String {
        let mut r = BufReader::with_capacity(cap, input);
        skip_lines(&mut r, n).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn skip_rows_counts_every_line_ending() {
        assert_eq!(skipped(b"title\nmore\na,b\n", 2, 64), "a,b\n");
        assert_eq!(skipped(b"title\r\nmore\ra,b\n", 2, 64), "a,b\n");
        assert_eq!(
            skipped(b"title\r\na,b\n", 1, 6),
            "a,b\n",
            "\\r\\n across a buffer edge"
        );
        assert_eq!(skipped(b"only", 3, 64), "");
        assert_eq!(skipped(b"a\nb", 0, 64), "a\nb");
    }
}
