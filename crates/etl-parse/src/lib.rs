//! etl-parse: the files clients send (CSV/TSV, XLSX/XLS/XLSB/ODS, JSON,
//! NDJSON, ZIP; gzip/bzip2/xz/zstd-compressed) turned into the NDJSON record
//! stream of etl(7).
//!
//! `input` opens and decompresses, `detect` decides the format, `text`
//! decodes to UTF-8, and one module per family parses (`delimited`,
//! `sheets`, `json`, `archive`), all writing through `emit`. This file holds
//! the command line and the dispatcher that ties them together.

use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser as ClapParser};
use etl_core::reader::Item;
use etl_core::{CommonArgs, Error, RecordReader, Reject, Result, Run, Value};
use globset::GlobMatcher;

pub mod archive;
pub mod delimited;
pub mod detect;
pub mod dialect;
pub mod emit;
mod events;
pub mod fastcsv;
pub mod fixed;
pub mod input;
pub mod json;
pub mod sheets;
pub mod text;

use detect::{Format, Sniffed};
use emit::{Emitter, Normalize, Origin, ValueOpts};
use input::{Http, Limits, Opened, Seekable, Source};

const ABOUT: &str =
    "Parse CSV/TSV, XLSX/XLS/XLSB/ODS, JSON/NDJSON and ZIP files into NDJSON records";

const LONG_ABOUT: &str = "\
Parse the files clients send into the NDJSON record stream: one JSON object per row, keys \
from the header row in the file's column order, values as strings (so `00123` stays \
\"00123\") unless --infer.

Formats are recognised by content (magic bytes, then sniffing), then by extension; \
--format overrides. Delimited text (its dialect detected: see below), fixed-width text \
(--format fixed with a layout), Excel (xlsx, xlsm, \
xlsb, xls), OpenDocument (ods), JSON (an array of objects, or the array at --json-path), \
NDJSON (validated and passed through unchanged) and zip archives (every member parsed by \
its own format; --provenance adds `_member` to tell members apart, --member picks them). gzip, bzip2, xz and zstd compression is removed \
transparently, under --max-decompressed-bytes and --max-ratio.

Text is decoded to UTF-8: a UTF-8 BOM is removed, UTF-16 with a BOM or without one (NUL \
bytes every other byte) is decoded, --encoding names a legacy encoding, and input that is \
not UTF-8 is decoded with a detected charset (windows-1252/1251, ISO-8859-x, Shift_JIS, \
GB18030, ...; a warning names it). A file whose first 64 KiB are UTF-8 but which holds a \
byte that is not later is read as UTF-8 up to there and as the charset detected from there \
on, with one warning naming the line (--encoding utf-8 insists: such rows are rejects).

