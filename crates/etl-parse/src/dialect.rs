//! Dialect detection for delimited text: the delimiter, the quote and the
//! escape decided together, the preamble above the header, and whether the
//! first row is a header.
//!
//! The method is the data-consistency measure of van den Burg, Nazábal and
//! Sutton ("Wrangling messy CSV files by detecting row and type patterns",
//! 2019; CleverCSV): every candidate dialect parses the sample, and scores
//! `pattern × type`. The pattern score rewards a table whose rows have the
//! same number of fields (more than one), the type score the share of cells
//! that look like a value (empty, a number, a date or time, a boolean, a
//! URL or e-mail address, plain words) rather than a fragment of a row split
//! in the wrong place (`a;b` under `,`). Two additions for the files clients
//! send: leading title and blank lines are set aside before scoring (and
//! skipped when parsing), and a table whose rows mostly start past a long
//! preamble scores less. Ties go to the common dialect: `,` before `;`,
//! TAB, `|`, space and the rest; the double quote before none and the
//! single quote; doubled quotes before a backslash escape.
//!
//! Everything here works on the sample (at most [`SAMPLE`] bytes) only, in
//! memory bounded by it.

use std::fmt::Write as _;

/// How many bytes of decoded text detection looks at.
pub const SAMPLE: usize = 64 * 1024;
/// Rows of the sample scored per candidate.
const MAX_ROWS: usize = 200;
/// A preamble longer than this is not looked for.
const MAX_PREAMBLE: usize = 40;

/// Delimiter candidates, most common first (the order breaks ties).
pub const DELIMITERS: &[u8] = b",;\t| #:~^/*+";
/// Quote candidates (`None`: no quoting), most common first.
const QUOTES: &[Option<u8>] = &[Some(b'"'), None, Some(b'\'')];
/// Escape candidates (`None`: quotes are escaped by doubling them).
const ESCAPES: &[Option<u8>] = &[None, Some(b'\\')];

/// A delimited-text dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The field delimiter.
    pub delimiter: u8,
    /// The quote character, or none.
    pub quote: Option<u8>,
    /// The escape character inside quotes, besides doubled quotes.
    pub escape: Option<u8>,
}

/// What the user fixed on the command line; detection decides the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `--delimiter` (or TSV).
    pub delimiter: Option<u8>,
    /// `--quote` (`Some(None)`: `--quote none`).
    pub quote: Option<Option<u8>>,
    /// `--escape` (`Some(None)`: `--escape none`).
    pub escape: Option<Option<u8>>,
    /// Whether to look for a preamble (off when `--skip-rows` is given).
    pub preamble: bool,
    /// Whether to decide if the first row is a header (`--header auto`).
    pub header: bool,
    /// `--comment`: lines starting with it are not part of the table.
    pub comment: Option<u8>,
}

/// What detection decided for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Sniffed {
    /// The dialect.
    pub dialect: Dialect,
    /// Lines of preamble above the table (0 when none or not looked for).
    pub preamble: u64,
    /// Why those lines were taken for a preamble.
    pub preamble_why: Option<String>,
    /// With `--header auto`: whether the first row is a header.
    pub header: Option<bool>,
    /// Fields per row of the table, as the sample shows it.
    pub columns: usize,
}

/// One row of the sample under a dialect.
#[derive(Debug, Default)]
struct Row {
    /// 1-based line the row starts on.
    line: u64,
    cells: Vec<Vec<u8>>,
    /// Per cell: it was quoted.
    quoted: Vec<bool>,
    /// A quote out of place (the parser would reject the row).
    malformed: bool,
    /// An empty line.
    blank: bool,
}

impl Row {
    fn nonempty(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| !c.iter().all(u8::is_ascii_whitespace))
            .count()
    }
}

