//! Helpers for etl-merge's integration tests: run the real binary against a
//! real DuckDB file in a scratch directory, and read the result back with
//! DuckDB itself (plain SQL, not etl-merge's code).
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::new_without_default,
    missing_debug_implementations
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-merge");

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
    pub fn log_with(&self, needle: &str) -> bool {
        self.stderr.lines().any(|l| l.contains(needle))
    }
    pub fn summary(&self) -> serde_json::Value {
        etl_testkit::summary(&self.stderr)
    }
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
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

pub fn run_cmd(mut c: Command, stdin: &[u8]) -> Out {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = si.write_all(&input);
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}
