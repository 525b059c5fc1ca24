//! Helpers shared by the integration tests: run the real binary with an
//! isolated working directory, environment and stdin.
// Test helpers panic on purpose (a failed assertion is the point) and not
// every test file uses every helper.
#![allow(dead_code, clippy::missing_panics_doc, clippy::new_without_default)]

use std::path::{Path, PathBuf};

use etl_testkit::Cmd;
pub use etl_testkit::Out;

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-checkpoint");

etl_testkit::wrapper!(
    /// A scratch directory holding a state file (the shared one).
    Scratch(etl_testkit::Scratch)
);

impl Scratch {
    pub fn new() -> Self {
        Self(etl_testkit::Scratch::new())
    }
    pub fn state(&self) -> PathBuf {
        self.path("state.json")
    }
    /// etl-checkpoint in the scratch directory, without the caller's state.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(BIN).current_dir(self.dir.path()).args(args)
    }
    /// Runs with `stdin` and optional extra env.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        self.cmd(args).envs(env).stdin(stdin).run()
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