/// Splits the sample into rows as the parser would read it with `d`.
/// `complete`: the sample is the whole input (else its last row is dropped,
/// as it may be cut).
fn split(sample: &[u8], d: Dialect, complete: bool, comment: Option<u8>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut i = 0;
    let mut line = 1_u64;
    let n = sample.len();
    while i < n && rows.len() < MAX_ROWS {
        if Some(sample[i]) == comment {
            // A comment line: skipped, as the parser does.
            let end = sample[i..].iter().position(|&b| b == b'\n' || b == b'\r');
            match end {
                Some(e) => {
                    i += e + 1;
                    if sample[i - 1] == b'\r' && sample.get(i) == Some(&b'\n') {
                        i += 1;
                    }
                    line += 1;
                    continue;
                }
                None => break,
            }
        }
        let mut row = Row {
            line,
            ..Row::default()
        };
        // An empty line.
        if sample[i] == b'\n' || sample[i] == b'\r' {
            i += if sample[i] == b'\r' && sample.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            line += 1;
            row.blank = true;
            rows.push(row);
            continue;
        }
        let ended;
        loop {
            // One field from i.
            let mut cell = Vec::new();
            let mut quoted = false;
            if d.quote == Some(sample[i.min(n - 1)]) && i < n {
                quoted = true;
                row.malformed |= quoted_field(sample, &mut i, &mut line, d, &mut cell);
            } else {
                let rest = &sample[i..];
                let end = rest
                    .iter()
                    .position(|&b| b == d.delimiter || b == b'\n' || b == b'\r')
                    .unwrap_or(rest.len());
                cell.extend_from_slice(&rest[..end]);
                i += end;
            }
            row.cells.push(cell);
            row.quoted.push(quoted);
            if i >= n {
                ended = complete;
                break;
            }
            match sample[i] {
                b'\n' => {
                    i += 1;
                    line += 1;
                    ended = true;
                    break;
                }
                b'\r' => {
                    i += if sample.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    line += 1;
                    ended = true;
                    break;
                }
                _ => i += 1, // the delimiter
            }
            if i >= n {
                // A delimiter at the very end: one more, empty, field.
                row.cells.push(Vec::new());
                row.quoted.push(false);
                ended = complete;
                break;
            }
        }
        if ended {
            rows.push(row);
        }
    }
    rows
}

/// Reads the quoted field at `sample[*i]` (its opening quote) into `cell`,
/// through its closing quote and any text after it (then the row is
/// malformed, as the parser would reject it). True when malformed.
fn quoted_field(
    sample: &[u8],
    i: &mut usize,
    line: &mut u64,
    d: Dialect,
    cell: &mut Vec<u8>,
) -> bool {
    let n = sample.len();
    let q = sample[*i];
    *i += 1;
    let mut closed = false;
    while *i < n {
        let b = sample[*i];
        if Some(b) == d.escape
            && *i + 1 < n
            && (sample[*i + 1] == q || Some(sample[*i + 1]) == d.escape)
        {
            cell.push(sample[*i + 1]);
            *i += 2;
        } else if b == q {
            if sample.get(*i + 1) == Some(&q) {
                cell.push(q);
                *i += 2;
            } else {
                *i += 1;
                closed = true;
                break;
            }
        } else {
            if b == b'\n' || (b == b'\r' && sample.get(*i + 1) != Some(&b'\n')) {
                *line += 1;
            }
            cell.push(b);
            *i += 1;
        }
    }
    let mut malformed = !closed;
    // Text after the closing quote: the parser rejects the row.
    while *i < n && sample[*i] != d.delimiter && sample[*i] != b'\n' && sample[*i] != b'\r' {
        malformed = true;
        cell.push(sample[*i]);
        *i += 1;
    }
    malformed
}

/// Whether a cell looks like a value of a known kind.
fn known(cell: &[u8], quoted: bool, d: Dialect) -> bool {
    let t = trim(cell);
    if t.is_empty() || quoted {
        return true;
    }
    number(t) || datetime(t) || special(t) || url_or_email(t) || words(t, d)
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |p| p + 1);
    &s[a..b]
}

