//! Helpers shared by the integration tests: run the real binary with an
//! isolated working directory, environment and stdin.
// Test helpers panic on purpose (a failed assertion is the point) and not
// every test file uses every helper.
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::new_without_default,
    missing_debug_implementations
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-checkpoint");

/// A scratch directory holding a state file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The JSON log lines on stderr.
    pub fn logs(&self) -> Vec<etl_core::Value> {
        self.stderr
            .lines()
            .map(|l| etl_core::Value::parse(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }
    pub fn log_with(&self, needle: &str) -> bool {
        self.stderr.lines().any(|l| l.contains(needle))
    }
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
    pub fn state(&self) -> PathBuf {
        self.path("state.json")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("ETL_RUN_ID")
            .env_remove("ETL_STATE")
            .env_remove("ETL_LOG")
            .env_remove("ETL_TIMEZONE")
            .env("ETL_LOG_FORMAT", "json");
        c
    }
    /// Runs with `stdin` and optional extra env.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut si = child.stdin.take().unwrap();
        let input = stdin.as_bytes().to_vec();
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
    pub fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_env(args, &[], stdin)
    }
    /// `filter` with the state file and a run id.
    pub fn filter(&self, run_id: &str, extra: &[&str], stdin: &str) -> Out {
        let state = self.state();
        let mut args = vec!["filter", "--state", state.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run_env(&args, &[("ETL_RUN_ID", run_id)], stdin)
    }
    pub fn commit(&self, run_id: &str) -> Out {
        let state = self.state();
        self.run(
            &[
                "commit",
                "--state",
                state.to_str().unwrap(),
                "--run-id",
                run_id,
            ],
            "",
        )
    }
    pub fn get(&self, key: &str) -> Out {
        let state = self.state();
        self.run(&["get", "--state", state.to_str().unwrap(), key], "")
    }
    pub fn state_json(&self) -> etl_core::Value {
        etl_core::Value::parse(&std::fs::read_to_string(self.state()).unwrap()).unwrap()
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
