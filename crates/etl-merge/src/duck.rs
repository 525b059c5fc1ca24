//! The DuckDB backend: the run in one DuckDB transaction.
//!
//! Records stream in Arrow batches (see [`crate::scan`]) into a
//! temporary staging table whose columns are text, plus a typed column for
//! each column whose type is known in advance (see [`crate::fast`]); type
//! checks, de-duplication and the merge are set-based SQL over it, and the
//! audit row lands in `main._etl_runs` in the same transaction. What every
//! backend shares (the flow, column resolution, emit) is in
//! [`crate::apply`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use duckdb::{params, Connection};
use etl_core::{Error, Reject, Result, Run};

use crate::apply::{resolve_columns, Audit, Backend, Counts, Ddl, Target};
use crate::db::{self, Column, Settings, Table};
use crate::emit::{self, OutCol};
use crate::fast::Fast;
use crate::sql::{self, ident, literal};
use crate::stage::{self, StageCol, Staged, STAGE};
use crate::{Cli, Mode, OnDuplicateKey};

const RUNS_DDL: &str = "CREATE TABLE IF NOT EXISTS main._etl_runs (\
    run_id VARCHAR, \"table\" VARCHAR, mode VARCHAR, \"key\" VARCHAR, \
    started_at TIMESTAMP, finished_at TIMESTAMP, rows_in BIGINT, inserted BIGINT, \
    updated BIGINT, unchanged BIGINT, deleted BIGINT, rejected BIGINT, \
    input_sha256 VARCHAR, status VARCHAR)";

/// A DuckDB file, open.
pub(crate) struct Duck {
    conn: Connection,
    /// Where DuckDB spills and the staging spool lives (`FILE.tmp`).
    tmp: PathBuf,
}

impl Duck {
    /// Opens (or creates) the database file with the run's memory limit and
    /// threads.
    pub(crate) fn open(cli: &Cli, db_path: &Path) -> Result<Self> {
        let conn = db::open(
            db_path,
            &Settings {
                memory_limit: cli.memory_limit.as_deref(),
                threads: cli.threads,
            },
        )?;
        let tmp = db::temp_dir(db_path);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::output(&tmp, &e))?;
        Ok(Self { conn, tmp })
    }
}

impl Backend for Duck {
    fn default_schema(&self) -> &'static str {
        "main"
    }

    fn begin(&mut self, table: &Table) -> Result<Option<Vec<Column>>> {
        db::exec(&self.conn, "starting the transaction", "BEGIN TRANSACTION")?;
        table.columns(&self.conn)
    }

    fn stage(
        &mut self,
        cli: &Cli,
        hints: &[(String, String)],
        _existing: &[Column],
        run: &mut Run,
    ) -> Result<Staged> {
        stage::stage(
            &self.conn,
            &self.tmp,
            std::io::stdin().lock(),
            &cli.key,
            hints,
            cli.batch_size,
            run,
        )
    }

    fn claim(&mut self, table: &mut Table) -> Result<Option<Vec<Column>>> {
        db::exec(&self.conn, "creating _etl_runs", RUNS_DDL)?;
        table.columns(&self.conn)
    }

    fn previous_apply(
        &mut self,
        table: &Table,
        mode: Mode,
        key: &str,
        sha: &str,
    ) -> Result<Option<(String, String)>> {
        previous_apply(&self.conn, table, mode, key, sha)
    }

    fn audit(&mut self, row: &Audit<'_>, alone: bool) -> Result<()> {
        if alone {
            // Autocommit: the row is its own transaction.
            db::exec(&self.conn, "creating _etl_runs", RUNS_DDL)?;
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "INSERT INTO main._etl_runs VALUES (?, ?, ?, ?, make_timestamp(?), make_timestamp(?), \
                 ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    row.run_id,
                    row.table.display(),
                    row.mode,
                    row.key,
                    row.started,
                    row.finished,
                    n(row.rows_in),
                    n(row.counts.inserted),
                    n(row.counts.updated),
                    n(row.counts.unchanged),
                    n(row.counts.deleted),
                    n(row.rejected),
                    row.sha256,
                    row.status
                ],
            )
            .map(|_| ())
            .map_err(|e| db::err("writing _etl_runs", &e))
    }

    fn count(&mut self, sql: &str) -> Result<u64> {
        db::count(&self.conn, sql)
    }

    fn exec(&mut self, what: &str, sql: &str) -> Result<()> {
        db::exec(&self.conn, what, sql)
    }

    fn merge(
        &mut self,
        cli: &Cli,
        table: &Table,
        types: &[(String, String)],
        staged: &Staged,
        existing: Option<Vec<Column>>,
        run: &mut Run,
    ) -> Result<(Counts, Vec<Target>)> {
        let conn = &self.conn;
        let targets = resolve_columns(
            &mut DuckDdl(conn),
            cli,
            table,
            types,
            &staged.cols,
            existing,
        )?;
        check_types(conn, &targets, staged, run)?;
        let src = build_source(conn, cli, &targets, staged)?;
        let counts = apply_mode(conn, cli, table, &targets, staged, &src)?;
        Ok((counts, targets))
    }

    fn check_query(&mut self, q: &str) -> Result<()> {
        emit::check_query(&self.conn, q)
    }

    fn columns(&mut self, table: &Table) -> Result<Option<(Table, Vec<Column>)>> {
        Ok(table.columns(&self.conn)?.map(|c| (table.clone(), c)))
    }

    fn emit(&mut self, cols: &[OutCol], from: &str, what: &str, run: &mut Run) -> Result<()> {
        emit::emit(&self.conn, cols, from, what, run)
    }

    fn query(&mut self, q: &str, run: &mut Run, in_tx: bool) -> Result<()> {
        emit::query(&self.conn, q, run, in_tx)
    }
}

