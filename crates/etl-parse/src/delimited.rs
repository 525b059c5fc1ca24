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
use etl_core::{Error, Reject, Result, Run, Value};

use crate::detect::sniff_delimiter;
use crate::emit::{header_names, numbered, Cell, Emitter, Keys, Normalize, Origin};
use crate::fastcsv::{Direct, Next, Scanner, Suffix};
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
    let io_err = |e: io::Error| limits.read_error(name, &e);
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
    let mut rows = Rows {
        keys: None,
        row: 0,
        opts,
        origin,
    };
    // The tuned scanner (see fastcsv) reads every dialect.
    let mut scanner = Scanner::new(reader, delimiter, opts.quote, run.max_line_bytes)
        .with_escape(opts.escape)
        .with_comment(opts.comment);
    // The direct path writes ordinary string rows straight from the buffer;
    // the test hook turns it off to compare the two paths.
    let direct = !em.infers()
        && opts.escape.is_none()
        && opts.comment.is_none()
        && !etl_core::config::test_switch("ETL_PARSE_NO_DIRECT")?;
    let mut backoff = Backoff::default();
    loop {
        if direct && backoff.ready() {
            backoff.took(rows.direct(&mut scanner, em, run)?);
        }
        let Some(next) = scanner.next_record().map_err(io_err)? else {
            break;
        };
        match next {
            Next::Record(r) => {
                let line = r.line + opts.skip_rows;
                rows.row(
                    em,
                    run,
                    r.bytes,
                    r.fields,
                    line,
                    r.clean,
                    r.utf8,
                    r.field_clean,
                )?;
            }
            Next::TooLong { line, preview } => {
                too_long(run, line + opts.skip_rows, &preview, name)?;
            }
            Next::Malformed { line, raw, why } => {
                let line = line + opts.skip_rows;
                if rows.keys.is_none() && !opts.no_header {
                    // Without its header no row can be read.
                    return Err(Error::data(format!(
                        "{name}: line {line}: the header: {why}"
                    )));
                }
                malformed(run, line, raw, &why, name)?;
            }
        }
    }
    Ok(())
}

/// Rejects a record longer than `--max-line-bytes`.
fn too_long(run: &mut Run, line: u64, preview: &[u8], name: &str) -> Result<()> {
    run.records_in += 1;
    run.reject(&Reject {
        line,
        error: format!(
            "record longer than --max-line-bytes ({} bytes)",
            run.max_line_bytes
        ),
        input: RejectInput::Raw(String::from_utf8_lossy(preview).into_owned()),
        source: Some(name.to_owned()),
    })
}

/// Rejects a record whose quotes are out of place, with the bytes the file
/// holds (reading it would drop quote characters).
fn malformed(run: &mut Run, line: u64, raw: &[u8], why: &str, name: &str) -> Result<()> {
    run.records_in += 1;
    let input = match std::str::from_utf8(raw) {
        Ok(s) => RejectInput::Raw(s.to_owned()),
        Err(_) => RejectInput::Bytes(raw.to_vec()),
    };
    run.reject(&Reject {
        line,
        error: format!(
            "{why}; the row is rejected rather than read with quote characters dropped (--quote, or fix the file)"
        ),
        input,
        source: Some(name.to_owned()),
    })
}

/// When the direct path stops before writing a record, the next records go
/// the other way, more of them each time (up to 64): a file of rows it never
/// takes costs little. A record it takes resets the count.
#[derive(Debug, Default)]
struct Backoff {
    step: u32,
    skip: u32,
}

impl Backoff {
    /// Whether to try the direct path before the next record.
    fn ready(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }

    /// What the last try did: `took` some records or none.
    fn took(&mut self, took: bool) {
        if took {
            self.step = 0;
        } else {
            self.step = (self.step * 2 + 1).min(64);
            self.skip = self.step;
        }
    }
}

/// Turns records (bytes + field ranges) into output rows: the header, NUL
/// and UTF-8 checks, ragged rows, and the emitter.
struct Rows<'o> {
    keys: Option<Keys>,
    row: u64,
    opts: &'o Opts,
    origin: &'o Origin,
}

