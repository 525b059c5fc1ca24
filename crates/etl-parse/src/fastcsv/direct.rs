//! The direct path: runs of ordinary records written straight to JSON lines.
//!
//! Most records of a file are ordinary: as many fields as the header, every
//! quote where RFC 4180 puts it, valid UTF-8, no NUL byte. For those, the
//! record-at-a-time path (scan a record, hand over its fields, then write
//! them) does the same work twice. Here one pass over the buffer classifies
//! each 64-byte block once (quote, delimiter, line end and needs-escaping
//! masks, the quoted regions by a prefix XOR carried from block to block)
//! and writes each field as soon as its end is found: the key's pre-built
//! `","key":"` chunk, then the value's bytes copied from the buffer.
//!
//! - A field without quotes or escapes is copied as it is.
//! - A doubled quote `""` becomes `\"`, which has the same length: the field
//!   is copied and the first quote of each pair overwritten with `\`.
//! - Other fields (control characters, quoted newlines, backslashes) are
//!   escaped byte by byte where the block masks (of one block, or of two
//!   for a field across a boundary) mark them; a longer field goes through
//!   the JSON string escaper, pair by pair.
//!
//! The first record that is not ordinary (a quote out of place, a short or
//! long row, invalid UTF-8, a NUL byte, an empty line, an over-long record,
//! or the end of the buffer) stops the run *before* it: its output is
//! taken back, and the record-at-a-time path reads it, with its exact
//! errors and rejects. So both paths give the same output on every input
//! (`tests/direct_path.rs` compares them).

use std::io::Read;

use memchr::memchr;

use super::classify::{classify_block, from_bit, range_in, Carry, Classes};
use super::Scanner;
use crate::emit::put;

/// Writes what follows a record's last value, before `}`.
pub type Suffix<'a> = Option<&'a mut dyn FnMut(&mut Vec<u8>)>;

/// What one run of the direct path did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Direct {
    /// Records written.
    pub records: u64,
    /// Input bytes consumed (records and their line ends).
    pub bytes: u64,
    /// The output reached its limit: the run can go on after a flush.
    pub more: bool,
}

/// Which blocks hold a field's masks.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// The current block.
    Here,
    /// The previous block (these masks of it) and the current one.
    Across(Prev),
    /// More blocks than those two.
    Far,
}

/// The masks of the previous block that a field across two blocks needs.
#[derive(Debug, Default, Clone, Copy)]
struct Prev {
    escape: u64,
    doubled: u64,
}

/// A field's value: its bytes `a..b` and what the masks say of them.
#[derive(Debug, Clone, Copy)]
struct Value {
    a: usize,
    b: usize,
    quoted: bool,
    /// Its bytes to escape and doubled quotes, in all of its blocks.
    special: u64,
    /// The current block's start.
    at: usize,
    /// Which blocks hold its masks.
    place: Place,
}

impl Value {
    /// Field `fs..p` (`quoted`: it starts with a quote; an empty field's
    /// first byte is its delimiter or line end, never one), in the block at
    /// `at` that follows `prev`.
    #[inline]
    fn new(quoted: bool, fs: usize, p: usize, special: u64, at: usize, prev: Prev) -> Self {
        Value {
            a: if quoted { fs + 1 } else { fs },
            b: if quoted { p - 1 } else { p },
            quoted,
            special,
            at,
            place: Place::of(fs, at, prev),
        }
    }
}

impl Place {
    /// Where the masks of a field that starts at `fs` are, in the block
    /// at `at` that follows `prev`.
    #[inline]
    fn of(fs: usize, at: usize, prev: Prev) -> Self {
        if fs >= at {
            Place::Here
        } else if fs + 64 >= at {
            Place::Across(prev)
        } else {
            Place::Far
        }
    }
}

