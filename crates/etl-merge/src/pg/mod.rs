//! The PostgreSQL backend: the same run as DuckDB's, in one PostgreSQL
//! transaction.
//!
//! Records stream through one binary `COPY` into a temporary staging table
//! `_etl_stage(_etl_line, _etl_off, _etl_check, _etl_absent, vals text[])` (one text
//! array per record, so a column that first appears mid-stream needs no
//! ALTER while the COPY runs). The record loop, the rejects, the spool and
//! the column resolution are the ones the DuckDB backend uses
//! ([`crate::stage::read_input`], [`crate::apply::resolve_columns`]); what
//! is PostgreSQL's is here: the type checks (PostgreSQL's own input
//! functions decide every value the Rust side is not certain of), the merge
//! (`INSERT ... ON CONFLICT ... DO UPDATE ... WHERE ... IS DISTINCT FROM`,
//! so equal rows are not written), the advisory lock that serialises
//! writers of one table from the end of staging to COMMIT, and the audit
//! row in `SCHEMA._etl_runs`.

pub mod conn;
mod copy;
mod types;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

use etl_core::{Error, Reject, Result, Run};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::Client;

use crate::apply::{self, Audit, Backend, Counts, Ddl, Target};
use crate::db::{Column, Table};
use crate::emit::{query_text, OutCol};
use crate::sql::ident;
use crate::stage::{self, Cell, Sink, StageCol, Staged};
use crate::{Cli, Emit, Mode, OnDuplicateKey};
use types::{Check, Slot, SlotVal};

/// The staging table's rows as columns `c{i}` (the array, unpacked) and,
/// for a column with a typed slot `k{j}`, `k{i}`.
fn stage_rows(ncols: usize, slot_of: &[Option<usize>]) -> String {
    let mut s = String::from("(SELECT _etl_line, _etl_off, _etl_check, _etl_absent");
    for i in 0..ncols {
        let _ = write!(s, ", vals[{}] AS c{i}", i + 1);
        if let Some(j) = slot_of.get(i).copied().flatten() {
            let _ = write!(s, ", k{j} AS k{i}");
        }
    }
    s.push_str(" FROM _etl_stage)");
    s
}

/// Runs statements, mapping a failure to the exit-code contract.
fn exec(c: &mut Client, what: &str, sql: &str) -> Result<()> {
    let t = std::time::Instant::now();
    let done = c.batch_execute(sql).map_err(|e| conn::err(what, &e));
    let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(ms, sql, "{what}: {ms} ms");
    done
}