impl Rows<'_> {
    /// Writes the ordinary records from the scanner's position with its
    /// direct path (once the header is known), until one is not ordinary
    /// or the buffered input ends. False when it wrote none.
    fn direct<R: Read>(
        &mut self,
        scanner: &mut Scanner<R>,
        em: &mut Emitter,
        run: &mut Run,
    ) -> Result<bool> {
        let Some(keys) = &self.keys else {
            return Ok(true);
        };
        let mut any = false;
        let (chunks, ranges) = keys.string_chunks();
        let origin = self.origin;
        loop {
            let mut row = self.row;
            let mut suffix = |buf: &mut Vec<u8>| {
                row += 1;
                origin.write_suffix(buf, row, false);
            };
            let mut suffix: Suffix<'_> = if origin.is_plain() {
                None
            } else {
                Some(&mut suffix)
            };
            let mut done = Direct::default();
            em.lines(|out, limit| {
                done = scanner.direct_records(chunks, ranges, out, limit, suffix.take());
                done.records
            })
            .map_err(|e| Error::stdout(&e))?;
            self.row += done.records;
            run.records_in += done.records;
            run.records_out += done.records;
            run.progress.advance(done.records, done.bytes);
            any |= done.records > 0;
            if !done.more {
                return Ok(any);
            }
        }
    }

    /// One record: `bytes` and its field `ranges`; `utf8` when the caller
    /// already knows the bytes are UTF-8, `clean` when no field needs escaping.
    #[allow(clippy::too_many_arguments)] // the hot loop's inputs, kept as plain slices
    fn row(
        &mut self,
        em: &mut Emitter,
        run: &mut Run,
        bytes: &[u8],
        ranges: &[(usize, usize)],
        line: u64,
        clean: bool,
        utf8: bool,
        field_clean: Option<&[bool]>,
    ) -> Result<()> {
        // NUL never belongs in text: a binary file, or UTF-16 without a BOM.
        let bad = if !clean && memchr::memchr(0, bytes).is_some() {
            Some(
                "NUL byte in text (binary data, or UTF-16 without a BOM: try --encoding utf-16le)"
                    .to_owned(),
            )
        } else if utf8 {
            None
        } else {
            std::str::from_utf8(bytes)
                .err()
                .map(|e| format!("invalid UTF-8 at byte {} of the row", e.valid_up_to() + 1))
        };
        if let Some(error) = bad {
            if self.keys.is_some() || self.opts.no_header {
                self.row += 1;
            }
            run.records_in += 1;
            let lossy = |&(a, b): &(usize, usize)| {
                Value::from(String::from_utf8_lossy(&bytes[a..b]).replace('\0', "\u{FFFD}"))
            };
            let fields: Vec<Value> = ranges.iter().map(lossy).collect();
            return run.reject(&Reject {
                line,
                error,
                input: RejectInput::Value(Value::Array(fields)),
                source: Some(self.origin.label.clone()),
            });
        }
        // Valid UTF-8 from here on: fields are sliced at ASCII delimiters.
        let field = |&(a, b): &(usize, usize)| &bytes[a..b];
        let text = |r: &(usize, usize)| std::str::from_utf8(field(r)).unwrap_or_default();
        let keys = match &self.keys {
            Some(k) => k,
            None if self.opts.no_header => self.keys.insert(Keys::new(&numbered(ranges.len()))),
            None => {
                self.keys = Some(Keys::new(&header_names(
                    ranges.iter().map(text),
                    self.opts.normalize,
                )));
                return Ok(());
            }
        };
        self.row += 1;
        run.records_in += 1;
        run.progress.tick(bytes.len() + 1);
        let n = ranges.len();
        if n == keys.len() && !em.infers() {
            let field_clean =
                |i: usize| clean || field_clean.is_some_and(|f| f.get(i) == Some(&true));
            em.string_row(keys, bytes, ranges, field_clean, self.origin, self.row)
                .map_err(|e| Error::stdout(&e))?;
            run.records_out += 1;
            return Ok(());
        }
        let plain = |i: usize| clean || field_clean.is_some_and(|f| f.get(i) == Some(&true));
        let cell = |(i, r): (usize, &(usize, usize))| {
            if plain(i) {
                Cell::Plain(field(r))
            } else {
                Cell::Bytes(field(r))
            }
        };
        let cells = ranges[..n.min(keys.len())].iter().enumerate().map(cell);
        if n > keys.len() {
            if self.opts.ragged == Ragged::Reject {
                let fields: Vec<Value> = ranges.iter().map(|r| Value::from(text(r))).collect();
                return run.reject(&Reject {
                    line,
                    error: format!(
                        "row has {n} fields, the header has {} (see --ragged keep)",
                        keys.len()
                    ),
                    input: RejectInput::Value(Value::Array(fields)),
                    source: Some(self.origin.label.clone()),
                });
            }
            let extra: Vec<Cell<'_>> = ranges
                .iter()
                .enumerate()
                .skip(keys.len())
                .map(cell)
                .collect();
            em.row(keys, cells, &extra, self.origin, self.row)
                .map_err(|e| Error::stdout(&e))?;
        } else {
            em.row(keys, cells, &[], self.origin, self.row)
                .map_err(|e| Error::stdout(&e))?;
        }
        run.records_out += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_path_backs_off_while_it_takes_nothing() {
        let mut b = Backoff::default();
        // Records skipped after each try that took nothing: 1, 3, 7, ...
        // up to 64; a try that took records resets.
        let mut skipped = Vec::new();
        for _ in 0..8 {
            assert!(b.ready());
            b.took(false);
            let mut n = 0;
            while !b.ready() {
                n += 1;
            }
            skipped.push(n);
            // `ready` said yes: that try is the next loop's.
            b.skip = 0;
        }
        assert_eq!(skipped, [1, 3, 7, 15, 31, 63, 64, 64]);
        b.took(true);
        assert!(b.ready());
        b.took(false);
        assert_eq!(b.skip, 1);
    }

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