/// Numbers as reports write them: signs, thousands separators, a decimal
/// point or comma, exponents, percentages, currency symbols, (negatives).
pub fn number(t: &[u8]) -> bool {
    let mut s = t;
    if let [b'(', inner @ .., b')'] = s {
        s = inner;
    }
    for sym in ["$", "€", "£", "¥", "₽"] {
        s = s.strip_prefix(sym.as_bytes()).unwrap_or(s);
        s = s.strip_suffix(sym.as_bytes()).unwrap_or(s);
    }
    s = trim(s);
    s = s.strip_suffix(b"%").unwrap_or(s);
    s = s
        .strip_prefix(b"+")
        .or_else(|| s.strip_prefix(b"-"))
        .unwrap_or(s);
    s = s.strip_prefix(b"$").unwrap_or(s);
    // An exponent.
    if let Some(e) = s.iter().position(|&b| b == b'e' || b == b'E') {
        let (m, x) = (&s[..e], &s[e + 1..]);
        let x = x
            .strip_prefix(b"+")
            .or_else(|| x.strip_prefix(b"-"))
            .unwrap_or(x);
        if x.is_empty() || !x.iter().all(u8::is_ascii_digit) {
            return false;
        }
        s = m;
    }
    digits_grouped(s)
}

/// Digits with thousands separators in groups of three and at most one
/// decimal separator: `1234`, `1,234.5`, `1.234,5`, `1 234`, `12.5`.
fn digits_grouped(s: &[u8]) -> bool {
    let is_sep = |b: &u8| matches!(b, b'.' | b',' | b'\'' | b' ');
    if s.is_empty() || !s.iter().all(|b| b.is_ascii_digit() || is_sep(b)) {
        return false;
    }
    let seps: Vec<u8> = s.iter().copied().filter(is_sep).collect();
    let groups: Vec<&[u8]> = s.split(is_sep).collect();
    if groups.iter().any(|g| g.is_empty())
        && !(groups.len() == 2 && groups[0].is_empty() && !groups[1].is_empty() && seps[0] != b' ')
    {
        return false; // `1..2`, `1.` (but `.5` is a number)
    }
    match seps.as_slice() {
        [] | [_] => true,
        [.., prev, last] => {
            let n = groups.len();
            let decimal_last = last != prev;
            let thousands = if decimal_last {
                &groups[1..n - 1]
            } else {
                &groups[1..]
            };
            (1..=3).contains(&groups[0].len())
                && thousands.iter().all(|g| g.len() == 3)
                && seps[..seps.len() - 1].iter().all(|c| c == prev)
        }
    }
}

/// Month names, for dates written with them.
const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Dates, times and timestamps: digit groups joined by `- / . : T` and a
/// space, with an optional zone or AM/PM, or a month name.
pub fn datetime(t: &[u8]) -> bool {
    let mut s = t;
    for suffix in [&b" AM"[..], b" PM", b" am", b" pm", b"Z"] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
    let seps = s
        .iter()
        .filter(|b| matches!(b, b'-' | b'/' | b'.' | b':'))
        .count();
    if digits >= 3
        && seps >= 1
        && s[0].is_ascii_digit()
        && s.iter().all(|&b| {
            b.is_ascii_digit() || matches!(b, b'-' | b'/' | b'.' | b':' | b' ' | b'T' | b'+')
        })
    {
        return true;
    }
    // 5 Jan 2024, 2024-Jan-05.
    digits >= 1
        && s.len() <= 24
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'/' | b'.'))
        && s.windows(3)
            .any(|w| MONTHS.iter().any(|m| w.eq_ignore_ascii_case(m)))
}

/// Booleans and the usual stand-ins for nothing.
fn special(t: &[u8]) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "y", "n", "t", "f", "na", "n/a", "nan", "null", "none",
        "nil", "-", "--", "?", "x",
    ];
    WORDS.iter().any(|w| t.eq_ignore_ascii_case(w.as_bytes()))
}

fn url_or_email(t: &[u8]) -> bool {
    if t.iter().any(u8::is_ascii_whitespace) {
        return false;
    }
    if ["http://", "https://", "ftp://", "www.", "mailto:"]
        .iter()
        .any(|p| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
    {
        return true;
    }
    let at = memchr::memchr_iter(b'@', t).count();
    at == 1
        && t.iter().rposition(|&b| b == b'.') > t.iter().position(|&b| b == b'@')
        && t.iter().all(|&b| {
            b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'@' | b'.' | b'_' | b'-' | b'+')
        })
}