/// The run of an earlier, successful apply of the same input.
fn previous_apply(
    conn: &Connection,
    table: &Table,
    mode: Mode,
    key: &str,
    sha: &str,
) -> Result<Option<(String, String)>> {
    let mut stmt = conn
        .prepare(
            "SELECT run_id, CAST(finished_at AS VARCHAR) FROM main._etl_runs \
             WHERE \"table\" = ? AND mode = ? AND \"key\" = ? AND input_sha256 = ? \
               AND status = 'ok' ORDER BY finished_at DESC LIMIT 1",
        )
        .map_err(|e| db::err("reading _etl_runs", &e))?;
    let mut rows = stmt
        .query(params![table.display(), mode.name(), key, sha])
        .map_err(|e| db::err("reading _etl_runs", &e))?;
    match rows.next().map_err(|e| db::err("reading _etl_runs", &e))? {
        Some(r) => Ok(Some((
            r.get(0).map_err(|e| db::err("reading _etl_runs", &e))?,
            r.get(1).map_err(|e| db::err("reading _etl_runs", &e))?,
        ))),
        None => Ok(None),
    }
}

/// DuckDB's DDL.
struct DuckDdl<'c>(&'c Connection);

impl Ddl for DuckDdl<'_> {
    fn create_table(&mut self, table: &Table, defs: &[String], _keys: &[&str]) -> Result<()> {
        db::exec(
            self.0,
            "creating the schema",
            &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&table.schema)),
        )?;
        self.0
            .execute_batch(&format!(
                "CREATE TABLE {} ({})",
                table.sql(),
                defs.join(", ")
            ))
            .map_err(|e| db::usage_err(&format!("creating {}", table.display()), &e))
    }

    fn add_column(&mut self, table: &Table, name: &str, ty: &str) -> Result<()> {
        self.0
            .execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {ty}",
                table.sql(),
                ident(name)
            ))
            .map_err(|e| db::usage_err(&format!("adding column {name:?}"), &e))
    }

    fn inferred(&self, seen: &crate::infer::Seen) -> String {
        seen.duckdb_type()
    }
}

/// The staging text of target `t`'s values (see [`crate::fast`]): `c{i}`,
/// or, if its typed column turned out to have another type than the
/// target (a safety net: both come from the same type names), the typed
/// values as text too. `None`: every value was staged typed, in the
/// target's type (no text column, nothing to check).
fn text_sql(t: &Target, staged: &Staged) -> Option<String> {
    let col = &staged.cols[t.idx];
    let c = col.text.then(|| StageCol::stage_name(t.idx));
    match col.fast {
        Some(f) if Fast::staging(&t.ty) != Some(f) => {
            let typed = format!("CAST({} AS VARCHAR)", StageCol::typed_name(t.idx));
            Some(c.map_or_else(|| typed.clone(), |c| format!("coalesce({c}, {typed})")))
        }
        _ => c,
    }
}

/// The SQL of target `t`'s values in its type: the typed staging column
/// where the value was staged typed, else the text converted.
fn value_sql(t: &Target, staged: &Staged) -> String {
    let converted = text_sql(t, staged).map(|text| convert_sql(t, &text));
    match staged.cols[t.idx].fast {
        // A DECIMAL wider than 18 digits staged narrower: DuckDB widens it
        // where it meets the column (compare, insert, update).
        Some(f) if Fast::staging(&t.ty) == Some(f) => {
            let typed = StageCol::typed_name(t.idx);
            converted.map_or(typed.clone(), |c| format!("coalesce({typed}, {c})"))
        }
        // Never None: a column without text is typed.
        _ => converted.unwrap_or_else(|| "NULL".into()),
    }
}

