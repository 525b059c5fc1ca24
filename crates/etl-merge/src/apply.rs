//! One run: stage, check, merge, audit, commit, emit.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use duckdb::{params, Connection};
use etl_core::{Error, Reject, Result, Run};

use crate::db::{self, Column, Settings, Table};
use crate::emit::{self, OutCol};
use crate::events;
use crate::fast::Fast;
use crate::sql::{self, ident, literal};
use crate::stage::{self, StageCol, Staged, STAGE};
use crate::{Cli, Emit, Mode, OnDuplicateKey, OnNewColumn};

/// An input column as it lands: staging index, table column, type.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub idx: usize,
    pub name: String,
    pub ty: String,
    pub is_key: bool,
}

/// What the run did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

const RUNS_DDL: &str = "CREATE TABLE IF NOT EXISTS main._etl_runs (\
    run_id VARCHAR, \"table\" VARCHAR, mode VARCHAR, \"key\" VARCHAR, \
    started_at TIMESTAMP, finished_at TIMESTAMP, rows_in BIGINT, inserted BIGINT, \
    updated BIGINT, unchanged BIGINT, deleted BIGINT, rejected BIGINT, \
    input_sha256 VARCHAR, status VARCHAR)";

pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Runs one invocation.
#[allow(clippy::needless_pass_by_value)] // the signature `etl_core::main` calls
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    let started = now_micros();
    let pause = pause_point()?;
    let (db_path, types) = check_args(&cli)?;
    if let Some(url) = db_path.to_str().filter(|d| crate::pg::conn::is_url(d)) {
        return crate::pg::run(&cli, url, &types, run, started, pause);
    }
    let table = Table {
        schema: cli.schema.clone().unwrap_or_else(|| "main".into()),
        name: cli.table.clone(),
    };
    let conn = db::open(
        &db_path,
        &Settings {
            memory_limit: cli.memory_limit.as_deref(),
            threads: cli.threads,
        },
    )?;
    let tmp = db::temp_dir(&db_path);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::output(&tmp, &e))?;

    db::exec(&conn, "starting the transaction", "BEGIN TRANSACTION")?;
    let hints = type_hints(&conn, &table, &types)?;
    let staged = stage::stage(
        &conn,
        &tmp,
        std::io::stdin().lock(),
        &cli.key,
        &hints,
        cli.batch_size,
        run,
    )?;
    events::staged(staged.rows, staged.cols.len(), &staged.sha256);
    pause_if(pause, "staged");
    db::exec(&conn, "creating _etl_runs", RUNS_DDL)?;
    let key_text = cli.key.join(",");

    if staged.rows > 0 && !cli.force {
        if let Some((prev, at)) =
            previous_apply(&conn, &table, cli.mode, &key_text, &staged.sha256)?
        {
            db::exec(&conn, "rolling back", "ROLLBACK")?;
            events::replay_skipped(&table.display(), &prev, &at);
            if !cli.dry_run {
                audit_alone(&conn, &cli, &table, &staged, started, run, "skipped")?;
            }
            run.set_count("inserted", 0_u64);
            run.set_count("updated", 0_u64);
            run.set_count("skipped_replay", true);
            return emit_after(&conn, &cli, &table, run, &[], false);
        }
    }

    let outcome = merge_in_tx(&conn, &cli, &table, &types, &staged, run);
    let outcome = outcome.and_then(|r| match &cli.query {
        Some(q) => emit::check_query(&conn, q).map(|()| r),
        None => Ok(r),
    });
    let (counts, targets) = match outcome {
        Ok(c) => c,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            if !cli.dry_run {
                let _ = audit_alone(&conn, &cli, &table, &staged, started, run, "failed");
            }
            return Err(e);
        }
    };
    audit(
        &conn,
        &cli,
        &table,
        &staged,
        started,
        run,
        counts,
        if cli.dry_run { "dry-run" } else { "ok" },
    )?;
    report(run, &cli, &table, counts);
    if cli.dry_run {
        // What would change, then nothing changes.
        let emitted = emit_after(&conn, &cli, &table, run, &targets, true);
        db::exec(&conn, "rolling back the dry run", "ROLLBACK")?;
        return emitted;
    }
    pause_if(pause, "merged");
    db::exec(&conn, "committing", "COMMIT")?;
    pause_if(pause, "committed");
    emit_after(&conn, &cli, &table, run, &targets, false)
}