Delimited text: the dialect is detected on the first 64 KiB. The delimiter (, ; TAB | \
space # : ~ ^ / * +), the quote (\" ' or none) and the escape (doubled quotes or \\) are \
decided together: every candidate parses the sample and the one whose table is the most \
uniform (rows of the same width) with the most plausible cells (numbers, dates, words, \
empty cells, rather than fragments of rows split in the wrong place) wins; ties go to the \
common dialect (, \" doubled). A space or other rare delimiter must give every row the \
same width, so a one-column file of `John Smith` is never split. Title and blank lines \
above the table (lines of one value at most) are skipped and logged (--skip-rows N \
forces N lines and turns this off). Short lines of one value at the end of the file \
(`Total: 12`, `End of report`) are rejects naming the line, unless --skip-footer N drops \
the last N lines. --header auto decides whether the first row names the columns (names \
above numbers or dates, no value repeated below). Flags always win over detection. What \
was decided is logged for each input, carried in the summary under `dialects` (one \
object per input), and printed by --sniff (one JSON object per input, without parsing \
the rest), to pin it in a script.

Fixed-width text (--format fixed): --columns 'id:1-8,name:9-38' (1-based inclusive \
character positions), --widths 8,30 (columns side by side, named by the header line, or \
col_1..col_N with --no-header) or --columns-file FILE (one NAME:START-END per line). \
Positions count characters, not bytes. Values are trimmed unless --no-trim. A line that \
ends before the last column starts, or holds text past the layout's end, is a reject \
naming the line; blank lines are skipped. Without --format: a text in which no delimiter \
gives a table but whose columns line up (at least 5 lines, gutters of 2 spaces or more \
blank on every line, every column filled on half the lines) is read as fixed-width, and \
the log says so with the layout as --columns takes it; anything less certain stays \
delimited, and --delimiter (or --quote, --escape) refuses it.

Memory: delimited text, JSON and NDJSON stream in constant memory whatever the file size. \
Spreadsheets are read one sheet at a time: memory grows with the used range of the \
largest selected sheet (calamine holds one sheet in memory), not with the workbook. Zip members that are \
spreadsheets, and inputs from stdin or URLs that need random access, are spooled to a \
temporary file.

Rows that cannot be read are rejects (see --rejects, --max-rejects) naming file, line \
(row for spreadsheets) and reason: a row with more fields than the header (unless \
--ragged keep), a NUL byte, invalid UTF-8, an error cell (#N/A), a JSON element that is \
not an object. A missing input exits 66 before any output; a password-protected workbook, \
a corrupt archive or an encrypted member exits 65.";

const EXAMPLES: &str = "\
Examples:
  etl-parse report.xlsx | jq .                          # first visible sheet
  etl-parse --list-sheets report.xlsx                   # name, index, visible, rows, columns
  etl-parse --sheet Totals --skip-rows 2 report.xlsx    # a sheet with a two-line title
  etl-parse --all-sheets --provenance book.ods          # every sheet, with _sheet, _source, _row
  etl-parse export.csv.gz --normalize-headers snake     # `Order ID` -> order_id
  etl-parse --encoding windows-1252 --delimiter ';' legacy.csv
  etl-parse --sniff export.csv                         # {\"delimiter\":\";\",\"skip_rows\":3,...}
  etl-parse --header auto --skip-footer 2 report.csv   # header decided, last 2 lines dropped
  etl-parse --format fixed --columns 'id:1-8,name:9-38,amount:39-50' ledger.txt
  etl-parse --format fixed --widths 8,30,12 --no-header ledger.txt
  etl-parse --no-header --ragged keep messy.txt         # col_1..col_N, extra fields in _extra
  etl-parse --json-path data.items api.json             # the array at .data.items
  etl-parse --member '*.csv' reports.zip                # only the CSV members
  etl-parse https://example.com/daily.csv --timeout 60 --retries 5
  etl-parse --format csv --quote \"'\" --escape '\\' --comment '#' export.dat
  etl-parse --cell-errors empty --sheet 0 book.xls      # #N/A cells read as empty
  etl-parse --max-decompressed-bytes 512MiB --max-ratio 200 upload.zip
  etl-parse --infer orders.csv | etl-merge --db w.duckdb --table orders --key id
  etl-fetch-mail ... | etl-parse --manifest --carry date,from   # adds _date, _from

Testing hook:
  ETL_PARSE_NO_DIRECT=1  every CSV record takes the record-at-a-time path instead of the
  direct path (the differential test compares the two); any other value exits 64.";

/// The `etl-parse` command line.
#[allow(clippy::struct_excessive_bools)] // command-line switches
#[derive(Debug, ClapParser)]
#[command(name = "etl-parse", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Cli {
    /// Files to parse: paths, `-` for stdin, or http(s):// URLs [default: -].
    #[arg(value_name = "FILE|URL")]
    pub inputs: Vec<String>,

    /// Read manifest lines (as etl-fetch-mail writes them) on stdin and parse each `path`;
    /// a file that is not UTF-8 is decoded with the line's `charset` (the e-mail's), if any.
    #[arg(long, help_heading = "Inputs", conflicts_with = "inputs")]
    pub manifest: bool,
    /// With --manifest: copy these manifest fields into every record as _FIELD (e.g. date,from).
    #[arg(
        long,
        value_name = "FIELD,...",
        value_delimiter = ',',
        help_heading = "Inputs"
    )]
    pub carry: Vec<String>,
    /// The input format, instead of detecting it from content and extension.
    #[arg(long, value_enum, help_heading = "Inputs")]
    pub format: Option<Format>,
    /// HTTP connect and read timeout in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        env = "ETL_HTTP_TIMEOUT",
        help_heading = "Inputs"
    )]
    pub timeout: f64,
    /// HTTP retries after a 5xx, 429 or connection error (exponential backoff).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        env = "ETL_HTTP_RETRIES",
        help_heading = "Inputs"
    )]
    pub retries: u32,

    /// Field delimiter (one character; `tab` or `\t` for TAB, `space`) [default: detected among , ; TAB | space # : ~ ^ / * +].
    #[arg(
        long,
        short = 'd',
        value_name = "CHAR",
        help_heading = "Delimited text"
    )]
    pub delimiter: Option<String>,
    /// Quote character, or `none` [default: detected among " ' and none].
    #[arg(long, value_name = "CHAR", help_heading = "Delimited text")]
    pub quote: Option<String>,
    /// Escape character inside quoted fields, besides doubled quotes: with `\`, `\"` is a quote and `\\` one backslash; before any other character it is data, kept. `none`: doubled quotes only [default: detected].
    #[arg(long, value_name = "CHAR", help_heading = "Delimited text")]
    pub escape: Option<String>,
    /// Lines starting with CHAR are comments and skipped (e.g. `#`).
    #[arg(long, value_name = "CHAR", help_heading = "Delimited text")]
    pub comment: Option<String>,
    /// Text encoding (windows-1252, latin1, shift_jis, utf-16le, ...) [default: UTF-8, or detected].
    #[arg(long, value_name = "NAME", help_heading = "Delimited text")]
    pub encoding: Option<String>,
    /// Rows longer than the header: reject them, or keep the extra fields in `_extra`.
    #[arg(
        long,
        value_enum,
        default_value = "reject",
        help_heading = "Delimited text"
    )]
    pub ragged: delimited::Ragged,

    /// Whether the first row (after any preamble) is a header: yes, no (columns col_1..col_N), or auto (decided from the file; delimited text).
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "yes",
        help_heading = "Header"
    )]
    pub header: delimited::Header,
    /// The first row is data: columns are named col_1..col_N (same as --header no).
    #[arg(long, help_heading = "Header", conflicts_with = "header")]
    pub no_header: bool,
    /// Skip N lines (sheet rows) of preamble before the header [default: title and blank lines above a delimited table are detected and skipped].
    #[arg(long, value_name = "N", help_heading = "Header")]
    pub skip_rows: Option<u64>,
    /// Drop the last N lines of delimited text (a footer: totals, "End of report").
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Header")]
    pub skip_footer: u64,
    /// Print what each input is (format, encoding, delimiter, quote, escape, header, lines to skip) as one JSON object per input, without parsing the rest.
    #[arg(long, help_heading = "Inputs")]
    pub sniff: bool,
    /// Rewrite column names: snake (`Order ID` -> order_id), lower, trim.
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        default_value = "none",
        help_heading = "Header"
    )]
    pub normalize_headers: Normalize,

    /// Fixed-width layout: NAME:START-END,... (1-based inclusive character positions), e.g. id:1-8,name:9-38,amount:39-50.
    #[arg(long, value_name = "LAYOUT", help_heading = "Fixed-width text",
        conflicts_with_all = ["widths", "columns_file"])]
    pub columns: Option<String>,
    /// Fixed-width layout as widths in characters, e.g. 8,30,12; the header line names the columns (col_1..col_N with --no-header).
    #[arg(
        long,
        value_name = "N,N,...",
        help_heading = "Fixed-width text",
        conflicts_with = "columns_file"
    )]
    pub widths: Option<String>,
    /// Fixed-width layout from a file: one NAME:START-END per line (# comments).
    #[arg(long, value_name = "FILE", help_heading = "Fixed-width text")]
    pub columns_file: Option<PathBuf>,
    /// Keep the spaces around fixed-width values.
    #[arg(long, help_heading = "Fixed-width text")]
    pub no_trim: bool,

    /// The sheet to read, by name or 0-based index [default: the first visible sheet].
    #[arg(
        long,
        value_name = "NAME|INDEX",
        help_heading = "Spreadsheets",
        conflicts_with = "all_sheets"
    )]
    pub sheet: Option<String>,
    /// Read every sheet (hidden ones too); adds `_sheet` to each record.
    #[arg(long, help_heading = "Spreadsheets")]
    pub all_sheets: bool,
    /// Print one line per sheet (name, index, visible, rows, columns) instead of records.
    #[arg(long, help_heading = "Spreadsheets")]
    pub list_sheets: bool,
    /// Error cells (#N/A, #DIV/0!): reject the row, or read them as empty.
    #[arg(
        long,
        value_enum,
        default_value = "reject",
        help_heading = "Spreadsheets"
    )]
    pub cell_errors: sheets::CellErrors,

    /// The dot-separated key of the array of records inside a JSON object (e.g. data.items).
    #[arg(long, value_name = "KEY", help_heading = "JSON")]
    pub json_path: Option<String>,

    /// Only archive members whose path or name matches GLOB (e.g. '*.csv'; repeatable).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, help_heading = "Archives")]
    pub member: Vec<String>,
    /// Stop (exit 65) when one input decompresses to more than SIZE in all (its compression, every archive member, the zip inside a workbook).
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = etl_core::config::parse_size,
        env = "ETL_MAX_DECOMPRESSED_BYTES", help_heading = "Archives")]
    pub max_decompressed_bytes: usize,
    /// Stop (exit 65) when data decompresses more than N times its compressed size.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Archives"
    )]
    pub max_ratio: u64,

    /// Integers, decimals and true/false become JSON numbers and booleans (digits unchanged;
    /// 00123, 1e5, 0x10, NaN stay strings); empty values become null.
    #[arg(long, help_heading = "Values")]
    pub infer: bool,
    /// Add _source (file), _member (zip member), _sheet and _row (1-based data row).
    #[arg(long, help_heading = "Values")]
    pub provenance: bool,

    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// One character option (`--delimiter`, `--quote`, `--comment`).
