//! Helpers for etl-merge's integration tests: run the real binary against a
//! real DuckDB file in a scratch directory, or against a real PostgreSQL
//! server (a throwaway cluster), and read the result back with the
//! database itself (plain SQL through DuckDB or psql, not etl-merge's code).
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::new_without_default,
    missing_debug_implementations
)]

use std::path::PathBuf;
use std::process::Command;

use etl_testkit::pg::Cluster;
use etl_testkit::Cmd;
pub use etl_testkit::Out;

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-merge");

/// One test body, run once against each backend: `NAME::duckdb` on a
/// DuckDB file and `NAME::postgres` on a throwaway PostgreSQL cluster.
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* fn $name:ident($s:ident) $body:block) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($s: &Scratch) $body

            #[test]
            fn duckdb() {
                case(&Scratch::new());
            }

            #[test]
            fn postgres() {
                case(&Scratch::pg());
            }
        }
    };
}

/// A scratch directory, and the database: a DuckDB file in it, or a
/// PostgreSQL cluster of its own.
#[derive(Debug)]
pub struct Scratch {
    base: etl_testkit::Scratch,
    pg: Option<Cluster>,
}

impl std::ops::Deref for Scratch {
    type Target = etl_testkit::Scratch;
    fn deref(&self) -> &etl_testkit::Scratch {
        &self.base
    }
}