/// One integer from a query.
fn count(c: &mut Client, what: &str, sql: &str) -> Result<u64> {
    let row = c.query_one(sql, &[]).map_err(|e| conn::err(what, &e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Flags only DuckDB understands, refused (exit 64) unless they come from
/// the environment (an env file shared by both kinds of job).
fn refuse_duckdb_flags(cli: &Cli) -> Result<()> {
    let from_env = |var: &str, v: &str| std::env::var(var).is_ok_and(|e| e == v);
    if let Some(m) = &cli.memory_limit {
        if !from_env("ETL_MEMORY_LIMIT", m) {
            return Err(Error::usage(
                "--memory-limit is DuckDB's memory limit; refused with a PostgreSQL --db",
            ));
        }
    }
    if let Some(t) = cli.threads {
        if !from_env("ETL_THREADS", &t.to_string()) {
            return Err(Error::usage(
                "--threads is DuckDB's worker threads; refused with a PostgreSQL --db",
            ));
        }
    }
    Ok(())
}

/// The table, found case-insensitively (an exact match first), with its
/// columns and their types as `format_type` writes them.
fn find_table(c: &mut Client, table: &Table) -> Result<Option<(Table, Vec<Column>)>> {
    let rows = c
        .query(
            "SELECT n.nspname::text, cl.relname::text, a.attname::text, \
                    format_type(a.atttypid, a.atttypmod) \
             FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_attribute a ON a.attrelid = cl.oid \
             WHERE lower(n.nspname) = lower($1) AND lower(cl.relname) = lower($2) \
               AND cl.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY (n.nspname = $1) DESC, (cl.relname = $2) DESC, n.nspname, cl.relname, a.attnum",
            &[&table.schema, &table.name],
        )
        .map_err(|e| conn::err("reading the catalog", &e))?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let found = Table {
        schema: first.get(0),
        name: first.get(1),
    };
    let cols = rows
        .iter()
        .filter(|r| r.get::<_, String>(0) == found.schema && r.get::<_, String>(1) == found.name)
        .map(|r| Column {
            name: r.get(2),
            ty: r.get(3),
        })
        .collect();
    Ok(Some((found, cols)))
}

fn schema_exists(c: &mut Client, schema: &str) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .map_err(|e| conn::err("reading the catalog", &e))?;
    Ok(row.get(0))
}

/// A PostgreSQL server, connected.
pub(crate) struct Pg {
    c: Client,
    /// What staging left for the merge to know.
    layout: Layout,
}

impl Pg {
    /// Connects (libpq's settings, TLS by `sslmode`), refusing flags only
    /// DuckDB understands.
    pub(crate) fn connect(cli: &Cli, url: &str) -> Result<Self> {
        refuse_duckdb_flags(cli)?;
        let settings = conn::Settings::from_url(url, &conn::process_env)?;
        let c = settings.connect()?;
        tracing::info!(server = %settings.display(), "connected to {}", settings.display());
        Ok(Self {
            c,
            layout: Layout::default(),
        })
    }
}

impl Backend for Pg {
    fn default_schema(&self) -> &'static str {
        "public"
    }

    fn begin(&mut self, table: &Table) -> Result<Option<Vec<Column>>> {
        exec(&mut self.c, "starting the transaction", "BEGIN")?;
        Ok(find_table(&mut self.c, table)?.map(|(_, cols)| cols))
    }

    fn stage(
        &mut self,
        cli: &Cli,
        hints: &[(String, String)],
        existing: &[Column],
        run: &mut Run,
    ) -> Result<Staged> {
        let (staged, layout) = stage_input(&mut self.c, cli, hints, existing, run)?;
        self.layout = layout;
        Ok(staged)
    }

    /// From here to COMMIT, one writer per table: creation, new columns,
    /// the replay check and the merge see each other's committed work.
    fn claim(&mut self, table: &mut Table) -> Result<Option<Vec<Column>>> {
        let lock_key = format!(
            "etl-merge {}.{}",
            table.schema.to_lowercase(),
            table.name.to_lowercase()
        );
        self.c
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&lock_key],
            )
            .map_err(|e| conn::err("waiting for the table's lock", &e))?;
        let existing = match find_table(&mut self.c, table)? {
            Some((t, cols)) => {
                *table = t;
                Some(cols)
            }
            None => None,
        };
        ensure_runs_table(&mut self.c, &table.schema)?;
        Ok(existing)
    }

    fn previous_apply(
        &mut self,
        table: &Table,
        mode: Mode,
        key: &str,
        sha: &str,
    ) -> Result<Option<(String, String)>> {
        let rows = self
            .c
            .query(
                &format!(
                    "SELECT run_id, finished_at::text FROM {}._etl_runs \
                     WHERE \"table\" = $1 AND mode = $2 AND \"key\" = $3 AND input_sha256 = $4 \
                       AND status = 'ok' ORDER BY finished_at DESC LIMIT 1",
                    ident(&table.schema)
                ),
                &[&table.display(), &mode.name(), &key, &sha],
            )
            .map_err(|e| conn::err("reading _etl_runs", &e))?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    fn audit(&mut self, row: &Audit<'_>, alone: bool) -> Result<()> {
        let schema = &row.table.schema;
        let c = &mut self.c;
        if alone {
            exec(c, "starting the audit", "BEGIN")?;
            ensure_runs_table(c, schema)?;
        }
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        c.execute(
            &format!(
                "INSERT INTO {}._etl_runs VALUES ($1, $2, $3, $4, \
                 'epoch'::timestamptz + ($5::bigint || ' microseconds')::interval, \
                 'epoch'::timestamptz + ($6::bigint || ' microseconds')::interval, \
                 $7, $8, $9, $10, $11, $12, $13, $14)",
                ident(schema)
            ),
            &[
                &row.run_id,
                &row.table.display(),
                &row.mode,
                &row.key,
                &row.started,
                &row.finished,
                &i(row.rows_in),
                &i(row.counts.inserted),
                &i(row.counts.updated),
                &i(row.counts.unchanged),
                &i(row.counts.deleted),
                &i(row.rejected),
                &row.sha256,
                &row.status,
            ],
        )
        .map_err(|e| conn::err("writing _etl_runs", &e))?;
        if alone {
            exec(c, "committing the audit", "COMMIT")?;
        }
        Ok(())
    }

    fn count(&mut self, sql: &str) -> Result<u64> {
        count(&mut self.c, "counting rows", sql)
    }

    fn exec(&mut self, what: &str, sql: &str) -> Result<()> {
        exec(&mut self.c, what, sql)
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
        let mut ddl = PgDdl {
            c: &mut self.c,
            mode: cli.mode,
            deferred_key: None,
        };
        let targets = apply::resolve_columns(&mut ddl, cli, table, types, &staged.cols, existing)?;
        let deferred_key = ddl.deferred_key.take();
        let c = &mut self.c;
        let layout = &self.layout;
        let rejected = check_types(c, &targets, staged, layout, run)?;
        let (src, rows) = build_source(c, cli, &targets, staged, layout, staged.rows - rejected)?;
        // A table created by this run is empty: its de-duplicated rows are
        // inserted as they are, and its primary key built once, after them
        // (a sort, not a million index insertions).
        let mode = if deferred_key.is_some() {
            Mode::Append
        } else {
            cli.mode
        };
        let counts = apply_mode(c, cli, mode, table, &targets, staged, &src, rows)?;
        if let Some(pk) = deferred_key {
            exec(
                c,
                "adding the primary key",
                &format!("ALTER TABLE {} ADD {pk}", table.sql()),
            )?;
        }
        Ok((counts, targets))
    }

    fn check_query(&mut self, q: &str) -> Result<()> {
        check_query(&mut self.c, q)
    }

    fn alive(&self) -> bool {
        !self.c.is_closed()
    }

    fn columns(&mut self, table: &Table) -> Result<Option<(Table, Vec<Column>)>> {
        find_table(&mut self.c, table)
    }

    fn emit(&mut self, cols: &[OutCol], from: &str, what: &str, run: &mut Run) -> Result<()> {
        let select: Vec<String> = cols
            .iter()
            .map(|col| format!("{} AS {}", col.expr, ident(&col.name)))
            .collect();
        emit_rows(
            &mut self.c,
            &format!("SELECT {} FROM {from}", select.join(", ")),
            what,
            run,
        )
    }

    fn query(&mut self, q: &str, run: &mut Run, in_tx: bool) -> Result<()> {
        let q = query_text(q)?;
        if !in_tx {
            exec(
                &mut self.c,
                "starting the query transaction",
                "BEGIN READ ONLY",
            )?;
        }
        let result = emit_rows(
            &mut self.c,
            &format!("SELECT * FROM ({q}) AS _etl_q"),
            "--query",
            run,
        );
        if !in_tx {
            let _ = self.c.batch_execute("ROLLBACK");
        }
        result
    }
}

