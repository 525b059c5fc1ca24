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

use std::io::{self, Read};

use memchr::{memchr, memchr3, memchr_iter};

mod direct;
pub use direct::{Direct, Suffix};

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
    blocks: Vec<Block>,
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
}

/// One 64-byte block of a record, classified.
#[derive(Debug, Clone, Copy, Default)]
struct Block {
    /// Quote characters.
    quote: u64,
    /// Delimiters and line ends outside quotes.
    structure: u64,
    /// Bytes a JSON string must escape (control characters, backslash).
    escape: u64,
    /// Line feeds inside quotes.
    quoted_lf: u64,
    /// Opening quotes (a quote whose byte is inside the quoted region).
    open: u64,
    /// Closing quotes.
    close: u64,
    /// The second quotes of doubled pairs (an opening quote right after a
    /// closing one), set by `quotes_in_place`.
    doubled: u64,
}

/// Where the slow path ended a record.
enum Scan {
    /// The record ends before `next` (the terminator consumed); `newlines` it spanned.
    Done { next: usize, newlines: u64 },
    /// The buffer ended first.
    NeedMore,
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

    /// The unquoted line `buf[start..end]` as a record; the scanner moves to `next`.
    fn plain_record(&mut self, start: usize, end: usize, next: usize) -> Next<'_> {
        let utf8 = self.utf8_ok(start, end);
        split_fields(&self.buf[start..end], self.delim, &mut self.fields);
        let clean = is_clean(&self.buf[start..end]);
        let line = self.line;
        self.line += 1;
        self.pos = next;
        Next::Record(Record {
            bytes: &self.buf[start..end],
            fields: &self.fields,
            line,
            clean,
            utf8,
            field_clean: None,
        })
    }

    /// The record the state machine left in `scratch` (raw bytes `buf[start..next]`).
    fn quoted_record(&mut self, start: usize, next: usize, newlines: u64) -> Next<'_> {
        // Removing ASCII quotes from valid UTF-8 leaves valid UTF-8.
        let utf8 = self.utf8_ok(start, next);
        let line = self.line;
        self.line += newlines.max(1);
        self.pos = next;
        if let Some((what, field)) = self.malformed.take() {
            let mut raw = &self.buf[start..next];
            while let [rest @ .., b'\n' | b'\r'] = raw {
                raw = rest;
            }
            return Next::Malformed {
                line,
                raw,
                why: format!("field {field}: {what}"),
            };
        }
        let clean = self.field_clean.iter().all(|&c| c);
        Next::Record(Record {
            bytes: &self.scratch,
            fields: &self.fields,
            line,
            clean,
            utf8,
            field_clean: Some(&self.field_clean),
        })
    }

    /// The record the block scanner found in `buf[start..next]`: its fields
    /// point into the buffer, or into `scratch` when a field had doubled
    /// quotes to undo (`in_buf` false).
    fn block_record(&mut self, start: usize, next: usize, newlines: u64, in_buf: bool) -> Next<'_> {
        let utf8 = self.utf8_ok(start, next);
        let line = self.line;
        self.line += newlines;
        self.pos = next;
        let clean = self.field_clean.iter().all(|&c| c);
        Next::Record(Record {
            bytes: if in_buf {
                &self.buf[start..next]
            } else {
                &self.scratch
            },
            fields: &self.fields,
            line,
            clean,
            utf8,
            field_clean: Some(&self.field_clean),
        })
    }

    /// The block scanner (see the module docs) on the record at `start`:
    /// `(next, newlines, in_buf)`, or `None` when the record is not simply
    /// quoted or its end is not in the buffer (the state machine decides).
    /// Field ranges are left in `fields`, relative to `start` (`in_buf`) or
    /// to `scratch`.
    fn scan_blocks(&mut self, start: usize) -> Option<(usize, u64, bool)> {
        let quote = self.quote;
        let end_pos = self.classify_record(start)?;
        let buf = &self.buf[..self.end];
        // The line end: CR LF, LF, or a bare CR (whose LF may be unread).
        let next = match buf[end_pos] {
            b'\r' => match buf.get(end_pos + 1) {
                Some(b'\n') => end_pos + 2,
                None => return None,
                Some(_) => end_pos + 1,
            },
            _ => end_pos + 1,
        };
        let rel_end = end_pos - start;
        let (any_dq, any_esc) = self.quotes_in_place(rel_end)?;
        // Walk the fields between structure bits.
        self.fields.clear();
        self.field_clean.clear();
        self.doubled.clear();
        let blocks = &self.blocks;
        let mut any_doubled = false;
        let mut field_start = 0usize;
        let mut k = 0usize;
        let mut bits = blocks[0].structure;
        loop {
            while bits == 0 {
                k += 1;
                bits = blocks[k].structure;
            }
            let p = k * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (a, b) = (field_start, p);
            // Quotes were checked (`quotes_in_place`): a field is quoted
            // when it starts with a quote, ends with its closing quote, and
            // has any other quotes in pairs; otherwise it has none.
            let (range, clean, doubled) = if a < b && bit(blocks, a, |x| x.quote) {
                let inner = (a + 1, b - 1);
                let doubled = any_dq && any_in(blocks, inner.0, inner.1, |x| x.doubled);
                let clean =
                    !doubled && (!any_esc || !any_in(blocks, inner.0, inner.1, |x| x.escape));
                (inner, clean, doubled)
            } else {
                (
                    (a, b),
                    !any_esc || !any_in(blocks, a, b, |x| x.escape),
                    false,
                )
            };
            any_doubled |= doubled;
            self.fields.push(range);
            self.field_clean.push(clean);
            self.doubled.push(doubled);
            if p == rel_end {
                break;
            }
            field_start = p + 1;
        }
        // Line feeds inside quotes before the record's end (later bytes of
        // the last block belong to the next records).
        let mut newlines = 1;
        for (k, b) in blocks.iter().enumerate().filter(|(_, b)| b.quoted_lf != 0) {
            let mut m = b.quoted_lf;
            if k == rel_end / 64 {
                m &= (1u64 << (rel_end % 64)) - 1;
            }
            newlines += u64::from(m.count_ones());
        }
        if !any_doubled {
            return Some((next, newlines, true));
        }
        self.undo_doubled(start, end_pos, quote);
        Some((next, newlines, false))
    }

    /// Undoes doubled quotes: the record `buf[start..end_pos]` copied into
    /// `scratch` once, and each field with pairs closed up in place (it
    /// only shrinks).
    fn undo_doubled(&mut self, start: usize, end_pos: usize, quote: u8) {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.buf[start..end_pos]);
        for (range, &doubled) in self.fields.iter_mut().zip(&self.doubled) {
            if !doubled {
                continue;
            }
            let (a, b) = *range;
            let (mut to, mut from) = (a, a);
            while from < b {
                // Up to and with the first quote of a pair; the second is
                // dropped (pairs were checked: it is there).
                let (run_end, skip) = match memchr(quote, &self.scratch[from..b]) {
                    Some(k) => (from + k + 1, 1),
                    None => (b, 0),
                };
                self.scratch.copy_within(from..run_end, to);
                to += run_end - from;
                from = run_end + skip;
            }
            *range = (a, to);
        }
    }

    /// Checks that every quote of the record (positions before `rel_end`)
    /// is where RFC 4180 puts it: an opening quote starts a field (after a
    /// delimiter or at the record's start) or follows a closing quote (a
    /// doubled pair); a closing quote is followed by a delimiter, the line
    /// end, or an opening quote (the pair). Marks the pairs in `doubled`.
    /// `None` if a quote is elsewhere; else whether any field has pairs and
    /// whether any byte needs escaping.
    fn quotes_in_place(&mut self, rel_end: usize) -> Option<(bool, bool)> {
        let last = rel_end / 64;
        let mut any_dq = false;
        let mut any_esc = false;
        // Bit 63 of the previous block: a delimiter or closing quote
        // (the record's start counts as a delimiter); a closing quote.
        let (mut prev_sc, mut prev_c) = (1u64, 0u64);
        for k in 0..=last {
            let (next_so, in_record) = {
                let next = self.blocks.get(k + 1);
                let next_so = next.map_or(0, |n| (n.structure | n.open) & 1);
                let in_record = if k == last {
                    (1u64 << (rel_end % 64)) - 1
                } else {
                    u64::MAX
                };
                (next_so, in_record)
            };
            let b = &mut self.blocks[k];
            let sc = b.structure | b.close;
            let preceded = sc << 1 | prev_sc;
            let followed = (b.structure | b.open) >> 1 | next_so << 63;
            let bad = (b.open & !preceded | b.close & !followed) & in_record;
            if bad != 0 {
                return None;
            }
            b.doubled = b.open & (b.close << 1 | prev_c) & in_record;
            any_dq |= b.doubled != 0;
            any_esc |= b.escape & in_record != 0;
            prev_sc = sc >> 63;
            prev_c = b.close >> 63;
        }
        Some((any_dq, any_esc))
    }

    /// Classifies the record at `start` block by block into `blocks`, up
    /// to the block holding its line end (outside quotes), whose position
    /// it returns; `None` if the buffer ends first.
    fn classify_record(&mut self, start: usize) -> Option<usize> {
        let (delim, quote) = (self.delim, self.quote);
        let buf = &self.buf[..self.end];
        self.blocks.clear();
        // Classify blocks until one holds a line end outside quotes.
        let mut inside = 0u64;
        let mut at = start;
        let end_pos = loop {
            if at >= buf.len() {
                return None;
            }
            let n = (buf.len() - at).min(64);
            let m = if let Ok(chunk) = <&[u8; 64]>::try_from(&buf[at..at + n]) {
                classify(chunk, delim, quote)
            } else {
                // The buffer's last bytes, padded with a byte of no class.
                let mut chunk = [b'a'; 64];
                chunk[..n].copy_from_slice(&buf[at..at + n]);
                classify(&chunk, delim, quote)
            };
            let in_q = prefix_xor(m.quote) ^ inside;
            inside = 0u64.wrapping_sub(in_q >> 63);
            let structure = (m.delim | m.line_end) & !in_q;
            // Padding past the buffer is neither structure nor quote.
            let valid = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            self.blocks.push(Block {
                quote: m.quote & valid,
                structure: structure & valid,
                escape: m.escape & valid,
                quoted_lf: m.lf & in_q & valid,
                open: m.quote & in_q & valid,
                close: m.quote & !in_q & valid,
                doubled: 0,
            });
            let ends = m.line_end & !in_q & valid;
            if ends != 0 {
                break at + ends.trailing_zeros() as usize;
            }
            at += 64;
        };
        Some(end_pos)
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

    /// The exact state machine over `buf[start..end]`, unescaping into
    /// `scratch` and noting per field whether it needs JSON escaping. It
    /// jumps between quotes with SIMD searches and copies runs in bulk.
    /// With `at_eof`, the end of the buffer ends the record.
    #[allow(clippy::too_many_lines)] // one state machine: quoted fields, escapes, quotes out of place, line ends
    fn scan_from(&mut self, start: usize, at_eof: bool) -> Scan {
        let (delim, quote) = (self.delim, self.quote);
        self.scratch.clear();
        self.fields.clear();
        self.field_clean.clear();
        self.malformed = None;
        let buf = &self.buf[..self.end];
        let len = buf.len();
        let mut newlines = 0;
        let mut i = start;
        // Each turn of this loop reads one field (`i` is at its first byte).
        loop {
            let field_start = self.scratch.len();
            let mut clean = true;
            if i < len && buf[i] == quote {
                // A quoted field: runs up to each quote; `""` is one quote.
                i += 1;
                loop {
                    let run_end = match self.escape {
                        None => memchr(quote, &buf[i..]),
                        Some(esc) => memchr::memchr2(quote, esc, &buf[i..]),
                    }
                    .map(|k| i + k);
                    let Some(q) = run_end.or(if at_eof { Some(len) } else { None }) else {
                        return Scan::NeedMore;
                    };
                    let run = &buf[i..q];
                    if !is_clean(run) {
                        clean = false;
                        newlines += memchr_iter(b'\n', run).count() as u64;
                    }
                    self.scratch.extend_from_slice(run);
                    if run_end.is_some() && Some(buf[q]) == self.escape {
                        let Some(after) = unescape(buf, q, quote, at_eof, &mut self.scratch) else {
                            return Scan::NeedMore;
                        };
                        i = after;
                        clean = false;
                        continue;
                    }
                    if run_end.is_none() {
                        // Unterminated: the field runs to the end of input.
                        self.malformed.get_or_insert((
                            "a quoted field is not closed before the end of the input",
                            self.fields.len() + 1,
                        ));
                        self.fields.push((field_start, self.scratch.len()));
                        self.field_clean.push(clean);
                        return Scan::Done {
                            next: len,
                            newlines,
                        };
                    }
                    i = q + 1;
                    if i < len && buf[i] == quote {
                        self.scratch.push(quote);
                        clean = false;
                        i += 1;
                        continue;
                    }
                    if i >= len && !at_eof {
                        return Scan::NeedMore;
                    }
                    if i < len && buf[i] != delim && buf[i] != b'\n' && buf[i] != b'\r' {
                        // `"a"b`: reading on would drop the closing quote.
                        self.malformed.get_or_insert((
                            "text after the closing quote (a quote character out of place)",
                            self.fields.len() + 1,
                        ));
                    }
                    break;
                }
            }
            // An unquoted field, or the text after a closing quote (kept, as
            // the csv crate does); quotes here are literal. Fields are short,
            // so one plain loop finds the end and checks for escapes.
            let from = i.min(len);
            let mut end = None;
            for (j, &b) in buf[from..].iter().enumerate() {
                if b == delim || b == b'\n' || b == b'\r' {
                    end = Some(from + j);
                    break;
                }
                if b < 0x20 || b == b'"' || b == b'\\' {
                    clean = false;
                }
            }
            let Some(e) = end else {
                if !at_eof {
                    return Scan::NeedMore;
                }
                self.scratch.extend_from_slice(&buf[from..]);
                self.fields.push((field_start, self.scratch.len()));
                self.field_clean.push(clean);
                return Scan::Done {
                    next: len,
                    newlines,
                };
            };
            self.scratch.extend_from_slice(&buf[from..e]);
            self.fields.push((field_start, self.scratch.len()));
            self.field_clean.push(clean);
            i = e;
            match buf[i] {
                c if c == delim => i += 1,
                b'\r' => {
                    match buf.get(i + 1) {
                        Some(b'\n') => i += 1,
                        None if !at_eof => return Scan::NeedMore,
                        _ => {}
                    }
                    return Scan::Done {
                        next: i + 1,
                        newlines: newlines + 1,
                    };
                }
                _ => {
                    return Scan::Done {
                        next: i + 1,
                        newlines: newlines + 1,
                    }
                }
            }
        }
    }
}

