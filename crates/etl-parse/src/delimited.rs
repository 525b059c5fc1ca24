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

use std::collections::VecDeque;

use crate::dialect::{self, Given, Sniffed};
use crate::emit::{header_names, numbered, Cell, Emitter, Keys, Normalize, Origin};
use crate::events;
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

/// `--header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Header {
    /// The first row (after any preamble) names the columns.
    #[default]
    Yes,
    /// The first row is data: columns are named col_1..col_N.
    No,
    /// Decide from the file: a row of names above numbers or dates is a header.
    Auto,
}

/// Options for delimited text.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--delimiter` (None: detected).
    pub delimiter: Option<u8>,
    /// `--quote` (None: detected; `Some(None)`: `--quote none`).
    pub quote: Option<Option<u8>>,
    /// `--escape` (None: detected; `Some(None)`: quotes are escaped by doubling them).
    pub escape: Option<Option<u8>>,
    /// `--comment`.
    pub comment: Option<u8>,
    /// `--no-header` (also `--header no`; decided per input with `--header auto`).
    pub no_header: bool,
    /// `--header auto`.
    pub header_auto: bool,
    /// `--skip-rows` (None: a preamble is detected).
    pub skip_rows: Option<u64>,
    /// `--skip-footer`.
    pub skip_footer: u64,
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

/// The rest of a buffered reader without its buffer: what it holds, then
/// the stream itself. The scanner reads in large blocks of its own; a
/// `BufReader` between would copy every byte once more.
fn unbuffer<'r>(r: BufReader<Box<dyn Read + 'r>>) -> Box<dyn Read + 'r> {
    let held = r.buffer().to_vec();
    Box::new(io::Cursor::new(held).chain(r.into_inner()))
}

/// Detects the dialect of a stream (already UTF-8) from its first bytes:
/// what `--sniff` prints and what [`parse`] reads with. Returns the
/// detection and the stream positioned after `--skip-rows` (the sample is
/// put back in front).
pub fn sniff<'r>(
    input: Box<dyn Read + 'r>,
    tsv: bool,
    opts: &Opts,
    name: &str,
    limits: &Limits,
) -> Result<Sniff<'r>> {
    let io_err = |e: io::Error| limits.read_error(name, &e);
    let mut buffered = BufReader::with_capacity(64 * 1024, input);
    skip_lines(&mut buffered, opts.skip_rows.unwrap_or(0)).map_err(io_err)?;
    let sample = read_head(&mut buffered, dialect::SAMPLE).map_err(io_err)?;
    let complete = sample.len() < dialect::SAMPLE;
    let given = Given {
        delimiter: opts.delimiter.or(if tsv { Some(b'\t') } else { None }),
        quote: opts.quote,
        escape: opts.escape,
        preamble: opts.skip_rows.is_none() && !opts.no_header_given(),
        comment: opts.comment,
        header: opts.header_auto,
    };
    let sniffed = dialect::sniff(&sample, complete, &given);
    // No delimiter gives a table: perhaps fixed-width text (only when
    // nothing about the dialect was given and the layout is certain).
    let fixed = (sniffed.columns <= 1
        && given.delimiter.is_none()
        && opts.quote.is_none()
        && opts.escape.is_none())
    .then(|| crate::fixed::infer(&sample, complete))
    .flatten();
    Ok(Sniff {
        sniffed,
        fixed,
        reader: Box::new(io::Cursor::new(sample).chain(unbuffer(buffered))),
    })
}

/// What [`sniff`] found, and the stream to read.
#[allow(missing_debug_implementations)] // holds a `dyn Read`
pub struct Sniff<'r> {
    /// The delimited dialect.
    pub sniffed: Sniffed,
    /// A fixed-width layout, when the text is that rather than delimited.
    pub fixed: Option<Vec<crate::fixed::Column>>,
    /// The stream after `--skip-rows`, its sample put back in front.
    pub reader: Box<dyn Read + 'r>,
}

impl Opts {
    /// `--header no` (a preamble is not looked for above data rows).
    fn no_header_given(&self) -> bool {
        self.no_header && !self.header_auto
    }
}