/// The SQL that turns a staging text value into the column's type.
fn convert_sql(t: &Target, v: &str) -> String {
    let ty = t.ty.trim();
    if ty.eq_ignore_ascii_case("VARCHAR") {
        v.to_owned()
    } else if ty.eq_ignore_ascii_case("JSON") {
        format!(
            "CASE WHEN json_valid({v}) THEN CAST({v} AS JSON) ELSE CAST(to_json({v}) AS JSON) END"
        )
    } else {
        format!("CAST({v} AS {ty})")
    }
}

/// Values that do not fit their column become rejects (set-based: one
/// Values that do not fit their column become rejects, and leave the
/// staging table. One scan finds every bad row (the first bad column of a
/// row names it); rows are reported in input order.
fn check_types(
    conn: &Connection,
    targets: &[Target],
    staged: &Staged,
    run: &mut Run,
) -> Result<()> {
    // (target, its bad-value condition, its text)
    let mut conds: Vec<(&Target, String, String)> = Vec::new();
    for t in targets {
        let ty = t.ty.trim();
        if sql::takes_any(ty) {
            continue;
        }
        let Some(v) = text_sql(t, staged) else {
            continue;
        };
        let mut bad = format!("TRY_CAST({v} AS {ty}) IS NULL");
        if let Some(scale) = sql::decimal_scale(ty) {
            // DuckDB rounds 1.005 into DECIMAL(18,2); losing a digit is a reject.
            let _ = write!(
                bad,
                " OR regexp_matches({v}, {})",
                literal(&format!("^[^eE]*\\.[0-9]{{{scale}}}[0-9]*[1-9]"))
            );
        }
        conds.push((t, format!("({v} IS NOT NULL AND ({bad}))"), v));
    }
    if conds.is_empty() {
        return Ok(());
    }
    let mut which = String::from("CASE");
    let mut value = String::from("CASE");
    for (i, (_, c, text)) in conds.iter().enumerate() {
        let _ = write!(which, " WHEN {c} THEN {i}");
        let _ = write!(value, " WHEN {c} THEN {text}");
    }
    which.push_str(" END");
    value.push_str(" END");
    let any: Vec<&str> = conds.iter().map(|(_, c, _)| c.as_str()).collect();
    let any = any.join(" OR ");
    let sql = format!(
        "SELECT _etl_line, _etl_off, {which}, {value} FROM {STAGE} WHERE {any} ORDER BY _etl_line"
    );
    let bad_rows: Vec<(i64, Option<i64>, i64, String)> = {
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| db::usage_err("checking column types", &e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(|e| db::err("checking types", &e))?
    };
    if bad_rows.is_empty() {
        return Ok(());
    }
    for (line, off, col, value) in &bad_rows {
        let t = conds[usize::try_from(*col).unwrap_or(0)].0;
        let input_name = &staged.cols[t.idx].name;
        run.reject(&Reject {
            line: u64::try_from(*line).unwrap_or(0),
            error: format!(
                "column {input_name:?}: {value:?} is not a valid {}",
                t.ty.trim()
            ),
            input: match off {
                Some(off) => staged.input_at(u64::try_from(*off).unwrap_or(0)),
                // Never: only records with a value no check can fail are not spooled.
                None => etl_core::reader::RejectInput::Raw(String::new()),
            },
            source: None,
        })?;
    }
    db::exec(
        conn,
        "removing rejects",
        &format!("DELETE FROM {STAGE} WHERE {any}"),
    )
}

/// The typed source rows `v{i}`: the staging table cast to the columns'
/// types, as a subquery. With duplicate keys (and not appending) the last
/// record per key is materialised in `_etl_src` instead; finding out costs
/// one hash aggregate, so the common case pays no sort. The last record is
/// found by the largest line per key and a semi-join on lines (a window
/// over whole rows ran out of memory under `--memory-limit 20MB` at 200k
/// rows; a hash aggregate of key and line spills).
fn build_source(
    conn: &Connection,
    cli: &Cli,
    targets: &[Target],
    staged: &Staged,
) -> Result<String> {
    let mut select = String::from("_etl_line, _etl_absent");
    for t in targets {
        let _ = write!(select, ", {} AS v{}", value_sql(t, staged), t.idx);
    }
    let typed = format!("(SELECT {select} FROM {STAGE})");
    let keys: Vec<String> = targets
        .iter()
        .filter(|t| t.is_key)
        .map(|t| format!("v{}", t.idx))
        .collect();
    if keys.is_empty() || cli.mode == Mode::Append {
        return Ok(typed);
    }
    // Keys in strictly increasing order cannot repeat: integer keys whatever
    // the column's type, plain strings when the key columns compare text as
    // bytes (VARCHAR without a collation; "07" and "7" are one INTEGER).
    let text_keys = || {
        targets.iter().filter(|t| t.is_key).all(|t| {
            matches!(
                t.ty.trim().to_ascii_uppercase().as_str(),
                "VARCHAR" | "TEXT" | "STRING"
            )
        })
    };
    if staged.keys_increasing || (staged.text_keys_increasing && text_keys()) {
        tracing::debug!("keys in increasing order: no duplicate-key check");
        return Ok(typed);
    }
    let key_list = keys.join(", ");
    let key_text: Vec<String> = keys
        .iter()
        .map(|k| format!("CAST({k} AS VARCHAR)"))
        .collect();
    let sql = format!(
        "SELECT concat_ws(', ', {}), min(_etl_line), max(_etl_line) FROM {typed} \
         GROUP BY {key_list} HAVING count(*) > 1 ORDER BY min(_etl_line) LIMIT 1",
        key_text.join(", ")
    );
    let dup: Option<(String, i64, i64)> = conn
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map(Some)
        .or_else(|e| match e {
            duckdb::Error::QueryReturnedNoRows => Ok(None),
            e => Err(db::err("checking duplicate keys", &e)),
        })?;
    let Some((key, first, last)) = dup else {
        return Ok(typed);
    };
    if cli.on_duplicate_key == OnDuplicateKey::Fail {
        let names: Vec<&str> = targets
            .iter()
            .filter(|t| t.is_key)
            .map(|t| staged.cols[t.idx].name.as_str())
            .collect();
        return Err(Error::data(format!(
            "duplicate key ({}) = ({key}) on lines {first} and {last} (--on-duplicate-key fail)",
            names.join(", ")
        )));
    }
    db::exec(
        conn,
        "de-duplicating keys",
        &format!(
            "CREATE OR REPLACE TEMP TABLE _etl_src AS SELECT * FROM {typed} \
             WHERE _etl_line IN (SELECT max(_etl_line) FROM {typed} GROUP BY {key_list})"
        ),
    )?;
    Ok("_etl_src".into())
}

/// Applies the source rows (`src`: a subquery or `_etl_src`) to the target by mode; leaves `_etl_ops` (the rows
/// with `_etl_op`) for `--emit changes`.
fn apply_mode(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    targets: &[Target],
    staged: &Staged,
    src: &str,
) -> Result<Counts> {
    let t_sql = table.sql();
    let col_list: Vec<String> = targets.iter().map(|t| ident(&t.name)).collect();
    let v_list: Vec<String> = targets.iter().map(|t| format!("v{}", t.idx)).collect();
    // `rows`: a FROM clause of rows with the columns v{i}.
    let insert = |rows: &str| {
        format!(
            "INSERT INTO {t_sql} ({}) SELECT {} FROM {rows}",
            col_list.join(", "),
            v_list.join(", ")
        )
    };
    match cli.mode {
        Mode::Append | Mode::Replace => {
            let deleted = if cli.mode == Mode::Replace {
                let n = db::count(conn, &format!("SELECT count(*) FROM {t_sql}"))?;
                db::exec(conn, "emptying the table", &format!("DELETE FROM {t_sql}"))?;
                n
            } else {
                0
            };
            db::exec(
                conn,
                "preparing rows",
                &format!(
                    "CREATE OR REPLACE TEMP TABLE _etl_ops AS SELECT *, 'insert' AS _etl_op FROM {src}"
                ),
            )?;
            drop_staging(conn)?;
            db::exec(conn, "inserting rows", &insert("_etl_ops"))?;
            let inserted = db::count(conn, "SELECT count(*) FROM _etl_ops")?;
            Ok(Counts {
                inserted,
                deleted,
                ..Counts::default()
            })
        }
        Mode::Merge | Mode::InsertNew => merge_ops(conn, cli, table, targets, staged, src, &insert),
    }
}

/// `merge` and `insert-new`: classify every source row against the table
/// (insert, update, unchanged) into `_etl_ops`, then apply.
fn merge_ops(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    targets: &[Target],
    staged: &Staged,
    src: &str,
    insert: &dyn Fn(&str) -> String,
) -> Result<Counts> {
    let t_sql = table.sql();
    let keys: Vec<&Target> = targets.iter().filter(|t| t.is_key).collect();
    let on: Vec<String> = keys
        .iter()
        .map(|k| format!("s.v{} = t.{}", k.idx, ident(&k.name)))
        .collect();
    let hit = format!("t.{} IS NOT NULL", ident(&keys[0].name));
    // The matched row's rowid: updated rows are removed by it (a join on
    // 8-byte integers, where a join on text keys ran out of memory on 5M
    // updates under --memory-limit 256MB).
    let mut select = String::from("s._etl_line, t.rowid AS _etl_rowid");
    // Table columns the input lacks ride along, so an updated row can be
    // re-inserted whole (see below).
    let all_cols = table.columns(conn)?.unwrap_or_default();
    let extra: Vec<&Column> = all_cols
        .iter()
        .filter(|c| !targets.iter().any(|t| t.name.eq_ignore_ascii_case(&c.name)))
        .collect();
    for (j, c) in extra.iter().enumerate() {
        let _ = write!(select, ", t.{} AS x{j}", ident(&c.name));
    }
    // When every value written comes from the source row (no field absent
    // from some records, no other table columns to carry along), the
    // compare records only each row's line, matched rowid and op, and a view
    // joins the source's values back: a second copy of every staged value
    // made 1M string records spill under the default 256MB.
    let narrow = extra.is_empty()
        && targets
            .iter()
            .all(|t| staged.cols[t.idx].absent_sql(t.idx, "s").is_none());
    let differs = compare_columns(&mut select, targets, staged, &hit, narrow);
    let changed = if differs.is_empty() || cli.mode == Mode::InsertNew {
        "false".to_owned()
    } else {
        differs.join(" OR ")
    };
    let on = on.join(" AND ");
    // `ops`: the table of each source row's op (and rowid); `_etl_ops` is
    // it, or the view that adds the row's values to it.
    let ops = if narrow { "_etl_class" } else { "_etl_ops" };
    let compare = |rows: &str| {
        format!(
            "SELECT {select}, \
             CASE WHEN NOT ({hit}) THEN 'insert' WHEN {changed} THEN 'update' \
             ELSE 'unchanged' END AS _etl_op \
             FROM {rows} AS s LEFT JOIN {t_sql} AS t ON {on}"
        )
    };
    compare_into(conn, staged, targets, src, ops, &compare)?;
    if narrow {
        db::exec(
            conn,
            "joining the source's values to the ops",
            &format!(
                "CREATE OR REPLACE TEMP VIEW _etl_ops AS SELECT s.*, c._etl_rowid, c._etl_op \
                 FROM {src} AS s JOIN {ops} AS c ON c._etl_line = s._etl_line"
            ),
        )?;
    } else {
        drop_staging(conn)?;
    }
    let [inserted, updated, unchanged] = count_ops(conn, ops)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let from = Written {
        narrow,
        src,
        ops,
        counts: [inserted, updated, unchanged],
    };
    let mut new_written = false;
    if updated > 0 {
        if has_unique_constraint(conn, table)? || !update_too_big(conn, targets, n(updated))? {
            update_in_place(conn, table, targets, &keys)?;
        } else {
            // With no other table columns (whose defaults new rows must
            // get), one INSERT writes the new rows too: one scan, not two.
            new_written = extra.is_empty() && inserted > 0;
            let want: &[&str] = if new_written {
                &["update", "insert"]
            } else {
                &["update"]
            };
            replace_updated_rows(
                conn,
                table,
                targets,
                &extra,
                ops,
                &from.rows(want),
                new_written,
            )?;
        }
    }
    if inserted > 0 && !new_written {
        db::exec(conn, "inserting rows", &insert(&from.rows(&["insert"])))?;
    }
    Ok(Counts {
        inserted: n(inserted),
        updated: n(updated),
        unchanged: n(unchanged),
        deleted: 0,
    })
}

/// Creates `ops` from `compare` (a SELECT over a FROM clause of source
/// rows `s`), over all of `src` at once or part by part (see
/// [`compare_parts`]).
fn compare_into(
    conn: &Connection,
    staged: &Staged,
    targets: &[Target],
    src: &str,
    ops: &str,
    compare: &dyn Fn(&str) -> String,
) -> Result<()> {
    let parts = compare_parts(conn, staged, targets, src)?;
    let n = parts.len();
    for (p, lines) in parts.into_iter().enumerate() {
        let rows = lines.map_or_else(
            || src.to_owned(),
            |(lo, hi)| {
                format!("(SELECT * FROM {src} AS s0 WHERE s0._etl_line BETWEEN {lo} AND {hi})")
            },
        );
        let what = if n == 1 {
            "comparing with the table".to_owned()
        } else {
            format!("comparing with the table, part {} of {n}", p + 1)
        };
        let sql = if p == 0 {
            format!("CREATE OR REPLACE TEMP TABLE {ops} AS {}", compare(&rows))
        } else {
            format!("INSERT INTO {ops} {}", compare(&rows))
        };
        db::exec(conn, &what, &sql)?;
    }
    Ok(())
}

/// Adds the compare's value columns to `select` (`v{i}`: the source's,
/// or the table's where a field was absent; only those when `narrow`) and
/// returns the conditions under which a matched row changed.
fn compare_columns(
    select: &mut String,
    targets: &[Target],
    staged: &Staged,
    hit: &str,
    narrow: bool,
) -> Vec<String> {
    let mut differs = Vec::new();
    for t in targets {
        let sv = format!("s.v{}", t.idx);
        let tv = format!("t.{}", ident(&t.name));
        let absent = staged.cols[t.idx].absent_sql(t.idx, "s");
        match (&absent, t.is_key) {
            (Some(a), false) => {
                let _ = write!(
                    select,
                    ", CASE WHEN {hit} AND {a} THEN {tv} ELSE {sv} END AS v{}",
                    t.idx
                );
                differs.push(format!("(NOT {a} AND {sv} IS DISTINCT FROM {tv})"));
            }
            (None, is_key) => {
                if !narrow {
                    let _ = write!(select, ", {sv} AS v{}", t.idx);
                }
                if !is_key {
                    differs.push(format!("{sv} IS DISTINCT FROM {tv}"));
                }
            }
            (Some(_), true) => {
                let _ = write!(select, ", {sv} AS v{}", t.idx);
            }
        }
    }
    differs
}

/// How many rows of `ops` are to be inserted, updated and left unchanged.
fn count_ops(conn: &Connection, ops: &str) -> Result<[i64; 3]> {
    conn.query_row(
        &format!(
            "SELECT count(*) FILTER (WHERE _etl_op = 'insert'), \
             count(*) FILTER (WHERE _etl_op = 'update'), \
             count(*) FILTER (WHERE _etl_op = 'unchanged') FROM {ops}"
        ),
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]),
    )
    .map_err(|e| db::err("counting changes", &e))
}