fn one_byte(flag: &str, s: &str) -> Result<u8> {
    let t = match s {
        "tab" | "\\t" | "TAB" => "\t",
        "space" => " ",
        other => other,
    };
    match t.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(Error::usage(format!(
            "{flag} {s:?}: must be one ASCII character (or `tab`)"
        ))),
    }
}

/// A character option that also takes `none` (`--quote`, `--escape`).
fn byte_or_none(flag: &str, s: &str) -> Result<Option<u8>> {
    if s.eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        one_byte(flag, s).map(Some)
    }
}

/// What one input is, for the dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct Job<'j> {
    /// The file (or member) name, for its extension.
    pub name: &'j str,
    /// Where its records come from.
    pub origin: &'j Origin,
    /// Archive nesting depth.
    pub depth: usize,
}

/// Parsing state shared by every input of a run.
#[derive(Debug)]
pub struct Parser<'a> {
    cli: &'a Cli,
    em: Emitter,
    /// Decompression limits.
    pub limits: Limits,
    /// `--member`.
    pub member_glob: Option<GlobMatcher>,
    csv: delimited::Opts,
    sheets: sheets::Opts,
    encoding: Option<&'static encoding_rs::Encoding>,
    /// The charset the current manifest file's e-mail part declared.
    declared: Option<&'static encoding_rs::Encoding>,
    http: Http,
    /// What each delimited input was read as (the summary's `dialects`).
    dialects: etl_core::record::Map,
    fixed: fixed::Opts,
}