/// What the PostgreSQL staging adds to [`Staged`]: which columns have a
/// typed slot, and whether any value was left for PostgreSQL to decide.
#[derive(Debug, Default)]
struct Layout {
    /// By staged column: its typed slot `k{j}`, if it has one.
    slot_of: Vec<Option<usize>>,
    /// Some staged row has a value the Rust side was not certain of.
    unsure: bool,
    /// By staged column: some value of it went to the text array.
    in_array: Vec<bool>,
}

impl Layout {
    fn slot(&self, i: usize) -> Option<usize> {
        self.slot_of.get(i).copied().flatten()
    }
}

/// Streams stdin into `_etl_stage` through one binary COPY: every column of
/// the table whose type has a binary form gets a typed slot `k{j}` of that
/// type (see [`types::Slot`]); the rest, and values not certain to fit, go
/// to the text array.
fn stage_input(
    c: &mut Client,
    cli: &Cli,
    hints: &[(String, String)],
    table_cols: &[Column],
    run: &mut Run,
) -> Result<(Staged, Layout)> {
    let slots: Vec<(&Column, Slot, Type)> = table_cols
        .iter()
        .filter_map(|col| Slot::of(&col.ty).map(|(s, t)| (col, s, t)))
        .collect();
    let mut create = String::from(
        "CREATE TEMP TABLE _etl_stage (_etl_line bigint, _etl_off bigint, \
         _etl_check boolean, _etl_absent text, vals text[]",
    );
    let mut wire = vec![
        Type::INT8,
        Type::INT8,
        Type::BOOL,
        Type::TEXT,
        Type::TEXT_ARRAY,
    ];
    for (j, (col, _, t)) in slots.iter().enumerate() {
        let _ = write!(create, ", k{j} {}", col.ty);
        wire.push(t.clone());
    }
    create.push_str(") ON COMMIT DROP");
    exec(c, "creating the staging table", &create)?;
    let writer = c
        .copy_in("COPY _etl_stage FROM STDIN (FORMAT binary)")
        .map_err(|e| conn::err("staging records", &e))?;
    let w = copy::CopyRows::new(writer, wire);
    let mut sink = PgSink {
        w: Some(w),
        checks: Vec::new(),
        in_table: Vec::new(),
        table_cols,
        slots: slots
            .iter()
            .map(|(c, s, _)| (c.name.as_str(), *s, false))
            .collect(),
        layout: Layout::default(),
    };
    let spool_dir = std::env::temp_dir();
    let staged = stage::read_input(
        &mut sink,
        &spool_dir,
        std::io::stdin().lock(),
        &cli.key,
        hints,
        run,
    )?;
    Ok((staged, sink.layout))
}

/// Binary COPY rows. A value the Rust side is not certain of (see
/// [`types`]) spools its record, for PostgreSQL to decide after staging.
struct PgSink<'c, 't> {
    w: Option<copy::CopyRows<'c>>,
    /// By column: the check of its type known before staging.
    checks: Vec<Option<Check>>,
    /// By column: the table had it when staging began.
    in_table: Vec<bool>,
    table_cols: &'t [Column],
    /// The typed slots: the table column, its slot, and whether a staged
    /// column took it.
    slots: Vec<(&'t str, Slot, bool)>,
    layout: Layout,
}

impl Sink for PgSink<'_, '_> {
    fn columns(&mut self, cols: &mut [StageCol], first_new: usize) -> Result<()> {
        for col in cols.iter_mut().skip(first_new) {
            let check = col.hint.as_deref().map(Check::of);
            col.takes_any = check.as_ref().is_some_and(Check::takes_any);
            self.checks.push(check);
            let table_col = self
                .table_cols
                .iter()
                .find(|n| n.name.eq_ignore_ascii_case(&col.name));
            self.in_table.push(table_col.is_some());
            // The table's type is the column's hint ([`apply::hints_of`]).
            let slot = table_col
                .filter(|t| {
                    col.hint
                        .as_deref()
                        .is_some_and(|h| types::norm(h) == types::norm(&t.ty))
                })
                .and_then(|t| {
                    self.slots
                        .iter()
                        .position(|(n, _, used)| !used && *n == t.name)
                });
            if let Some(j) = slot {
                self.slots[j].2 = true;
            }
            self.layout.slot_of.push(slot);
            self.layout.in_array.push(false);
        }
        Ok(())
    }

