//! The tuned CSV record scanner: the hot path of `etl-parse`.
//!
//! Most rows clients send have no quote at all. For those, one SIMD search
//! (`memchr3` for newline, quote and CR) finds the end of the row, and a
//! second (`memchr_iter` on the delimiter) finds the fields: no per-byte
//! state machine, no copy. A row that contains a quote or a bare CR goes
//! through an exact state machine with the csv crate's semantics (RFC 4180
//! quoting, doubled quotes, quoted newlines; a quote inside an unquoted field
//! is literal; CR, LF and CRLF each end a record; empty lines are skipped),
//! with one difference: a record with text after a closing quote (`"a"b`) or
//! a quoted field that is never closed is [`Next::Malformed`], a reject, not
//! a record. Reading it would drop quote characters the file holds (the csv
//! crate turns `"a"b` into `ab`); a value is read as the file holds it, or
//! its row is rejected naming the line and why. `--comment` lines are
//! skipped at the start of a record; with `--escape` (`\"` and `\\` inside
//! quotes; before anything else the escape character is data, kept), every
//! record with a quote takes the state machine.
//!
//! Between the two sits the block scanner, for rows with quotes: it
//! classifies 64 bytes at a time into bitmasks (quote, delimiter, line end,
//! needs-escaping), finds the quoted regions with a prefix XOR of the quote
//! mask, and takes the delimiters and line ends outside them as the row's
//! structure. It accepts a row only when every quote is where RFC 4180 puts
//! it (opening a field, closing it, or doubled inside it); any other row
//! (a literal quote in an unquoted field, text after a closing quote, an
//! unterminated quote) goes to the state machine, so both agree on every
//! input.
//!
//! Memory is bounded: one buffer that grows only to hold the longest record,
//! and a record longer than `max_record` bytes is reported as such (a reject)
//! instead of growing without limit.
//!
//! The files, one per reader, and what they share:
//!
//! - this one: the [`Scanner`] (its buffer, UTF-8 checks, over-long
//!   records) and [`Scanner::next_record`], which picks the reader;
//! - `plain`: lines without quotes;
//! - `blocks`: the block scanner, for records with their quotes in place;
//! - `exact`: the state machine, for everything else;
//! - `classify`: the 64-byte block classifier, the one the block scanner
//!   and the direct path share;
//! - `direct`: runs of ordinary records written straight to JSON lines.

use std::io::{self, Read};

use memchr::memchr3;

mod blocks;
mod classify;
mod direct;
mod exact;
mod plain;
#[cfg(test)]
mod tests;

pub use direct::{Direct, Suffix};
pub use plain::is_clean;

use classify::Classes;
use exact::Scan;

const CHUNK: usize = 256 * 1024;

/// One record: its bytes and field ranges into them.
#[derive(Debug)]
pub struct Record<'a> {
    /// The bytes the ranges point into (the raw line, or unescaped fields).
    pub bytes: &'a [u8],
    /// Field boundaries in `bytes`.
    pub fields: &'a [(usize, usize)],
    /// 1-based line number where the record starts.
    pub line: u64,
    /// True when no field needs JSON escaping (no quote, backslash or
    /// control character anywhere in `bytes`).
    pub clean: bool,
    /// True when `bytes` are known to be valid UTF-8 (checked per buffer).
    pub utf8: bool,
    /// Per field, whether it needs no escaping (quoted records only).
    pub field_clean: Option<&'a [bool]>,
}

/// What the scanner found.
#[derive(Debug)]
pub enum Next<'a> {
    /// A record.
    Record(Record<'a>),
    /// A record longer than the limit: its line, its first bytes and length so far.
    TooLong {
        /// Where it started.
        line: u64,
        /// Its first bytes.
        preview: Vec<u8>,
    },
    /// A record whose quotes are out of place: its line, its raw bytes
    /// (without the line end) and why.
    Malformed {
        /// Where it started.
        line: u64,
        /// The record as the file holds it.
        raw: &'a [u8],
        /// What is wrong, naming the field.
        why: String,
    },
}

impl<'a> Scanner<Box<dyn Read + 'a>> {
    /// The bytes from the start of the last record returned to the end of
    /// what is buffered (for a charset guess).
    pub fn last_record_on(&self) -> &[u8] {
        &self.buf[self.rec_start.min(self.end)..self.end]
    }