impl Parser<'_> {
    /// Parses an already opened input.
    fn parse_opened(&mut self, job: Job<'_>, opened: Opened<'_>, run: &mut Run) -> Result<()> {
        let label = job.origin.label.clone();
        let ext = input::extension_of(job.name).and_then(|e| Format::from_extension(&e));
        let forced = self.cli.format;
        let container = match forced {
            Some(f) if f.is_spreadsheet() || f == Format::Zip => Some(f),
            Some(_) => None,
            None => match detect::sniff(&opened.head, ext) {
                Sniffed::ZipContainer => Some(Format::Zip),
                Sniffed::Ole => Some(Format::Xls),
                Sniffed::Text(_) => None,
            },
        };
        if let Some(kind) = container {
            let mut data = opened.into_seekable(&label)?;
            let format = if kind == Format::Zip && forced.is_none() {
                zip_kind(&mut data)
            } else {
                kind
            };
            events::file(&label, format.name());
            if self.sheets.select.list && !format.is_spreadsheet() {
                return Err(Error::usage(format!(
                    "--list-sheets: {label} is {}, not a spreadsheet",
                    format.name()
                )));
            }
            return if format == Format::Zip {
                archive::parse(data, job.origin, self, run, job.depth)
            } else {
                if matches!(format, Format::Xlsx | Format::Xlsb | Format::Ods) {
                    archive::check_workbook(&mut data, &self.limits, &label)?;
                }
                sheets::parse(data, format, &self.sheets, job.origin, &mut self.em, run)
            };
        }
        if self.sheets.select.list {
            return Err(Error::usage(format!(
                "--list-sheets: {label} is not a spreadsheet"
            )));
        }
        let complete = opened.head.len() < 65_536;
        let decoded = text::decode(
            opened.head,
            opened.rest,
            complete,
            self.encoding,
            self.declared,
            &label,
        );
        let encoding = decoded.encoding;
        let may_switch = decoded.may_switch;
        let mut decoded = decoded.reader;
        let head =
            input::read_head(&mut decoded, 4096).map_err(|e| self.limits.read_error(&label, &e))?;
        let format = forced.unwrap_or_else(|| match detect::sniff(&head, ext) {
            // --json-path means a document, even one written on a single line.
            Sniffed::Text(Format::Ndjson) if self.cli.json_path.is_some() => Format::Json,
            Sniffed::Text(f) => f,
            _ => Format::Csv,
        });
        if let Some(e) =
            ext.filter(|e| (e.is_spreadsheet() || *e == Format::Zip) && forced.is_none())
        {
            events::extension_mismatch(&label, e.name(), format.name());
        }
        events::file(&label, format.name());
        let reader: Box<dyn Read + '_> = Box::new(io::Cursor::new(head).chain(decoded));
        let tsv = format == Format::Tsv;
        if self.cli.sniff {
            return self.sniff_text(reader, format, &label, &encoding);
        }
        match format {
            Format::Json => json::document(
                reader,
                self.cli.json_path.as_deref(),
                job.origin,
                &mut self.em,
                run,
                &self.limits,
            ),
            Format::Ndjson => json::ndjson(reader, job.origin, &mut self.em, run, &self.limits),
            Format::Fixed => fixed::parse(
                reader,
                &self.fixed,
                job.origin,
                &mut self.em,
                run,
                &self.limits,
            ),
            _ => self.parse_delimited(
                reader,
                tsv,
                job.origin,
                &label,
                (&encoding, may_switch),
                run,
            ),
        }
    }

    /// Delimited text, and what it was read as in the summary.
    fn parse_delimited(
        &mut self,
        reader: Box<dyn Read + '_>,
        tsv: bool,
        origin: &Origin,
        label: &str,
        (encoding, may_switch): (&str, bool),
        run: &mut Run,
    ) -> Result<()> {
        let parsed = delimited::parse(
            reader,
            (tsv, may_switch),
            &self.csv,
            origin,
            &mut self.em,
            run,
            &self.limits,
        )?;
        let encoding = match parsed.switched {
            Some((line, enc)) => format!("{encoding}, {enc} from line {line}"),
            None => encoding.to_owned(),
        };
        let d = delimited::describe(
            &parsed.sniffed,
            parsed.fixed.as_deref(),
            &self.csv,
            &encoding,
        );
        if parsed.fixed.is_none() {
            events::dialect(label, &d);
        }
        self.dialects.insert(label.to_owned(), Value::Object(d));
        run.set_count("dialects", Value::Object(self.dialects.clone()));
        Ok(())
    }

    /// `--sniff` for a text input: what it is, without parsing the rest.
    fn sniff_text(
        &mut self,
        reader: Box<dyn Read + '_>,
        format: Format,
        label: &str,
        encoding: &str,
    ) -> Result<()> {
        let mut rec = etl_core::map_with_capacity(10);
        rec.insert("file".into(), Value::from(label));
        rec.insert("format".into(), Value::from(format.name()));
        if matches!(format, Format::Csv | Format::Tsv) {
            let sniff = delimited::sniff(
                reader,
                format == Format::Tsv,
                &self.csv,
                label,
                &self.limits,
            )?;
            let d =
                delimited::describe(&sniff.sniffed, sniff.fixed.as_deref(), &self.csv, encoding);
            events::dialect(label, &d);
            rec.extend(d);
        } else {
            rec.insert("encoding".into(), Value::from(encoding));
        }
        self.em.plain(&rec).map_err(|e| Error::stdout(&e))
    }

    /// Parses a stream (an archive member): decompress, detect, parse.
    pub fn parse_stream(
        &mut self,
        job: Job<'_>,
        reader: Box<dyn Read + '_>,
        run: &mut Run,
    ) -> Result<()> {
        let opened = input::decompress(reader, None, &self.limits, &job.origin.label, 65_536)?;
        self.parse_opened(job, opened, run)
    }
}

