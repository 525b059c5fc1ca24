//! The test harness every crate's tests share, so each helper is written
//! once. A dev-dependency only: nothing here ships in a command.
//!
//! - [`Cmd`]: a command under test (the real binary, its arguments,
//!   environment and stdin, isolated from the caller's `ETL_*` settings),
//!   run to an [`Out`]; `.succeeds()`, `.fails_with(65)` and `.stdout_is()`
//!   show the command's stderr and a line diff of expected and actual
//!   output when they fail (as ripgrep's `eqnice!` and coreutils'
//!   `new_ucmd!()` do).
//! - [`Scratch`]: a scratch directory.
//! - [`Rng`]: the one seeded generator of the random tests (replayable
//!   from the seed they print).
//! - [`corpora`], [`shared`]: the shared fixtures, a failure when absent.
//! - [`pg::Cluster`]: a throwaway PostgreSQL server with TLS, for the
//!   PostgreSQL backend's tests.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub mod pg;

/// The environment variables of the shared contract a test must not
/// inherit from the shell that runs it.
const ISOLATED: &[&str] = &[
    "ETL_LOG",
    "ETL_RUN_ID",
    "ETL_TIMEZONE",
    "ETL_STATE",
    "ETL_ENV_FILE",
    "ETL_REJECTS",
    "ETL_MAX_REJECTS",
];

/// A command under test.
#[derive(Debug)]
pub struct Cmd {
    cmd: Command,
    stdin: Vec<u8>,
}

impl Cmd {
    /// `bin`, logging JSON lines (`ETL_LOG_FORMAT=json`), with none of the
    /// caller's contract variables (`ETL_LOG`, `ETL_RUN_ID`, ...).
    pub fn new(bin: impl AsRef<OsStr>) -> Self {
        let mut cmd = Command::new(bin);
        for v in ISOLATED {
            cmd.env_remove(v);
        }
        cmd.env("ETL_LOG_FORMAT", "json");
        Self {
            cmd,
            stdin: Vec::new(),
        }
    }

    /// One argument.
    #[must_use]
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    /// Arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// One environment variable.
    #[must_use]
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Environment variables.
    #[must_use]
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        self.cmd.envs(vars.iter().copied());
        self
    }

    /// Without an inherited environment variable.
    #[must_use]
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(k);
        self
    }

    /// In a working directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Fed these bytes on stdin (none by default: an empty stdin).
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = input.into();
        self
    }

    /// The command as `std` builds it, for what the builder lacks.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Runs it to the end. stdin is fed from a thread, so an input larger
    /// than a pipe cannot deadlock against a full stdout.
    ///
    /// # Panics
    /// When it cannot start, when stdout is not UTF-8, or when it panicked
    /// (exit 101 or `panicked at` on stderr): no input may panic a command.
    pub fn run(mut self) -> Out {
        let shown = format!("{:?}", self.cmd);
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        let mut si = child.stdin.take().expect("piped stdin");
        let input = std::mem::take(&mut self.stdin);
        let feeder = std::thread::spawn(move || {
            // A command that exits without reading all of it is not an error here.
            let _ = si.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait for the command");
        feeder.join().expect("stdin feeder");
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout)
                .unwrap_or_else(|e| panic!("{shown}: stdout is not UTF-8: {e}")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            shown,
        };
        assert!(
            out.code != 101 && !out.stderr.contains("panicked at"),
            "{} panicked:\n{}",
            out.shown,
            out.stderr
        );
        out
    }
}

