//! Helpers for the etl-parse integration tests: run the real binary.
// Test helpers panic on purpose, and not every test file uses every helper.
#![allow(dead_code, clippy::missing_panics_doc, missing_debug_implementations)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use etl_core::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-parse");

/// The shared corpora (a test fails when they are absent).
pub fn corpora() -> PathBuf {
    etl_testkit::corpora("")
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

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
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("ETL_LOG_FORMAT", "json")
        .env_remove("ETL_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = si.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn run(args: &[&str], stdin: &[u8]) -> Out {
    run_in(Path::new("."), args, stdin)
}

/// A small xorshift generator: random tests are replayable from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}
