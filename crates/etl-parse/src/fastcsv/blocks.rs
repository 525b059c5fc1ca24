//! The block scanner: one record with quotes, read from its 64-byte
//! blocks' masks (see `classify`) when every quote is where RFC 4180 puts
//! it. Its fields point into the buffer, or into the scratch buffer when a
//! field had doubled quotes to undo. Any other record is left to the state
//! machine (`exact`), so both agree on every input.

use std::io::Read;

use memchr::memchr;

use super::classify::{any_in, classify_block, Carry};
use super::{Next, Record, Scanner};

impl<R: Read> Scanner<R> {
    /// The record the block scanner found in `buf[start..next]`: its fields
    /// point into the buffer, or into `scratch` when a field had doubled
    /// quotes to undo (`in_buf` false).
    pub(super) fn block_record(
        &mut self,
        start: usize,
        next: usize,
        newlines: u64,
        in_buf: bool,
    ) -> Next<'_> {
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
    pub(super) fn scan_blocks(&mut self, start: usize) -> Option<(usize, u64, bool)> {
        let quote = self.quote;
        let (end_pos, any_dq, any_esc) = self.classify_record(start)?;
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
            // Quotes were checked (`classify_record`): a field is quoted
            // when it starts with a quote, ends with its closing quote, and
            // has any other quotes in pairs; otherwise it has none.
            let (range, clean, doubled) = if a < b && buf[start + a] == quote {
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

    /// Classifies the record at `start` block by block into `blocks` (one
    /// classifier with the direct path), up to the block holding its line
    /// end outside quotes, and checks that every quote of the record is
    /// where RFC 4180 puts it: an opening quote starts a field (after a
    /// delimiter or at the record's start) or follows a closing quote (a
    /// doubled pair); a closing quote is followed by a delimiter, the line
    /// end, or an opening quote (the pair). Returns the line end's position,
    /// whether any field has pairs and whether any byte needs escaping;
    /// `None` if a quote is elsewhere or the buffer ends first.
    fn classify_record(&mut self, start: usize) -> Option<(usize, bool, bool)> {
        let (delim, quote) = (self.delim, self.quote);
        let buf = &self.buf[..self.end];
        self.blocks.clear();
        let mut carry = Carry::START;
        let (mut any_dq, mut any_esc) = (false, false);
        let mut at = start;
        loop {
            if at >= buf.len() {
                return None;
            }
            let c = classify_block(buf, at, buf.len(), delim, quote, &mut carry);
            // The record's bytes in this block: up to its line end (later
            // bytes belong to the next records).
            let in_record = match c.ends {
                0 => u64::MAX,
                ends => (1u64 << ends.trailing_zeros()) - 1,
            };
            if c.bad & in_record != 0 {
                return None;
            }
            any_dq |= c.doubled & in_record != 0;
            any_esc |= c.escape & in_record != 0;
            self.blocks.push(c);
            if c.ends != 0 {
                return Some((at + c.ends.trailing_zeros() as usize, any_dq, any_esc));
            }
            at += 64;
        }
    }
}
