//! etl-push-sheets: publish a record stream to a Google Sheets sheet.
//!
//! The input is read to the end first (into an unlinked temporary file), so
//! that nothing is written before every record is known to be valid and the
//! result is known to fit Google's limits; then the rows go out in requests
//! of at most `--max-request-bytes`, writes paced to stay inside Google's
//! per-minute quota, failures retried with backoff.

pub mod a1;
mod api;
mod auth;
mod blocks;
pub mod cells;
mod events;
mod modes;
pub mod pace;
mod spool;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use etl_core::config::parse_size;
use etl_core::{CommonArgs, Error, Result, Run};

const ABOUT: &str =
    "Publish NDJSON records to Google Sheets: atomic replace, append or upsert, within quota";

const LONG_ABOUT: &str = "\
Publish the records on stdin to a sheet of a Google spreadsheet.

The whole input is read and checked first (spooled to a temporary file: memory holds three \
request bodies at most, the one on the wire, the next one and the one being encoded), so a bad record, a new column under --on-new-column fail, or a result \
beyond Google's limits (10,000,000 cells per spreadsheet, 18,278 columns, 50,000 \
characters per cell) stops the run with exit 65 before anything is written.

Modes:
  replace  (default) afterwards the sheet holds exactly the input, header first. Atomic \
for readers, and the sheet is kept: the rows go to a hidden staging sheet (\"etl-push-sheets \
staging SHEET_ID RUN_ID\"), then one batchUpdate (which Google applies atomically) grows \
the sheet's grid when the table needs it, pastes the staged values into it (copyPaste \
PASTE_VALUES; PASTE_NORMAL with --value-input user-entered, so the formats Sheets derives \
from typed text come along), clears the values beyond the new table and deletes the \
staging sheet. The sheet keeps its id (#gid= links), place, grid size, formatting and \
every reference to it from formulas, charts, pivots and named ranges elsewhere. The \
staging copy counts against the 10,000,000-cell limit (exit 65 before writing when it \
does not fit, pointing at --in-place; an input the sheet already holds needs no copy, so a \
sheet of more than 5M cells stays checkable); a failed run removes its staging sheet and one left by a killed run is \
removed by the next replace. An input the sheet already holds makes no write request: \
the sheet is read a window of rows at a time (about 500,000 cells each; the first \
difference ends the reading), so a daily job whose data did not change spends no write \
quota and leaves the sheet's revision alone. A missing sheet is created. With --in-place \
the rows overwrite the sheet and the cells beyond them are cleared instead: the sheet id \
and formatting stay, but it is NOT atomic (a reader may see a mix of old and new rows, \
and a failure half-way leaves one). An empty input is refused (it would empty the sheet) \
unless --allow-empty.
  append   rows go after the last row of the table at --start-cell. The header is written \
when the sheet is empty; otherwise record keys are matched to the existing header by name \
(a key it lacks: --on-new-column, default fail, exit 65 listing the differences).
  upsert   --key COL[,COL]: reads the sheet (a window of rows at a time: memory holds the key index and one window), \
updates only the cells that changed in \
rows whose key exists, appends rows with new keys. A field a record lacks leaves its cell \
alone; null clears it. The last record for a key wins. --delete-missing also deletes rows \
whose key is absent from the input: only for a full input, never an incremental one. An \
unchanged input makes no write request at all. Memory: upsert holds the key index of the \
existing sheet (the keys and a hash per cell), the one exception to bounded memory.

Values: strings as strings (RAW: never parsed; leading zeros kept), numbers as numbers \
(as text when a double would lose digits: more than 15 significant digits), booleans as \
booleans, null as an empty cell, objects and arrays as their JSON text. With \
--value-input user-entered, Sheets parses strings like a typist (numbers, dates, \
percentages), and a string starting with =, +, -, @, tab or CR is written with a leading \
' so it stays text (no formula injection) unless --allow-formulas.

Quota and failures: writes are paced to at most --max-writes-per-minute in any 60 \
seconds (Google allows 60 per user); each request carries at most --max-request-bytes. \
429, 500, 502, 503, 504 and connection errors are retried with exponential backoff and \
full jitter (1 s doubling to 64 s), honouring Retry-After, up to --max-retries and \
--max-retry-seconds; values.append is not retried after a connection error (it may have \
been applied). Exit 77 for 401/403 with Google's message, 65 for other 4xx, 75 when the \
quota is still exhausted after the retries, 69 when Google stays unavailable.

Credentials: a service-account key (GOOGLE_APPLICATION_CREDENTIALS or --credentials), \
with --impersonate USER for domain-wide delegation, or authorized-user JSON as written by \
`gcloud auth application-default login`. The token endpoint is the file's token_uri; \
--api-url points at another Sheets endpoint (etl-sheets-emulator in tests). The \
spreadsheet must be shared with the service account's client_email as an editor.";

const EXAMPLES: &str = "\
Examples:
  # Publish a DuckDB table, atomically replacing the sheet
  etl-merge --db w.duckdb --table orders --key order_id --emit table < new.ndjson \\
    | etl-push-sheets --spreadsheet \"$SHEET_ID\" --sheet Orders

  # The same, with amounts and days shown in those formats (the sheet, its formats and the
  # formulas that read it are kept)
  etl-merge --db w.duckdb --table orders --key order_id --emit table < new.ndjson \\
    | etl-push-sheets --spreadsheet \"$SHEET_ID\" --sheet Orders \\
        --number-format 'amount=#,##0.00' --number-format 'day=yyyy-mm-dd'

  # Add this run's rows under the existing ones
  etl-parse day.csv | etl-push-sheets --spreadsheet \"$SHEET_URL\" --sheet Log --mode append

  # Keep a sheet in step with a full export, touching only changed cells
  etl-parse customers.xlsx | etl-push-sheets --spreadsheet \"$SHEET_ID\" --sheet Customers \\
    --mode upsert --key customer_id --delete-missing

  # What would be sent, without writing
  etl-parse report.csv | etl-push-sheets --spreadsheet \"$SHEET_ID\" --dry-run | jq -c .

Setting up a service account: in the Google Cloud console, enable the Google Sheets API, \
create a service account, add a JSON key (IAM & Admin > Service accounts > Keys), and \
share the spreadsheet with the account's client_email as an editor. Point \
GOOGLE_APPLICATION_CREDENTIALS at the key file.";

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The sheet becomes exactly the input (atomic unless --in-place).
    Replace,
    /// Rows go after the existing ones.
    Append,
    /// Update rows by --key, append new keys.
    Upsert,
}

