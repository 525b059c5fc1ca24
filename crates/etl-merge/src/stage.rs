//! Streaming stdin into the staging table.
//!
//! Staging is a temporary table `_etl_stage(_etl_line, _etl_off,
//! _etl_absent, c0, c1, ...)` with one VARCHAR column per distinct input
//! key (positional names, so no user name can clash with ours). Records are
//! collected in Arrow batches, each written by one INSERT from a table
//! function that scans it (see [`crate::scan`]). The exact input line
//! of every staged record that a later, set-based type check could reject
//! is kept in an unlinked spool file (`_etl_off` is its offset, null for
//! records no check can reject), so that the reject goes to the rejects
//! file exactly as it arrived. The SHA-256 of the whole
//! input is computed on the way, for replay detection.
//!
//! A column whose type is known before staging may instead have a typed
//! column `n{i}` (see [`crate::fast`]): a value in its type's strict form
//! lands there, already converted. Its text column `c{i}` is only added
//! when a value arrives that is not in that form (`c{i}` is null for the
//! rows before it, and for converted values after it): an export whose
//! numbers are all numbers stages no column of nulls.
//!
//! A record that lacks a column others have is recorded in `_etl_absent`
//! (`,3,7,`), so a merge leaves that column alone for that row instead of
//! setting it to NULL.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::Connection;
use etl_core::reader::RejectInput;
use etl_core::record::parse_fields;
use etl_core::{Error, RecordReader, Reject, Result, Run, Value};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::fast::{Fast, Typed};
use crate::infer::Seen;
use crate::{db, scan};

/// The staging table's name (a temporary table: connection-local, never
/// written to the database file).
pub const STAGE: &str = "_etl_stage";

/// One distinct input key.
// Four independent facts about a column, each read on its own.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub struct StageCol {
    /// The key as it appeared in the input.
    pub name: String,
    /// What its values looked like.
    pub seen: Seen,
    /// The line of the first record that had it: earlier records lack it.
    pub first_line: u64,
    /// Some record after `first_line` lacked it (see `_etl_absent`).
    pub sometimes_absent: bool,
    /// Its type was known before staging: it has a typed column `n{i}`.
    pub fast: Option<Fast>,
    /// The staging table has its text column `c{i}`: always, but for a
    /// typed column all of whose values were converted.
    pub text: bool,
    /// Its type was known before staging to take any value (VARCHAR, JSON):
    /// no value of it can be a reject.
    pub takes_any: bool,
    /// Its type was known before staging (`seen` is not kept).
    pub hinted: bool,
    /// That type.
    pub hint: Option<String>,
}

impl StageCol {
    /// The staging column: `c{i}`.
    pub fn stage_name(i: usize) -> String {
        format!("c{i}")
    }

    /// The typed staging column: `n{i}`.
    pub fn typed_name(i: usize) -> String {
        format!("n{i}")
    }

    /// A SQL condition over a staging row: this column was absent from the
    /// record (as opposed to present, maybe null).
    pub fn absent_sql(&self, i: usize, row: &str) -> Option<String> {
        let before =
            (self.first_line > 1).then(|| format!("{row}._etl_line < {}", self.first_line));
        let listed = self
            .sometimes_absent
            .then(|| format!("strpos(coalesce({row}._etl_absent, ''), ',{i},') > 0"));
        match (before, listed) {
            (Some(a), Some(b)) => Some(format!("({a} OR {b})")),
            (a, b) => a.or(b),
        }
    }
}

/// What staging produced.
#[derive(Debug)]
pub struct Staged {
    pub cols: Vec<StageCol>,
    /// Records staged.
    pub rows: u64,
    /// Records read (staged or rejected), the audit's `rows_in`.
    pub rows_in: u64,
    /// SHA-256 of every input byte, hex.
    pub sha256: String,
    /// The exact input lines of records that could be rejected, by `_etl_off`.
    pub spool: File,
    /// Every staged record's key was an integer tuple greater than the one
    /// before: no key can repeat, so the duplicate-key check can be skipped.
    pub keys_increasing: bool,
    /// Every staged record's key was a tuple of plain strings (no escapes)
    /// greater, byte for byte, than the one before: no key can repeat in key
    /// columns that compare text as bytes (see `duck::build_source`).
    pub text_keys_increasing: bool,
    /// Bytes of the values staged as text (DuckDB's staging; 0 for
    /// PostgreSQL's): with `rows`, what sizes the compare (see
    /// `duck::compare_parts`).
    pub text_bytes: u64,
}

