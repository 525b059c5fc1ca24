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
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-transform");

/// A scratch working directory.
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
    /// The `summary` log event.
    pub fn summary(&self) -> etl_core::Value {
        self.logs()
            .into_iter()
            .find(|l| l.to_json().contains("\"msg\":\"summary\""))
            .unwrap_or_else(|| panic!("no summary in {}", self.stderr))
    }
    /// The error message of a failed run.
    pub fn error(&self) -> String {
        self.logs()
            .into_iter()
            .filter_map(|l| match l {
                etl_core::Value::Object(m)
                    if m.get("level").and_then(|v| v.as_str()) == Some("error")
                        && m.get("msg").and_then(|v| v.as_str()) != Some("summary") =>
                {
                    m.get("msg").and_then(|v| v.as_str()).map(str::to_owned)
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    /// stdout as one compact JSON per line.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
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
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("ETL_RUN_ID")
            .env_remove("ETL_LOG")
            .env_remove("ETL_TIMEZONE")
            .env_remove("ETL_MASK_SALT")
            .env_remove("ETL_MASK_SALT_FILE")
            .env_remove("ETL_TRANSFORM_SPEC")
            .env("ETL_LOG_FORMAT", "json");
        c
    }
    /// Runs with `stdin` bytes and extra env.
    pub fn run_bytes(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Out {
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
        let out = Out {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        };
        assert_ne!(out.code, 70, "internal error (a panic?): {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        out
    }
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        self.run_bytes(args, env, stdin.as_bytes())
    }
    pub fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_env(args, &[], stdin)
    }
}
