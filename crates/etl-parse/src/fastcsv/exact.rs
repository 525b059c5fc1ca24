//! The exact state machine: every record the block scanner does not take
//! (a quote out of place, `--escape`, a bare CR, a record whose end is not
//! in the buffer yet), with the csv crate's semantics except that a quote
//! out of place makes the record [`Next::Malformed`].

use std::io::Read;

use memchr::{memchr, memchr_iter};

use super::plain::is_clean;
use super::{Next, Record, Scanner};

/// Where the slow path ended a record.
pub(super) enum Scan {
    /// The record ends before `next` (the terminator consumed); `newlines` it spanned.
    Done { next: usize, newlines: u64 },
    /// The buffer ended first.
    NeedMore,
}

impl<R: Read> Scanner<R> {
    /// The record the state machine left in `scratch` (raw bytes `buf[start..next]`).
    pub(super) fn quoted_record(&mut self, start: usize, next: usize, newlines: u64) -> Next<'_> {
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

    /// The exact state machine over `buf[start..end]`, unescaping into
    /// `scratch` and noting per field whether it needs JSON escaping. It
    /// jumps between quotes with SIMD searches and copies runs in bulk.
    /// With `at_eof`, the end of the buffer ends the record.
    #[allow(clippy::too_many_lines)] // one state machine: quoted fields, escapes, quotes out of place, line ends
    pub(super) fn scan_from(&mut self, start: usize, at_eof: bool) -> Scan {
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