/// `--on-new-column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnNewColumn {
    /// Add the column at the right.
    Add,
    /// Exit 65 naming the column, before writing anything.
    Fail,
    /// Leave the field out.
    Ignore,
}

/// `--value-input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueInput {
    /// Values are stored as they are (no parsing).
    Raw,
    /// Sheets parses strings like a typist (numbers, dates, formulas).
    UserEntered,
}

/// The `etl-push-sheets` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-push-sheets", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES)]
#[allow(clippy::struct_excessive_bools)] // independent switches, as on the command line
pub struct Cli {
    /// The spreadsheet: its id or its full URL (https://docs.google.com/spreadsheets/d/ID/edit).
    #[arg(long, value_name = "ID_OR_URL", env = "ETL_SPREADSHEET_ID")]
    pub spreadsheet: Option<String>,
    /// The sheet (tab) to write; created when missing [default: the first sheet].
    #[arg(long, value_name = "NAME", env = "ETL_SHEET")]
    pub sheet: Option<String>,
    /// Where the header (or the first row) goes.
    #[arg(long, value_name = "A1", default_value = "A1")]
    pub start_cell: String,
    /// How the sheet changes.
    #[arg(long, value_enum, default_value_t = Mode::Replace)]
    pub mode: Mode,
    /// replace: overwrite the sheet and clear what lies beyond the new rows (keeps the sheet id and formatting; NOT atomic).
    #[arg(long)]
    pub in_place: bool,
    /// upsert: the key column(s), comma-separated.
    #[arg(long, value_name = "COL[,COL]", value_delimiter = ',')]
    pub key: Vec<String>,
    /// upsert: delete rows whose key is absent from the input (only for a full input).
    #[arg(long)]
    pub delete_missing: bool,
    /// replace: allow an empty input to empty the sheet.
    #[arg(long)]
    pub allow_empty: bool,
    /// The columns to write, in this order (other fields are left out).
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Write no header row (append: the existing header is not checked).
    #[arg(long)]
    pub no_header: bool,
    /// A record key the header lacks [default: add in replace mode, fail otherwise].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_new_column: Option<OnNewColumn>,
    /// How Sheets takes values.
    #[arg(long, value_enum, default_value_t = ValueInput::Raw)]
    pub value_input: ValueInput,
    /// user-entered: let strings starting with = become formulas.
    #[arg(long)]
    pub allow_formulas: bool,
    /// The number format of a column's cells below the header, as a Sheets pattern (repeatable): amount=#,##0.00, day=yyyy-mm-dd, share=0.0%. Without it, formats set by hand are kept.
    #[arg(long = "number-format", value_name = "COL=PATTERN", value_parser = parse_number_format)]
    pub number_format: Vec<(String, String)>,
    /// Service-account key or authorized-user JSON.
    #[arg(long, value_name = "FILE", env = "GOOGLE_APPLICATION_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// Act as this user (service account with domain-wide delegation).
    #[arg(long, value_name = "USER", env = "ETL_SHEETS_IMPERSONATE")]
    pub impersonate: Option<String>,
    /// The Sheets API base URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://sheets.googleapis.com/",
        env = "ETL_SHEETS_API_URL"
    )]
    pub api_url: String,
    /// Write requests started in any 60 seconds (Google: 60 per user); 0 = no pacing.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 60,
        env = "ETL_SHEETS_MAX_WRITES_PER_MINUTE"
    )]
    pub max_writes_per_minute: u32,
    /// Largest payload of one request.
    #[arg(long, value_name = "SIZE", default_value = "2MB", value_parser = parse_size)]
    pub max_request_bytes: usize,
    /// Retries of one request (429, 5xx, connection errors).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        env = "ETL_SHEETS_MAX_RETRIES"
    )]
    pub max_retries: u32,
    /// Longest total backoff of one request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub max_retry_seconds: u64,
    /// First backoff delay in milliseconds (doubles per retry up to 64 s; lower it in tests).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        env = "ETL_SHEETS_RETRY_BASE_MS"
    )]
    pub retry_base_ms: u64,
    /// Timeout of one HTTP request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Print the plan (one JSON line per write request) instead of writing; the sheet is still read.
    #[arg(long)]
    pub dry_run: bool,
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// The spreadsheet id of an id or a Sheets URL.
pub fn spreadsheet_id(s: &str) -> Result<String> {
    let s = s.trim();
    let id = match s.find("/spreadsheets/d/") {
        Some(i) => s[i + "/spreadsheets/d/".len()..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or(""),
        None if s.contains("://") => "",
        None => s,
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::usage(format!(
            "--spreadsheet {s:?}: expected a spreadsheet id or a URL like https://docs.google.com/spreadsheets/d/ID/edit"
        )));
    }
    Ok(id.to_owned())
}