impl From<Command> for Cmd {
    /// A command built elsewhere (a test's own `Command`), run by the
    /// harness as it is: no isolation added.
    fn from(cmd: Command) -> Self {
        Self {
            cmd,
            stdin: Vec::new(),
        }
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Out {
    /// The exit code (-1 when a signal ended it).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr (lossy UTF-8).
    pub stderr: String,
    /// The command as it was run, for failure messages.
    shown: String,
}

impl Out {
    /// Asserts exit 0.
    ///
    /// # Panics
    /// Otherwise, showing the command, its exit code and its stderr.
    #[track_caller]
    pub fn succeeds(&self) -> &Self {
        self.fails_with(0)
    }

    /// Asserts exit `code` (64 usage, 65 data, 69 unavailable, ...).
    ///
    /// # Panics
    /// Otherwise, showing the command, its exit code and its stderr.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &Self {
        assert!(
            self.code == code,
            "{}\nexit code: expected {code}, got {}\n--- stderr ---\n{}",
            self.shown,
            self.code,
            self.stderr
        );
        self
    }

    /// Asserts stdout is exactly `expected`.
    ///
    /// # Panics
    /// Otherwise, with a line diff of the two and the stderr.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert!(
            self.stdout == expected,
            "{}\nstdout differs (- expected, + actual):\n{}--- stderr ---\n{}",
            self.shown,
            diff(expected, &self.stdout),
            self.stderr
        );
        self
    }

    /// stdout's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stdout as JSON values, one per line.
    ///
    /// # Panics
    /// At a line that is not JSON.
    pub fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout {l:?}: {e}")))
            .collect()
    }

    /// The JSON log lines on stderr.
    ///
    /// # Panics
    /// At a line that is not JSON.
    pub fn logs(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }

    /// True when a stderr line contains `needle`.
    pub fn log_with(&self, needle: &str) -> bool {
        self.stderr.lines().any(|l| l.contains(needle))
    }

    /// The `summary` log event.
    ///
    /// # Panics
    /// When there is none.
    pub fn summary(&self) -> Value {
        summary(&self.stderr)
    }

    /// The error-level messages (not the summary), one per line.
    pub fn error(&self) -> String {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["level"] == "error" && v["msg"] != "summary")
            .filter_map(|v| v["msg"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A line diff of `expected` and `actual` (`-` expected, `+` actual), with
/// context.
pub fn diff(expected: &str, actual: &str) -> String {
    let d = similar::TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for change in d.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        let line = change.value();
        let _ = write!(out, "{sign}{line}");
        if change.missing_newline() {
            out.push_str("\n\\ no newline at end\n");
        }
    }
    out
}

/// Asserts two texts are equal, showing a line diff when not.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $actual:expr $(,)?) => {{
        let (expected, actual): (&str, &str) = (&$expected, &$actual);
        if expected != actual {
            panic!(
                "texts differ (- expected, + actual):\n{}",
                $crate::diff(expected, actual)
            );
        }
    }};
}

/// A crate's own wrapper of a harness type (`Scratch`, `Out`) that derefs
/// to it, so the crate's tests add their helpers to it:
/// `etl_testkit::wrapper!(/** docs */ Scratch(etl_testkit::Scratch));`.
#[macro_export]
macro_rules! wrapper {
    ($(#[$m:meta])* $name:ident($inner:ty)) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(pub $inner);

        impl ::std::ops::Deref for $name {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
    };
}

/// A scratch directory, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    /// The directory.
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A new empty directory.
    ///
    /// # Panics
    /// When it cannot be made.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a scratch directory"),
        }
    }

    /// `name` inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name`; its path.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }

    /// The text of `name`.
    ///
    /// # Panics
    /// When it cannot be read.
    pub fn read(&self, name: &str) -> String {
        let p = self.path(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

/// The one seeded generator of the random tests: xorshift64, replayable
/// from its seed (a test prints the seed it failed with).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// From `seed` (0, which xorshift cannot leave, is taken as 1).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        if self.0 == 0 {
            self.0 = 1;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// One of `items`.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "pick from nothing");
        &items[self.below(items.len())]
    }
}

/// `SUB` of the shared test corpora (`../shared/corpora` beside the
/// project).
///
/// # Panics
/// When it is absent: a test of a corpus never passes without the corpus
/// (CI has `../shared`; a missing fixture is a failure that says what is
/// missing, never a silent pass).
pub fn corpora(sub: &str) -> PathBuf {
    shared(&Path::new("corpora").join(sub))
}

/// `REL` of the shared folder beside the project (`../shared`).
///
/// # Panics
/// When it is absent, naming the path.
pub fn shared(rel: &Path) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(
        p.exists(),
        "missing fixture: {} (the shared folder sits beside the project; \
         its tests fail without it rather than pass)",
        p.display()
    );
    p
}

/// The `summary` event among a command's JSON log lines on stderr.
///
/// # Panics
/// When there is none: the test shows the whole stderr.
pub fn summary(stderr: &str) -> Value {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["msg"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stderr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_shows_what_changed() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, " a\n-b\n+B\n c\n");
    }

    #[test]
    fn failures_say_what_was_expected() {
        let out = Cmd::new("sh")
            .args(["-c", "echo hi; echo oops >&2; exit 65"])
            .run();
        out.fails_with(65).stdout_is("hi\n");
        let r = std::panic::catch_unwind(|| {
            out.succeeds();
        });
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("expected 0, got 65") && msg.contains("oops"),
            "{msg}"
        );
        let r = std::panic::catch_unwind(|| {
            out.stdout_is("ho\n");
        });
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("-ho\n+hi\n"), "{msg}");
    }

    #[test]
    fn stdin_is_fed_and_the_environment_isolated() {
        let out = Cmd::new("sh")
            .args([
                "-c",
                "cat; printf '%s' \"${ETL_LOG-unset} $ETL_LOG_FORMAT\"",
            ])
            .env("ETL_LOG", "debug")
            .env_remove("ETL_LOG")
            .stdin("x\n")
            .run();
        out.succeeds().stdout_is("x\nunset json");
    }

    #[test]
    fn the_generator_replays_from_its_seed() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&x| x != 0));
        // Spread: all of 0..10 within 100 draws.
        let mut seen = [false; 10];
        for _ in 0..100 {
            seen[a.below(10)] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
        assert_eq!(Rng::new(0).next(), Rng::new(1).next());
    }
}
