//! etl-merge: idempotent, transactional upserts of a record stream into a
//! DuckDB table, or a PostgreSQL table (`--db postgres://...`).
//!
//! One flow for both databases (`apply`): stage the records in a temporary
//! table, check types, de-duplicate and merge with set-based SQL, write the
//! audit row to `_etl_runs`, all in one transaction; then emit. What differs
//! is behind the `apply::Backend` trait: `duck` (Arrow batches written by
//! a table function, see `scan`, and a typed column per column whose type
//! is known in advance, see `fast`) and `pg` (binary COPY with typed
//! slots, `INSERT ... ON CONFLICT`, an advisory lock per table). A failure, SIGTERM or SIGKILL at any instant before
//! COMMIT leaves the target exactly as it was.
//!
//! Only the `engine` feature (on by default) links DuckDB; without it the
//! crate is just its clap definition, for man pages.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use etl_core::CommonArgs;

pub mod sql;

#[cfg(feature = "engine")]
mod apply;
#[cfg(feature = "engine")]
mod db;
#[cfg(feature = "engine")]
mod duck;
#[cfg(feature = "engine")]
mod emit;
#[cfg(feature = "engine")]
mod events;
#[cfg(feature = "engine")]
mod fast;
#[cfg(feature = "engine")]
mod infer;
#[cfg(feature = "engine")]
mod pg;
#[cfg(feature = "engine")]
mod scan;
#[cfg(feature = "engine")]
mod stage;

#[cfg(feature = "engine")]
pub use apply::run;

const ABOUT: &str =
    "Idempotent, transactional upserts of NDJSON records into a DuckDB or PostgreSQL table";

const LONG_ABOUT: &str = "\
Upsert the records on stdin into a DuckDB table, in one transaction.

Records stream into a temporary staging table in batches of Arrow arrays, each written by \
one INSERT that reads its strings in place \
(when the column's type is already known, a value in that type's strict form, such as a JSON \
integer for BIGINT, a decimal within the scale or a JSON boolean, is staged converted; any \
other value goes through DuckDB's own cast and type check); type checks, de-duplication and the merge are set-based SQL; the target changes only at \
COMMIT. A failure, SIGTERM or SIGKILL at any instant leaves the table exactly as it was. \
Large merges spill to a temporary directory beside the database (FILE.tmp) instead of \
running out of memory (see --memory-limit): the compare of the records with the table runs \
in parts by input line when one join over them all would not fit the memory limit beside the \
staged records (the debug log says how many), and an update too large for DuckDB to hold in \
memory until COMMIT (past a quarter of the memory limit) deletes the old rows and inserts \
them again whole, which spills.

Modes:
  merge       insert new keys, update existing ones. Only the columns present in the \
input change; a column a record lacks keeps its value (an explicit null sets NULL). \
Rows whose values are all equal are left alone and counted as unchanged.
  insert-new  insert new keys; existing keys are left untouched.
  append      insert every record; no key needed.
  replace     the table's content becomes exactly the input. Empty input is refused \
(it would empty the table) unless --allow-empty.

Duplicate keys inside one input: the last record for a key wins, whole (or \
--on-duplicate-key fail exits 65 naming the key). A record whose key column is missing or \
null is a reject.

The first run creates the schema and the table. Column types come from --types, else from \
the stream: strings VARCHAR; integers BIGINT (HUGEINT when they do not fit, VARCHAR beyond \
HUGEINT, so no digit is lost); numbers with a fraction DECIMAL(38,s) with the largest scale seen; numbers \
with an exponent DOUBLE; booleans BOOLEAN; objects and arrays JSON; a column mixing \
kinds (or holding only nulls) VARCHAR. ISO dates and timestamps stay VARCHAR unless \
--types says DATE or TIMESTAMP. A value that does not fit its column's type (including \
a decimal with more fraction digits than the column's scale) is a reject naming the \
column and the value; with --max-rejects 0 (the default) one reject fails the run and \
nothing lands. Column and table names are matched case-insensitively, as DuckDB does, \
and are always quoted identifiers.