/// Where the rows a merge writes come from.
struct Written<'a> {
    /// `ops` holds only each row's op and rowid (see `merge_ops`).
    narrow: bool,
    /// The typed source rows (`v{i}`), a subquery or table.
    src: &'a str,
    /// The table of each source row's `_etl_op`.
    ops: &'a str,
    /// Rows to insert, update and leave unchanged.
    counts: [i64; 3],
}

impl Written<'_> {
    /// The source rows of the `want`ed ops as a FROM clause: from
    /// `_etl_ops`, or (narrow) from the source itself, with no join when no
    /// other row is there, else joined to the smaller of the wanted rows'
    /// and the other rows' lines (a join of two 5M-row sides spilled).
    fn rows(&self, want: &[&str]) -> String {
        const OPS: [&str; 3] = ["insert", "update", "unchanged"];
        let list = |ops: &[&str]| {
            let q: Vec<String> = ops.iter().map(|o| format!("'{o}'")).collect();
            q.join(", ")
        };
        if !self.narrow {
            return format!("_etl_ops WHERE _etl_op IN ({})", list(want));
        }
        let (src, ops) = (self.src, self.ops);
        let other: Vec<&str> = OPS.into_iter().filter(|o| !want.contains(o)).collect();
        let count = |set: &[&str]| -> i64 {
            OPS.iter()
                .zip(self.counts)
                .filter(|(o, _)| set.contains(o))
                .map(|(_, n)| n)
                .sum()
        };
        let others = count(&other);
        if others == 0 {
            return format!("{src} AS s");
        }
        let (join, lines) = if others <= count(want) {
            ("ANTI", list(&other))
        } else {
            ("SEMI", list(want))
        };
        format!(
            "{src} AS s {join} JOIN (SELECT _etl_line FROM {ops} WHERE _etl_op IN ({lines})) \
             AS o ON o._etl_line = s._etl_line"
        )
    }
}