    fn row(
        &mut self,
        line: u64,
        absent: Option<&str>,
        values: &[Option<Cell<'_>>],
        _cols: &mut [StageCol],
        spool: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<()> {
        let mut unsure = false;
        let mut keep = false;
        let mut texts: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(values.len());
        let mut slot_vals: Vec<SlotVal<'_>> = Vec::with_capacity(self.slots.len());
        slot_vals.resize_with(self.slots.len(), || SlotVal::Null);
        for (i, v) in values.iter().enumerate() {
            let check = self.checks[i].as_ref();
            let Some(cell) = v else {
                texts.push(None);
                continue;
            };
            let sure = match check {
                Some(ch) => ch.certain(cell),
                // A column whose type will be inferred: every value fits
                // it, but for a float out of double precision's range.
                None => {
                    !matches!(cell, Cell::Num(t) if t.contains(['e', 'E']) && !Check::Float8.certain(cell))
                }
            };
            unsure |= !sure;
            // A column the table lacks may be created by another writer
            // first, with another type: then every value is checked after
            // all, and a reject needs its line.
            keep |= !self.in_table[i] && !matches!(cell, Cell::Null);
            if sure {
                if let Some(j) = self.layout.slot(i) {
                    if let Some(sv) = self.slots[j].1.value(check, cell) {
                        slot_vals[j] = sv;
                        texts.push(None);
                        continue;
                    }
                }
            }
            let text = types::staged_text(check, cell);
            self.layout.in_array[i] |= text.is_some();
            texts.push(text);
        }
        self.layout.unsure |= unsure;
        let off = if unsure || keep {
            Some(i64::try_from(spool()?).unwrap_or(i64::MAX))
        } else {
            None
        };
        let vals: Option<Vec<Option<&str>>> = texts
            .iter()
            .any(Option::is_some)
            .then(|| texts.iter().map(|t| t.as_deref()).collect());
        let line = i64::try_from(line).unwrap_or(i64::MAX);
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(5 + slot_vals.len());
        row.extend([&line as &(dyn ToSql + Sync), &off, &unsure, &absent, &vals]);
        row.extend(slot_vals.iter().map(|v| v as &(dyn ToSql + Sync)));
        self.w
            .as_mut()
            .ok_or_else(|| Error::internal("staging after the end"))?
            .write(&row)
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.w.take() {
            w.finish()?;
        }
        Ok(())
    }
}

/// `SCHEMA._etl_runs`, created (with its schema) when missing.
fn ensure_runs_table(c: &mut Client, schema: &str) -> Result<()> {
    if !schema_exists(c, schema)? {
        exec(
            c,
            "creating the schema",
            &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)),
        )?;
    }
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace \
             WHERE n.nspname = $1 AND cl.relname = '_etl_runs')",
            &[&schema],
        )
        .map_err(|e| conn::err("reading the catalog", &e))?
        .get(0);
    if exists {
        return Ok(());
    }
    exec(
        c,
        "creating _etl_runs",
        &format!(
            "CREATE TABLE IF NOT EXISTS {}._etl_runs (run_id text, \"table\" text, mode text, \
             \"key\" text, started_at timestamptz, finished_at timestamptz, rows_in bigint, \
             inserted bigint, updated bigint, unchanged bigint, deleted bigint, rejected bigint, \
             input_sha256 text, status text)",
            ident(schema)
        ),
    )
}

/// PostgreSQL's DDL for [`apply::resolve_columns`].
struct PgDdl<'c> {
    c: &'c mut Client,
    mode: Mode,
    /// The `PRIMARY KEY (...)` of a table created here, added after its
    /// first rows.
    deferred_key: Option<String>,
}

impl Ddl for PgDdl<'_> {
    fn create_table(&mut self, table: &Table, defs: &[String], keys: &[&str]) -> Result<()> {
        if !schema_exists(self.c, &table.schema)? {
            exec(
                self.c,
                "creating the schema",
                &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&table.schema)),
            )?;
        }
        let defs = defs.join(", ");
        // The key is the primary key (what ON CONFLICT needs), except for
        // tables that only ever get appended to; added after the rows.
        if !keys.is_empty() && self.mode != Mode::Append {
            let k: Vec<String> = keys.iter().map(|k| ident(k)).collect();
            self.deferred_key = Some(format!("PRIMARY KEY ({})", k.join(", ")));
        }
        self.c
            .batch_execute(&format!("CREATE TABLE {} ({defs})", table.sql()))
            .map_err(|e| conn::err(&format!("creating {}", table.display()), &e))
    }

    fn add_column(&mut self, table: &Table, name: &str, ty: &str) -> Result<()> {
        self.c
            .batch_execute(&format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
                table.sql(),
                ident(name)
            ))
            .map_err(|e| conn::err(&format!("adding column {name:?}"), &e))
    }

    fn inferred(&self, seen: &crate::infer::Seen) -> String {
        types::inferred(seen)
    }
}