PostgreSQL: --db postgres://USER@HOST:PORT/DBNAME?sslmode=verify-full&sslrootcert=ca.pem \
(postgresql:// too) loads into a PostgreSQL server with the same modes, flags, rejects, \
audit and replay detection, in one PostgreSQL transaction. What the URL leaves out comes \
from libpq's variables: PGHOST (a directory: a Unix socket), PGPORT, PGUSER, PGDATABASE, \
PGPASSWORD, PGPASSFILE or ~/.pgpass (ignored when others can read it), PGSSLMODE, \
PGSSLROOTCERT, PGCONNECT_TIMEOUT, PGAPPNAME. sslmode: disable (only to a loopback address \
or a Unix socket), prefer (the default; TLS when offered, unencrypted only on loopback), \
require (TLS, the certificate unchecked unless sslrootcert is given), verify-ca (the chain), \
verify-full (the chain and the host name); roots are sslrootcert (a PEM file, or system), \
else ~/.postgresql/root.crt, else the system's. TLS is rustls; the password is never logged \
(the server is named user@host:port/dbname). Records stream through one binary COPY into a \
temporary table (a value of a column the table has, in its type's plain form, is sent in \
that type's binary format; any other value as text, for PostgreSQL's input function to \
decide); the merge is one INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE the row \
IS DISTINCT FROM the new values, so equal rows are not written (no dead tuples). A new table \
gets PRIMARY KEY (key); an existing table needs a primary key or unique index on the key. \
Types are PostgreSQL's (--types amount=numeric(12,2),day=date,tags=jsonb); inferred ones \
are bigint, numeric(38,s), double precision (exponents only), boolean, jsonb, text. A value \
PostgreSQL's own input function refuses is a reject naming line, column and value. The \
default schema is public, and the audit table is SCHEMA._etl_runs. Concurrent writers of one \
table are serialised by an advisory lock from the end of staging to COMMIT (creation and \
new columns included), so each key ends up once with the last committer's values; a \
serialization failure or deadlock (from other writers) is retried, then exits 75. A lost \
connection or a stopped server exits 75 with nothing committed; a server unreachable after \
retries exits 69, a refused password or an untrusted certificate 77, a database that does \
not exist 78. --memory-limit and --threads are DuckDB's and refused (64). --emit and \
--query write the same JSON as on DuckDB (timestamps as 2026-11-21 08:30:00).

Every run appends a row to main._etl_runs (run_id, table, mode, key, started_at, \
finished_at, rows_in, inserted, updated, unchanged, deleted, rejected, input_sha256, \
status) in the same transaction. An input already applied to the same table with the \
same mode and key (same SHA-256) is skipped with a log line, unless --force.";

const EXAMPLES: &str = "\
Examples:
  # Upsert orders by order_id; amounts exact, dates typed
  etl-parse orders.csv \\
    | etl-merge --db warehouse.duckdb --table orders --key order_id \\
        --types 'amount=DECIMAL(18,2),order_date=DATE'

  # Composite key, a schema, new columns added to the table
  etl-merge --db w.duckdb --schema sales --table lines --key order_id,line_no \\
      --on-new-column add < lines.ndjson

  # Publish the whole table after the merge
  etl-merge --db w.duckdb --table orders --key order_id --emit table --order-by order_date \\
    | etl-push-sheets --spreadsheet \"$SHEET_ID\" --sheet Orders --mode replace

  # What would change, without changing anything
  etl-merge --db w.duckdb --table orders --key order_id --dry-run --emit changes < new.ndjson

  # A report query after the merge
  etl-merge --db w.duckdb --table orders --key order_id \\
      --query 'SELECT customer, sum(amount) AS total FROM orders GROUP BY ALL ORDER BY 1'

  # Into PostgreSQL, TLS checked against the server's CA, the password in ~/.pgpass
  etl-parse orders.csv \\
    | etl-merge --db 'postgres://etl@db.internal:5432/warehouse?sslmode=verify-full&sslrootcert=ca.pem' \\
        --table orders --key order_id --types 'amount=numeric(12,2),order_date=date'

  # A larger-than-memory merge on a small machine
  etl-merge --db w.duckdb --table events --key id --memory-limit 256MB --threads 1 < big.ndjson

Testing hook:
  ETL_MERGE_PAUSE_AT=staged|merged|committed  stops the run at that point (after staging;
  after the merge, before COMMIT; after COMMIT), logs \"paused at POINT\" and waits to be
  killed: crash tests kill it there by pid instead of racing a timer. Any other value is a
  usage error (64). Never set it in production.";

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Insert new keys, update existing ones (input columns only).
    Merge,
    /// Insert new keys; existing keys are left untouched.
    InsertNew,
    /// Insert every record; no key needed.
    Append,
    /// The table's content becomes exactly the input.
    Replace,
}

impl Mode {
    /// The name used on the command line and in `_etl_runs`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Merge => "merge",
            Mode::InsertNew => "insert-new",
            Mode::Append => "append",
            Mode::Replace => "replace",
        }
    }
}

