//! One run, whichever the database: stage, check, merge, audit, commit,
//! emit. The flow, the column resolution, the empty-input rule, the audit
//! row and the choice of what `--emit` writes are here, once; what differs
//! between DuckDB ([`crate::duck`]) and PostgreSQL ([`crate::pg`]) is
//! behind [`Backend`].

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use etl_core::{Error, Result, Run};

use crate::db::{Column, Table};
use crate::emit::{self, OutCol};
use crate::events;
use crate::sql::{self, ident};
use crate::stage::{StageCol, Staged};
use crate::{Cli, Emit, Mode, OnNewColumn};

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

/// One database behind the run: what differs between DuckDB and
/// PostgreSQL. Every method runs inside the run's transaction unless it
/// says otherwise.
pub(crate) trait Backend {
    /// The schema a table lands in without `--schema`.
    fn default_schema(&self) -> &'static str;
    /// Starts the run's transaction; the table's columns, if it exists.
    fn begin(&mut self, table: &Table) -> Result<Option<Vec<Column>>>;
    /// Streams stdin into the staging table (`hints`: the types known
    /// before staging; `existing`: the table's columns when it began).
    fn stage(
        &mut self,
        cli: &Cli,
        hints: &[(String, String)],
        existing: &[Column],
        run: &mut Run,
    ) -> Result<Staged>;
    /// After staging, before anything is decided: the table as it is now
    /// (PostgreSQL first waits for the table's lock, and another writer may
    /// have created it meanwhile; `table` takes its spelling), with
    /// `_etl_runs` in place.
    fn claim(&mut self, table: &mut Table) -> Result<Option<Vec<Column>>>;
    /// An earlier successful apply of the same input: its run id and time.
    fn previous_apply(
        &mut self,
        table: &Table,
        mode: Mode,
        key: &str,
        sha: &str,
    ) -> Result<Option<(String, String)>>;
    /// Writes the audit row; `alone`: after a rollback, in a transaction of
    /// its own.
    fn audit(&mut self, row: &Audit<'_>, alone: bool) -> Result<()>;
    /// The integer `sql` selects.
    fn count(&mut self, sql: &str) -> Result<u64>;
    /// Runs statements (`what` names them in an error).
    fn exec(&mut self, what: &str, sql: &str) -> Result<()>;
    /// Resolves the columns ([`resolve_columns`]), turns values that do not
    /// fit into rejects, and applies the rest by `--mode`, leaving `_etl_ops`
    /// (`v{i}`, `_etl_op`, `_etl_line`) for `--emit changes`.
    fn merge(
        &mut self,
        cli: &Cli,
        table: &Table,
        types: &[(String, String)],
        staged: &Staged,
        existing: Option<Vec<Column>>,
        run: &mut Run,
    ) -> Result<(Counts, Vec<Target>)>;
    /// `--query` checked before COMMIT: a bad query changes nothing.
    fn check_query(&mut self, q: &str) -> Result<()>;
    /// The connection still answers (false once it was lost).
    fn alive(&self) -> bool {
        true
    }
    /// The table as the database spells it, and its columns.
    fn columns(&mut self, table: &Table) -> Result<Option<(Table, Vec<Column>)>>;
    /// Writes `SELECT cols FROM from` to stdout as records.
    fn emit(&mut self, cols: &[OutCol], from: &str, what: &str, run: &mut Run) -> Result<()>;
    /// `--query`: one read-only SELECT to stdout (`in_tx`: inside the dry
    /// run's transaction, which is rolled back).
    fn query(&mut self, q: &str, run: &mut Run, in_tx: bool) -> Result<()>;
}

/// One row of `_etl_runs`.
#[derive(Debug)]
pub(crate) struct Audit<'a> {
    pub run_id: String,
    /// Written as `schema.table`; PostgreSQL keeps `_etl_runs` in its schema.
    pub table: Table,
    pub mode: &'static str,
    pub key: String,
    /// Microseconds since the epoch.
    pub started: i64,
    pub finished: i64,
    pub rows_in: u64,
    pub counts: Counts,
    pub rejected: u64,
    pub sha256: &'a str,
    pub status: &'static str,
}

/// Runs one invocation.
#[allow(clippy::needless_pass_by_value)] // the signature `etl_core::main` calls
pub fn run(cli: Cli, run: &mut Run) -> Result<()> {
    let started = now_micros();
    let pause = pause_point()?;
    let (db_path, types) = check_args(&cli)?;
    let mut backend: Box<dyn Backend> =
        match db_path.to_str().filter(|d| crate::pg::conn::is_url(d)) {
            Some(url) => Box::new(crate::pg::Pg::connect(&cli, url)?),
            None => Box::new(crate::duck::Duck::open(&cli, &db_path)?),
        };
    flow(&mut *backend, &cli, &types, run, started, pause)
}