/// Whether the values of target `t` were checked against its type while
/// staging (the type was known, or it is the type their values inferred).
fn checked_while_staging(t: &Target, staged: &Staged) -> bool {
    let col = &staged.cols[t.idx];
    let norm = types::norm;
    match &col.hint {
        Some(h) => norm(h) == norm(&t.ty),
        None => norm(&types::inferred(&col.seen)) == norm(&t.ty),
    }
}

/// The SQL of target `t`'s staged text: `c{i}`, or, when the column has a
/// typed slot but its type changed since staging, the slot's value as text
/// where the array has none.
fn text_sql(t: &Target, staged: &Staged, layout: &Layout) -> String {
    match layout.slot(t.idx) {
        Some(_) if !checked_while_staging(t, staged) => {
            format!("COALESCE(c{0}, k{0}::text)", t.idx)
        }
        _ => format!("c{}", t.idx),
    }
}

/// The SQL of target `t`'s value in its type: its typed slot `k{i}` where
/// the Rust side staged it in binary, else the staged text `c{i}`, cast.
fn value_sql(t: &Target, staged: &Staged, layout: &Layout) -> String {
    let v = text_sql(t, staged, layout);
    let check = Check::of(&t.ty);
    // A JSON column whose strings were not staged as JSON (its type was
    // not known while staging): text that is not JSON becomes a JSON string.
    if check == Check::Json && staged.cols[t.idx].hint.is_none() {
        return format!(
            "CASE WHEN pg_temp._etl_is_json({v}) THEN {v}::{ty} ELSE to_jsonb({v})::{ty} END",
            ty = t.ty
        );
    }
    let cast = types::cast_sql(&v, &t.ty);
    match layout.slot(t.idx) {
        Some(_) if checked_while_staging(t, staged) => {
            if layout.in_array.get(t.idx).copied().unwrap_or(true) {
                format!("COALESCE(k{}, {cast})", t.idx)
            } else {
                format!("k{}", t.idx)
            }
        }
        _ => cast,
    }
}

/// Values PostgreSQL refuses for their column become rejects, named by
/// line, column and value, and leave the staging table. Only records the
/// Rust side was not certain of are tried (each value by PostgreSQL's own
/// input function), except for a column whose type changed since staging
/// (another writer created it first), where every value is.
/// Returns how many staged rows became rejects.
fn check_types(
    c: &mut Client,
    targets: &[Target],
    staged: &Staged,
    layout: &Layout,
    run: &mut Run,
) -> Result<u64> {
    let mut conds: Vec<(&Target, String, String)> = Vec::new();
    let mut every_row = false;
    let mut functions = String::new();
    // What [`value_sql`] needs for a JSON column whose type was not known
    // while staging.
    let is_json = "CREATE OR REPLACE FUNCTION pg_temp._etl_is_json (v text) RETURNS boolean \
                   LANGUAGE plpgsql AS $etl$ BEGIN PERFORM v::jsonb; RETURN true; \
                   EXCEPTION WHEN others THEN RETURN false; END $etl$;";
    let mut json = false;
    for t in targets {
        let check = Check::of(&t.ty);
        if check == Check::Json && staged.cols[t.idx].hint.is_none() {
            json = true;
            continue;
        }
        if check.takes_any() {
            continue;
        }
        let f = format!("_etl_fits_{}", t.idx);
        functions.push_str(&types::fits_function(&f, &t.ty));
        functions.push(';');
        let v = text_sql(t, staged, layout);
        let mut cond = format!("{v} IS NOT NULL AND NOT pg_temp.{}({v})", ident(&f));
        if checked_while_staging(t, staged) {
            cond = format!("_etl_check AND {cond}");
        } else {
            every_row = true;
        }
        conds.push((t, format!("({cond})"), v));
    }
    if json {
        functions.push_str(is_json);
    }
    // Nothing to try: every value was certain while staging.
    if conds.is_empty() || !(every_row || layout.unsure) {
        if json {
            exec(c, "preparing the JSON conversion", is_json)?;
        }
        return Ok(0);
    }
    exec(c, "preparing the type checks", &functions)?;
    let mut which = String::from("CASE");
    let mut value = String::from("CASE");
    for (i, (_, cond, v)) in conds.iter().enumerate() {
        let _ = write!(which, " WHEN {cond} THEN {i}");
        let _ = write!(value, " WHEN {cond} THEN {v}");
    }
    which.push_str(" END");
    value.push_str(" END");
    let any: Vec<&str> = conds.iter().map(|(_, c, _)| c.as_str()).collect();
    let sql = format!(
        "SELECT _etl_line, _etl_off, {which}, {value} FROM {} s WHERE {} ORDER BY _etl_line",
        stage_rows(staged.cols.len(), &layout.slot_of),
        any.join(" OR ")
    );
    let bad = c
        .query(&sql, &[])
        .map_err(|e| conn::err("checking column types", &e))?;
    if bad.is_empty() {
        return Ok(0);
    }
    let mut lines: Vec<i64> = Vec::with_capacity(bad.len());
    for r in &bad {
        let line: i64 = r.get(0);
        let off: Option<i64> = r.get(1);
        let col: i32 = r.get(2);
        let value: String = r.get(3);
        let t = conds[usize::try_from(col).unwrap_or(0)].0;
        let name = &staged.cols[t.idx].name;
        let error = format!("column {name:?}: {value:?} is not a valid {}", t.ty.trim());
        let Some(off) = off else {
            return Err(Error::temp_fail(format!(
                "line {line}: {error}, and {} changed type while this run was staging \
                 (another writer created it); nothing was changed: run again",
                t.name
            )));
        };
        run.reject(&Reject {
            line: u64::try_from(line).unwrap_or(0),
            error,
            input: staged.input_at(u64::try_from(off).unwrap_or(0)),
            source: None,
        })?;
        lines.push(line);
    }
    c.execute(
        "DELETE FROM _etl_stage WHERE _etl_line = ANY($1)",
        &[&lines],
    )
    .map(|_| lines.len() as u64)
    .map_err(|e| conn::err("removing rejects", &e))
}

