//! The exit codes every command uses: the BSD sysexits table of etl(7).
//!
//! One enum so that a code is never a bare number at a call site; cron
//! scripts branch on these values, so they never change.

/// A process exit status with its documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A lookup found nothing (`etl-checkpoint get` of an unknown key), like `grep`.
    NotFound = 1,
    /// Usage error: bad flags.
    Usage = 64,
    /// Data error: bad input beyond `--max-rejects`, schema drift.
    DataErr = 65,
    /// An input file is missing or unreadable.
    NoInput = 66,
    /// A remote service was unavailable after retries.
    Unavailable = 69,
    /// Internal error: a bug.
    Software = 70,
    /// Cannot create output (state file, staging dir, database).
    CantCreate = 73,
    /// I/O error.
    IoErr = 74,
    /// Temporary failure: lock held, quota exhausted after retries.
    TempFail = 75,
    /// Authentication or permission denied.
    NoPerm = 77,
    /// Configuration error: missing setting, bad spec or state file.
    Config = 78,
}

impl Exit {
    /// The numeric status handed to the operating system.
    pub fn code(self) -> i32 {
        i32::from(self as u8)
    }

    /// Every code with a one-line meaning, for `--help` and `etl(7)`.
    pub const TABLE: [(Exit, &'static str); 12] = [
        (Exit::Ok, "success"),
        (Exit::NotFound, "a lookup found nothing (like grep)"),
        (Exit::Usage, "usage error: bad flags or arguments"),
        (Exit::DataErr, "data error: bad input beyond --max-rejects"),
        (Exit::NoInput, "an input file is missing or unreadable"),
        (
            Exit::Unavailable,
            "a remote service is unavailable after retries",
        ),
        (Exit::Software, "internal error (a bug: please report it)"),
        (
            Exit::CantCreate,
            "cannot create output (state file, directory, database)",
        ),
        (Exit::IoErr, "I/O error"),
        (
            Exit::TempFail,
            "temporary failure: lock held or quota exhausted; retry later",
        ),
        (Exit::NoPerm, "authentication or permission denied"),
        (
            Exit::Config,
            "configuration error: missing setting, bad spec or state file",
        ),
    ];

    /// The `EXIT STATUS` paragraph appended to every command's long help.
    pub fn help_table() -> String {
        use std::fmt::Write as _;
        let mut s = String::from("Exit status:\n");
        for (e, what) in Self::TABLE {
            let _ = writeln!(s, "  {:>2}  {what}", e.code());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_sysexits() {
        assert_eq!(Exit::Usage.code(), 64);
        assert_eq!(Exit::DataErr.code(), 65);
        assert_eq!(Exit::NoInput.code(), 66);
        assert_eq!(Exit::Unavailable.code(), 69);
        assert_eq!(Exit::Software.code(), 70);
        assert_eq!(Exit::CantCreate.code(), 73);
        assert_eq!(Exit::IoErr.code(), 74);
        assert_eq!(Exit::TempFail.code(), 75);
        assert_eq!(Exit::NoPerm.code(), 77);
        assert_eq!(Exit::Config.code(), 78);
    }

    #[test]
    fn help_table_lists_every_code() {
        let t = Exit::help_table();
        for (e, _) in Exit::TABLE {
            assert!(t.contains(&format!("{:>2}  ", e.code())), "{t}");
        }
    }
}