/// Whether an in-place UPDATE of `rows` rows could outgrow DuckDB's memory
/// limit: DuckDB holds updated values in memory until COMMIT (they cannot
/// spill), so past a quarter of the limit the rows are replaced instead
/// (delete + insert, which spills). A heuristic: about 16 bytes per value,
/// twice over (old and new versions).
fn update_too_big(conn: &Connection, targets: &[Target], rows: u64) -> Result<bool> {
    let Some(limit) = memory_limit(conn)? else {
        return Ok(false);
    };
    let cols = targets.iter().filter(|t| !t.is_key).count() as u64;
    let estimate = rows.saturating_mul(cols * 16 + 16).saturating_mul(2);
    Ok(estimate > limit / 4)
}

/// DuckDB's memory limit in bytes (`None` if it does not read as a size).
fn memory_limit(conn: &Connection) -> Result<Option<u64>> {
    let limit: String = conn
        .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
        .map_err(|e| db::err("reading the memory limit", &e))?;
    Ok(duckdb_size(&limit))
}

/// The line ranges the compare runs in, one statement each (`[None]`: one
/// statement over every row).
///
/// The compare's hash join holds every source row it is given: in DuckDB
/// 2.0 about 270 bytes for a row of ten short text columns (its profiler's
/// peak buffer memory), estimated here as 48 bytes, 16 per column and the
/// row's text. Where that does not fit the memory limit beside the staging
/// table, DuckDB spills the join (1M string records under the default
/// 256MB: 0.93 s, against 0.53 s in the three parts this picks). In parts
/// by line range, each join fits; a part reads only its range of the
/// staging table (zone maps), and the join filters DuckDB pushes into the
/// table's scan skip most of the table's other rows. Parts are sized to the limit less the staging
/// table's estimated size, or to half the limit where the staging table
/// takes more than half (it is then mostly spilled already); at most 64.
fn compare_parts(
    conn: &Connection,
    staged: &Staged,
    targets: &[Target],
    src: &str,
) -> Result<Vec<Option<(i64, i64)>>> {
    let Some(limit) = memory_limit(conn)? else {
        return Ok(vec![None]);
    };
    let (rows, cols) = (staged.rows, targets.len() as u64);
    let join = rows
        .saturating_mul(48 + 16 * cols)
        .saturating_add(staged.text_bytes);
    let staging = rows
        .saturating_mul(24 + 8 * cols)
        .saturating_add(staged.text_bytes);
    let budget = limit.saturating_sub(staging).max(limit / 2).max(1);
    let parts = join.div_ceil(budget).clamp(1, 64);
    if parts == 1 {
        return Ok(vec![None]);
    }
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row(
            &format!("SELECT min(_etl_line), max(_etl_line) FROM {src} AS s0"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| db::err("reading the staged lines", &e))?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(vec![None]);
    };
    tracing::debug!(
        parts,
        join_bytes = join,
        budget_bytes = budget,
        "comparing in {parts} parts: about {} MB of join for {} MB of the memory limit",
        join >> 20,
        budget >> 20
    );
    Ok(line_ranges(lo, hi, i64::try_from(parts).unwrap_or(64)))
}

