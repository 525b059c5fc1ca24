//! Rows out of DuckDB as NDJSON records, keeping their types: exact
//! decimals and big integers as JSON numbers, booleans, JSON/LIST/STRUCT
//! columns as embedded JSON, dates and timestamps as ISO 8601 text.
//!
//! Every value is selected as DuckDB's own VARCHAR rendering (exact for
//! decimals, ISO for temporal types; nested types through `to_json`), and
//! the column's type decides how that text is written.

use duckdb::arrow::array::{Array, AsArray, LargeStringArray, StringArray, StringViewArray};
use duckdb::Connection;
use etl_core::record::{write_str, Number};
use etl_core::{Error, RecordWriter, Result, Run};

use crate::db;
use crate::sql::{ident, out_kind, OutKind};

/// One output column: its name in the record, the SQL that reads it, and
/// its type.
#[derive(Debug, Clone)]
pub struct OutCol {
    pub name: String,
    pub expr: String,
    pub ty: String,
}

impl OutCol {
    /// `expr` rendered as text for [`emit`].
    fn text_sql(&self) -> String {
        match out_kind(&self.ty) {
            OutKind::Json if !self.ty.trim().eq_ignore_ascii_case("JSON") => {
                format!("CAST(to_json({}) AS VARCHAR)", self.expr)
            }
            _ => format!("CAST({} AS VARCHAR)", self.expr),
        }
    }
}

/// Runs `SELECT <cols> FROM <from>` and writes each row to stdout.
pub fn emit(
    conn: &Connection,
    cols: &[OutCol],
    from: &str,
    what: &str,
    run: &mut Run,
) -> Result<()> {
    if cols.is_empty() {
        return Ok(());
    }
    let select: Vec<String> = cols.iter().map(OutCol::text_sql).collect();
    let sql = format!("SELECT {} FROM {from}", select.join(", "));
    let kinds: Vec<OutKind> = cols.iter().map(|c| out_kind(&c.ty)).collect();
    let keys: Vec<Vec<u8>> = cols
        .iter()
        .map(|c| {
            let mut k = Vec::new();
            write_str(&mut k, &c.name);
            k
        })
        .collect();
    // The connection runs with preserve_insertion_order off (the merge's
    // memory); left off here, DuckDB's parallel result collector may hand
    // back sorted output a row group out of place. Output is the last
    // thing a run does, so it is switched on for good.
    db::exec(
        conn,
        "keeping the output's order",
        "SET preserve_insertion_order = true",
    )?;
    // Streamed: batches are fetched as they are written, so a million-row
    // --emit table holds one batch, not the whole result, in memory.
    let mut stmt = conn.prepare(&sql).map_err(|e| db::usage_err(what, &e))?;
    let batches = stmt.stream_arrow([]).map_err(|e| db::usage_err(what, &e))?;
    let mut out = RecordWriter::stdout();
    for batch in batches {
        let batch = batch.map_err(|e| db::err(what, &e))?;
        let texts: Vec<Texts<'_>> = batch
            .columns()
            .iter()
            .map(|a| Texts::of(a.as_ref(), what))
            .collect::<Result<_>>()?;
        for r in 0..batch.num_rows() {
            out.write_with(|buf| {
                buf.push(b'{');
                for (i, ((key, kind), t)) in keys.iter().zip(&kinds).zip(&texts).enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(key);
                    buf.push(b':');
                    write_value(buf, *kind, t.get(r));
                }
                buf.push(b'}');
            })
            .map_err(|e| Error::stdout(&e))?;
            run.records_out += 1;
        }
    }
    out.flush().map_err(|e| Error::stdout(&e))
}

