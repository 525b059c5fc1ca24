//! etl-transform's side of the shared harness (`etl_testkit`): the real
//! binary in a scratch directory, isolated from the caller's settings.
// Test helpers panic on purpose (a failed assertion is the point) and not
// every test file uses every helper.
#![allow(dead_code, clippy::missing_panics_doc, clippy::new_without_default)]

use etl_testkit::{Cmd, Out as Ran};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-transform");

etl_testkit::wrapper!(
    /// A scratch working directory (the shared one).
    Scratch(etl_testkit::Scratch)
);

etl_testkit::wrapper!(
    /// A run: the shared harness's [`Ran`], with the summary as etl-core reads it.
    Out(Ran)
);

impl Out {
    /// The `summary` log event, as an etl-core value.
    pub fn summary(&self) -> etl_core::Value {
        etl_core::Value::parse(&self.0.summary().to_string()).expect("the summary is JSON")
    }
}

impl Scratch {
    pub fn new() -> Self {
        Self(etl_testkit::Scratch::new())
    }
    /// etl-transform in the scratch directory, without the caller's
    /// spec, salt or time zone.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .env_remove("ETL_MASK_SALT")
            .env_remove("ETL_MASK_SALT_FILE")
            .env_remove("ETL_TRANSFORM_SPEC")
    }
    /// Runs with `stdin` bytes and extra env; never an internal error.
    pub fn run_bytes(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Out {
        let out = self.cmd(args).envs(env).stdin(stdin).run();
        assert_ne!(out.code, 70, "internal error: {}", out.stderr);
        Out(out)
    }
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        self.run_bytes(args, env, stdin.as_bytes())
    }
    pub fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_env(args, &[], stdin)
    }
}