/// The dialect as the summary and `--sniff` report it.
pub fn describe(
    s: &Sniffed,
    fixed: Option<&[crate::fixed::Column]>,
    opts: &Opts,
    encoding: &str,
) -> etl_core::Record {
    let mut m = etl_core::map_with_capacity(8);
    if let Some(cols) = fixed {
        m.insert("format".into(), Value::from("fixed"));
        m.insert(
            "layout".into(),
            Value::from(crate::fixed::layout_text(cols)),
        );
        m.insert("encoding".into(), Value::from(encoding));
        m.insert(
            "header".into(),
            Value::from(!opts.no_header || opts.header_auto),
        );
        m.insert("skip_rows".into(), Value::from(opts.skip_rows.unwrap_or(0)));
        m.insert("columns".into(), Value::from(cols.len() as u64));
        return m;
    }
    let header = if opts.header_auto {
        s.header.unwrap_or(true)
    } else {
        !opts.no_header
    };
    m.insert(
        "delimiter".into(),
        Value::from(dialect::char_name(Some(s.dialect.delimiter))),
    );
    m.insert(
        "quote".into(),
        Value::from(dialect::char_name(s.dialect.quote)),
    );
    m.insert(
        "escape".into(),
        Value::from(dialect::char_name(s.dialect.escape)),
    );
    m.insert("encoding".into(), Value::from(encoding));
    m.insert("header".into(), Value::from(header));
    m.insert(
        "skip_rows".into(),
        Value::from(opts.skip_rows.unwrap_or(0) + s.preamble),
    );
    m.insert("preamble".into(), Value::from(s.preamble));
    m.insert("columns".into(), Value::from(s.columns as u64));
    m
}