/// `lo..=hi` cut into `parts` consecutive ranges of near-equal length (fewer
/// when there are fewer lines).
fn line_ranges(lo: i64, hi: i64, parts: i64) -> Vec<Option<(i64, i64)>> {
    let len = hi.saturating_sub(lo).saturating_add(1).max(1);
    let parts = parts.max(1);
    let step = (len.saturating_add(parts - 1) / parts).max(1);
    let mut out = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = start.saturating_add(step - 1).min(hi);
        out.push(Some((start, end)));
        if end == hi {
            break;
        }
        start = end + 1;
    }
    if out.is_empty() {
        out.push(None);
    }
    out
}

/// DuckDB's rendering of a size (`244.1 MiB`, `19.1 GiB`, `1000 bytes`) in bytes.
fn duckdb_size(text: &str) -> Option<u64> {
    let (num, unit) = text
        .trim()
        .split_once(' ')
        .unwrap_or((text.trim(), "bytes"));
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "bytes" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    let bytes = n * mult;
    // A positive, finite size that fits u64 (checked above), rounded down.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..1.8e19).contains(&bytes).then_some(bytes as u64)
}

/// Updated rows are deleted and inserted again, whole: DuckDB keeps the
/// values of an in-place UPDATE in memory until COMMIT, so updating 5M rows
/// under `--memory-limit 256MB` dies, while deletes are a bitmap and
/// inserted row groups spill to disk. The row's values are the merged ones
/// from `_etl_ops` (input columns, absent ones and the table's other columns
/// taken from the old row). With `and_new`, the inserted rows are written
/// by the same statement (`rows`, a FROM clause, holds what is written).
/// `ops` holds each row's op and matched rowid.
fn replace_updated_rows(
    conn: &Connection,
    table: &Table,
    targets: &[Target],
    extra: &[&Column],
    ops: &str,
    rows: &str,
    and_new: bool,
) -> Result<()> {
    let t_sql = table.sql();
    // By rowid (the compare step recorded it, in this transaction): a
    // semi-join on integers instead of a join on the key's text.
    db::exec(
        conn,
        "removing the old versions of updated rows",
        &format!(
            "DELETE FROM {t_sql} WHERE rowid IN \
             (SELECT _etl_rowid FROM {ops} WHERE _etl_op = 'update')"
        ),
    )?;
    let mut cols: Vec<String> = targets.iter().map(|t| ident(&t.name)).collect();
    let mut vals: Vec<String> = targets.iter().map(|t| format!("v{}", t.idx)).collect();
    for (j, c) in extra.iter().enumerate() {
        cols.push(ident(&c.name));
        vals.push(format!("x{j}"));
    }
    let what = if and_new {
        "writing updated and new rows"
    } else {
        "writing updated rows"
    };
    db::exec(
        conn,
        what,
        &format!(
            "INSERT INTO {t_sql} ({}) SELECT {} FROM {rows}",
            cols.join(", "),
            vals.join(", ")
        ),
    )
}

