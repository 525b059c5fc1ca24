//! Helpers for the etl-parse integration tests: run the real binary.
// Test helpers panic on purpose, and not every test file uses every helper.
#![allow(dead_code, clippy::missing_panics_doc, missing_debug_implementations)]

use std::path::{Path, PathBuf};

use etl_core::Value;
use etl_testkit::{Cmd, Out as Ran};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-parse");

/// The shared corpora (a test fails when they are absent).
pub fn corpora() -> PathBuf {
    etl_testkit::corpora("")
}

etl_testkit::wrapper!(
    /// A run of etl-parse: the shared harness's [`Ran`] (code, stdout, stderr, `.succeeds()`, `.fails_with()`), read as etl-parse's records.
    Out(Ran)
);

impl Out {
    /// stdout as records (each line must be a JSON object).
    pub fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                Value::parse(l).unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}"))
            })
            .collect()
    }
    /// Each record's values as text, in key order.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.records()
            .into_iter()
            .map(|r| match r {
                Value::Object(m) => m.values().flat_map(flatten).collect(),
                other => panic!("not an object: {other:?}"),
            })
            .collect()
    }
    pub fn json_lines(&self) -> Vec<String> {
        self.records().iter().map(Value::to_json).collect()
    }
    pub fn logged(&self, needle: &str) -> bool {
        self.stderr.contains(needle)
    }
}

/// A value as text; an `_extra` array contributes each of its items.
fn flatten(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(Value::to_raw_text).collect(),
        other => vec![other.to_raw_text()],
    }
}

pub fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Out {
    Out(Cmd::new(BIN).current_dir(dir).args(args).stdin(stdin).run())
}

pub fn run(args: &[&str], stdin: &[u8]) -> Out {
    run_in(Path::new("."), args, stdin)
}

/// A temporary directory the binary runs in.
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn write(&self, name: &str, bytes: &[u8]) -> &Self {
        std::fs::write(self.path().join(name), bytes).unwrap();
        self
    }
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }
    pub fn run(&self, args: &[&str]) -> Out {
        run_in(self.path(), args, b"")
    }
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        run_in(self.path(), args, stdin)
    }
}
