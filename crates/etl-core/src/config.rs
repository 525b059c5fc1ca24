//! Configuration sources besides flags: `.env` files, secrets, sizes.
//!
//! Precedence, highest first: a flag, the process environment, `--env-file`
//! (or `./.env`), the built-in default. A `.env` never overrides a variable
//! that is already set, so cron's environment stays in charge. Secrets come
//! from a variable, a file (`--*-file`) or a command (`--*-command`), never
//! only from argv, and the [`Secret`] type cannot print its value.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::exit::Exit;

/// Finds `--env-file FILE` / `--env-file=FILE` in raw arguments. It is read
/// before clap parses, because the file provides defaults for other flags.
pub fn env_file_arg(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "--env-file" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--env-file=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// Loads `explicit` (an error if missing) or `./.env` (if present) into the
/// environment, without overriding variables already set.
pub fn load_env_file(explicit: Option<&Path>) -> Result<()> {
    let path = if let Some(p) = explicit {
        if !p.exists() {
            let msg = format!("--env-file {}: no such file", p.display());
            return Err(Error::new(Exit::NoInput, msg));
        }
        p.to_path_buf()
    } else {
        let p = PathBuf::from(".env");
        if !p.is_file() {
            return Ok(());
        }
        p
    };
    dotenvy::from_path(&path).map_err(|e| Error::config(format!("{}: {e}", path.display())))
}

/// A secret value: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where one secret may come from; the names are used in error messages.
#[derive(Debug)]
pub struct SecretSpec<'a> {
    /// The environment variable, e.g. `ETL_IMAP_PASSWORD`.
    pub env: &'a str,
    /// `--password-file` and its value.
    pub file_flag: &'a str,
    /// The file path given, if any.
    pub file: Option<&'a Path>,
    /// `--password-command` and its value.
    pub command_flag: &'a str,
    /// The command given, if any (run with `sh -c`).
    pub command: Option<&'a str>,
}

impl SecretSpec<'_> {
    /// Resolves the secret: the file or the command (only one may be given),
    /// else the environment variable. `Ok(None)` when none is set.
    pub fn resolve(&self) -> Result<Option<Secret>> {
        match (self.file, self.command) {
            (Some(_), Some(_)) => Err(Error::usage(format!(
                "{} and {} cannot be used together",
                self.file_flag, self.command_flag
            ))),
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, &e))?;
                Ok(Some(Secret(trim_newline(text))))
            }
            (None, Some(cmd)) => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| {
                        Error::config(format!("{}: cannot run: {e}", self.command_flag))
                    })?;
                if !out.status.success() {
                    // The command's output is never echoed: it may hold the secret.
                    return Err(Error::config(format!(
                        "{} failed ({})",
                        self.command_flag, out.status
                    )));
                }
                let text = String::from_utf8(out.stdout).map_err(|_| {
                    Error::config(format!("{} printed invalid UTF-8", self.command_flag))
                })?;
                Ok(Some(Secret(trim_newline(text))))
            }
            (None, None) => Ok(std::env::var(self.env)
                .ok()
                .filter(|s| !s.is_empty())
                .map(Secret)),
        }
    }
}

fn trim_newline(mut s: String) -> String {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}

/// Parses a byte size: `1048576`, `64KiB`, `16MiB`, `1GiB`, `16M` (binary
/// units; `KB`/`MB`/`GB` are decimal). For clap `value_parser`.
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (e.g. 1048576, 64KiB, 16MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("unknown size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("size out of range: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_flag_is_found_in_both_spellings() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            env_file_arg(&a(&["x", "--env-file", "e"])),
            Some(PathBuf::from("e"))
        );
        assert_eq!(
            env_file_arg(&a(&["x", "--env-file=f"])),
            Some(PathBuf::from("f"))
        );
        assert_eq!(env_file_arg(&a(&["x", "--", "--env-file=f"])), None);
    }

    #[test]
    fn env_file_does_not_override_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("e.env");
        std::fs::write(&p, "ETL_CORE_TEST_A=from_file\nETL_CORE_TEST_B=from_file\n").unwrap();
        // SAFETY-free: edition 2021 set_var; the variables are unique to this test.
        std::env::set_var("ETL_CORE_TEST_A", "from_env");
        load_env_file(Some(&p)).unwrap();
        assert_eq!(std::env::var("ETL_CORE_TEST_A").unwrap(), "from_env");
        assert_eq!(std::env::var("ETL_CORE_TEST_B").unwrap(), "from_file");
        let missing = load_env_file(Some(&d.path().join("nope"))).unwrap_err();
        assert_eq!(missing.exit_code(), Exit::NoInput);
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_sources() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let spec = |file, command| SecretSpec {
            env: "ETL_CORE_TEST_NO_SUCH_VAR",
            file_flag: "--password-file",
            file,
            command_flag: "--password-command",
            command,
        };
        assert_eq!(
            spec(Some(&f), None).resolve().unwrap().unwrap().expose(),
            "s3cret"
        );
        assert_eq!(
            spec(None, Some("printf 'from cmd\\n'"))
                .resolve()
                .unwrap()
                .unwrap()
                .expose(),
            "from cmd"
        );
        assert_eq!(
            spec(None, Some("exit 3"))
                .resolve()
                .unwrap_err()
                .exit_code(),
            Exit::Config
        );
        assert_eq!(
            spec(Some(&f), Some("true"))
                .resolve()
                .unwrap_err()
                .exit_code(),
            Exit::Usage
        );
        assert!(spec(None, None).resolve().unwrap().is_none());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }
}

/// A testing hook read from the environment (shown in the command's
/// `--help`): on only when set to exactly `1`; unset is off; any other
/// value is a usage error (64), so a typo never passes for "off".
pub fn test_switch(name: &str) -> crate::error::Result<bool> {
    match std::env::var_os(name) {
        None => Ok(false),
        Some(v) if v == "1" => Ok(true),
        Some(v) => Err(crate::error::Error::usage(format!(
            "{name}={}: a testing hook, on only as {name}=1 (unset it otherwise)",
            v.to_string_lossy()
        ))),
    }
}

#[cfg(test)]
mod switch_tests {
    #[test]
    fn only_an_explicit_1_turns_a_test_switch_on() {
        let name = "ETL_CORE_TEST_SWITCH_FOR_UNIT_TEST";
        assert!(!super::test_switch(name).unwrap());
        std::env::set_var(name, "1");
        assert!(super::test_switch(name).unwrap());
        std::env::set_var(name, "0");
        assert_eq!(
            super::test_switch(name).unwrap_err().exit_code(),
            crate::Exit::Usage
        );
        std::env::remove_var(name);
    }
}
