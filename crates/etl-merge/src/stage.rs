//! Streaming stdin into the staging table.
//!
//! Staging is a temporary table `_etl_stage(_etl_line, _etl_off,
//! _etl_absent, c0, c1, ...)` with one VARCHAR column per distinct input
//! key (positional names, so no user name can clash with ours). Records are
//! appended through DuckDB's Appender as Arrow batches. The exact input line
//! of every staged record is kept in an unlinked spool file (`_etl_off` is
//! its offset) so that a record rejected later, by a set-based type check,
//! goes to the rejects file exactly as it arrived. The SHA-256 of the whole
//! input is computed on the way, for replay detection.
//!
//! A record that lacks a column others have is recorded in `_etl_absent`
//! (`,3,7,`), so a merge leaves that column alone for that row instead of
//! setting it to NULL.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Appender, Connection};
use etl_core::reader::{Item, RejectInput};
use etl_core::{Error, RecordReader, Reject, Result, Run, Value};
use sha2::{Digest, Sha256};

use crate::db;
use crate::infer::Seen;

/// The staging table's name (a temporary table: connection-local, never
/// written to the database file).
pub const STAGE: &str = "_etl_stage";

/// One distinct input key.
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
}

impl StageCol {
    /// The staging column: `c{i}`.
    pub fn stage_name(i: usize) -> String {
        format!("c{i}")
    }