/// What an input without records does, on either backend: `--mode
/// replace` into an existing table is refused unless `--allow-empty`, and
/// then empties it (`true`); anything else leaves the table as it was
/// (logged).
pub(crate) fn empty_input_empties(cli: &Cli, table: &Table, exists: bool) -> Result<bool> {
    if cli.mode == Mode::Replace && exists {
        if !cli.allow_empty {
            return Err(Error::data(format!(
                "no records: --mode replace would empty {}; refusing (pass --allow-empty to mean it)",
                table.display()
            )));
        }
        return Ok(true);
    }
    events::empty_input(&table.display());
    Ok(false)
}

/// The run's counts into the summary and the log line that says them.
pub(crate) fn report(run: &mut Run, cli: &Cli, table: &Table, c: Counts) {
    run.set_count("inserted", c.inserted);
    run.set_count("updated", c.updated);
    run.set_count("unchanged", c.unchanged);
    run.set_count("deleted", c.deleted);
    events::merged(
        &table.display(),
        cli.mode.name(),
        [c.inserted, c.updated, c.unchanged, c.deleted],
        cli.dry_run,
    );
}

/// `ETL_MERGE_PAUSE_AT` (a testing hook, shown in `--help`): where the run
/// stops and waits to be killed, so a crash test kills it at a known point.
pub(crate) fn pause_point() -> Result<Option<&'static str>> {
    match std::env::var("ETL_MERGE_PAUSE_AT") {
        Err(_) => Ok(None),
        Ok(v) => ["staged", "merged", "committed"]
            .into_iter()
            .find(|p| *p == v)
            .map(Some)
            .ok_or_else(|| {
                Error::usage(format!(
                    "ETL_MERGE_PAUSE_AT={v:?}: expected staged, merged or committed (a testing hook)"
                ))
            }),
    }
}

pub(crate) fn pause_if(pause: Option<&str>, point: &str) {
    if pause == Some(point) {
        events::paused(point);
        loop {
            std::thread::park();
        }
    }
}

/// The column types known before staging: the table's columns, then
/// `--types` for the others (as [`resolve_columns`] will decide them).
fn type_hints(
    conn: &Connection,
    table: &Table,
    types: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    Ok(hints_of(table.columns(conn)?.unwrap_or_default(), types))
}

/// The table's column types, then `--types` for the columns it lacks.
pub(crate) fn hints_of(columns: Vec<Column>, types: &[(String, String)]) -> Vec<(String, String)> {
    let mut hints: Vec<(String, String)> = columns.into_iter().map(|c| (c.name, c.ty)).collect();
    for (n, ty) in types {
        if !hints.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
            hints.push((n.clone(), ty.clone()));
        }
    }
    hints
}

/// Flag checks that need no database.
pub(crate) fn check_args(cli: &Cli) -> Result<(std::path::PathBuf, Vec<(String, String)>)> {
    let db_path = cli
        .db
        .clone()
        .ok_or_else(|| Error::missing_setting("--db", "ETL_DB"))?;
    if cli.key.iter().any(|k| k.trim().is_empty()) {
        return Err(Error::usage("--key: empty column name"));
    }
    if cli.key.is_empty() && cli.mode != Mode::Append {
        return Err(Error::usage(format!(
            "--key is required with --mode {} (only append works without a key)",
            cli.mode.name()
        )));
    }
    if cli.table.is_empty() || cli.schema.as_deref().is_some_and(str::is_empty) {
        return Err(Error::usage("--table and --schema must not be empty"));
    }
    let types = sql::parse_types(&cli.types).map_err(Error::usage)?;
    Ok((db_path, types))
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

#[allow(clippy::too_many_arguments)] // the audit row's fields
fn audit(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    staged: &Staged,
    started: i64,
    run: &Run,
    c: Counts,
    status: &str,
) -> Result<()> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO main._etl_runs VALUES (?, ?, ?, ?, make_timestamp(?), make_timestamp(?), \
         ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            run.run_id(),
            table.display(),
            cli.mode.name(),
            cli.key.join(","),
            started,
            now_micros(),
            n(staged.rows_in),
            n(c.inserted),
            n(c.updated),
            n(c.unchanged),
            n(c.deleted),
            n(run.records_rejected()),
            staged.sha256,
            status
        ],
    )
    .map(|_| ())
    .map_err(|e| db::err("writing _etl_runs", &e))
}