impl Scratch {
    /// A DuckDB file, `w.duckdb`.
    pub fn new() -> Self {
        Self {
            base: etl_testkit::Scratch::new(),
            pg: None,
        }
    }
    /// A PostgreSQL cluster (verify-full TLS, SCRAM), database `postgres`.
    pub fn pg() -> Self {
        Self {
            base: etl_testkit::Scratch::new(),
            pg: Some(Cluster::start()),
        }
    }
    pub fn is_pg(&self) -> bool {
        self.pg.is_some()
    }
    pub fn db(&self) -> PathBuf {
        self.path("w.duckdb")
    }
    /// What `--db` gets.
    pub fn db_arg(&self) -> String {
        match &self.pg {
            Some(cl) => cl.url("postgres", "verify-full"),
            None => self.db().display().to_string(),
        }
    }
    /// The schema a table lands in without `--schema`.
    pub fn schema(&self) -> &'static str {
        if self.is_pg() {
            "public"
        } else {
            "main"
        }
    }
    /// A DuckDB type name as this backend names the same type (what
    /// `format_type()` prints on PostgreSQL).
    pub fn ty(&self, duckdb: &str) -> String {
        if !self.is_pg() {
            return duckdb.to_owned();
        }
        match duckdb {
            "BIGINT" => "bigint".into(),
            "INTEGER" => "integer".into(),
            "VARCHAR" => "text".into(),
            "BOOLEAN" => "boolean".into(),
            "DOUBLE" => "double precision".into(),
            "DATE" => "date".into(),
            "TIMESTAMP" => "timestamp without time zone".into(),
            "JSON" => "jsonb".into(),
            d => match d.strip_prefix("DECIMAL") {
                Some(ps) => format!("numeric{ps}"),
                None => panic!("no PostgreSQL name for {d}"),
            },
        }
    }
    /// `name:TYPE` pairs, each type as this backend names it.
    pub fn native(&self, cols: &[&str]) -> Vec<String> {
        cols.iter()
            .map(|c| {
                let (n, t) = c.split_once(':').unwrap();
                format!("{n}:{}", self.ty(t))
            })
            .collect()
    }
    /// Runs SQL statements on the database (as a user would, by hand).
    pub fn exec(&self, sql: &str) {
        match &self.pg {
            Some(cl) => {
                cl.psql("postgres", sql);
            }
            None => self.conn().execute_batch(sql).unwrap(),
        }
    }
    /// The PostgreSQL cluster (a test that asked for [`Scratch::pg`]).
    pub fn cluster(&self) -> &Cluster {
        self.pg.as_ref().expect("a PostgreSQL scratch")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_at(&self.db_arg(), args)
    }
    /// etl-merge with `--db db` and a clean environment (no `ETL_*`
    /// settings, no `PG*` variables, `HOME` the scratch directory).
    pub fn cmd_at(&self, db: &str, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .arg("--db")
            .arg(db)
            .args(args)
            .env("ETL_LOG_FORMAT", "json")
            .env("HOME", self.dir.path());
        for v in [
            "ETL_RUN_ID",
            "ETL_DB",
            "ETL_LOG",
            "ETL_MEMORY_LIMIT",
            "ETL_THREADS",
            "ETL_MERGE_PAUSE_AT",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSSLMODE",
            "PGSSLROOTCERT",
        ] {
            c.env_remove(v);
        }
        c
    }
    /// Runs etl-merge on the scratch database with `stdin`.
    pub fn merge(&self, args: &[&str], stdin: &str) -> Out {
        run_cmd(self.cmd(args), stdin.as_bytes())
    }
    /// Creates table `t` keyed by `id` from the record `first`, with the
    /// column types `types` (`--types`); the run must succeed.
    pub fn create_typed(&self, types: &str, first: &str) {
        let out = self.merge(&["--table", "t", "--key", "id", "--types", types], first);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    /// [`Scratch::merge`] with `ETL_LOG=debug`, for tests that read which
    /// path a run took from its log.
    pub fn merge_logged(&self, args: &[&str], stdin: &str) -> Out {
        let mut cmd = self.cmd(args);
        cmd.env("ETL_LOG", "debug");
        run_cmd(cmd, stdin.as_bytes())
    }
    /// Merges `stdin` into `table` keyed by `id` with room for `max`
    /// rejects; the run and the rejects file's records.
    pub fn merge_with_rejects(
        &self,
        table: &str,
        max: u32,
        stdin: &str,
    ) -> (Out, Vec<serde_json::Value>) {
        let rejects = self.path("rejects.ndjson");
        let max = max.to_string();
        let args = [
            "--table",
            table,
            "--key",
            "id",
            "--max-rejects",
            &max,
            "--rejects",
            rejects.to_str().unwrap(),
        ];
        let out = self.merge(&args, stdin);
        let rej = std::fs::read_to_string(&rejects)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out, rej)
    }
    /// Opens the database with DuckDB (after etl-merge exited).
    pub fn conn(&self) -> duckdb::Connection {
        duckdb::Connection::open(self.db()).unwrap()
    }
    /// Rows of `sql` as text (NULL as "NULL"), one string per row, columns
    /// joined by '|'. On PostgreSQL each value is its JSON text (booleans
    /// `true`/`false`, numbers as the type prints them), as DuckDB's cast to
    /// VARCHAR writes them.
    pub fn rows(&self, sql: &str) -> Vec<String> {
        if let Some(cl) = &self.pg {
            let out = cl.psql(
                "postgres",
                &format!(
                    "SELECT coalesce((SELECT string_agg(coalesce(x.v, 'NULL'), '|' ORDER BY x.n) \
                     FROM json_each_text(row_to_json(q)) WITH ORDINALITY AS x(k, v, n)), '') \
                     FROM ({sql}) q"
                ),
            );
            return out.lines().map(str::to_owned).collect();
        }
        let conn = self.conn();
        // Every column as DuckDB's own text rendering (a projection keeps the order).
        let sql = format!("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM ({sql})");
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            let n = r.as_ref().column_count();
            let cells: Vec<String> = (0..n)
                .map(|i| {
                    r.get::<_, Option<String>>(i)
                        .unwrap()
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect();
            out.push(cells.join("|"));
        }
        out
    }
    /// `column_name:data_type` of a table, in order.
    pub fn types(&self, table: &str) -> Vec<String> {
        if self.is_pg() {
            return self.rows(&format!(
                "SELECT attname || ':' || format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ));
        }
        self.rows(&format!(
            "SELECT column_name || ':' || data_type FROM information_schema.columns \
             WHERE table_name = '{table}' ORDER BY ordinal_position"
        ))
    }
}

/// Runs `c` with `stdin` through the shared harness.
pub fn run_cmd(c: Command, stdin: &[u8]) -> Out {
    Cmd::from(c).stdin(stdin).run()
}