/// Looks inside a zip container: an Office/OpenDocument workbook or an archive.
fn zip_kind(data: &mut Seekable) -> Format {
    use std::io::Seek;
    let kind = match zip::ZipArchive::new(&mut *data) {
        Ok(z) => {
            let names: Vec<String> = z
                .file_names()
                .filter_map(std::result::Result::ok)
                .map(std::borrow::Cow::into_owned)
                .collect();
            if names.iter().any(|n| n == "xl/workbook.xml") {
                Format::Xlsx
            } else if names.iter().any(|n| n == "xl/workbook.bin") {
                Format::Xlsb
            } else if names.iter().any(|n| n == "content.xml")
                && names.iter().any(|n| n == "mimetype")
            {
                Format::Ods
            } else {
                Format::Zip
            }
        }
        Err(_) => Format::Zip,
    };
    let _ = data.rewind();
    kind
}

/// Runs one invocation.
#[allow(clippy::needless_pass_by_value)] // the signature etl_core::main requires
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    let csv = csv_opts(&cli)?;
    if !cli.carry.is_empty() && !cli.manifest {
        return Err(Error::usage(
            "--carry needs --manifest (it copies manifest fields)",
        ));
    }
    let sheets = sheets::Opts {
        select: sheets::Select {
            sheet: cli.sheet.clone(),
            all: cli.all_sheets,
            list: cli.list_sheets,
        },
        no_header: cli.no_header || cli.header == delimited::Header::No,
        skip_rows: cli.skip_rows.unwrap_or(0),
        normalize: cli.normalize_headers,
        cell_errors: cli.cell_errors,
    };
    let encoding = cli
        .encoding
        .as_deref()
        .map(text::encoding_for)
        .transpose()?;
    let fixed = fixed_opts(&cli)?;
    let member_glob = match cli.member.as_slice() {
        [] => None,
        globs => {
            // Several --member globs: any of them (as one alternation).
            let pattern = if globs.len() == 1 {
                globs[0].clone()
            } else {
                format!("{{{}}}", globs.join(","))
            };
            let g = globset::GlobBuilder::new(&pattern)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|e| Error::usage(format!("--member {pattern}: {e}")))?;
            Some(g.compile_matcher())
        }
    };
    if !cli.timeout.is_finite() || cli.timeout <= 0.0 {
        return Err(Error::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let http = Http {
        timeout: Duration::from_secs_f64(cli.timeout),
        retries: cli.retries,
    };
    let limits = Limits::new(cli.max_decompressed_bytes as u64, cli.max_ratio.max(1));
    let mut parser = Parser {
        cli: &cli,
        em: Emitter::new(ValueOpts { infer: cli.infer }),
        limits,
        member_glob,
        csv,
        sheets,
        encoding,
        declared: None,
        http,
        dialects: etl_core::map_with_capacity(4),
        fixed,
    };
    let result = if cli.manifest {
        manifest(&mut parser, run)
    } else {
        files(&mut parser, run)
    };
    let flushed = parser.em.flush().map_err(|e| Error::stdout(&e));
    result.and(flushed)
}

/// The delimited-text options.
fn csv_opts(cli: &Cli) -> Result<delimited::Opts> {
    let csv = delimited::Opts {
        delimiter: cli
            .delimiter
            .as_deref()
            .map(|d| one_byte("--delimiter", d))
            .transpose()?,
        quote: cli
            .quote
            .as_deref()
            .map(|q| byte_or_none("--quote", q))
            .transpose()?,
        escape: cli
            .escape
            .as_deref()
            .map(|c| byte_or_none("--escape", c))
            .transpose()?,
        comment: cli
            .comment
            .as_deref()
            .map(|c| one_byte("--comment", c))
            .transpose()?,
        no_header: cli.no_header || cli.header == delimited::Header::No,
        header_auto: cli.header == delimited::Header::Auto,
        skip_rows: cli.skip_rows,
        skip_footer: cli.skip_footer,
        normalize: cli.normalize_headers,
        ragged: cli.ragged,
    };
    if let Some(d) = csv.delimiter {
        // `"` is the quote unless --quote says otherwise.
        if matches!(d, b'\n' | b'\r') || csv.quote.unwrap_or(Some(b'"')) == Some(d) {
            return Err(Error::usage(format!(
                "--delimiter {:?}: a line end or the quote character cannot separate fields",
                char::from(d)
            )));
        }
    }
    Ok(csv)
}

/// The fixed-width layout and options (`--format fixed`).
fn fixed_opts(cli: &Cli) -> Result<fixed::Opts> {
    let layout = match (&cli.columns, &cli.widths, &cli.columns_file) {
        (Some(c), _, _) => fixed::parse_columns(c, "--columns")?,
        (_, Some(w), _) => fixed::parse_widths(w)?,
        (_, _, Some(f)) => fixed::read_columns_file(f)?,
        _ => Vec::new(),
    };
    if (cli.format == Some(Format::Fixed)) == layout.is_empty() {
        return Err(Error::usage(if layout.is_empty() {
            "--format fixed needs a layout: --columns, --widths or --columns-file"
        } else {
            "--columns, --widths and --columns-file describe fixed-width text: add --format fixed"
        }));
    }
    Ok(fixed::Opts {
        line_offset: 0,
        columns: layout,
        no_header: cli.no_header || cli.header == delimited::Header::No,
        skip_rows: cli.skip_rows.unwrap_or(0),
        trim: !cli.no_trim,
        normalize: cli.normalize_headers,
    })
}

fn files(parser: &mut Parser<'_>, run: &mut Run) -> Result<()> {
    let args: Vec<String> = if parser.cli.inputs.is_empty() {
        vec!["-".into()]
    } else {
        parser.cli.inputs.clone()
    };
    let sources: Vec<Source> = args.iter().map(|a| Source::from_arg(a)).collect();
    if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
        return Err(Error::usage("`-` (stdin) can be given only once"));
    }
    // Every local file must be readable before any output: a cron job must
    // not load half of a batch and then fail on a typo.
    for s in &sources {
        if let Source::File(p) = s {
            std::fs::File::open(p).map_err(|e| Error::input(p, &e))?;
        }
    }
    for s in &sources {
        let name = s.name();
        let origin = Origin::new(&name, parser.cli.provenance, &[]);
        parse_source(parser, s, &origin, run)?;
    }
    Ok(())
}