/// Writes a field's value (its key is written): copied as it is when
/// nothing needs escaping, else escaped. False at a NUL byte (a reject:
/// the record-at-a-time path words it).
#[inline]
fn write_value(
    out: &mut Vec<u8>,
    buf: &[u8],
    v: &Value,
    c: &Classes,
    quote: u8,
    escaped: &mut Vec<u8>,
) -> bool {
    let (a, b, at) = (v.a, v.b, v.at);
    if v.special == 0 {
        put(out, buf, a, b);
        return true;
    }
    let prev = match v.place {
        Place::Here => None,
        Place::Across(prev) => Some((at - 64, prev)),
        Place::Far => {
            if !write_escaped_field(escaped, &buf[a..b], v.quoted.then_some(quote)) {
                return false;
            }
            out.extend_from_slice(escaped);
            return true;
        }
    };
    // Per block: the bytes to escape, and the first quote of each pair (a
    // pair may straddle the two blocks).
    let here = range_in(a, b, at);
    let mut escapes = c.escape & here;
    let mut blocks = [(at, 0u64), (at, (c.escape | c.doubled >> 1) & here)];
    if let Some((prev_at, p)) = prev {
        let there = range_in(a, b, prev_at);
        escapes |= p.escape & there;
        blocks[0] = (
            prev_at,
            (p.escape | p.doubled >> 1 | (c.doubled & 1) << 63) & there,
        );
    }
    if escapes == 0 && quote == b'"' {
        // Only pairs: `""` to `\"`, same length, patched in place.
        let o = out.len();
        put(out, buf, a, b);
        for (block_at, mut firsts) in blocks {
            while firsts != 0 {
                out[o + (block_at + firsts.trailing_zeros() as usize - a)] = b'\\';
                firsts &= firsts - 1;
            }
        }
        return true;
    }
    let mut from = a;
    for (block_at, special) in blocks {
        match write_special(out, buf, from, block_at, special, quote) {
            Some(next) => from = next,
            None => return false,
        }
    }
    put(out, buf, from, b);
    true
}

/// Closes a record's last value and the record: the suffix, `}`, the line end.
#[inline]
fn end_record(out: &mut Vec<u8>, suffix: &mut Suffix<'_>) {
    out.push(b'"');
    if let Some(f) = suffix.as_mut() {
        f(out);
    }
    out.extend_from_slice(b"}\n");
}

