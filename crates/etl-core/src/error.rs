//! etl-core's error: a message a user can act on, and the exit code it maps to.
//!
//! Commands build errors with the constructor named for the exit code
//! (`Error::config`, `Error::data`, ...), always with the file, line, field,
//! flag or environment variable involved in the message. I/O errors are
//! classified by what was being done (reading input, creating output), not by
//! errno alone, because the sysexits table is about the operator's next step.

use std::fmt;
use std::io;
use std::path::Path;

use crate::exit::Exit;

/// The result type of etl-core and of every command's `run`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its exit status.
#[derive(Debug)]
pub struct Error {
    exit: Exit,
    message: String,
}

impl Error {
    /// An error with an explicit exit status.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
    /// Exit 64: bad flags or arguments.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
    /// Exit 65: bad input data.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(Exit::DataErr, message)
    }
    /// Exit 70: a bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Exit::Software, message)
    }
    /// Exit 75: try again later.
    pub fn temp_fail(message: impl Into<String>) -> Self {
        Self::new(Exit::TempFail, message)
    }
    /// Exit 78: configuration.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Exit::Config, message)
    }
    /// A missing required setting: exit 78 naming the flag and its variable.
    pub fn missing_setting(flag: &str, env: &str) -> Self {
        Self::config(format!(
            "missing required setting: pass {flag} or set {env}"
        ))
    }

    /// Reading an input failed: 66 when it is missing or unreadable, 74 otherwise.
    pub fn input(path: &Path, err: &io::Error) -> Self {
        let exit = match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Exit::NoInput,
            io::ErrorKind::BrokenPipe => Exit::Ok,
            _ => Exit::IoErr,
        };
        Self::new(exit, format!("{}: {err}", path.display()))
    }

    /// Creating or writing an output failed: 73 for creation problems, 74 otherwise.
    pub fn output(path: &Path, err: &io::Error) -> Self {
        let exit = match err.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::AlreadyExists
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory => Exit::CantCreate,
            io::ErrorKind::BrokenPipe => Exit::Ok,
            _ => Exit::IoErr,
        };
        Self::new(exit, format!("{}: {err}", path.display()))
    }

    /// Writing the record stream to stdout failed. A closed pipe is not an
    /// error: the reader downstream has what it wanted (`| head`).
    pub fn stdout(err: &io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            Self::new(Exit::Ok, "stdout closed")
        } else {
            Self::new(Exit::IoErr, format!("writing stdout: {err}"))
        }
    }

    /// Reading stdin failed.
    pub fn stdin(err: &io::Error) -> Self {
        Self::new(Exit::IoErr, format!("reading stdin: {err}"))
    }

    /// The exit status this error maps to.
    pub fn exit_code(&self) -> Exit {
        self.exit
    }
    /// The message, without the exit status.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// True when the error is only "the reader downstream went away".
    pub fn is_broken_pipe(&self) -> bool {
        self.exit == Exit::Ok
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_by_what_was_being_done() {
        let nf = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(
            Error::input(Path::new("a.csv"), &nf).exit_code(),
            Exit::NoInput
        );
        assert_eq!(
            Error::output(Path::new("d/s.json"), &nf).exit_code(),
            Exit::CantCreate
        );
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(Error::stdout(&pipe).is_broken_pipe());
        let other = io::Error::other("disk on fire");
        assert_eq!(Error::stdout(&other).exit_code(), Exit::IoErr);
        assert!(Error::input(Path::new("a.csv"), &nf)
            .to_string()
            .starts_with("a.csv: "));
    }

    #[test]
    fn missing_setting_names_flag_and_variable() {
        let e = Error::missing_setting("--run-id", "ETL_RUN_ID");
        assert_eq!(e.exit_code(), Exit::Config);
        assert!(e.to_string().contains("--run-id") && e.to_string().contains("ETL_RUN_ID"));
    }
}