/// Parses one delimited-text stream (already UTF-8). Returns what was
/// detected. `tsv`: a TAB is the delimiter. `may_switch`: the text was taken for UTF-8 on its sample, and
/// the first row that is not switches it and the rest to the charset
/// detected from there (with one warning naming the line).
#[allow(clippy::too_many_lines)] // one loop over the scanner's records
pub fn parse(
    input: Box<dyn Read + '_>,
    (tsv, may_switch): (bool, bool),
    opts: &Opts,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
    limits: &Limits,
) -> Result<Parsed> {
    let name = origin.label.as_str();
    let io_err = |e: io::Error| limits.read_error(name, &e);
    let Sniff {
        sniffed,
        fixed,
        reader,
    } = sniff(input, tsv, opts, name, limits)?;
    if let Some(columns) = fixed {
        events::fixed_detected(name, &crate::fixed::layout_text(&columns));
        let fixed_opts = crate::fixed::Opts {
            line_offset: opts.skip_rows.unwrap_or(0),
            columns: columns.clone(),
            no_header: opts.no_header && !opts.header_auto,
            skip_rows: 0,
            trim: true,
            normalize: opts.normalize,
        };
        crate::fixed::parse(reader, &fixed_opts, origin, em, run, limits)?;
        return Ok(Parsed {
            sniffed,
            switched: None,
            fixed: Some(columns),
        });
    }
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    skip_lines(&mut reader, sniffed.preamble).map_err(io_err)?;
    let reader = unbuffer(reader);
    if let Some(why) = &sniffed.preamble_why {
        events::preamble(name, sniffed.preamble, why);
    }
    let mut eff = opts.clone();
    if opts.header_auto {
        eff.no_header = !sniffed.header.unwrap_or(true);
    }
    let opts = &eff;
    let skipped = opts.skip_rows.unwrap_or(0) + sniffed.preamble;
    let d = sniffed.dialect;
    let mut rows = Rows {
        keys: None,
        row: 0,
        opts,
        origin,
        pending: Vec::new(),
    };
    // The tuned scanner (see fastcsv) reads every dialect. No quote
    // character: NUL stands in (a NUL byte is never text: its row is a
    // reject either way).
    let mut scanner = Scanner::new(
        reader,
        d.delimiter,
        d.quote.unwrap_or(0),
        run.max_line_bytes,
    )
    .with_escape(d.escape)
    .with_comment(opts.comment);
    // The direct path writes ordinary string rows straight from the buffer;
    // the test hook turns it off to compare the two paths.
    let direct = !em.infers()
        && d.escape.is_none()
        && opts.comment.is_none()
        && opts.skip_footer == 0
        && !etl_core::config::test_switch("ETL_PARSE_NO_DIRECT")?;
    let mut backoff = Backoff::default();
    let mut footer: VecDeque<Held> = VecDeque::new();
    let mut switched: Option<(u64, &'static str)> = None;
    loop {
        if direct && rows.pending.is_empty() && backoff.ready() {
            backoff.took(rows.direct(&mut scanner, em, run)?);
        }
        let Some(next) = scanner.next_record().map_err(io_err)? else {
            break;
        };
        // The first row that is not UTF-8 in a file whose sample was: it
        // and the rest are read again in the charset guessed from there.
        let not_utf8 = match &next {
            Next::Record(r) if may_switch && switched.is_none() && !r.utf8 => {
                (memchr::memchr(0, r.bytes).is_none() && std::str::from_utf8(r.bytes).is_err())
                    .then_some(r.line)
            }
            _ => None,
        };
        if let Some(line) = not_utf8 {
            let enc = crate::text::legacy_after(scanner.last_record_on());
            events::charset_switched(name, line + skipped, enc.name());
            scanner.reread_last_record(|r| crate::text::decoder(enc, r));
            switched = Some((line + skipped, enc.name()));
            continue;
        }
        if opts.skip_footer == 0 {
            // No copy: only a possible footer line is held back.
            rows.next(next, skipped, em, run, name)?;
            continue;
        }
        let held = Held::of(next, skipped);
        {
            footer.push_back(held);
            if footer.len() as u64 <= opts.skip_footer {
                continue;
            }
            if let Some(h) = footer.pop_front() {
                rows.held(h, em, run, name)?;
            }
        }
    }
    if !footer.is_empty() {
        events::footer_skipped(name, footer.len());
    }
    rows.footer(run)?;
    Ok(Parsed {
        sniffed,
        switched,
        fixed: None,
    })
}

/// What [`parse`] decided about one input.
#[derive(Debug)]
pub struct Parsed {
    /// The dialect and the lines skipped.
    pub sniffed: Sniffed,
    /// The line from which the input was not UTF-8, and the charset the
    /// rest was read in.
    pub switched: Option<(u64, &'static str)>,
    /// The layout, when the text was read as fixed-width (detected).
    pub fixed: Option<Vec<crate::fixed::Column>>,
}

/// A record from the scanner, owned (for `--skip-footer`, which holds the
/// last N back, and for short rows held until it is known whether they end
/// the file).
#[derive(Debug)]
enum Held {
    Record {
        bytes: Vec<u8>,
        fields: Vec<(usize, usize)>,
        line: u64,
        clean: bool,
        utf8: bool,
        field_clean: Option<Vec<bool>>,
    },
    TooLong {
        line: u64,
        preview: Vec<u8>,
    },
    Malformed {
        line: u64,
        raw: Vec<u8>,
        why: String,
    },
}

impl Held {
    fn of(next: Next<'_>, skipped: u64) -> Self {
        match next {
            Next::Record(r) => Held::Record {
                bytes: r.bytes.to_vec(),
                fields: r.fields.to_vec(),
                line: r.line + skipped,
                clean: r.clean,
                utf8: r.utf8,
                field_clean: r.field_clean.map(<[bool]>::to_vec),
            },
            Next::TooLong { line, preview } => Held::TooLong {
                line: line + skipped,
                preview: preview.clone(),
            },
            Next::Malformed { line, raw, why } => Held::Malformed {
                line: line + skipped,
                raw: raw.to_vec(),
                why: why.clone(),
            },
        }
    }
}

/// Rejects a record longer than `--max-line-bytes`.
pub(crate) fn too_long(run: &mut Run, line: u64, preview: &[u8], name: &str) -> Result<()> {
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
    /// Short rows of one value (`Total: 12`, `End of report`) held back
    /// until a full row follows them (then they are rows) or the input ends
    /// (then they are a footer: rejects).
    pending: Vec<Held>,
}

/// Short rows held back at most: past this many they are rows.
const MAX_PENDING: usize = 1000;

impl Rows<'_> {
    /// One record in the order the file holds it.
    fn held(&mut self, h: Held, em: &mut Emitter, run: &mut Run, name: &str) -> Result<()> {
        if let Held::Record { bytes, fields, .. } = &h {
            if self.may_be_footer(bytes, fields) {
                self.pending.push(h);
                return Ok(());
            }
        }
        self.flush_pending(em, run, name)?;
        self.one(h, em, run, name)
    }

    /// A row shorter than the header holding one value (`Total: 12`): held
    /// back until it is known whether rows follow it.
    fn may_be_footer(&self, bytes: &[u8], fields: &[(usize, usize)]) -> bool {
        let width = self.keys.as_ref().map_or(0, Keys::len);
        width > 1
            && fields.len() < width
            && self.pending.len() < MAX_PENDING
            && fields
                .iter()
                .filter(|&&(a, b)| !bytes[a..b].iter().all(u8::is_ascii_whitespace))
                .count()
                == 1
    }

    fn flush_pending(&mut self, em: &mut Emitter, run: &mut Run, name: &str) -> Result<()> {
        for p in std::mem::take(&mut self.pending) {
            self.one(p, em, run, name)?;
        }
        Ok(())
    }

    /// One record straight from the scanner (without `--skip-footer`).
    fn next(
        &mut self,
        next: Next<'_>,
        skipped: u64,
        em: &mut Emitter,
        run: &mut Run,
        name: &str,
    ) -> Result<()> {
        if let Next::Record(r) = &next {
            if self.may_be_footer(r.bytes, r.fields) {
                self.pending.push(Held::of(next, skipped));
                return Ok(());
            }
            if self.pending.is_empty() {
                return self.row(
                    em,
                    run,
                    r.bytes,
                    r.fields,
                    r.line + skipped,
                    r.clean,
                    r.utf8,
                    r.field_clean,
                );
            }
        }
        let h = Held::of(next, skipped);
        self.flush_pending(em, run, name)?;
        self.one(h, em, run, name)
    }

    fn one(&mut self, h: Held, em: &mut Emitter, run: &mut Run, name: &str) -> Result<()> {
        match h {
            Held::Record {
                bytes,
                fields,
                line,
                clean,
                utf8,
                field_clean,
            } => self.row(
                em,
                run,
                &bytes,
                &fields,
                line,
                clean,
                utf8,
                field_clean.as_deref(),
            ),
            Held::TooLong { line, preview } => too_long(run, line, &preview, name),
            Held::Malformed { line, raw, why } => {
                if self.keys.is_none() && !self.opts.no_header {
                    // Without its header no row can be read.
                    return Err(Error::data(format!(
                        "{name}: line {line}: the header: {why}"
                    )));
                }
                malformed(run, line, &raw, &why, name)
            }
        }
    }

    /// At the end of the input: the short rows still held are a footer.
    fn footer(&mut self, run: &mut Run) -> Result<()> {
        let width = self.keys.as_ref().map_or(0, Keys::len);
        for p in std::mem::take(&mut self.pending) {
            if let Held::Record {
                bytes,
                fields,
                line,
                ..
            } = p
            {
                run.records_in += 1;
                let values: Vec<Value> = fields
                    .iter()
                    .map(|&(a, b)| Value::from(String::from_utf8_lossy(&bytes[a..b]).into_owned()))
                    .collect();
                run.reject(&Reject {
                    line,
                    error: format!(
                        "a footer line below the table: {} field{} where the header has {width} (--skip-footer N drops the last N lines)",
                        fields.len(),
                        if fields.len() == 1 { "" } else { "s" }
                    ),
                    input: RejectInput::Value(Value::Array(values)),
                    source: Some(self.origin.label.clone()),
                })?;
            }
        }
        Ok(())
    }

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