/// An audit row in its own transaction (a skipped replay, a failed run).
fn audit_alone(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    staged: &Staged,
    started: i64,
    run: &Run,
    status: &str,
) -> Result<()> {
    db::exec(conn, "creating _etl_runs", RUNS_DDL)?;
    audit(
        conn,
        cli,
        table,
        staged,
        started,
        run,
        Counts::default(),
        status,
    )
}

/// Everything between staging and COMMIT.
fn merge_in_tx(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    types: &[(String, String)],
    staged: &Staged,
    run: &mut Run,
) -> Result<(Counts, Vec<Target>)> {
    let existing = table.columns(conn)?;
    if staged.rows == 0 {
        if !empty_input_empties(cli, table, existing.is_some())? {
            return Ok((Counts::default(), Vec::new()));
        }
        let deleted = db::count(conn, &format!("SELECT count(*) FROM {}", table.sql()))?;
        db::exec(
            conn,
            "emptying the table",
            &format!("DELETE FROM {}", table.sql()),
        )?;
        return Ok((
            Counts {
                deleted,
                ..Counts::default()
            },
            Vec::new(),
        ));
    }
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

/// What resolving the columns asks of a backend: its DDL and its types.
pub(crate) trait Ddl {
    /// Creates the schema (if missing) and the table with `defs`
    /// (`"col" TYPE`); `keys` are the key columns.
    fn create_table(&mut self, table: &Table, defs: &[String], keys: &[&str]) -> Result<()>;
    /// Adds one column.
    fn add_column(&mut self, table: &Table, name: &str, ty: &str) -> Result<()>;
    /// The type a column gets from what its values looked like.
    fn inferred(&self, seen: &crate::infer::Seen) -> String;
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

/// Matches input columns to table columns (case-insensitively, as DuckDB
/// does and as the PostgreSQL backend does too), creates the table or adds
/// columns, and decides every type.
pub(crate) fn resolve_columns(
    ddl: &mut dyn Ddl,
    cli: &Cli,
    table: &Table,
    types: &[(String, String)],
    cols: &[StageCol],
    existing: Option<Vec<Column>>,
) -> Result<Vec<Target>> {
    // Two input keys that would be one column.
    for (i, a) in cols.iter().enumerate() {
        if let Some(b) = cols[..i]
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&a.name))
        {
            return Err(Error::data(format!(
                "input columns {:?} and {:?} differ only in case; column names are matched case-insensitively",
                b.name, a.name
            )));
        }
    }
    let is_key = |name: &str| cli.key.iter().any(|k| k.eq_ignore_ascii_case(name));
    // Every input column's type: --types, else what its values inferred.
    let tys: Vec<String> = cols
        .iter()
        .map(|c| {
            types
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&c.name))
                .map_or_else(|| ddl.inferred(&c.seen), |(_, t)| t.clone())
        })
        .collect();
    for (n, _) in types {
        if !cols.iter().any(|c| c.name.eq_ignore_ascii_case(n)) {
            events::type_ignored(n, "no such column in the input");
        }
    }
    let mut targets = Vec::with_capacity(cols.len());
    let mut new = Vec::new();
    match existing {
        None => {
            let mut defs = Vec::with_capacity(cols.len());
            for (idx, c) in cols.iter().enumerate() {
                let ty = tys[idx].clone();
                defs.push(format!("{} {ty}", ident(&c.name)));
                targets.push(Target {
                    idx,
                    name: c.name.clone(),
                    ty,
                    is_key: is_key(&c.name),
                });
            }
            for k in &cli.key {
                if !targets.iter().any(|t| t.name.eq_ignore_ascii_case(k)) {
                    return Err(Error::data(format!("key column {k:?} is not in the input")));
                }
            }
            let keys: Vec<&str> = targets
                .iter()
                .filter(|t| t.is_key)
                .map(|t| t.name.as_str())
                .collect();
            ddl.create_table(table, &defs, &keys)?;
            events::created(&table.display(), &defs.join(", "));
        }
        Some(tcols) => {
            for (idx, c) in cols.iter().enumerate() {
                match tcols.iter().find(|t| t.name.eq_ignore_ascii_case(&c.name)) {
                    Some(t) => {
                        if let Some((_, ty)) =
                            types.iter().find(|(n, _)| n.eq_ignore_ascii_case(&c.name))
                        {
                            if !ty.eq_ignore_ascii_case(&t.ty) {
                                events::type_ignored(
                                    &c.name,
                                    &format!("the table's column is {}; {ty} ignored", t.ty),
                                );
                            }
                        }
                        targets.push(Target {
                            idx,
                            name: t.name.clone(),
                            ty: t.ty.clone(),
                            is_key: is_key(&c.name),
                        });
                    }
                    None => new.push((idx, c)),
                }
            }
        }
    }
    if !new.is_empty() {
        let typed: Vec<(usize, &StageCol, String)> = new
            .into_iter()
            .map(|(i, c)| (i, c, tys[i].clone()))
            .collect();
        new_columns(ddl, cli, table, &typed, &mut targets)?;
    }
    for k in &cli.key {
        if !targets.iter().any(|t| t.name.eq_ignore_ascii_case(k)) {
            return Err(Error::data(format!("key column {k:?} is not in the input")));
        }
    }
    Ok(targets)
}

