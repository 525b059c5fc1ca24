//! Helpers for etl-merge's integration tests: run the real binary against a
//! real DuckDB file in a scratch directory, and read the result back with
//! DuckDB itself (plain SQL, not etl-merge's code).
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::new_without_default,
    missing_debug_implementations
)]

use std::path::PathBuf;
use std::process::Command;

use etl_testkit::Cmd;
pub use etl_testkit::Out;

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-merge");

etl_testkit::wrapper!(
    /// A scratch directory holding the database (the shared one).
    Scratch(etl_testkit::Scratch)
);

impl Scratch {
    pub fn new() -> Self {
        Self(etl_testkit::Scratch::new())
    }
    pub fn db(&self) -> PathBuf {
        self.path("w.duckdb")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env_remove("ETL_RUN_ID")
            .env_remove("ETL_DB")
            .env_remove("ETL_LOG")
            .env_remove("ETL_MEMORY_LIMIT")
            .env_remove("ETL_THREADS")
            .env("ETL_LOG_FORMAT", "json");
        c
    }
    /// Runs etl-merge on the scratch database with `stdin`.
    pub fn merge(&self, args: &[&str], stdin: &str) -> Out {
        run_cmd(self.cmd(args), stdin.as_bytes())
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
    /// Rows of `sql` as text (NULL as "NULL"), one string per row, columns joined by '|'.
    pub fn rows(&self, sql: &str) -> Vec<String> {
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