/// A table with a PRIMARY KEY or UNIQUE constraint (made by hand) is
/// updated in place, which such indexes handle best.
fn update_in_place(
    conn: &Connection,
    table: &Table,
    targets: &[Target],
    keys: &[&Target],
) -> Result<()> {
    let sets: Vec<String> = targets
        .iter()
        .filter(|t| !t.is_key)
        .map(|t| format!("{} = _etl_o.v{}", ident(&t.name), t.idx))
        .collect();
    if sets.is_empty() {
        return Ok(());
    }
    let key_match: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{}.{} = _etl_o.v{}",
                ident(&table.name),
                ident(&k.name),
                k.idx
            )
        })
        .collect();
    db::exec(
        conn,
        "updating rows",
        &format!(
            "UPDATE {} SET {} FROM _etl_ops AS _etl_o \
             WHERE _etl_o._etl_op = 'update' AND {}",
            table.sql(),
            sets.join(", "),
            key_match.join(" AND ")
        ),
    )
}

fn has_unique_constraint(conn: &Connection, table: &Table) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM duckdb_constraints() \
         WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?) \
           AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
        [&table.schema, &table.name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| db::err("reading the table's constraints", &e))
}

/// Once `_etl_ops` holds the typed rows, the staging tables only take
/// memory (or spill space): drop them before the table is written.
fn drop_staging(conn: &Connection) -> Result<()> {
    db::exec(
        conn,
        "dropping the staging tables",
        &format!("DROP TABLE IF EXISTS _etl_src; DROP TABLE IF EXISTS {STAGE};"),
    )
}