/// The run on one backend.
fn flow(
    b: &mut dyn Backend,
    cli: &Cli,
    types: &[(String, String)],
    run: &mut Run,
    started: i64,
    pause: Option<&'static str>,
) -> Result<()> {
    let mut table = Table {
        schema: cli
            .schema
            .clone()
            .unwrap_or_else(|| b.default_schema().into()),
        name: cli.table.clone(),
    };
    let found = b.begin(&table)?.unwrap_or_default();
    let hints = hints_of(found.clone(), types);
    let staged = b.stage(cli, &hints, &found, run)?;
    events::staged(staged.rows, staged.cols.len(), &staged.sha256);
    pause_if(pause, "staged");
    let existing = b.claim(&mut table)?;
    let key_text = cli.key.join(",");
    let audit = |run: &Run, table: &Table, counts: Counts, status: &'static str| Audit {
        run_id: run.run_id().to_owned(),
        table: table.clone(),
        mode: cli.mode.name(),
        key: key_text.clone(),
        started,
        finished: now_micros(),
        rows_in: staged.rows_in,
        counts,
        rejected: run.records_rejected(),
        sha256: &staged.sha256,
        status,
    };

    if staged.rows > 0 && !cli.force {
        if let Some((prev, at)) = b.previous_apply(&table, cli.mode, &key_text, &staged.sha256)? {
            b.exec("rolling back", "ROLLBACK")?;
            events::replay_skipped(&table.display(), &prev, &at);
            if !cli.dry_run {
                b.audit(&audit(run, &table, Counts::default(), "skipped"), true)?;
            }
            run.set_count("inserted", 0_u64);
            run.set_count("updated", 0_u64);
            run.set_count("skipped_replay", true);
            return emit_after(b, cli, &table, run, &[], false);
        }
    }

    let outcome = merge_in_tx(b, cli, &table, types, &staged, existing, run);
    let outcome = outcome.and_then(|r| match &cli.query {
        Some(q) => b.check_query(q).map(|()| r),
        None => Ok(r),
    });
    let (counts, targets) = match outcome {
        Ok(r) => r,
        Err(e) => {
            let _ = b.exec("rolling back", "ROLLBACK");
            if !cli.dry_run && b.alive() {
                let _ = b.audit(&audit(run, &table, Counts::default(), "failed"), true);
            }
            return Err(e);
        }
    };
    let status = if cli.dry_run { "dry-run" } else { "ok" };
    b.audit(&audit(run, &table, counts, status), false)?;
    report(run, cli, &table, counts);
    if cli.dry_run {
        // What would change, then nothing changes.
        let emitted = emit_after(b, cli, &table, run, &targets, true);
        b.exec("rolling back the dry run", "ROLLBACK")?;
        return emitted;
    }
    pause_if(pause, "merged");
    b.exec("committing", "COMMIT")?;
    pause_if(pause, "committed");
    emit_after(b, cli, &table, run, &targets, false)
}

/// Everything between staging and COMMIT: an empty input by
/// [`empty_input_empties`], else the backend's merge.
fn merge_in_tx(
    b: &mut dyn Backend,
    cli: &Cli,
    table: &Table,
    types: &[(String, String)],
    staged: &Staged,
    existing: Option<Vec<Column>>,
    run: &mut Run,
) -> Result<(Counts, Vec<Target>)> {
    if staged.rows > 0 {
        return b.merge(cli, table, types, staged, existing, run);
    }
    if !empty_input_empties(cli, table, existing.is_some())? {
        return Ok((Counts::default(), Vec::new()));
    }
    let deleted = b.count(&format!("SELECT count(*) FROM {}", table.sql()))?;
    b.exec(
        "emptying the table",
        &format!("DELETE FROM {}", table.sql()),
    )?;
    Ok((
        Counts {
            deleted,
            ..Counts::default()
        },
        Vec::new(),
    ))
}

/// `--emit` / `--query` output, after COMMIT (or before a dry run's
/// rollback): which rows, in which order, named how; the backend writes them.
fn emit_after(
    b: &mut dyn Backend,
    cli: &Cli,
    table: &Table,
    run: &mut Run,
    targets: &[Target],
    in_tx: bool,
) -> Result<()> {
    if let Some(q) = &cli.query {
        return b.query(q, run, in_tx);
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
            b.emit(
                &cols,
                "_etl_ops WHERE _etl_op IN ('insert', 'update') ORDER BY _etl_line",
                "--emit changes",
                run,
            )
        }
        Emit::Table => {
            let Some((t, tcols)) = b.columns(table)? else {
                return Ok(());
            };
            // Names as the table spells them (matched case-insensitively).
            let named = |k: &String| {
                let k = k.trim();
                ident(
                    tcols
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(k))
                        .map_or(k, |c| c.name.as_str()),
                )
            };
            let order: Vec<String> = if cli.order_by.is_empty() {
                cli.key.iter().map(named).collect()
            } else {
                cli.order_by.iter().map(named).collect()
            };
            let mut from = t.sql();
            if !order.is_empty() {
                let _ = write!(from, " ORDER BY {}", order.join(", "));
            }
            b.emit(&emit::table_cols(&tcols), &from, "--emit table", run)
        }
    }
}

pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
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