/// A column of VARCHAR values as DuckDB hands them to Arrow.
enum Texts<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Texts<'a> {
    fn of(a: &'a dyn Array, what: &str) -> Result<Self> {
        if let Some(s) = a.as_string_opt::<i32>() {
            Ok(Self::Utf8(s))
        } else if let Some(s) = a.as_string_opt::<i64>() {
            Ok(Self::Large(s))
        } else if let Some(s) = a.as_string_view_opt() {
            Ok(Self::View(s))
        } else {
            Err(Error::internal(format!(
                "{what}: DuckDB returned {} for a VARCHAR column",
                a.data_type()
            )))
        }
    }

    fn get(&self, r: usize) -> Option<&'a str> {
        match self {
            Self::Utf8(s) => s.is_valid(r).then(|| s.value(r)),
            Self::Large(s) => s.is_valid(r).then(|| s.value(r)),
            Self::View(s) => s.is_valid(r).then(|| s.value(r)),
        }
    }
}

fn write_value(buf: &mut Vec<u8>, kind: OutKind, v: Option<&str>) {
    let Some(text) = v else {
        buf.extend_from_slice(b"null");
        return;
    };
    match kind {
        // `inf`/`nan` are not JSON numbers: they go out as strings, not lost.
        OutKind::Number if Number::parse(text).is_some() => buf.extend_from_slice(text.as_bytes()),
        OutKind::Bool if text == "true" || text == "false" => {
            buf.extend_from_slice(text.as_bytes());
        }
        OutKind::Json if serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok() => {
            buf.extend_from_slice(text.trim().as_bytes());
        }
        _ => write_str(buf, text),
    }
}

/// The columns of a table, read by name.
pub fn table_cols(cols: &[crate::db::Column]) -> Vec<OutCol> {
    cols.iter()
        .map(|c| OutCol {
            name: c.name.clone(),
            expr: ident(&c.name),
            ty: c.ty.clone(),
        })
        .collect()
}

/// `--query SQL`: one read-only SELECT, run inside a transaction that is
/// rolled back. The query is used as a subquery, so only a single SELECT
/// (or VALUES/WITH ... SELECT) can run: DDL, DML, COPY and a second
/// statement are syntax errors there.
/// `in_tx`: already inside a transaction that will be rolled back (a dry run).
pub fn query(conn: &Connection, sql: &str, run: &mut Run, in_tx: bool) -> Result<()> {
    let q = query_text(sql)?;
    if in_tx {
        return query_in_tx(conn, q, run);
    }
    db::exec(conn, "starting the query transaction", "BEGIN TRANSACTION")?;
    let result = query_in_tx(conn, q, run);
    let rollback = db::exec(conn, "ending the query transaction", "ROLLBACK");
    result.and(rollback)
}

/// `--query`'s text without a trailing `;`; empty is a usage error.
pub(crate) fn query_text(sql: &str) -> Result<&str> {
    let q = sql.trim().trim_end_matches(';').trim();
    if q.is_empty() {
        return Err(Error::usage("--query is empty"));
    }
    Ok(q)
}

/// Checks `--query` against the merged table before COMMIT, so a bad query
/// fails the run with nothing changed.
pub fn check_query(conn: &Connection, sql: &str) -> Result<()> {
    describe(conn, query_text(sql)?).map(|_| ())
}

fn describe(conn: &Connection, q: &str) -> Result<Vec<(String, String)>> {
    let describe = format!("DESCRIBE SELECT * FROM ({q}) AS _etl_q");
    let mut stmt = conn
        .prepare(&describe)
        .map_err(|e| db::usage_err("--query", &e))?;
    let described = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(Iterator::collect::<duckdb::Result<Vec<_>>>)
        .map_err(|e| db::usage_err("--query", &e))?;
    Ok(described)
}

fn query_in_tx(conn: &Connection, q: &str, run: &mut Run) -> Result<()> {
    let described = describe(conn, q)?;
    let aliases: Vec<String> = (0..described.len()).map(|i| format!("q{i}")).collect();
    let cols: Vec<OutCol> = described
        .into_iter()
        .zip(&aliases)
        .map(|((name, ty), alias)| OutCol {
            name,
            expr: alias.clone(),
            ty,
        })
        .collect();
    let from = format!("({q}) AS _etl_q({})", aliases.join(", "));
    emit(conn, &cols, &from, "--query", run)
}