/// The `--escape` character at `buf[q]` inside a quoted field: `\"` and
/// `\\` are one character; before anything else the escape character is
/// data, kept as the file holds it. Pushes what it stands for to `out` and
/// returns the position after it (`None`: the next byte is not read yet).
fn unescape(buf: &[u8], q: usize, quote: u8, at_eof: bool, out: &mut Vec<u8>) -> Option<usize> {
    let esc = buf[q];
    match buf.get(q + 1) {
        None if !at_eof => None,
        Some(&c) if c == quote || c == esc => {
            out.push(c);
            Some(q + 2)
        }
        _ => {
            out.push(esc);
            Some(q + 1)
        }
    }
}

/// One 64-byte chunk's bitmasks (bit `j` is byte `j`).
#[derive(Default)]
struct Masks {
    quote: u64,
    delim: u64,
    /// LF or CR.
    line_end: u64,
    lf: u64,
    /// A control character, a backslash, or (when the quote character is
    /// not `"`) a double quote: the bytes a JSON string must escape.
    escape: u64,
}

/// Classifies 64 bytes with 16-byte compares and `movemask` (SSE2, part
/// of every x86-64 CPU; through `safe_arch`, as the crate forbids unsafe).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn classify(chunk: &[u8; 64], delim: u8, quote: u8) -> Masks {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, min_u8_m128i,
        move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let splat = |c: u8| set_splat_i8_m128i(c.cast_signed());
    // With another quote character, `"` is data that JSON must escape.
    let (q, d, lf, cr, bs, dq, c1f) = (
        splat(quote),
        splat(delim),
        splat(b'\n'),
        splat(b'\r'),
        splat(b'\\'),
        splat(if quote == b'"' { b'\\' } else { b'"' }),
        splat(0x1f),
    );
    let bits = |v: m128i| u64::from(move_mask_i8_m128i(v).cast_unsigned() & 0xffff);
    let mut m = Masks::default();
    for (i, part) in chunk.chunks_exact(16).enumerate() {
        let mut a = [0u8; 16];
        a.copy_from_slice(part);
        let v = load_unaligned_m128i(&a);
        let shift = i * 16;
        let is_lf = cmp_eq_mask_i8_m128i(v, lf);
        let is_cr = cmp_eq_mask_i8_m128i(v, cr);
        // Unsigned b <= 0x1f: min(b, 0x1f) == b.
        let ctrl = cmp_eq_mask_i8_m128i(min_u8_m128i(v, c1f), v);
        m.quote |= bits(cmp_eq_mask_i8_m128i(v, q)) << shift;
        m.delim |= bits(cmp_eq_mask_i8_m128i(v, d)) << shift;
        m.line_end |= bits(bitor_m128i(is_lf, is_cr)) << shift;
        m.lf |= bits(is_lf) << shift;
        let special = bitor_m128i(cmp_eq_mask_i8_m128i(v, bs), cmp_eq_mask_i8_m128i(v, dq));
        m.escape |= bits(bitor_m128i(ctrl, special)) << shift;
    }
    m
}