/// Plain text: letters, digits, spaces and the punctuation words carry,
/// but none of the characters that separate fields (a cell holding one is
/// most likely a row split in the wrong place).
fn words(t: &[u8], d: Dialect) -> bool {
    // A value wrapped in quote characters the dialect does not take for
    // quotes (`'a'` read with `"`) is a sign of the wrong quote.
    let wrapped = t.len() >= 2 && t[0] == t[t.len() - 1] && matches!(t[0], b'\'' | b'"');
    !wrapped
        && t.iter().any(|b| b.is_ascii_alphabetic() || *b >= 0x80)
        && t.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || b >= 0x80
                || matches!(
                    b,
                    b' ' | b'.'
                        | b'_'
                        | b'-'
                        | b'('
                        | b')'
                        | b'&'
                        | b'/'
                        | b'+'
                        | b'!'
                        | b'?'
                        | b'%'
                        | b'*'
                        | b'#'
                        | b'$'
                        | b'='
                        | b'['
                        | b']'
                )
                || (b == b'\'' && d.quote != Some(b'\''))
        })
        && !t.contains(&d.delimiter)
}

/// A candidate's table: where it starts, how wide it is, its score.
#[derive(Debug)]
struct Scored {
    start: usize,
    columns: usize,
    score: f64,
}

/// Delimiters that also occur inside the values of one-column files.
fn rare(d: u8) -> bool {
    !matches!(d, b',' | b';' | b'\t' | b'|')
}

/// A row that can be a line of preamble: blank, or one value at most.
fn preamble_like(r: &Row) -> bool {
    r.blank || r.nonempty() <= 1
}