fn parse_source(
    parser: &mut Parser<'_>,
    src: &Source,
    origin: &Origin,
    run: &mut Run,
) -> Result<()> {
    // --max-decompressed-bytes is the total of one input, whatever it holds.
    parser.limits.start_input();
    let mut stdin = io::stdin().lock();
    let opened = input::open(src, &parser.http, &parser.limits, &mut stdin)?;
    let name = src.name();
    let job = Job {
        name: &name,
        origin,
        depth: 0,
    };
    let ext_name = match src {
        // The redacted name: its path is the URL's, its credentials masked.
        Source::Url(_) => name.split(['?', '#']).next().unwrap_or(&name).to_owned(),
        _ => name.clone(),
    };
    parser.parse_opened(
        Job {
            name: &ext_name,
            ..job
        },
        opened,
        run,
    )
}

fn manifest(parser: &mut Parser<'_>, run: &mut Run) -> Result<()> {
    let mut lines = RecordReader::new(
        io::stdin().lock(),
        run.max_line_bytes,
        Some("manifest".into()),
    );
    let mut todo = Vec::new();
    // The manifest is small (one line per file): read it whole first, so that
    // parsing a file never competes with reading stdin.
    loop {
        match lines.next_item().map_err(|e| Error::stdin(&e))? {
            None => break,
            Some(Item::Reject(r)) => run.reject(&r)?,
            Some(Item::Record(line, rec)) => match rec.get("path").and_then(Value::as_str) {
                Some(p) => {
                    let carry: Vec<(String, Value)> = parser
                        .cli
                        .carry
                        .iter()
                        .map(|f| (f.clone(), rec.get(f).cloned().unwrap_or(Value::Null)))
                        .collect();
                    let declared = declared_charset(&rec, p);
                    todo.push((PathBuf::from(p), carry, declared));
                }
                None => run.reject(&Reject::record(
                    line,
                    "manifest line has no string `path`",
                    rec,
                ))?,
            },
        }
    }
    drop(lines);
    for (path, carry, declared) in todo {
        let src = Source::File(path);
        let origin = Origin::new(&src.name(), parser.cli.provenance, &carry);
        parser.declared = declared;
        parse_source(parser, &src, &origin, run)?;
    }
    parser.declared = None;
    Ok(())
}

/// The legacy charset a manifest line declares (`charset`, from the e-mail
/// part), used for that file's text when it is not valid UTF-8. A declared
/// UTF-8 adds nothing (valid UTF-8 is read as such, and invalid UTF-8 is
/// better detected); an unknown label is ignored with a warning.
fn declared_charset(rec: &etl_core::Record, path: &str) -> Option<&'static encoding_rs::Encoding> {
    let label = rec.get("charset").and_then(Value::as_str)?;
    match text::encoding_for(label) {
        Ok(enc) if enc == encoding_rs::UTF_8 => None,
        Ok(enc) => Some(enc),
        Err(_) => {
            events::charset_unknown(path, label);
            None
        }
    }
}