/// The typed source rows (`_etl_line`, `_etl_absent`, `v{i}`) as a
/// subquery, or, when keys repeat, the last record per key materialised in
/// `_etl_src`; and how many rows it has.
fn build_source(
    c: &mut Client,
    cli: &Cli,
    targets: &[Target],
    staged: &Staged,
    layout: &Layout,
    rows: u64,
) -> Result<(String, u64)> {
    let mut select = String::from("_etl_line, _etl_absent");
    for t in targets {
        let _ = write!(select, ", {} AS v{}", value_sql(t, staged, layout), t.idx);
    }
    let typed = format!(
        "(SELECT {select} FROM {} s)",
        stage_rows(staged.cols.len(), &layout.slot_of)
    );
    let keys: Vec<String> = targets
        .iter()
        .filter(|t| t.is_key)
        .map(|t| format!("v{}", t.idx))
        .collect();
    if keys.is_empty() || cli.mode == Mode::Append || staged.keys_increasing {
        return Ok((typed, rows));
    }
    let key_list = keys.join(", ");
    let key_text: Vec<String> = keys.iter().map(|k| format!("{k}::text")).collect();
    let dup = c
        .query(
            &format!(
                "SELECT concat_ws(', ', {}), min(_etl_line), max(_etl_line) FROM {typed} s \
                 GROUP BY {key_list} HAVING count(*) > 1 ORDER BY 2 LIMIT 1",
                key_text.join(", ")
            ),
            &[],
        )
        .map_err(|e| conn::err("checking duplicate keys", &e))?;
    let Some(d) = dup.first() else {
        return Ok((typed, rows));
    };
    if cli.on_duplicate_key == OnDuplicateKey::Fail {
        let names: Vec<&str> = targets
            .iter()
            .filter(|t| t.is_key)
            .map(|t| staged.cols[t.idx].name.as_str())
            .collect();
        let (key, first, last): (String, i64, i64) = (d.get(0), d.get(1), d.get(2));
        return Err(Error::data(format!(
            "duplicate key ({}) = ({key}) on lines {first} and {last} (--on-duplicate-key fail)",
            names.join(", ")
        )));
    }
    exec(
        c,
        "de-duplicating keys",
        &format!(
            "CREATE TEMP TABLE _etl_src ON COMMIT DROP AS SELECT DISTINCT ON ({key_list}) * \
             FROM {typed} s ORDER BY {key_list}, _etl_line DESC"
        ),
    )?;
    let rows = count(c, "counting source rows", "SELECT count(*) FROM _etl_src")?;
    Ok(("_etl_src".into(), rows))
}

/// `_etl_ops` (for `--emit changes`): the written rows as `v{i}`, their
/// `_etl_op` and input line.
fn create_ops(c: &mut Client, table: &Table, targets: &[Target]) -> Result<()> {
    let mut cols: Vec<String> = targets
        .iter()
        .map(|t| format!("t.{} AS v{}", ident(&t.name), t.idx))
        .collect();
    cols.push("''::text AS _etl_op".into());
    cols.push("0::bigint AS _etl_line".into());
    exec(
        c,
        "preparing --emit changes",
        &format!(
            "DROP TABLE IF EXISTS _etl_ops; CREATE TEMP TABLE _etl_ops AS SELECT {} FROM {} t WITH NO DATA",
            cols.join(", "),
            table.sql()
        ),
    )
}

/// Applies the source rows to the table by mode.
#[allow(clippy::too_many_arguments)]
fn apply_mode(
    c: &mut Client,
    cli: &Cli,
    mode: Mode,
    table: &Table,
    targets: &[Target],
    staged: &Staged,
    src: &str,
    rows: u64,
) -> Result<Counts> {
    let t_sql = table.sql();
    let col_list: Vec<String> = targets.iter().map(|t| ident(&t.name)).collect();
    let v_list: Vec<String> = targets.iter().map(|t| format!("s.v{}", t.idx)).collect();
    let emit_changes = cli.emit == Emit::Changes && cli.query.is_none();
    if emit_changes {
        create_ops(c, table, targets)?;
    }
    match mode {
        Mode::Append | Mode::Replace => {
            let deleted = if mode == Mode::Replace {
                let n = count(c, "counting rows", &format!("SELECT count(*) FROM {t_sql}"))?;
                exec(c, "emptying the table", &format!("DELETE FROM {t_sql}"))?;
                n
            } else {
                0
            };
            let insert = format!(
                "INSERT INTO {t_sql} ({}) SELECT {} FROM {src} s",
                col_list.join(", "),
                v_list.join(", ")
            );
            let inserted = if emit_changes {
                let vs: Vec<String> = targets.iter().map(|t| format!("v{}", t.idx)).collect();
                c.execute(
                    &format!(
                        "INSERT INTO _etl_ops SELECT {}, 'insert', _etl_line FROM {src} s",
                        vs.join(", ")
                    ),
                    &[],
                )
                .map_err(|e| conn::err("preparing --emit changes", &e))?;
                c.execute(&insert, &[])
            } else {
                c.execute(&insert, &[])
            }
            .map_err(|e| conn::err("inserting rows", &e))?;
            Ok(Counts {
                inserted,
                deleted,
                ..Counts::default()
            })
        }
        Mode::Merge | Mode::InsertNew => {
            merge_rows(c, cli, table, targets, staged, src, rows, emit_changes)
        }
    }
}

