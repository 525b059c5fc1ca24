//! The block classifier: 64 bytes at a time into bitmasks, the one
//! classifier of the block scanner (`blocks`) and the direct path
//! (`direct`).
//!
//! A block's bytes are compared with the quote, the delimiter, the line
//! ends and the bytes JSON must escape (SSE2 where the CPU has it); a prefix
//! XOR of the quote mask, carried from block to block, gives the quoted
//! regions, and from them the structure (delimiters and line ends outside
//! quotes), the doubled pairs and the quotes out of place.

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
#[inline]
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
#[inline]
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
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The masks of one classified block (`bits j` = byte `at + j`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Classes {
    /// Delimiters and line ends outside quotes.
    pub structure: u64,
    /// Line ends outside quotes.
    pub ends: u64,
    /// Quotes out of place: an opening quote that follows neither a
    /// delimiter, a line end nor a closing quote (a pair), and the byte after
    /// a closing quote when it is neither a delimiter, a line end nor the
    /// pair's second quote.
    pub bad: u64,
    /// Bytes a JSON string must escape (control characters, backslash, and
    /// `"` when the quote character is another).
    pub escape: u64,
    /// The second quote of each doubled pair.
    pub doubled: u64,
    /// Line feeds inside quotes.
    pub quoted_lf: u64,
}

impl Classes {
    /// Bytes to escape and doubled quotes.
    #[inline]
    pub fn special(&self) -> u64 {
        self.escape | self.doubled
    }
}

/// The state carried from one block to the next.
#[derive(Debug, Clone, Copy)]
pub(super) struct Carry {
    /// All ones when the previous block ended inside quotes.
    inside: u64,
    /// Bit 63 of the previous block's delimiters, line ends and closing
    /// quotes (1 before the first block: a record starts there).
    structure_or_close: u64,
    /// Bit 63 of the previous block's closing quotes.
    close: u64,
}

impl Carry {
    /// Before a record's first block: outside quotes, after a line end.
    pub const START: Self = Self {
        inside: 0,
        structure_or_close: 1,
        close: 0,
    };
}

/// Bits `k..` of a block (none when `k` is 64 or more).
#[inline]
pub(super) fn from_bit(k: usize) -> u64 {
    if k < 64 {
        u64::MAX << k
    } else {
        0
    }
}

/// The bits of byte positions `lo..hi` in the block at `at`.
#[inline]
pub(super) fn range_in(lo: usize, hi: usize, at: usize) -> u64 {
    let (lo, hi) = (lo.saturating_sub(at), hi.saturating_sub(at));
    from_bit(lo) & !from_bit(hi)
}

/// Classifies the block at `at` (padded past `end`) and updates `carry`:
/// the one classifier of the block scanner and the direct path.
#[inline]
pub(super) fn classify_block(
    buf: &[u8],
    at: usize,
    end: usize,
    delim: u8,
    quote: u8,
    carry: &mut Carry,
) -> Classes {
    let n = (end - at).min(64);
    let m = if n == 64 {
        let chunk: &[u8; 64] = buf[at..at + 64].try_into().unwrap_or(&[b'a'; 64]);
        classify(chunk, delim, quote)
    } else {
        let mut chunk = [b'a'; 64];
        chunk[..n].copy_from_slice(&buf[at..at + n]);
        classify(&chunk, delim, quote)
    };
    // Padding past `end` is no class at all.
    let valid = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let quotes = m.quote & valid;
    let in_q = prefix_xor(quotes) ^ carry.inside;
    let open = quotes & in_q;
    let close = quotes & !in_q;
    let structure = (m.delim | m.line_end) & !in_q & valid;
    let sc = structure | close;
    // An opening quote must follow a delimiter, a line end or a closing
    // quote (a pair); the byte after a closing quote must be a delimiter, a
    // line end or an opening quote (the pair's second).
    let after_close = close << 1 | carry.close;
    let bad = (open & !(sc << 1 | carry.structure_or_close))
        | (after_close & !(structure | open) & valid);
    *carry = Carry {
        inside: 0u64.wrapping_sub(in_q >> 63),
        structure_or_close: sc >> 63,
        close: close >> 63,
    };
    Classes {
        structure,
        ends: m.line_end & !in_q & valid,
        bad,
        escape: m.escape & valid,
        doubled: open & after_close,
        quoted_lf: m.lf & in_q & valid,
    }
}

/// Whether any bit of `which` is set in record positions `a..b`.
#[inline]
pub(super) fn any_in(
    blocks: &[Classes],
    a: usize,
    b: usize,
    which: impl Fn(&Classes) -> u64,
) -> bool {
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