    /// Reads again from the start of the last record returned, through
    /// `wrap` (a decoder): the rest of the input switches to another charset.
    pub fn reread_last_record(
        &mut self,
        wrap: impl FnOnce(Box<dyn Read + 'a>) -> Box<dyn Read + 'a>,
    ) {
        let rest = self.buf[self.rec_start.min(self.end)..self.end].to_vec();
        let old = std::mem::replace(&mut self.inner, Box::new(io::empty()));
        self.inner = wrap(Box::new(io::Cursor::new(rest).chain(old)));
        self.pos = 0;
        self.end = 0;
        self.eof = false;
        self.line = self.rec_line;
        self.utf8_from = 0;
        self.utf8_to = 0;
        self.utf8_seen = 0;
    }
}

/// Streams CSV records out of a reader.
#[derive(Debug)]
pub struct Scanner<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    line: u64,
    delim: u8,
    quote: u8,
    max_record: usize,
    fields: Vec<(usize, usize)>,
    field_clean: Vec<bool>,
    scratch: Vec<u8>,
    blocks: Vec<Classes>,
    /// Per field of the block scanner's record: it holds doubled quotes.
    doubled: Vec<bool>,
    /// The block scanner is tried (not for odd dialects; off in tests, to compare).
    use_blocks: bool,
    /// `buf[utf8_from..utf8_to]` is known to be valid UTF-8.
    utf8_from: usize,
    utf8_to: usize,
    /// `buf[..utf8_seen]` was there when `utf8_to` was found (later bytes
    /// were read after it and are not checked yet).
    utf8_seen: usize,
    /// The direct path's scratch for escaped fields (see `direct`).
    direct_escaped: Vec<u8>,
    /// Set by the state machine: the record's quotes are out of place
    /// (what is wrong, 1-based field).
    malformed: Option<(&'static str, usize)>,
    /// `--escape`: inside a quoted field it escapes a quote or itself; before
    /// any other character it is kept, as the file holds it.
    escape: Option<u8>,
    /// `--comment`: a record that starts with it is skipped to its line end.
    comment: Option<u8>,
    /// Where the record last returned by `next_record` starts in `buf`,
    /// and its line (see [`Scanner::reread_last_record`]).
    rec_start: usize,
    rec_line: u64,
}

impl<R: Read> Scanner<R> {
    /// A scanner with `delim` and `quote`; `max_record` caps one record's bytes.
    pub fn new(inner: R, delim: u8, quote: u8, max_record: usize) -> Self {
        Self {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            line: 1,
            delim,
            quote,
            max_record,
            fields: Vec::with_capacity(64),
            field_clean: Vec::with_capacity(64),
            scratch: Vec::with_capacity(1024),
            blocks: Vec::with_capacity(16),
            doubled: Vec::with_capacity(64),
            // The block scanner assumes the usual dialect: a delimiter and
            // a quote that differ and are not line ends.
            use_blocks: delim != quote
                && ![delim, quote].iter().any(|c| matches!(c, b'\n' | b'\r')),
            utf8_from: 0,
            utf8_to: 0,
            utf8_seen: 0,
            direct_escaped: Vec::new(),
            malformed: None,
            escape: None,
            comment: None,
            rec_start: 0,
            rec_line: 1,
        }
    }

    /// With `--comment`: lines that start with `comment` are skipped.
    #[must_use]
    pub fn with_comment(mut self, comment: Option<u8>) -> Self {
        self.comment = comment;
        self
    }

    /// With `--escape`: every record with a quote goes through the state
    /// machine (the block scanner and the direct path know only doubled
    /// quotes).
    #[must_use]
    pub fn with_escape(mut self, escape: Option<u8>) -> Self {
        self.escape = escape.filter(|&e| e != self.quote);
        if self.escape.is_some() {
            self.use_blocks = false;
        }
        self
    }

    /// Reads more input, keeping the unconsumed bytes. Returns false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.utf8_from = self.utf8_from.saturating_sub(self.pos);
            self.utf8_to = self.utf8_to.saturating_sub(self.pos);
            self.utf8_seen = self.utf8_seen.saturating_sub(self.pos);
            self.rec_start = self.rec_start.saturating_sub(self.pos);
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_record.saturating_add(CHUNK));
            if grown <= self.buf.len() {
                // The record is longer than the cap; the caller handles it.
                return Ok(true);
            }
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `buf[start..end]` is valid UTF-8, validating whole buffers at
    /// a time (one call per buffer instead of one per row). Record starts are
    /// character boundaries (they follow an ASCII line end).
    fn utf8_ok(&mut self, start: usize, end: usize) -> bool {
        if start >= self.utf8_from && end <= self.utf8_to {
            return true;
        }
        self.validate_from(start);
        end <= self.utf8_to
    }

    /// Where the valid UTF-8 from record start `start` on ends, validating
    /// what was read since the last check.
    fn utf8_valid_to(&mut self, start: usize) -> usize {
        if start < self.utf8_from || start > self.utf8_to || self.utf8_seen != self.end {
            self.validate_from(start);
        }
        self.utf8_to
    }