/// Input columns the table lacks, by `--on-new-column`.
fn new_columns(
    ddl: &mut dyn Ddl,
    cli: &Cli,
    table: &Table,
    new: &[(usize, &StageCol, String)],
    targets: &mut Vec<Target>,
) -> Result<()> {
    let is_key = |name: &str| cli.key.iter().any(|k| k.eq_ignore_ascii_case(name));
    let names: Vec<&str> = new.iter().map(|(_, c, _)| c.name.as_str()).collect();
    match cli.on_new_column {
        OnNewColumn::Fail => {
            return Err(Error::data(format!(
                "input columns not in {}: {} (use --on-new-column add or ignore)",
                table.display(),
                names.join(", ")
            )));
        }
        OnNewColumn::Ignore => {
            if new.iter().any(|(_, c, _)| is_key(&c.name)) {
                return Err(Error::data(format!(
                    "key column(s) not in {}: {}",
                    table.display(),
                    names.join(", ")
                )));
            }
            events::columns_ignored(&table.display(), &names.join(", "));
        }
        OnNewColumn::Add => {
            let mut added = Vec::new();
            for (idx, c, ty) in new {
                ddl.add_column(table, &c.name, ty)?;
                added.push(format!("{} {ty}", c.name));
                targets.push(Target {
                    idx: *idx,
                    name: c.name.clone(),
                    ty: ty.clone(),
                    is_key: is_key(&c.name),
                });
            }
            events::columns_added(&table.display(), &added.join(", "));
        }
    }
    Ok(())
}

/// The staging text of target `t`'s values (see [`crate::fast`]): `c{i}`,
/// or, if its typed column turned out to have another type than the
/// target (a safety net: both come from the same type names), the typed
/// values as text too.
fn text_sql(t: &Target, staged: &Staged) -> String {
    let c = StageCol::stage_name(t.idx);
    match staged.cols[t.idx].fast {
        Some(f) if Fast::of(&t.ty) != Some(f) => format!(
            "coalesce({c}, CAST({} AS VARCHAR))",
            StageCol::typed_name(t.idx)
        ),
        _ => c,
    }
}