    /// A SQL condition over a staging row: this column was absent from the
    /// record (as opposed to present, maybe null).
    pub fn absent_sql(&self, i: usize, row: &str) -> Option<String> {
        let before =
            (self.first_line > 1).then(|| format!("{row}._etl_line < {}", self.first_line));
        let listed = self
            .sometimes_absent
            .then(|| format!("contains(coalesce({row}._etl_absent, ''), ',{i},')"));
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
    /// The exact input lines, by `_etl_off`.
    pub spool: File,
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

/// The Arrow builders of one batch.
struct Batch {
    line: Int64Builder,
    off: Int64Builder,
    absent: StringBuilder,
    cols: Vec<StringBuilder>,
    len: usize,
}

impl Batch {
    fn new(width: usize, cap: usize) -> Self {
        Self {
            line: Int64Builder::with_capacity(cap),
            off: Int64Builder::with_capacity(cap),
            absent: StringBuilder::with_capacity(cap, cap),
            cols: (0..width)
                .map(|_| StringBuilder::with_capacity(cap, cap * 8))
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
        for (i, b) in self.cols.iter_mut().enumerate() {
            fields.push(Field::new(StageCol::stage_name(i), DataType::Utf8, true));
            arrays.push(Arc::new(b.finish()));
        }
        self.len = 0;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::internal(format!("building a staging batch: {e}")))
    }
}

/// Streams `input` into the staging table. `keys` must be present and not
/// null in every record (others are rejects).
// One streaming loop whose state (builders, column map, spool offset) lives
// in locals; split up, it would only pass them all around.
#[allow(clippy::too_many_lines)]
pub fn stage(
    conn: &Connection,
    spool_dir: &std::path::Path,
    input: impl Read,
    keys: &[String],
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
    let batch_size = batch_size.max(1);
    let mut cols: Vec<StageCol> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut last_order: Vec<usize> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut batch = Batch::new(0, batch_size);
    let mut appender: Option<Appender<'_>> = None;
    let mut present: Vec<u64> = Vec::new();
    let mut rows = 0u64;
    let mut rows_in = 0u64;
    let mut absent_buf = String::new();

    while let Some(item) = reader.next_item().map_err(|e| Error::stdin(&e))? {
        let (line, rec) = match item {
            Item::Record(line, rec) => (line, rec),
            Item::Reject(r) => {
                run.reject(&r)?;
                continue;
            }
        };
        rows_in += 1;
        run.records_in += 1;
        run.progress.tick(reader.raw_line().len() + 1);
        if let Some(problem) = key_problem(&rec, keys) {
            run.reject(&Reject::record(line, problem, rec))?;
            continue;
        }
        // Resolve each key to its column, the previous record's order first.
        order.clear();
        let mut new_cols = false;
        for (j, name) in rec.keys().enumerate() {
            let idx = match last_order.get(j) {
                Some(&i) if cols[i].name == *name => i,
                _ => {
                    if let Some(&i) = by_name.get(name.as_str()) {
                        i
                    } else {
                        let i = cols.len();
                        cols.push(StageCol {
                            name: name.clone(),
                            seen: Seen::default(),
                            first_line: line,
                            sometimes_absent: false,
                        });
                        by_name.insert(name.clone(), i);
                        new_cols = true;
                        i
                    }
                }
            };
            order.push(idx);
        }
        if new_cols || appender.is_none() {
            if let Some(mut app) = appender.take() {
                append_batch(&mut app, &mut batch)?;
                app.flush().map_err(|e| db::err("staging records", &e))?;
            }
            let mut alter = String::new();
            for i in batch.cols.len()..cols.len() {
                let _ = write!(
                    alter,
                    "ALTER TABLE {STAGE} ADD COLUMN {} VARCHAR;",
                    StageCol::stage_name(i)
                );
            }
            if !alter.is_empty() {
                db::exec(conn, "widening the staging table", &alter)?;
            }
            batch = Batch::new(cols.len(), batch_size);
            appender = Some(
                conn.appender(STAGE)
                    .map_err(|e| db::err("opening the appender", &e))?,
            );
            present.resize(cols.len(), 0);
        }
        // Values, by column.
        for ((_, value), &idx) in rec.iter().zip(&order) {
            present[idx] = line;
            cols[idx].seen.add(value);
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
        let mut values: Vec<Option<&Value>> = vec![None; cols.len()];
        for ((_, value), &idx) in rec.iter().zip(&order) {
            values[idx] = Some(value);
        }
        for (b, v) in batch.cols.iter_mut().zip(&values) {
            match v {
                None | Some(Value::Null) => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(Value::Number(n)) => b.append_value(n.as_str()),
                Some(Value::Bool(true)) => b.append_value("true"),
                Some(Value::Bool(false)) => b.append_value("false"),
                Some(v @ (Value::Array(_) | Value::Object(_))) => b.append_value(v.to_json()),
            }
        }
        batch
            .line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
        batch
            .off
            .append_value(i64::try_from(spool_pos).unwrap_or(i64::MAX));
        if absent_buf.is_empty() {
            batch.absent.append_null();
        } else {
            batch.absent.append_value(&absent_buf);
        }
        batch.len += 1;
        let raw = reader.raw_line();
        spool_out
            .write_all(raw)
            .and_then(|()| spool_out.write_all(b"\n"))
            .map_err(|e| Error::output(spool_dir, &e))?;
        spool_pos += raw.len() as u64 + 1;
        rows += 1;
        std::mem::swap(&mut last_order, &mut order);
        if batch.len >= batch_size {
            if let Some(app) = appender.as_mut() {
                append_batch(app, &mut batch)?;
            }
        }
    }
    if let Some(mut app) = appender.take() {
        append_batch(&mut app, &mut batch)?;
        app.flush().map_err(|e| db::err("staging records", &e))?;
    }
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
    })
}

fn append_batch(app: &mut Appender<'_>, batch: &mut Batch) -> Result<()> {
    if batch.len == 0 {
        return Ok(());
    }
    let rb = batch.finish()?;
    app.append_record_batch(rb)
        .map_err(|e| db::err("staging records", &e))
}

/// Why a record cannot be keyed, if it cannot.
fn key_problem(rec: &etl_core::Record, keys: &[String]) -> Option<String> {
    for k in keys {
        let v = rec.get(k).or_else(|| {
            rec.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        });
        match v {
            None => return Some(format!("key column {k:?} is missing")),
            Some(Value::Null) => return Some(format!("key column {k:?} is null")),
            Some(_) => {}
        }
    }
    None
}