/// `--on-new-column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnNewColumn {
    /// Exit 65 listing the columns the table lacks.
    Fail,
    /// `ALTER TABLE ... ADD COLUMN` with the column's type.
    Add,
    /// Drop those columns from the input (logged).
    Ignore,
}

/// `--on-duplicate-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnDuplicateKey {
    /// The last record for a key wins, whole.
    Last,
    /// Exit 65 naming the first duplicated key.
    Fail,
}

/// `--emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// Print nothing.
    None,
    /// The inserted and updated rows, with `_op` (insert|update).
    Changes,
    /// The whole table after the merge, ordered by --order-by or the key.
    Table,
}

/// The `etl-merge` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-merge", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES)]
#[allow(clippy::struct_excessive_bools)] // independent on/off flags, as clap defines them
pub struct Cli {
    /// The DuckDB database file (created if missing), or a PostgreSQL server as
    /// postgres://USER@HOST:PORT/DBNAME?sslmode=verify-full (libpq's PG* variables fill the rest).
    #[arg(long, value_name = "FILE|URL", env = "ETL_DB")]
    pub db: Option<PathBuf>,
    /// The target table.
    #[arg(long, value_name = "NAME")]
    pub table: String,
    /// The table's schema, created if missing (default: main on DuckDB, public on PostgreSQL).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// The key column(s): what makes a record the same row. Required except with --mode append.
    #[arg(long, value_name = "COL[,COL...]", value_delimiter = ',')]
    pub key: Vec<String>,
    /// How records land in the table.
    #[arg(long, value_enum, default_value = "merge")]
    pub mode: Mode,
    /// Column types, e.g. amount=DECIMAL(18,2),qty=INTEGER (commas inside parentheses belong to the type; repeatable).
    #[arg(long, value_name = "COL=TYPE,...")]
    pub types: Vec<String>,
    /// What to do with input columns the table lacks.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_new_column: OnNewColumn,
    /// What to do when one input holds the same key twice.
    #[arg(long, value_enum, default_value = "last")]
    pub on_duplicate_key: OnDuplicateKey,
    /// What to print on stdout after the merge.
    #[arg(long, value_enum, default_value = "none")]
    pub emit: Emit,
    /// The order of --emit table (default: the key).
    #[arg(long, value_name = "COL[,COL...]", value_delimiter = ',')]
    pub order_by: Vec<String>,
    /// Print the rows of one read-only SELECT run after the merge (instead of --emit).
    #[arg(long, value_name = "SQL", conflicts_with = "emit")]
    pub query: Option<String>,
    /// DuckDB's memory limit (default 256MB, not DuckDB's 80% of RAM, so a merge on a small
    /// VPS stays bounded; e.g. 2GiB for large merges on a large machine); the compare with the
    /// table runs in parts sized to it, and beyond it work spills to FILE.tmp.
    #[arg(long, value_name = "SIZE", env = "ETL_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,
    /// DuckDB's worker threads (default: one per core).
    #[arg(long, value_name = "N", env = "ETL_THREADS")]
    pub threads: Option<u32>,
    /// Do everything in a transaction that is rolled back; report what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply an input even if the same input was already applied (replay detection off).
    #[arg(long)]
    pub force: bool,
    /// With --mode replace, let an empty input empty the table.
    #[arg(long)]
    pub allow_empty: bool,
    /// Records per staging batch (DuckDB: one INSERT each; a batch is also
    /// written once its values reach 16 MiB).
    #[arg(long, value_name = "N", default_value_t = 65536, hide = true)]
    pub batch_size: usize,
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);