/// Scores one dialect on its rows.
fn score(
    rows: &[Row],
    d: Dialect,
    complete: bool,
    find_preamble: bool,
    to_beat: f64,
) -> Option<Scored> {
    let data: Vec<&Row> = rows.iter().filter(|r| !r.blank).collect();
    if data.is_empty() {
        return None;
    }
    // The modal width among rows of more than one field.
    let mut widths: Vec<(usize, usize)> = Vec::new(); // (width, rows)
    for r in data.iter().filter(|r| r.cells.len() > 1 && !r.malformed) {
        match widths.iter_mut().find(|(w, _)| *w == r.cells.len()) {
            Some(e) => e.1 += 1,
            None => widths.push((r.cells.len(), 1)),
        }
    }
    let &(columns, _) = widths.iter().max_by_key(|(w, n)| (*n, *w))?;
    // The table starts at the first row of that width that is preceded only
    // by rows that can be a preamble.
    let mut start = 0;
    if find_preamble {
        let first = rows
            .iter()
            .position(|r| r.cells.len() == columns && !r.malformed && !preamble_like(r));
        if let Some(first) = first {
            // A preamble sits above a table: a header and a row at least.
            let table_rows = rows[first..]
                .iter()
                .filter(|r| r.cells.len() == columns && !r.malformed)
                .count();
            if first <= MAX_PREAMBLE
                && table_rows >= 2
                && rows[..first].iter().all(preamble_like)
                && (!rare(d.delimiter) || rows[..first].iter().all(|r| r.blank))
            {
                start = first;
            }
        }
    }
    let mut table: Vec<&Row> = rows[start..].iter().filter(|r| !r.blank).collect();
    // Footer lines (at the end of a whole input) are not the table either.
    if complete {
        while table.len() > 1
            && table
                .last()
                .is_some_and(|r| r.cells.len() != columns && preamble_like(r))
        {
            table.pop();
        }
    }
    // Pattern score (van den Burg et al.): 1/K Σ N_k (L_k - 1) / L_k over
    // the K distinct row widths; a malformed row is a pattern of its own.
    let mut patterns: Vec<(usize, usize)> = Vec::new();
    let mut malformed = 0;
    for r in &table {
        if r.malformed {
            malformed += 1;
            continue;
        }
        match patterns.iter_mut().find(|(w, _)| *w == r.cells.len()) {
            Some(e) => e.1 += 1,
            None => patterns.push((r.cells.len(), 1)),
        }
    }
    let k = patterns.len() + malformed;
    if k == 0 {
        return None;
    }
    // A rare delimiter (a space, `:`, `/`...) also splits the values of a
    // one-column file (`John Smith`, `12:30`) evenly: it must give a table
    // whose every row, the header too, has the same width, or one whose
    // rows each hold a quoted value that opens right after it (the
    // delimiter is then what the writer put between values, though it left
    // some values holding it unquoted).
    if rare(d.delimiter) {
        let quoted_rows = table
            .iter()
            .filter(|r| !r.malformed && r.quoted.iter().skip(1).any(|q| *q))
            .count();
        if table.len() < 2 || (k > 1 && quoted_rows * 10 < table.len() * 9) {
            return None;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let pattern: f64 = patterns
        .iter()
        .map(|&(w, n)| n as f64 * (w as f64 - 1.0) / w as f64)
        .sum::<f64>()
        / k as f64;
    // A table that leaves many rows out is less likely.
    let kept = table.len() + (start..rows.len()).filter(|&i| rows[i].blank).count();
    #[allow(clippy::cast_precision_loss)]
    let coverage = kept as f64 / rows.len() as f64;
    // The type score is at most 1: a table that cannot beat the best so
    // far with every cell plausible is not looked at further.
    if pattern * coverage <= to_beat * (1.0 + 1e-9) {
        return None;
    }
    let (mut cells, mut good) = (0_usize, 0_usize);
    for r in &table {
        for (c, q) in r.cells.iter().zip(&r.quoted) {
            cells += 1;
            if !r.malformed && known(c, *q, d) {
                good += 1;
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let types = if cells == 0 {
        0.0
    } else {
        good as f64 / cells as f64
    };
    Some(Scored {
        start,
        columns,
        score: pattern * types.max(1e-3) * coverage,
    })
}

/// The candidates the sample allows: a character that never occurs cannot
/// be the delimiter, an escape that never occurs changes nothing.
fn candidates(sample: &[u8], given: &Given) -> Vec<Dialect> {
    let mut seen = [false; 256];
    for &b in sample {
        seen[usize::from(b)] = true;
    }
    let delims: Vec<u8> = match given.delimiter {
        Some(d) => vec![d],
        None => DELIMITERS
            .iter()
            .copied()
            .filter(|&d| seen[usize::from(d)] && Some(d) != given.comment)
            .collect(),
    };
    let quotes: Vec<Option<u8>> = match given.quote {
        Some(q) => vec![q],
        None => QUOTES
            .iter()
            .copied()
            .filter(|q| q.is_none_or(|q| seen[usize::from(q)]) || *q == Some(b'"'))
            .collect(),
    };
    let escapes: Vec<Option<u8>> = match given.escape {
        Some(e) => vec![e],
        None => ESCAPES
            .iter()
            .copied()
            .filter(|e| e.is_none_or(|e| seen[usize::from(e)]))
            .collect(),
    };
    let mut out = Vec::new();
    for &delimiter in &delims {
        for &quote in &quotes {
            if quote == Some(delimiter) {
                continue;
            }
            for &escape in &escapes {
                if escape.is_some() && quote.is_none() {
                    continue;
                }
                out.push(Dialect {
                    delimiter,
                    quote,
                    escape,
                });
            }
        }
    }
    out
}

/// Decides the dialect of `sample` (decoded text, the start of the input
/// after any `--skip-rows`). `complete`: the sample is the whole input.
pub fn sniff(sample: &[u8], complete: bool, given: &Given) -> Sniffed {
    let fallback = Dialect {
        delimiter: given.delimiter.unwrap_or(b','),
        quote: given.quote.unwrap_or(Some(b'"')),
        escape: given.escape.unwrap_or(None),
    };
    let mut best: Option<(Dialect, Scored, Vec<Row>)> = None;
    for d in candidates(sample, given) {
        let rows = split(sample, d, complete, given.comment);
        let to_beat = best.as_ref().map_or(0.0, |(_, b, _)| b.score);
        let Some(s) = score(&rows, d, complete, given.preamble, to_beat) else {
            continue;
        };
        // Strictly better only: the earlier (more common) dialect wins ties.
        let better = best
            .as_ref()
            .is_none_or(|(_, b, _)| s.score > b.score * (1.0 + 1e-9));
        if better {
            best = Some((d, s, rows));
        }
    }
    let Some((dialect, scored, rows)) = best else {
        // One column (or nothing): no delimiter to find.
        let rows = split(sample, fallback, complete, given.comment);
        return Sniffed {
            dialect: fallback,
            preamble: 0,
            preamble_why: None,
            header: given.header.then_some(true),
            columns: rows.iter().find(|r| !r.blank).map_or(0, |r| r.cells.len()),
        };
    };
    let preamble = if scored.start > 0 {
        rows[scored.start].line - 1
    } else {
        0
    };
    let preamble_why = (preamble > 0).then(|| why_preamble(&rows[..scored.start], scored.columns));
    let header = given
        .header
        .then(|| is_header(&rows[scored.start..], scored.columns));
    Sniffed {
        dialect,
        preamble,
        preamble_why,
        header,
        columns: scored.columns,
    }
}

/// Says what the preamble lines are.
fn why_preamble(rows: &[Row], columns: usize) -> String {
    let blank = rows.iter().filter(|r| r.blank).count();
    let text = rows.len() - blank;
    let mut why = String::new();
    if text > 0 {
        let _ = write!(
            why,
            "{text} title line{} of one value",
            if text == 1 { "" } else { "s" }
        );
    }
    if blank > 0 {
        if !why.is_empty() {
            why.push_str(" and ");
        }
        let _ = write!(
            why,
            "{blank} blank line{}",
            if blank == 1 { "" } else { "s" }
        );
    }
    let _ = write!(why, " above the first row of {columns} fields");
    why
}

/// The kind of a cell, for the header decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Number,
    Date,
    Text,
}

fn kind(cell: &[u8]) -> Kind {
    let t = trim(cell);
    if t.is_empty() {
        Kind::Empty
    } else if number(t) {
        Kind::Number
    } else if datetime(t) {
        Kind::Date
    } else {
        Kind::Text
    }
}

/// Whether the first row of `rows` (the table) is a header: column by
/// column, a text cell above numbers or dates votes yes, a number or a date
/// votes no, a value that recurs below it votes no, a length unlike the
/// column's fixed length votes yes. An empty or repeated name votes no.
/// No signal either way (all text, all different): a header, the common case.
fn is_header(rows: &[Row], columns: usize) -> bool {
    let mut iter = rows.iter().filter(|r| !r.blank && !r.malformed);
    let Some(first) = iter.next() else {
        return true;
    };
    let data: Vec<&Row> = iter
        .filter(|r| r.cells.len() == columns)
        .take(200)
        .collect();
    let mut votes = 0_i32;
    let names: Vec<&[u8]> = first.cells.iter().map(|c| trim(c)).collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) && !name.is_empty() {
            votes -= 1;
        }
    }
    if data.is_empty() {
        // One row: a header if every cell is text.
        return first.cells.iter().all(|c| kind(c) == Kind::Text);
    }
    for (j, name) in names.iter().enumerate() {
        let below: Vec<&[u8]> = data
            .iter()
            .filter_map(|r| r.cells.get(j))
            .map(|c| trim(c))
            .collect();
        let head = kind(name);
        let kinds: Vec<Kind> = below
            .iter()
            .map(|c| kind(c))
            .filter(|k| *k != Kind::Empty)
            .collect();
        match head {
            Kind::Empty => {
                votes -= i32::from(j > 0);
                continue;
            }
            Kind::Number | Kind::Date => {
                votes -= 1;
                continue;
            }
            Kind::Text => {}
        }
        if kinds.is_empty() {
            continue;
        }
        let typed = kinds
            .iter()
            .filter(|k| matches!(k, Kind::Number | Kind::Date))
            .count();
        if typed * 10 >= kinds.len() * 9 {
            votes += 1;
            continue;
        }
        if below.contains(name) {
            votes -= 1;
            continue;
        }
        let len = below.first().map_or(0, |c| c.len());
        if len > 0 && below.iter().all(|c| c.len() == len) && name.len() != len && below.len() > 1 {
            votes += 1;
        }
    }
    votes >= 0
}

/// The printable name of a delimiter, quote or escape character.
pub fn char_name(c: Option<u8>) -> String {
    match c {
        None => "none".into(),
        Some(b'\t') => "tab".into(),
        Some(b' ') => "space".into(),
        Some(c) => char::from(c).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Given {
        Given {
            preamble: true,
            header: true,
            ..Given::default()
        }
    }

    fn sniffed(text: &str) -> Sniffed {
        sniff(text.as_bytes(), true, &auto())
    }

    fn dialect(text: &str) -> (char, String, String) {
        let s = sniffed(text);
        (
            char::from(s.dialect.delimiter),
            char_name(s.dialect.quote),
            char_name(s.dialect.escape),
        )
    }

    #[test]
    fn the_usual_delimiters() {
        assert_eq!(dialect("a,b,c\n1,2,3\n4,5,6\n").0, ',');
        assert_eq!(dialect("a;b;c\n1;2,5;3\n4;5;6\n").0, ';');
        assert_eq!(dialect("a\tb\n1\t2\n3\t4\n").0, '\t');
        assert_eq!(dialect("a|b|c\n1|2|3\n").0, '|');
        assert_eq!(dialect("name age city\nann 31 paris\nbob 42 rome\n").0, ' ');
        assert_eq!(dialect("id#name#qty\n1#apple#3\n2#pear#4\n").0, '#');
        assert_eq!(dialect("id~name~qty\n1~apple~3\n2~pear~4\n").0, '~');
        assert_eq!(dialect("id^name^qty\n1^apple^3\n2^pear^4\n").0, '^');
        assert_eq!(dialect("id:name:qty\n1:apple:3\n2:pear:4\n").0, ':');
    }

    #[test]
    fn decimal_commas_under_semicolons() {
        // European exports: `;` between fields, `,` in the numbers.
        let t = "Datum;Betrag;Menge\n01.02.2024;12,50;3\n02.02.2024;7,25;10\n03.02.2024;100,00;1\n";
        assert_eq!(dialect(t).0, ';');
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        let t = "name,address,amount\n\"Smith, John\",\"1 Main St, Springfield\",10\n\"Doe, Jane\",\"2 Oak Ave, Shelbyville\",20\n";
        assert_eq!(dialect(t), (',', "\"".into(), "none".into()));
    }

    #[test]
    fn single_quotes() {
        let t = "'id','name','note'\n1,'Smith, J','a, b'\n2,'Doe, A','c, d'\n";
        assert_eq!(dialect(t), (',', "'".into(), "none".into()));
    }

    #[test]
    fn apostrophes_are_not_quotes() {
        let t = "id,name\n1,O'Brien\n2,D'Arcy\n3,Smith\n";
        assert_eq!(dialect(t), (',', "\"".into(), "none".into()));
    }

    #[test]
    fn backslash_escapes() {
        let t = "id,quote\n1,\"she said \\\"hi, there\\\"\"\n2,\"plain\"\n3,\"a \\\"b\\\", c\"\n";
        assert_eq!(dialect(t), (',', "\"".into(), "\\".into()));
        // Doubled quotes: no escape.
        let t = "id,quote\n1,\"she said \"\"hi, there\"\"\"\n2,\"plain\"\n";
        assert_eq!(dialect(t), (',', "\"".into(), "none".into()));
    }

    #[test]
    fn no_quotes_at_all_prefers_the_double_quote() {
        assert_eq!(dialect("a,b\n1,2\n").1, "\"");
    }

    #[test]
    fn a_title_and_blank_line_above_the_header() {
        let t =
            "Sales report\nGenerated on 2024-03-01\n\nid,name,amount\n1,apple,3.50\n2,pear,4.25\n";
        let s = sniffed(t);
        assert_eq!(s.dialect.delimiter, b',');
        assert_eq!(s.preamble, 3);
        assert_eq!(s.columns, 3);
        assert_eq!(
            s.preamble_why.as_deref(),
            Some("2 title lines of one value and 1 blank line above the first row of 3 fields")
        );
        assert_eq!(s.header, Some(true));
    }

    #[test]
    fn an_excel_title_padded_with_delimiters_is_a_preamble() {
        let t = "Quarterly report;;\n;;\nid;name;amount\n1;apple;3,50\n2;pear;4,25\n";
        let s = sniffed(t);
        assert_eq!(s.dialect.delimiter, b';');
        assert_eq!(s.preamble, 2);
    }

    #[test]
    fn no_preamble_when_the_header_is_the_first_line() {
        let s = sniffed("id,name\n1,a\n2,b\n");
        assert_eq!(s.preamble, 0);
        assert_eq!(s.preamble_why, None);
        // A header with a trailing-comma shape mismatch is not a preamble.
        let s = sniffed("a,b\n1,2,\n3,4,\n");
        assert_eq!(s.preamble, 0);
    }

    #[test]
    fn no_preamble_search_when_skip_rows_is_given() {
        let g = Given {
            preamble: false,
            ..auto()
        };
        let s = sniff(b"Title\nid,name\n1,a\n", true, &g);
        assert_eq!(s.preamble, 0);
    }

    #[test]
    fn header_or_not() {
        assert_eq!(sniffed("id,amount\n1,2.5\n2,3.5\n").header, Some(true));
        assert_eq!(sniffed("1,2.5\n2,3.5\n3,4.5\n").header, Some(false));
        assert_eq!(
            sniffed("2024-01-01,apple,3\n2024-01-02,pear,4\n").header,
            Some(false)
        );
        // All text, no evidence either way: a header.
        assert_eq!(
            sniffed("name,city\nann,paris\nbob,rome\n").header,
            Some(true)
        );
        // A value that recurs below: data.
        assert_eq!(
            sniffed("red,small\nred,large\nblue,small\n").header,
            Some(false)
        );
    }

    #[test]
    fn explicit_choices_win() {
        let g = Given {
            delimiter: Some(b';'),
            ..auto()
        };
        assert_eq!(sniff(b"a,b,c\n1,2,3\n", true, &g).dialect.delimiter, b';');
        let g = Given {
            quote: Some(None),
            ..auto()
        };
        assert_eq!(sniff(b"a,\"b\"\n1,\"2\"\n", true, &g).dialect.quote, None);
    }

    #[test]
    fn a_space_between_quoted_values_is_a_delimiter_even_when_ragged() {
        // Written with a space between values, some values with spaces left
        // unquoted: the quoted values that open after a space give it away.
        let t = "date time product \"note\"\n\
                 28/01 00:00 Hiking Boots \"light, quick\"\n\
                 29/01 00:15 Jacket \"visible, dry\"\n\
                 30/01 00:30 Trail Shoes \"warm, dry\"\n";
        assert_eq!(dialect(t).0, ' ');
        // Without quotes, a one-column file of names is never split.
        assert_eq!(
            sniffed("name\nJohn Smith\nJane Doe\nAnn Lee Moe\n").columns,
            1
        );
    }

    #[test]
    fn one_column() {
        let s = sniffed("name\nann\nbob\n");
        assert_eq!(s.dialect.delimiter, b',');
        assert_eq!(s.columns, 1);
    }

    #[test]
    fn footers_do_not_decide_the_table() {
        let t = "id;amount\n1;2,50\n2;3,50\nTotal: 6,00\nEnd of report\n";
        let s = sniffed(t);
        assert_eq!(s.dialect.delimiter, b';');
        assert_eq!(s.columns, 2);
    }

    #[test]
    fn cell_kinds() {
        for n in [
            "1", "-1.5", "1,234.50", "1.234,50", "12%", "$1,200", "(12.00)", "1e5", "€3",
        ] {
            assert!(number(n.as_bytes()), "{n}");
        }
        for n in ["a1", "1-2-3x", "", "."] {
            assert!(!number(n.as_bytes()), "{n}");
        }
        for d in [
            "2024-01-05",
            "05/01/2024",
            "5.1.2024",
            "12:30",
            "2024-01-05T12:30:00Z",
            "5 Jan 2024",
        ] {
            assert!(datetime(d.as_bytes()), "{d}");
        }
        assert!(!datetime(b"hello"));
    }
}