/// Whether the table has a primary key or unique index on exactly `keys`
/// (what `ON CONFLICT` needs).
fn has_key_index(c: &mut Client, table: &Table, keys: &[&str]) -> Result<bool> {
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort();
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i \
             WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass \
               AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
               AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a \
                    WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = $3)",
            &[&table.schema, &table.name, &sorted],
        )
        .map_err(|e| conn::err("reading the table's indexes", &e))?;
    Ok(row.get(0))
}

/// `merge` and `insert-new`: one `INSERT ... ON CONFLICT`,
/// retried on a serialization failure or deadlock (from writers other than
/// etl-merge: etl-merge's own writers wait for the table's lock).
#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn merge_rows(
    c: &mut Client,
    cli: &Cli,
    table: &Table,
    targets: &[Target],
    staged: &Staged,
    src: &str,
    rows: u64,
    emit_changes: bool,
) -> Result<Counts> {
    let keys: Vec<&Target> = targets.iter().filter(|t| t.is_key).collect();
    let key_names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    if !has_key_index(c, table, &key_names)? {
        return Err(Error::data(format!(
            "{} has no primary key or unique index on ({}), which an upsert needs: \
             CREATE UNIQUE INDEX ON {} ({})",
            table.display(),
            key_names.join(", "),
            table.sql(),
            key_names
                .iter()
                .map(|k| ident(k))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let t_sql = table.sql();
    let col_list: Vec<String> = targets.iter().map(|t| ident(&t.name)).collect();
    // A record that lacks a column keeps the row's value: joined to the
    // table only when some record lacked one.
    let mut join = String::new();
    let mut vals = Vec::with_capacity(targets.len());
    for t in targets {
        let sv = format!("s.v{}", t.idx);
        match staged.cols[t.idx].absent_sql(t.idx, "s") {
            Some(a) if !t.is_key => {
                if join.is_empty() {
                    let on: Vec<String> = keys
                        .iter()
                        .map(|k| format!("o.{} = s.v{}", ident(&k.name), k.idx))
                        .collect();
                    join = format!(" LEFT JOIN {t_sql} o ON {}", on.join(" AND "));
                }
                vals.push(format!(
                    "CASE WHEN {a} AND o.{k} IS NOT NULL THEN o.{c} ELSE {sv} END",
                    k = ident(&keys[0].name),
                    c = ident(&t.name)
                ));
            }
            _ => vals.push(sv),
        }
    }
    let conflict: Vec<String> = keys.iter().map(|k| ident(&k.name)).collect();
    let others: Vec<&Target> = targets.iter().filter(|t| !t.is_key).collect();
    let action = if cli.mode == Mode::InsertNew || others.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        let sets: Vec<String> = others
            .iter()
            .map(|t| format!("{0} = EXCLUDED.{0}", ident(&t.name)))
            .collect();
        let old: Vec<String> = others
            .iter()
            .map(|t| types::comparable(&format!("t.{}", ident(&t.name)), &t.ty))
            .collect();
        let new: Vec<String> = others
            .iter()
            .map(|t| types::comparable(&format!("EXCLUDED.{}", ident(&t.name)), &t.ty))
            .collect();
        // Equal rows are not written: no new row version, no dead tuple.
        format!(
            "DO UPDATE SET {} WHERE (ROW({})) IS DISTINCT FROM (ROW({}))",
            sets.join(", "),
            old.join(", "),
            new.join(", ")
        )
    };
    let mut returning = String::from("(t.xmax = 0) AS _etl_ins");
    if emit_changes {
        for t in targets {
            let _ = write!(returning, ", t.{} AS v{}", ident(&t.name), t.idx);
        }
    }
    // No ORDER BY: etl-merge's own writers take turns on the table's lock,
    // and a deadlock with another writer is retried below; sorting 1M rows
    // for a lock order cost a fifth of the merge.
    let upsert = format!(
        "INSERT INTO {t_sql} AS t ({}) SELECT {} FROM {src} s{join} \
         ON CONFLICT ({}) {action} RETURNING {returning}",
        col_list.join(", "),
        vals.join(", "),
        conflict.join(", ")
    );
    let sql = if emit_changes {
        let vs: Vec<String> = targets.iter().map(|t| format!("m.v{}", t.idx)).collect();
        let on: Vec<String> = keys
            .iter()
            .map(|k| format!("m.v{0} = s.v{0}", k.idx))
            .collect();
        format!(
            "WITH m AS ({upsert}), w AS (INSERT INTO _etl_ops SELECT {}, \
             CASE WHEN m._etl_ins THEN 'insert' ELSE 'update' END, s._etl_line \
             FROM m JOIN {src} s ON {}) \
             SELECT count(*) FILTER (WHERE _etl_ins), count(*) FILTER (WHERE NOT _etl_ins) FROM m",
            vs.join(", "),
            on.join(" AND ")
        )
    } else {
        format!(
            "WITH m AS ({upsert}) \
             SELECT count(*) FILTER (WHERE _etl_ins), count(*) FILTER (WHERE NOT _etl_ins) FROM m"
        )
    };
    let backoff = etl_core::retry::Backoff {
        base: std::time::Duration::from_millis(100),
        cap: std::time::Duration::from_secs(2),
    };
    let attempts = 5;
    for attempt in 0..attempts {
        exec(c, "merging", "SAVEPOINT _etl_merge")?;
        match c.query_one(&sql, &[]) {
            Ok(r) => {
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                let inserted = n(r.get(0));
                let updated = n(r.get(1));
                return Ok(Counts {
                    inserted,
                    updated,
                    unchanged: rows.saturating_sub(inserted + updated),
                    deleted: 0,
                });
            }
            Err(e) if conn::is_retryable(&e) && attempt + 1 < attempts => {
                exec(c, "merging", "ROLLBACK TO SAVEPOINT _etl_merge")?;
                let d = backoff.delay(attempt, None);
                tracing::warn!(
                    attempt,
                    "merging into {}: {}; retrying in {} ms",
                    table.display(),
                    e,
                    d.as_millis()
                );
                std::thread::sleep(d);
            }
            Err(e) => return Err(conn::err(&format!("merging into {}", table.display()), &e)),
        }
    }
    Err(Error::internal("merge retries exhausted"))
}

/// `--query`: checked before COMMIT (a bad query changes nothing).
fn check_query(c: &mut Client, q: &str) -> Result<()> {
    let q = query_text(q)?;
    c.prepare(&format!("SELECT * FROM ({q}) AS _etl_q"))
        .map(|_| ())
        .map_err(|e| Error::usage(format!("--query: {}", conn_text(&e))))
}

fn conn_text(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

/// Writes the rows of `SELECT ... FROM (select) r` as records, each made by
/// PostgreSQL's `row_to_json` (exact numerics as numbers, booleans, JSON
/// columns embedded, timestamps in ISO 8601), rows streamed as they come.
fn emit_rows(c: &mut Client, select: &str, what: &str, run: &mut Run) -> Result<()> {
    let sql = emit_sql(c, select, what)?;
    let mut rows = c
        .query_raw(&sql, std::iter::empty::<&(dyn ToSql + Sync)>())
        .map_err(|e| Error::usage(format!("{what}: {}", conn_text(&e))))?;
    let mut out = etl_core::RecordWriter::stdout();
    while let Some(row) = rows.next().map_err(|e| conn::err(what, &e))? {
        let text: String = row.get(0);
        let rec = etl_core::record::parse_record(&text)
            .map_err(|e| Error::internal(format!("{what}: PostgreSQL's JSON: {}", e.0)))?;
        out.write_with(|buf| etl_core::record::write_record(buf, &rec))
            .map_err(|e| Error::stdout(&e))?;
        run.records_out += 1;
    }
    out.flush().map_err(|e| Error::stdout(&e))?;
    std::io::stdout().flush().map_err(|e| Error::stdout(&e))
}

/// The query that turns each row of `select` into one JSON object. A
/// timestamp is written as its text (`2026-11-21 08:30:00`, with DateStyle's
/// output set to ISO), as DuckDB's JSON writes it, not as `row_to_json`'s
/// `2026-11-21T08:30:00`: one `--emit` format whichever the backend.
fn emit_sql(c: &mut Client, select: &str, what: &str) -> Result<String> {
    let plain = format!("SELECT row_to_json(_etl_r)::text FROM ({select}) AS _etl_r");
    let stmt = c
        .prepare(&format!("SELECT * FROM ({select}) AS _etl_r"))
        .map_err(|e| Error::usage(format!("{what}: {}", conn_text(&e))))?;
    let cols = stmt.columns();
    let is_ts = |t: &Type| *t == Type::TIMESTAMP || *t == Type::TIMESTAMPTZ;
    if !cols.iter().any(|col| is_ts(col.type_())) {
        return Ok(plain);
    }
    exec(c, what, "SET DateStyle = ISO")?;
    // Columns renamed by position: a --query may repeat a name.
    let aliases: Vec<String> = (0..cols.len()).map(|i| format!("_etl_c{i}")).collect();
    let proj: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let cast = if is_ts(col.type_()) { "::text" } else { "" };
            format!("_etl_c{i}{cast} AS {}", ident(col.name()))
        })
        .collect();
    Ok(format!(
        "SELECT row_to_json(_etl_x)::text FROM (SELECT {} FROM ({select}) AS _etl_r({})) AS _etl_x",
        proj.join(", "),
        aliases.join(", ")
    ))
}