/// `COL=PATTERN` of `--number-format`.
fn parse_number_format(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((col, pattern)) if !col.trim().is_empty() && !pattern.is_empty() => {
            Ok((col.trim().to_owned(), pattern.to_owned()))
        }
        _ => Err(format!(
            "{s:?}: expected COL=PATTERN, a column and a Sheets number format (amount=#,##0.00)"
        )),
    }
}

/// Checks the flags that depend on each other.
fn validate(cli: &Cli) -> Result<()> {
    if cli.mode == Mode::Upsert && cli.key.is_empty() {
        return Err(Error::usage("--mode upsert needs --key COL[,COL]"));
    }
    if cli.mode != Mode::Upsert && (!cli.key.is_empty() || cli.delete_missing) {
        return Err(Error::usage(
            "--key and --delete-missing are for --mode upsert",
        ));
    }
    if cli.mode == Mode::Upsert && cli.no_header {
        return Err(Error::usage(
            "--mode upsert finds key columns by the header: --no-header is not allowed",
        ));
    }
    if cli.in_place && cli.mode != Mode::Replace {
        return Err(Error::usage("--in-place is for --mode replace"));
    }
    if cli.allow_formulas && cli.value_input != ValueInput::UserEntered {
        return Err(Error::usage(
            "--allow-formulas needs --value-input user-entered (RAW never makes formulas)",
        ));
    }
    if cli.max_request_bytes < 1024 {
        return Err(Error::usage("--max-request-bytes must be at least 1KiB"));
    }
    if !cli.columns.is_empty() {
        for k in &cli.key {
            if !cli.columns.contains(k) {
                return Err(Error::usage(format!("--key {k} is not one of --columns")));
            }
        }
    }
    Ok(())
}

/// Runs one invocation (by value: the signature etl_core::main calls).
#[allow(clippy::needless_pass_by_value)]
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    validate(&cli)?;
    let spreadsheet = cli
        .spreadsheet
        .as_deref()
        .ok_or_else(|| Error::missing_setting("--spreadsheet", "ETL_SPREADSHEET_ID"))
        .and_then(spreadsheet_id)?;
    let credentials = cli
        .credentials
        .clone()
        .ok_or_else(|| Error::missing_setting("--credentials", "GOOGLE_APPLICATION_CREDENTIALS"))?;
    let start = modes::parse_start(&cli.start_cell)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("tokio runtime: {e}")))?;
    let retry = api::RetryCfg {
        max_retries: cli.max_retries,
        max_retry_time: Duration::from_secs(cli.max_retry_seconds),
        base: Duration::from_millis(cli.retry_base_ms.max(1)),
        cap: Duration::from_secs(64),
    };
    rt.block_on(modes::push(
        &cli,
        run,
        spreadsheet,
        &credentials,
        start,
        retry,
    ))
}