/// Classifies 64 bytes, one byte at a time (CPUs without SSE2).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn classify(chunk: &[u8; 64], delim: u8, quote: u8) -> Masks {
    let mut m = Masks::default();
    for (j, &b) in chunk.iter().enumerate() {
        m.quote |= u64::from(b == quote) << j;
        m.delim |= u64::from(b == delim) << j;
        m.line_end |= u64::from(b == b'\n' || b == b'\r') << j;
        m.lf |= u64::from(b == b'\n') << j;
        m.escape |= u64::from(b < 0x20 || b == b'\\' || (b == b'"' && quote != b'"')) << j;
    }
    m
}

/// Bit `j` of the result is the XOR of bits `0..=j`: 1 from an opening
/// quote up to (not including) its closing quote.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Whether any bit of `which` is set in record positions `a..b`.
#[inline]
fn any_in(blocks: &[Block], a: usize, b: usize, which: impl Fn(&Block) -> u64) -> bool {
    if a >= b {
        return false;
    }
    let (ka, kb) = (a / 64, (b - 1) / 64);
    let lo = u64::MAX << (a % 64);
    let hi = u64::MAX >> (63 - (b - 1) % 64);
    if ka == kb {
        return which(&blocks[ka]) & lo & hi != 0;
    }
    which(&blocks[ka]) & lo != 0
        || blocks[ka + 1..kb].iter().any(|x| which(x) != 0)
        || which(&blocks[kb]) & hi != 0
}