impl<R: Read> Scanner<R> {
    /// Appends the ordinary records from the current position to `out` as
    /// JSON lines: `key_chunks` are the packed header chunks (`{"a":"`,
    /// `","b":"`, ...) at `ranges`, one per column (followed by 16 bytes of
    /// padding); `suffix`, when given, appends what follows the last
    /// value's closing quote, before `}` (the provenance and carried
    /// fields). Stops before the first record that is not ordinary, at the
    /// end of the buffered input, or once `out` holds `limit` bytes or more
    /// (after at least one record).
    // A function of its own: inlined into `Rows::direct` (as it was once the
    // scanner read a boxed reader) the parse took 2% more instructions
    // (callgrind, 10 MB file, 2026-12-05).
    #[inline(never)]
    pub fn direct_records(
        &mut self,
        key_chunks: &[u8],
        ranges: &[(usize, usize)],
        out: &mut Vec<u8>,
        limit: usize,
        mut suffix: Suffix<'_>,
    ) -> Direct {
        let mut done = Direct::default();
        let start = self.pos;
        // An empty line at the start: the record-at-a-time path skips it.
        // (A quote character JSON escapes is left to that path too.)
        if !self.use_blocks
            || self.quote < 0x20
            || self.quote == b'\\'
            || ranges.is_empty()
            || start >= self.end
            || matches!(self.buf[start], b'\n' | b'\r')
        {
            return done;
        }
        let utf8_to = self.utf8_valid_to(start);
        let (delim, quote, end, max_record) = (self.delim, self.quote, self.end, self.max_record);
        // The whole buffer: `put` may read up to 16 bytes past a field.
        let buf = &self.buf[..];
        let mut escaped = std::mem::take(&mut self.direct_escaped);
        let mut carry = Carry::START;
        // The current record's start, its output's start, its quoted line
        // feeds in earlier blocks; the current field's start and index.
        let (mut rs, mut rec_out, mut rec_lf) = (start, out.len(), 0u64);
        let (mut fs, mut field) = (start, 0usize);
        // The current field's special bytes in earlier blocks.
        let mut acc = 0u64;
        let mut prev = Prev::default();
        let mut lines = 0u64;
        let mut at = start;
        'blocks: while at < end {
            let c = classify_block(buf, at, end, delim, quote, &mut carry);
            // The current field's bits in this block (from its start on);
            // a record may start one byte into the block, after a CR LF.
            let mut from_fs = from_bit(fs.saturating_sub(at));
            let mut bits = c.structure & from_fs;
            while bits != 0 {
                let j = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let p = at + j;
                // Field `fs..p`: its special bytes here and in earlier
                // blocks. (Quotes out of place are checked per record.)
                let here = from_fs & ((1u64 << j) - 1);
                let special = std::mem::take(&mut acc) | c.special() & here;
                let Some(&(ka, kb)) = ranges.get(field) else {
                    break 'blocks;
                };
                let value = Value::new(buf[fs] == quote, fs, p, special, at, prev);
                put(out, key_chunks, ka, kb);
                if !write_value(out, buf, &value, &c, quote, &mut escaped) {
                    break 'blocks;
                }
                field += 1;
                if c.ends & 1 << j == 0 {
                    fs = p + 1;
                    from_fs = u64::MAX << j << 1;
                    continue;
                }
                // A line end: CR LF, LF, or a bare CR (whose LF may be unread).
                let next = match buf[p] {
                    b'\r' if p + 1 >= end => break 'blocks,
                    b'\r' if buf[p + 1] == b'\n' => {
                        // Its LF is no field's end.
                        bits &= !(2u64 << j);
                        p + 2
                    }
                    _ => p + 1,
                };
                // The record's part in this block (earlier blocks' parts
                // were checked at their ends).
                let rec_here = range_in(rs, p, at);
                if field != ranges.len()
                    || c.bad & rec_here != 0
                    || p - rs > max_record
                    || p > utf8_to
                {
                    break 'blocks;
                }
                let lf_here = c.quoted_lf & rec_here;
                lines += 1 + rec_lf + u64::from(lf_here.count_ones());
                end_record(out, &mut suffix);
                done.records += 1;
                (rs, rec_out, rec_lf) = (next, out.len(), 0);
                (fs, field) = (next, 0);
                from_fs = from_bit(next - at);
                if out.len() >= limit {
                    done.more = true;
                    break 'blocks;
                }
                if next < end && matches!(buf[next], b'\n' | b'\r') {
                    break 'blocks;
                }
            }
            // The block ends inside the current record: a quote out of
            // place ends the run now (a wrong quote state could otherwise
            // carry it to the end of the buffer); else carry its masks.
            if rs < at + 64 {
                let rest = u64::MAX << rs.saturating_sub(at);
                if c.bad & rest != 0 {
                    break 'blocks;
                }
                rec_lf += u64::from((c.quoted_lf & rest).count_ones());
            }
            acc |= c.special() & from_fs;
            prev = Prev {
                escape: c.escape,
                doubled: c.doubled,
            };
            at += 64;
        }
        // Whatever follows the last complete record is read again by the
        // record-at-a-time path.
        out.truncate(rec_out);
        self.pos = rs;
        self.line += lines;
        done.bytes = (rs - start) as u64;
        self.direct_escaped = escaped;
        done
    }
}

/// Writes a field's bytes from `from` up to the last byte `special` marks
/// (bit `j` = byte `at + j`: a byte JSON must escape, or the first quote of
/// a doubled pair, written once), and returns where the rest starts; `None`
/// at a NUL byte (a reject: the record-at-a-time path words it).
#[inline]
fn write_special(
    out: &mut Vec<u8>,
    buf: &[u8],
    mut from: usize,
    at: usize,
    mut special: u64,
    quote: u8,
) -> Option<usize> {
    while special != 0 {
        let q = at + special.trailing_zeros() as usize;
        special &= special - 1;
        put(out, buf, from, q);
        let byte = buf[q];
        if byte == 0 {
            return None;
        }
        etl_core::record::write_escaped_content(out, &buf[q..=q]);
        from = q + if byte == quote { 2 } else { 1 };
    }
    Some(from)
}

/// Writes a field that needs escaping to `out` (cleared first): in a quoted
/// field (`quote`) every quote is the first of a doubled pair, written once.
/// False when the field holds a NUL byte (a reject: the record-at-a-time
/// path words it).
fn write_escaped_field(out: &mut Vec<u8>, v: &[u8], quote: Option<u8>) -> bool {
    out.clear();
    if memchr(0, v).is_some() {
        return false;
    }
    let mut rest = v;
    if let Some(q) = quote {
        while let Some(k) = memchr(q, rest) {
            etl_core::record::write_escaped_content(out, &rest[..=k]);
            rest = rest.get(k + 2..).unwrap_or_default();
        }
    }
    etl_core::record::write_escaped_content(out, rest);
    true
}