#[cfg(test)]
mod tests {
    use super::{duckdb_size, line_ranges};

    #[test]
    fn duckdb_sizes_parse() {
        assert_eq!(duckdb_size("244.1 MiB"), Some(255_957_401));
        assert_eq!(duckdb_size("1000 bytes"), Some(1000));
        assert_eq!(duckdb_size("19.1 GiB"), Some(20_508_468_838));
        assert_eq!(duckdb_size("2 GB"), Some(2_000_000_000));
        assert_eq!(duckdb_size("lots"), None);
        assert_eq!(duckdb_size("1 XB"), None);
    }

    #[test]
    fn line_ranges_cover_every_line_once() {
        assert_eq!(
            line_ranges(1, 10, 3),
            [Some((1, 4)), Some((5, 8)), Some((9, 10))]
        );
        assert_eq!(
            line_ranges(1, 1_000_000, 2),
            [Some((1, 500_000)), Some((500_001, 1_000_000))]
        );
        // More parts than lines: one range per line.
        assert_eq!(line_ranges(7, 8, 5), [Some((7, 7)), Some((8, 8))]);
        for (lo, hi, parts) in [(1, 999_983, 7), (3, 100, 64), (5, 5, 2), (1, 65, 64)] {
            let ranges: Vec<(i64, i64)> =
                line_ranges(lo, hi, parts).into_iter().flatten().collect();
            assert!(!ranges.is_empty() && ranges.len() <= usize::try_from(parts).unwrap());
            assert_eq!(ranges[0].0, lo);
            assert_eq!(ranges[ranges.len() - 1].1, hi);
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "{ranges:?}");
            }
        }
    }
}