/// The SQL of target `t`'s values in its type: the typed staging column
/// where the value was staged typed, else the text converted.
fn value_sql(t: &Target, staged: &Staged) -> String {
    let converted = convert_sql(t, &text_sql(t, staged));
    match staged.cols[t.idx].fast {
        Some(f) if Fast::of(&t.ty) == Some(f) => {
            format!("coalesce({}, {converted})", StageCol::typed_name(t.idx))
        }
        _ => converted,
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
    let mut conds: Vec<(&Target, String)> = Vec::new();
    for t in targets {
        let ty = t.ty.trim();
        if sql::takes_any(ty) {
            continue;
        }
        let v = text_sql(t, staged);
        let mut bad = format!("TRY_CAST({v} AS {ty}) IS NULL");
        if let Some(scale) = sql::decimal_scale(ty) {
            // DuckDB rounds 1.005 into DECIMAL(18,2); losing a digit is a reject.
            let _ = write!(
                bad,
                " OR regexp_matches({v}, {})",
                literal(&format!("^[^eE]*\\.[0-9]{{{scale}}}[0-9]*[1-9]"))
            );
        }
        conds.push((t, format!("({v} IS NOT NULL AND ({bad}))")));
    }
    if conds.is_empty() {
        return Ok(());
    }
    let mut which = String::from("CASE");
    let mut value = String::from("CASE");
    for (i, (t, c)) in conds.iter().enumerate() {
        let _ = write!(which, " WHEN {c} THEN {i}");
        let _ = write!(value, " WHEN {c} THEN {}", text_sql(t, staged));
    }
    which.push_str(" END");
    value.push_str(" END");
    let any: Vec<&str> = conds.iter().map(|(_, c)| c.as_str()).collect();
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
/// one hash aggregate, so the common case pays no sort.
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
    if keys.is_empty() || cli.mode == Mode::Append || staged.keys_increasing {
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
             QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY _etl_line DESC) = 1"
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
    let insert = |filter: &str| {
        format!(
            "INSERT INTO {t_sql} ({}) SELECT {} FROM _etl_ops {filter}",
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
            db::exec(conn, "inserting rows", &insert(""))?;
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
            (None, false) => {
                let _ = write!(select, ", {sv} AS v{}", t.idx);
                differs.push(format!("{sv} IS DISTINCT FROM {tv}"));
            }
            (_, true) => {
                let _ = write!(select, ", {sv} AS v{}", t.idx);
            }
        }
    }
    let changed = if differs.is_empty() || cli.mode == Mode::InsertNew {
        "false".to_owned()
    } else {
        differs.join(" OR ")
    };
    let on = on.join(" AND ");
    db::exec(
        conn,
        "comparing with the table",
        &format!(
            "CREATE OR REPLACE TEMP TABLE _etl_ops AS SELECT {select}, \
             CASE WHEN NOT ({hit}) THEN 'insert' WHEN {changed} THEN 'update' \
             ELSE 'unchanged' END AS _etl_op \
             FROM {src} AS s LEFT JOIN {t_sql} AS t ON {on}"
        ),
    )?;
    drop_staging(conn)?;
    let (inserted, updated, unchanged) = conn
        .query_row(
            "SELECT count(*) FILTER (WHERE _etl_op = 'insert'), \
             count(*) FILTER (WHERE _etl_op = 'update'), \
             count(*) FILTER (WHERE _etl_op = 'unchanged') FROM _etl_ops",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .map_err(|e| db::err("counting changes", &e))?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut new_written = false;
    if updated > 0 {
        if has_unique_constraint(conn, table)? || !update_too_big(conn, targets, n(updated))? {
            update_in_place(conn, table, targets, &keys)?;
        } else {
            // With no other table columns (whose defaults new rows must
            // get), one INSERT writes the new rows too: one scan, not two.
            new_written = extra.is_empty() && inserted > 0;
            replace_updated_rows(conn, table, targets, &extra, new_written)?;
        }
    }
    if inserted > 0 && !new_written {
        db::exec(conn, "inserting rows", &insert("WHERE _etl_op = 'insert'"))?;
    }
    Ok(Counts {
        inserted: n(inserted),
        updated: n(updated),
        unchanged: n(unchanged),
        deleted: 0,
    })
}

/// Whether an in-place UPDATE of `rows` rows could outgrow DuckDB's memory
/// limit: DuckDB holds updated values in memory until COMMIT (they cannot
/// spill), so past a quarter of the limit the rows are replaced instead
/// (delete + insert, which spills). A heuristic: about 16 bytes per value,
/// twice over (old and new versions).
fn update_too_big(conn: &Connection, targets: &[Target], rows: u64) -> Result<bool> {
    let limit: String = conn
        .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
        .map_err(|e| db::err("reading the memory limit", &e))?;
    let Some(limit) = duckdb_size(&limit) else {
        return Ok(false);
    };
    let cols = targets.iter().filter(|t| !t.is_key).count() as u64;
    let estimate = rows.saturating_mul(cols * 16 + 16).saturating_mul(2);
    Ok(estimate > limit / 4)
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
/// by the same statement.
fn replace_updated_rows(
    conn: &Connection,
    table: &Table,
    targets: &[Target],
    extra: &[&Column],
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
             (SELECT _etl_rowid FROM _etl_ops WHERE _etl_op = 'update')"
        ),
    )?;
    let mut cols: Vec<String> = targets.iter().map(|t| ident(&t.name)).collect();
    let mut vals: Vec<String> = targets.iter().map(|t| format!("v{}", t.idx)).collect();
    for (j, c) in extra.iter().enumerate() {
        cols.push(ident(&c.name));
        vals.push(format!("x{j}"));
    }
    let (what, ops) = if and_new {
        ("writing updated and new rows", "'update', 'insert'")
    } else {
        ("writing updated rows", "'update'")
    };
    db::exec(
        conn,
        what,
        &format!(
            "INSERT INTO {t_sql} ({}) SELECT {} FROM _etl_ops WHERE _etl_op IN ({ops})",
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

/// `--emit` / `--query` output, after COMMIT (or before a dry run's rollback).
fn emit_after(
    conn: &Connection,
    cli: &Cli,
    table: &Table,
    run: &mut Run,
    targets: &[Target],
    in_tx: bool,
) -> Result<()> {
    if let Some(q) = &cli.query {
        return emit::query(conn, q, run, in_tx);
    }
    match cli.emit {
        Emit::None => Ok(()),
        Emit::Changes => {
            if targets.is_empty() {
                return Ok(());
            }
            // _etl_ops holds v{i} for the input's columns.
            let mut cols: Vec<OutCol> = targets
                .iter()
                .map(|t| OutCol {
                    name: t.name.clone(),
                    expr: format!("v{}", t.idx),
                    ty: t.ty.clone(),
                })
                .collect();
            cols.push(OutCol {
                name: "_op".into(),
                expr: "_etl_op".into(),
                ty: "VARCHAR".into(),
            });
            emit::emit(
                conn,
                &cols,
                "_etl_ops WHERE _etl_op IN ('insert', 'update') ORDER BY _etl_line",
                "--emit changes",
                run,
            )
        }
        Emit::Table => {
            let Some(tcols) = table.columns(conn)? else {
                return Ok(());
            };
            let order: Vec<String> = if cli.order_by.is_empty() {
                cli.key.iter().map(|k| ident(k.trim())).collect()
            } else {
                cli.order_by.iter().map(|k| ident(k.trim())).collect()
            };
            let mut from = table.sql();
            if !order.is_empty() {
                let _ = write!(from, " ORDER BY {}", order.join(", "));
            }
            emit::emit(conn, &emit::table_cols(&tcols), &from, "--emit table", run)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::duckdb_size;

    #[test]
    fn duckdb_sizes_parse() {
        assert_eq!(duckdb_size("244.1 MiB"), Some(255_957_401));
        assert_eq!(duckdb_size("1000 bytes"), Some(1000));
        assert_eq!(duckdb_size("19.1 GiB"), Some(20_508_468_838));
        assert_eq!(duckdb_size("2 GB"), Some(2_000_000_000));
        assert_eq!(duckdb_size("lots"), None);
        assert_eq!(duckdb_size("1 XB"), None);
    }
}