impl Staged {
    /// The input record at `off` in the spool, for a reject (it parsed once,
    /// so it is a record; the raw text only if the spool was unreadable).
    pub fn input_at(&self, off: u64) -> RejectInput {
        let line = self.line_at(off);
        match etl_core::record::parse_record(&line) {
            Ok(rec) => RejectInput::Record(rec),
            Err(_) => RejectInput::Raw(line),
        }
    }

    /// The exact input line at `off` in the spool.
    pub fn line_at(&self, off: u64) -> String {
        use std::os::unix::fs::FileExt;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        let mut pos = off;
        loop {
            let n = match self.spool.read_at(&mut buf, pos) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                out.extend_from_slice(&buf[..i]);
                break;
            }
            out.extend_from_slice(&buf[..n]);
            pos += n as u64;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The Arrow builder of one typed staging column.
enum TypedBuilder {
    I64(Int64Builder),
    I32(Int32Builder),
    Dec(Decimal128Builder, DataType),
    Bool(BooleanBuilder),
}

impl TypedBuilder {
    fn new(fast: Fast, cap: usize) -> Self {
        match fast {
            Fast::BigInt => Self::I64(Int64Builder::with_capacity(cap)),
            Fast::Integer => Self::I32(Int32Builder::with_capacity(cap)),
            Fast::Boolean => Self::Bool(BooleanBuilder::with_capacity(cap)),
            Fast::Decimal { precision, scale } => {
                let ty = DataType::Decimal128(precision, scale.cast_signed());
                Self::Dec(
                    Decimal128Builder::with_capacity(cap).with_data_type(ty.clone()),
                    ty,
                )
            }
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Self::I64(_) => DataType::Int64,
            Self::I32(_) => DataType::Int32,
            Self::Bool(_) => DataType::Boolean,
            Self::Dec(_, ty) => ty.clone(),
        }
    }

    /// Appends `v` (of this builder's type) or a null.
    fn append(&mut self, v: Option<Typed>) {
        match (self, v) {
            (Self::I64(b), Some(Typed::I64(x))) => b.append_value(x),
            (Self::I32(b), Some(Typed::I32(x))) => b.append_value(x),
            (Self::Dec(b, _), Some(Typed::Dec(x))) => b.append_value(x),
            (Self::Bool(b), Some(Typed::Bool(x))) => b.append_value(x),
            (Self::I64(b), _) => b.append_null(),
            (Self::I32(b), _) => b.append_null(),
            (Self::Dec(b, _), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::I64(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::Dec(b, _) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The Arrow builders of one batch.
struct Batch {
    line: Int64Builder,
    off: Int64Builder,
    absent: StringBuilder,
    /// The text columns the staging table has (`StageCol::text`).
    cols: Vec<Option<StringBuilder>>,
    typed: Vec<Option<TypedBuilder>>,
    len: usize,
}

impl Batch {
    fn new(cols: &[StageCol], cap: usize) -> Self {
        Self {
            line: Int64Builder::with_capacity(cap),
            off: Int64Builder::with_capacity(cap),
            absent: StringBuilder::with_capacity(cap, cap),
            cols: cols
                .iter()
                .map(|c| {
                    // A typed column's text is rare: no room reserved.
                    let bytes = if c.fast.is_some() { 0 } else { cap * 8 };
                    c.text.then(|| StringBuilder::with_capacity(cap, bytes))
                })
                .collect(),
            typed: cols
                .iter()
                .map(|c| c.fast.map(|f| TypedBuilder::new(f, cap)))
                .collect(),
            len: 0,
        }
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let mut fields = vec![
            Field::new("_etl_line", DataType::Int64, true),
            Field::new("_etl_off", DataType::Int64, true),
            Field::new("_etl_absent", DataType::Utf8, true),
        ];
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.line.finish()),
            Arc::new(self.off.finish()),
            Arc::new(self.absent.finish()),
        ];
        // Written by name: the staging table's order is the order columns
        // were added in.
        for (i, (b, t)) in self.cols.iter_mut().zip(&mut self.typed).enumerate() {
            if let Some(b) = b {
                fields.push(Field::new(StageCol::stage_name(i), DataType::Utf8, true));
                arrays.push(Arc::new(b.finish()));
            }
            if let Some(t) = t {
                fields.push(Field::new(StageCol::typed_name(i), t.data_type(), true));
                arrays.push(t.finish());
            }
        }
        self.len = 0;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::internal(format!("building a staging batch: {e}")))
    }
}

/// Where staged records go: a backend's staging table (DuckDB's batches,
/// PostgreSQL's binary COPY). The record loop ([`read_input`]) is written
/// once: parsing, key checks, column discovery, absent columns, type
/// inference, the spool and the input's SHA-256.
pub trait Sink {
    /// New columns appeared (all of them the first time): `cols[first_new..]`
    /// are new. The sink sets their backend fields (`fast`, `takes_any`) and
    /// widens its staging table.
    fn columns(&mut self, cols: &mut [StageCol], first_new: usize) -> Result<()>;
    /// One record: its values by column (`None`: absent), `absent` the
    /// `_etl_absent` text. When a later type check could reject the record,
    /// the sink calls `spool`, which writes the line to the spool and
    /// returns its offset.
    fn row(
        &mut self,
        line: u64,
        absent: Option<&str>,
        values: &[Option<Cell<'_>>],
        cols: &mut [StageCol],
        spool: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<()>;
    /// The input ended: everything staged is flushed.
    fn finish(&mut self) -> Result<()>;
}

/// Streams `input` into the DuckDB staging table. `keys` must be present and not
/// null in every record (others are rejects). `hints` are the column types
/// known before staging (by name, case-insensitively): those with a fast
/// form get a typed column.
pub fn stage(
    conn: &Connection,
    spool_dir: &std::path::Path,
    input: impl Read,
    keys: &[String],
    hints: &[(String, String)],
    batch_size: usize,
    run: &mut Run,
) -> Result<Staged> {
    db::exec(
        conn,
        "creating the staging table",
        &format!(
            "CREATE OR REPLACE TEMP TABLE {STAGE} \
             (_etl_line BIGINT, _etl_off BIGINT, _etl_absent VARCHAR)"
        ),
    )?;
    scan::register(conn).map_err(|e| db::err("registering the staging scan", &e))?;
    let batch_size = batch_size.max(1);
    let mut sink = DuckSink {
        conn,
        batch: Batch::new(&[], batch_size),
        batch_size,
        bytes: 0,
        text_bytes: 0,
        converted: Vec::new(),
    };
    let mut staged = read_input(&mut sink, spool_dir, input, keys, hints, run)?;
    staged.text_bytes = sink.text_bytes;
    Ok(staged)
}

/// The most value bytes one staging batch holds before it is written,
/// whatever `--batch-size` says: 65,536 records of a 300-column export would
/// otherwise hold gigabytes.
pub const BATCH_BYTES: usize = 16 << 20;

/// DuckDB's staging: Arrow batches, each written by one INSERT.
struct DuckSink<'c> {
    conn: &'c Connection,
    batch: Batch,
    batch_size: usize,
    /// Value bytes in the batch so far.
    bytes: usize,
    /// Value bytes in all batches written.
    text_bytes: u64,
    /// The record's typed values, by column (reused).
    converted: Vec<Option<Typed>>,
}

impl DuckSink<'_> {
    /// Writes the batch's rows to the staging table.
    fn flush(&mut self) -> Result<()> {
        if self.batch.len == 0 {
            return Ok(());
        }
        tracing::debug!(
            records = self.batch.len,
            bytes = self.bytes,
            "staging a batch of {} records ({} bytes of values)",
            self.batch.len,
            self.bytes
        );
        self.text_bytes += self.bytes as u64;
        self.bytes = 0;
        let batch = scan::Registered::new(self.batch.finish()?);
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {STAGE} BY NAME SELECT * FROM {}(?)",
                scan::FUNCTION
            ))
            .and_then(|mut stmt| stmt.execute([batch.token()]))
            .map(|_| ())
            .map_err(|e| db::err("staging records", &e))
    }

    /// Adds the text columns `cols` now want (`StageCol::text`) that the
    /// batch lacks: the batch so far is written first.
    fn text_columns(&mut self, cols: &[StageCol]) -> Result<()> {
        self.flush()?;
        let mut alter = String::new();
        for (i, (col, b)) in cols.iter().zip(&self.batch.cols).enumerate() {
            if col.text && b.is_none() {
                let _ = write!(
                    alter,
                    "ALTER TABLE {STAGE} ADD COLUMN {} VARCHAR;",
                    StageCol::stage_name(i)
                );
            }
        }
        db::exec(self.conn, "widening the staging table", &alter)?;
        self.batch = Batch::new(cols, self.batch_size);
        Ok(())
    }
}

impl Sink for DuckSink<'_> {
    fn columns(&mut self, cols: &mut [StageCol], first_new: usize) -> Result<()> {
        // The batch's columns are about to change.
        self.flush()?;
        let mut alter = String::new();
        for (i, col) in cols.iter_mut().enumerate().skip(first_new) {
            col.fast = col.hint.as_deref().and_then(Fast::staging);
            col.takes_any = col.hint.as_deref().is_some_and(crate::sql::takes_any);
            // A typed column's text column waits for a value that needs it.
            col.text = col.fast.is_none();
            if col.text {
                let _ = write!(
                    alter,
                    "ALTER TABLE {STAGE} ADD COLUMN {} VARCHAR;",
                    StageCol::stage_name(i)
                );
            }
            if let Some(f) = col.fast {
                let _ = write!(
                    alter,
                    "ALTER TABLE {STAGE} ADD COLUMN {} {};",
                    StageCol::typed_name(i),
                    f.sql_type()
                );
            }
        }
        if !alter.is_empty() {
            db::exec(self.conn, "widening the staging table", &alter)?;
        }
        self.batch = Batch::new(cols, self.batch_size);
        Ok(())
    }

    fn row(
        &mut self,
        line: u64,
        absent: Option<&str>,
        values: &[Option<Cell<'_>>],
        cols: &mut [StageCol],
        spool: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<()> {
        // The typed values first: one that does not convert, in a column
        // without its text column yet, adds that column.
        self.converted.clear();
        let mut new_text = false;
        for (col, v) in cols.iter_mut().zip(values) {
            let typed = col.fast.and_then(|f| v.as_ref().and_then(|c| f.convert(c)));
            if !col.text && typed.is_none() && !matches!(v, None | Some(Cell::Null)) {
                col.text = true;
                new_text = true;
            }
            self.converted.push(typed);
        }
        if new_text {
            self.text_columns(cols)?;
        }
        let batch = &mut self.batch;
        // Whether a later type check could reject this record: then its
        // line is spooled, to be rejected exactly as it arrived.
        let mut at_risk = false;
        for (i, (b, v)) in batch.cols.iter_mut().zip(values).enumerate() {
            if let Some(t) = batch.typed[i].as_mut() {
                let typed = self.converted[i];
                t.append(typed);
                if typed.is_some() {
                    if let Some(b) = b {
                        b.append_null();
                    }
                    continue;
                }
            }
            let Some(b) = b else {
                // A typed column without text: the value was absent or null.
                continue;
            };
            at_risk |= !cols[i].takes_any && !matches!(v, None | Some(Cell::Null));
            let text: Option<&str> = match v {
                None | Some(Cell::Null) => None,
                Some(Cell::Str(t)) => Some(t),
                Some(Cell::Num(t)) => Some(t),
                Some(Cell::Json(t)) => Some(t),
                Some(Cell::Bool(true)) => Some("true"),
                Some(Cell::Bool(false)) => Some("false"),
            };
            self.bytes += text.map_or(0, str::len);
            b.append_option(text);
        }
        batch
            .line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
        batch.absent.append_option(absent);
        batch.len += 1;
        if at_risk {
            let off = spool()?;
            batch
                .off
                .append_value(i64::try_from(off).unwrap_or(i64::MAX));
        } else {
            batch.off.append_null();
        }
        if batch.len >= self.batch_size || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

/// The record loop every backend shares: reads `input`, rejects what cannot
/// be staged, hands each record to `sink`, and spools the lines the sink
/// asks for.
// One streaming loop whose state (column map, spool offset, key order)
// lives in locals; split up, it would only pass them all around.
#[allow(clippy::too_many_lines)]
pub fn read_input(
    sink: &mut dyn Sink,
    spool_dir: &std::path::Path,
    input: impl Read,
    keys: &[String],
    hints: &[(String, String)],
    run: &mut Run,
) -> Result<Staged> {
    let spool = tempfile::tempfile_in(spool_dir).map_err(|e| Error::output(spool_dir, &e))?;
    let mut spool_out = BufWriter::with_capacity(256 * 1024, spool);
    let mut spool_pos: u64 = 0;

    let hashing = Hashing {
        inner: input,
        hasher: Sha256::new(),
    };
    let mut reader = RecordReader::new(
        BufReader::with_capacity(256 * 1024, hashing),
        run.max_line_bytes,
        None,
    );
    let mut cols: Vec<StageCol> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut last_order: Vec<usize> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut started = false;
    let mut present: Vec<u64> = Vec::new();
    let mut rows = 0u64;
    let mut rows_in = 0u64;
    let mut absent_buf = String::new();
    let mut keys_increasing = true;
    let mut cur_key: Vec<Option<i128>> = Vec::new();
    let mut last_key: Vec<Option<i128>> = Vec::new();
    let mut text_keys = TextKeys::default();

    while let Some(next) = reader.next_raw().map_err(|e| Error::stdin(&e))? {
        let line = match next {
            Ok(line) => line,
            Err(r) => {
                run.reject(&r)?;
                continue;
            }
        };
        let text = reader.raw_text();
        let fields = match parse_fields(text) {
            Ok(f) => f,
            Err(e) => {
                let r = reader.reject_raw(e);
                run.reject(&r)?;
                continue;
            }
        };
        rows_in += 1;
        run.records_in += 1;
        run.progress.tick(text.len() + 1);
        if let Some(problem) = key_problem(&fields, keys) {
            let rec = etl_core::record::parse_record(text).unwrap_or_default();
            run.reject(&Reject::record(line, problem, rec))?;
            continue;
        }
        if keys_increasing && !keys.is_empty() {
            cur_key.clear();
            for k in keys {
                cur_key.push(key_value(&fields, k).and_then(integer_key));
            }
            keys_increasing =
                cur_key.iter().all(Option::is_some) && (rows == 0 || cur_key > last_key);
            std::mem::swap(&mut cur_key, &mut last_key);
        }
        if text_keys.increasing && !keys.is_empty() {
            text_keys.next(keys.iter().map(|k| key_value(&fields, k)));
        }
        // Resolve each key to its column, the previous record's order first.
        order.clear();
        let first_new = cols.len();
        for (j, (name, _)) in fields.iter().enumerate() {
            let idx = match last_order.get(j) {
                Some(&i) if cols[i].name == *name => i,
                _ => {
                    if let Some(&i) = by_name.get(name.as_ref()) {
                        i
                    } else {
                        let i = cols.len();
                        let hint = hints
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(name))
                            .map(|(_, ty)| ty.clone());
                        cols.push(StageCol {
                            name: name.to_string(),
                            seen: Seen::default(),
                            first_line: line,
                            sometimes_absent: false,
                            fast: None,
                            text: true,
                            takes_any: false,
                            hinted: hint.is_some(),
                            hint,
                        });
                        by_name.insert(name.to_string(), i);
                        i
                    }
                }
            };
            order.push(idx);
        }
        if cols.len() > first_new || !started {
            sink.columns(&mut cols, first_new)?;
            started = true;
            present.resize(cols.len(), 0);
        }
        // Values, by column (a key repeated in one record: the last wins).
        let mut values: Vec<Option<Cell<'_>>> = Vec::with_capacity(cols.len());
        values.resize_with(cols.len(), || None);
        let mut bad = None;
        for ((_, raw), &idx) in fields.iter().zip(&order) {
            match Cell::of(raw) {
                Ok(cell) => {
                    // What the values look like matters only for a column
                    // whose type is not known yet.
                    if !cols[idx].hinted {
                        cols[idx].seen.add_cell(&cell);
                    }
                    values[idx] = Some(cell);
                }
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = bad {
            // The whole record is the reject (a value nested too deep).
            let r = reader.reject_raw(format!("invalid JSON: {e}"));
            run.reject(&r)?;
            continue;
        }
        for &idx in &order {
            present[idx] = line;
        }
        absent_buf.clear();
        for (i, col) in cols.iter_mut().enumerate() {
            if present[i] != line && col.first_line < line {
                col.sometimes_absent = true;
                if absent_buf.is_empty() {
                    absent_buf.push(',');
                }
                let _ = write!(absent_buf, "{i},");
            }
        }
        let mut spool = || -> Result<u64> {
            let off = spool_pos;
            let raw = text.as_bytes();
            spool_out
                .write_all(raw)
                .and_then(|()| spool_out.write_all(b"\n"))
                .map_err(|e| Error::output(spool_dir, &e))?;
            spool_pos += raw.len() as u64 + 1;
            Ok(off)
        };
        let absent = (!absent_buf.is_empty()).then_some(absent_buf.as_str());
        sink.row(line, absent, &values, &mut cols, &mut spool)?;
        rows += 1;
        std::mem::swap(&mut last_order, &mut order);
    }
    sink.finish()?;
    let spool = spool_out
        .into_inner()
        .map_err(|e| Error::output(spool_dir, e.error()))?;
    let digest = reader.into_inner().into_inner().hasher.finalize();
    let mut sha256 = String::with_capacity(64);
    for b in digest {
        let _ = write!(sha256, "{b:02x}");
    }
    Ok(Staged {
        cols,
        rows,
        rows_in,
        sha256,
        spool,
        keys_increasing,
        text_keys_increasing: text_keys.increasing && !keys.is_empty(),
        text_bytes: 0,
    })
}

/// Whether the records' keys are plain strings in strictly increasing byte
/// order (tuples compared element by element), the order exports usually
/// come in. A string with an escape ends it: `"\u0041"` is `"A"`, which
/// its bytes would not say.
#[derive(Debug)]
struct TextKeys {
    increasing: bool,
    /// The last record's key (empty before the first: any key follows it).
    last: Vec<String>,
}

impl Default for TextKeys {
    fn default() -> Self {
        TextKeys {
            increasing: true,
            last: Vec::new(),
        }
    }
}

impl TextKeys {
    fn next<'a>(&mut self, key: impl Iterator<Item = Option<&'a RawValue>>) {
        // The tuple's order is decided by its first differing element; a
        // tuple equal to the last one is a duplicate.
        let mut order = std::cmp::Ordering::Equal;
        for (i, raw) in key.enumerate() {
            let Some(s) = raw.and_then(plain_string) else {
                self.increasing = false;
                return;
            };
            if order == std::cmp::Ordering::Equal {
                order = self.last.get(i).map_or(std::cmp::Ordering::Greater, |l| {
                    s.as_bytes().cmp(l.as_bytes())
                });
            }
            if let Some(l) = self.last.get_mut(i) {
                l.clear();
                l.push_str(s);
            } else {
                self.last.push(s.to_owned());
            }
        }
        if order != std::cmp::Ordering::Greater {
            self.increasing = false;
        }
    }
}

/// A JSON string's text when it has no escape (its bytes are its value).
fn plain_string(raw: &RawValue) -> Option<&str> {
    let t = raw.get();
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// The raw value of key column `k` (the last occurrence; exact name first).
fn key_value<'a>(fields: &[(Cow<'_, str>, &'a RawValue)], k: &str) -> Option<&'a RawValue> {
    fields
        .iter()
        .rev()
        .find(|(name, _)| name == k)
        .or_else(|| {
            fields
                .iter()
                .rev()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
        })
        .map(|(_, v)| *v)
}

/// A key value as an integer, when it is one (a JSON integer, or a string
/// of an optional `-` and digits): the only keys whose order proves
/// uniqueness whatever type the key column has ("007" and 7 are equal as
/// BIGINT, so both are 7 here).
fn integer_key(raw: &RawValue) -> Option<i128> {
    let t = raw.get();
    let t = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t);
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Why a record cannot be keyed, if it cannot.
fn key_problem(fields: &[(Cow<'_, str>, &RawValue)], keys: &[String]) -> Option<String> {
    for k in keys {
        match key_value(fields, k) {
            None => return Some(format!("key column {k:?} is missing")),
            Some(raw) if raw.get() == "null" => {
                return Some(format!("key column {k:?} is null"));
            }
            Some(_) => {}
        }
    }
    None
}

/// One value as staged, borrowed from the input line where it can be.
#[derive(Debug)]
pub enum Cell<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// A number, exactly as written.
    Num(&'a str),
    /// An object or array, as compact JSON.
    Json(String),
}

impl<'a> Cell<'a> {
    pub fn of(raw: &'a RawValue) -> Result<Self, String> {
        let t = raw.get();
        Ok(match t.as_bytes().first() {
            // RawValue validated the string: without a backslash its content
            // is the text between the quotes.
            Some(b'"') if !t.contains('\\') => Cell::Str(Cow::Borrowed(&t[1..t.len() - 1])),
            Some(b'"') => Cell::Str(Cow::Owned(
                serde_json::from_str::<String>(t).map_err(|e| e.to_string())?,
            )),
            // Nested values go through etl-core (depth limit, compact text).
            Some(b'{' | b'[') => {
                Cell::Json(Value::from_raw(raw).map_err(|e| e.to_string())?.to_json())
            }
            Some(b't') => Cell::Bool(true),
            Some(b'f') => Cell::Bool(false),
            Some(b'n') => Cell::Null,
            _ => Cell::Num(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn increasing(keys: &[&[&str]]) -> bool {
        let mut t = TextKeys::default();
        for k in keys {
            let raws: Vec<Box<RawValue>> = k
                .iter()
                .map(|v| RawValue::from_string((*v).to_owned()).unwrap())
                .collect();
            t.next(raws.iter().map(|r| Some(r.as_ref())));
        }
        t.increasing
    }

    #[test]
    fn text_keys_increase_only_when_no_two_can_be_equal() {
        assert!(increasing(&[&[r#""A-1""#], &[r#""A-2""#], &[r#""B""#]]));
        assert!(increasing(&[&[r#""a""#, r#""z""#], &[r#""b""#, r#""a""#]]));
        assert!(increasing(&[&[r#""a""#, r#""1""#], &[r#""a""#, r#""2""#]]));
        assert!(!increasing(&[&[r#""a""#, r#""1""#], &[r#""a""#, r#""1""#]]));
        assert!(!increasing(&[&[r#""A""#], &[r#""A""#]]), "equal");
        assert!(!increasing(&[&[r#""B""#], &[r#""A""#]]), "decreasing");
        assert!(!increasing(&[&[r#""A""#], &[r#""\u0042""#]]), "an escape");
        assert!(!increasing(&[&[r#""A""#], &["7"]]), "a number");
        assert!(!increasing(&[&[r#""A""#], &["null"]]), "null");
        // Bytes, not characters' code points in some locale: "Z" < "a" < "é".
        assert!(increasing(&[&[r#""Z""#], &[r#""a""#], &[r#""é""#]]));
    }
}