    /// Validates `buf[start..end]` as UTF-8 (one vectorised pass).
    fn validate_from(&mut self, start: usize) {
        let chunk = &self.buf[start..self.end];
        let valid = match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => chunk.len(),
            Err(e) => e.valid_up_to(),
        };
        self.utf8_from = start;
        self.utf8_to = start + valid;
        self.utf8_seen = self.end;
    }

    /// The next record, `None` at the end of input.
    pub fn next_record(&mut self) -> io::Result<Option<Next<'_>>> {
        loop {
            // Skip empty lines between records. A line is counted at each
            // LF, and at a CR not followed by LF (a bare-CR line end).
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b'\n' => self.line += 1,
                    b'\r' if self.pos + 1 < self.end && self.buf[self.pos + 1] != b'\n' => {
                        self.line += 1;
                    }
                    b'\r' => {}
                    _ => break,
                }
                self.pos += 1;
            }
            if self.pos == self.end {
                if !self.fill()? {
                    return Ok(None);
                }
                continue;
            }
            if Some(self.buf[self.pos]) == self.comment {
                // A comment line: skipped to its end (LF, CR LF or CR).
                let avail = &self.buf[self.pos..self.end];
                match memchr::memchr2(b'\n', b'\r', avail) {
                    Some(i) if avail[i] == b'\n' || i + 1 < avail.len() || self.eof => {
                        let crlf = avail[i] == b'\r' && avail.get(i + 1) == Some(&b'\n');
                        self.pos += i + 1 + usize::from(crlf);
                        self.line += 1;
                    }
                    None if self.eof => self.pos = self.end,
                    _ => {
                        if self.end - self.pos > self.max_record {
                            return Ok(Some(self.too_long_unterminated()?));
                        }
                        self.fill()?;
                    }
                }
                continue;
            }
            self.rec_start = self.pos;
            self.rec_line = self.line;
            let avail = &self.buf[self.pos..self.end];
            let found = memchr3(b'\n', self.quote, b'\r', avail);
            match found {
                Some(i) if avail[i] == b'\n' || avail.get(i..i + 2) == Some(b"\r\n") => {
                    // The common case: a line without quotes.
                    let (start, end) = (self.pos, self.pos + i);
                    let next = if avail[i] == b'\n' { end + 1 } else { end + 2 };
                    if end - start > self.max_record {
                        return Ok(Some(self.too_long(next, 1)));
                    }
                    return Ok(Some(self.plain_record(start, end, next)));
                }
                Some(_) => {
                    // A quote or a bare CR: the block scanner, else the
                    // exact state machine.
                    let start = self.pos;
                    let blocks = if self.use_blocks {
                        self.scan_blocks(start)
                    } else {
                        None
                    };
                    if let Some((next, newlines, in_buf)) = blocks {
                        return Ok(Some(self.block_record(start, next, newlines, in_buf)));
                    }
                    if let Scan::Done { next, newlines } = self.scan_from(start, false) {
                        return Ok(Some(self.quoted_record(start, next, newlines)));
                    }
                    if self.end - self.pos > self.max_record {
                        return Ok(Some(self.too_long_unterminated()?));
                    }
                    if !self.fill()? && self.eof {
                        // The end of input ends the record.
                        if let Scan::Done { next, newlines } = self.scan_from(self.pos, true) {
                            let start = self.pos;
                            return Ok(Some(self.quoted_record(start, next, newlines)));
                        }
                    }
                }
                None => {
                    // No terminator in the buffer: read more, or this is the last line.
                    if self.end - self.pos > self.max_record {
                        return Ok(Some(self.too_long_unterminated()?));
                    }
                    if !self.fill()? && self.eof {
                        let (start, end) = (self.pos, self.end);
                        return Ok(Some(self.plain_record(start, end, end)));
                    }
                }
            }
        }
    }

    /// Reports an over-long record and skips to `next`.
    fn too_long(&mut self, next: usize, newlines: u64) -> Next<'_> {
        let preview = self.buf[self.pos..self.pos + 1024.min(next - self.pos)].to_vec();
        let line = self.line;
        self.line += newlines;
        self.pos = next;
        Next::TooLong { line, preview }
    }

    /// An over-long record whose end is not in the buffer: skip to its end
    /// (the next line end outside quotes) without keeping it.
    fn too_long_unterminated(&mut self) -> io::Result<Next<'_>> {
        let preview = self.buf[self.pos..self.pos + 1024.min(self.end - self.pos)].to_vec();
        let line = self.line;
        let mut in_quotes = false;
        let mut newlines = 0;
        loop {
            while self.pos < self.end {
                let b = self.buf[self.pos];
                self.pos += 1;
                if b == self.quote {
                    in_quotes = !in_quotes;
                } else if b == b'\n' {
                    newlines += 1;
                    if !in_quotes {
                        self.line += newlines;
                        return Ok(Next::TooLong { line, preview });
                    }
                }
            }
            if !self.fill()? {
                self.line += newlines.max(1);
                return Ok(Next::TooLong { line, preview });
            }
        }
    }
}