/// Whether bit `p` of `which` is set.
fn bit(blocks: &[Block], p: usize, which: impl Fn(&Block) -> u64) -> bool {
    which(&blocks[p / 64]) >> (p % 64) & 1 == 1
}

/// Field ranges of an unquoted line. The delimiter positions come from
/// 32-byte chunk bitmasks, a shape the compiler turns into SIMD compares;
/// a line has ~10 short fields, where a per-match `memchr` call costs more.
fn split_fields(line: &[u8], delim: u8, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut field = 0;
    let mut chunks = line.chunks_exact(32);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut mask: u32 = 0;
        for (j, &b) in chunk.iter().enumerate() {
            mask |= u32::from(b == delim) << j;
        }
        while mask != 0 {
            let d = base + mask.trailing_zeros() as usize;
            out.push((field, d));
            field = d + 1;
            mask &= mask - 1;
        }
        base += 32;
    }
    for (j, &b) in chunks.remainder().iter().enumerate() {
        if b == delim {
            out.push((field, base + j));
            field = base + j + 1;
        }
    }
    out.push((field, line.len()));
}

/// True when no byte of `s` needs escaping in a JSON string. Written as a
/// branch-free fold so it vectorises.
pub fn is_clean(s: &[u8]) -> bool {
    s.iter().fold(0u8, |acc, &b| {
        acc | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], cap: usize) -> Vec<(u64, Vec<String>)> {
        all_with(input, cap, b',', b'"')
    }

    fn all_with(input: &[u8], cap: usize, delim: u8, quote: u8) -> Vec<(u64, Vec<String>)> {
        let mut s = Scanner::new(input, delim, quote, 1 << 20);
        s.buf = vec![0; cap];
        let mut out = Vec::new();
        while let Some(n) = s.next_record().unwrap() {
            match n {
                Next::Record(r) => out.push((
                    r.line,
                    r.fields
                        .iter()
                        .map(|&(a, b)| String::from_utf8_lossy(&r.bytes[a..b]).into_owned())
                        .collect(),
                )),
                Next::TooLong { line, .. } => out.push((line, vec!["<too long>".into()])),
                Next::Malformed { line, .. } => out.push((line, vec![MALFORMED.into()])),
            }
        }
        out
    }

    const MALFORMED: &str = "<malformed>";

    /// `got` equals the csv crate's `want`, except that the records whose
    /// quotes are out of place are rejects: those must be exactly the
    /// records `malformed` says, judged independently of the scanner.
    fn same_but_malformed(got: &[Vec<String>], want: &[Vec<String>], input: &[u8], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: record count");
        for (g, w) in got.iter().zip(want) {
            if g.len() == 1 && g[0] == MALFORMED {
                continue;
            }
            assert_eq!(g, w, "{what}");
        }
        let flagged = got
            .iter()
            .filter(|g| g.len() == 1 && g[0] == MALFORMED)
            .count();
        assert_eq!(flagged, malformed_count(input), "{what}: malformed records");
    }

    /// How many records of `input` (comma, double quote) have a quote out
    /// of place: a small, separate reading of RFC 4180 for the tests.
    fn malformed_count(input: &[u8]) -> usize {
        let (mut n, mut i, mut bad) = (0, 0, false);
        let mut at_field_start = true;
        while i < input.len() {
            let b = input[i];
            if at_field_start && b == b'"' {
                i += 1;
                loop {
                    match input[i..].iter().position(|&c| c == b'"') {
                        None => {
                            return n + 1;
                        }
                        Some(k) => i += k + 1,
                    }
                    if input.get(i) == Some(&b'"') {
                        i += 1;
                        continue;
                    }
                    break;
                }
                if !matches!(input.get(i), None | Some(b',' | b'\n' | b'\r')) {
                    bad = true;
                }
                at_field_start = false;
                continue;
            }
            match b {
                b',' => at_field_start = true,
                b'\n' | b'\r' => {
                    n += usize::from(bad);
                    bad = false;
                    at_field_start = true;
                }
                _ => at_field_start = false,
            }
            i += 1;
        }
        n + usize::from(bad)
    }

    /// The csv crate, as the reference for every input.
    fn reference(input: &[u8]) -> Vec<Vec<String>> {
        reference_with(input, b',', b'"')
    }

    fn reference_with(input: &[u8], delim: u8, quote: u8) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delim)
            .quote(quote)
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        r.byte_records()
            .map(|rec| {
                rec.unwrap()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_the_csv_crate_on_tricky_inputs_at_every_buffer_size() {
        let inputs: [&[u8]; 20] = [
            b"a,\"x \"\"y\"\" z\",b\n",
            b"\"\"\"\",x\n",
            b"\"a\"\"\",b\n\"c\"\r\n",
            b"\"a\"\"b\"c,d\n",
            b"x,\"y\"\r\nz,\"\"\n",
            b"5\" screen,\"ok\"\n",
            b"a,b,c\n1,2,3\n",
            b"a,b\r\n1,2\r\n",
            b"a,b\r1,2\r3,4",
            b"\n\na,b\n\n\n1,2\n",
            b"a,\"b,\"\"c\"\"\nd\",e\nf,g",
            b"x\"y,z\n",
            b"\"ab\"cd,e\n",
            b"\"unterminated,x\ny,z",
            b"a,\"\"\n\"\",b\n",
            b"last,line,no,newline",
            b",\n,,\n",
            b"a\r\r\nb\n",
            b"\"q\r\nq\",1\r\n2,3\r\n",
            b"\xc3\xa9,\xe2\x82\xac\n",
        ];
        for input in inputs {
            let want = reference(input);
            for cap in [1, 2, 3, 5, 8, 64, 4096] {
                let got: Vec<Vec<String>> = all(input, cap).into_iter().map(|(_, f)| f).collect();
                let what = format!("input {:?} buffer {cap}", String::from_utf8_lossy(input));
                same_but_malformed(&got, &want, input, &what);
            }
        }
        // Written out by hand: which records are rejects.
        let m = |input: &[u8]| -> Vec<String> {
            all(input, 4096)
                .into_iter()
                .map(|(_, f)| f.join("|"))
                .collect()
        };
        assert_eq!(m(b"\"a\"\"b\"c,d\ne,f\n"), [MALFORMED, "e|f"]);
        assert_eq!(m(b"\"ab\"cd,e\n"), [MALFORMED]);
        assert_eq!(m(b"x,\"unterminated,x\ny,z"), [MALFORMED]);
        assert_eq!(
            m(b"5\" screen,\"ok\"\n"),
            ["5\" screen|ok"],
            "a quote inside an unquoted field is data"
        );
        assert_eq!(m(b"\"B\" ,c\n"), [MALFORMED]);
        assert_eq!(m(b"\"a\"\"\",b\n"), ["a\"|b"]);
    }

    /// Random rows over the characters that matter, long enough to cross
    /// 64-byte blocks: the block scanner must agree with the csv crate on
    /// fields and with the state machine on line numbers.
    #[test]
    fn block_scanner_agrees_on_random_input() {
        let alphabet: [&[u8]; 9] = [
            b"a",
            b"bc",
            b",",
            b",",
            b"\"",
            b"\n",
            b"\r",
            b"\\",
            "\u{e9}".as_bytes(),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = usize::try_from(next() % 400).unwrap();
            let mut input = Vec::new();
            // Mostly well-formed quoting, so the block scanner is taken.
            while input.len() < len {
                if next() % 4 == 0 {
                    input.push(b'"');
                    for _ in 0..next() % 6 {
                        let piece = alphabet[usize::try_from(next() % 9).unwrap()];
                        input.extend_from_slice(if piece == b"\"" { b"\"\"" } else { piece });
                    }
                    input.push(b'"');
                } else {
                    input.extend_from_slice(alphabet[usize::try_from(next() % 9).unwrap()]);
                }
            }
            // The same row shapes in three dialects.
            for (d, q) in [(b',', b'"'), (b';', b'\''), (b'\t', b'"')] {
                let input: Vec<u8> = input
                    .iter()
                    .map(|&b| match b {
                        b',' => d,
                        b'"' => q,
                        x => x,
                    })
                    .collect();
                let shown = String::from_utf8_lossy(&input);
                let want = reference_with(&input, d, q);
                let comma_quote: Vec<u8> = input
                    .iter()
                    .map(|&b| match b {
                        b if b == d => b',',
                        b if b == q => b'"',
                        b',' | b'"' => b'x',
                        x => x,
                    })
                    .collect();
                for cap in [7, 64, 4096] {
                    let got: Vec<Vec<String>> = all_with(&input, cap, d, q)
                        .into_iter()
                        .map(|(_, f)| f)
                        .collect();
                    let what = format!("input {shown:?} buffer {cap}");
                    same_but_malformed(&got, &want, &comma_quote, &what);
                }
                let lines = |blocks: bool| {
                    let mut s = Scanner::new(&input[..], d, q, 1 << 20);
                    s.use_blocks = blocks;
                    let mut out = Vec::new();
                    while let Some(n) = s.next_record().unwrap() {
                        out.push(match n {
                            Next::Record(r) => r.line,
                            Next::TooLong { line, .. } | Next::Malformed { line, .. } => line,
                        });
                    }
                    out
                };
                assert_eq!(lines(true), lines(false), "{shown:?}");
            }
        }
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        let got = all(b"h\n\"a\nb\"\nc\n\nd\n", 4096);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 4, 6]);
    }

    #[test]
    fn over_long_records_are_reported_and_skipped() {
        let mut input = b"a,b\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\n1,2\n");
        let mut s = Scanner::new(&input[..], b',', b'"', 100);
        s.buf = vec![0; 64];
        let mut seen = Vec::new();
        while let Some(n) = s.next_record().unwrap() {
            seen.push(match n {
                Next::Record(r) => format!("{}:{}", r.line, String::from_utf8_lossy(r.bytes)),
                Next::TooLong { line, preview } => format!("{line}:too long {}", preview.len()),
                Next::Malformed { line, .. } => format!("{line}:malformed"),
            });
        }
        assert_eq!(seen[0], "1:a,b");
        assert!(seen[1].starts_with("2:too long"), "{seen:?}");
        assert_eq!(seen[2], "3:1,2");
        assert!(s.buf.len() <= 100 + CHUNK, "the buffer stayed bounded");
    }

    #[test]
    fn clean_detects_what_needs_escaping() {
        assert!(is_clean(b"plain text, 123"));
        assert!(!is_clean(b"tab\there"));
        assert!(!is_clean(b"back\\slash"));
        assert!(!is_clean(b"q\"uote"));
    }
}
