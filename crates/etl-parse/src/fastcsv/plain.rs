//! The plain reader: a line without quotes (most rows clients send), its
//! fields found by one search for the delimiter, no copy.

use std::io::Read;

use super::{Next, Record, Scanner};

impl<R: Read> Scanner<R> {
    /// The unquoted line `buf[start..end]` as a record; the scanner moves to `next`.
    pub(super) fn plain_record(&mut self, start: usize, end: usize, next: usize) -> Next<'_> {
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
