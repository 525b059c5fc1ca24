//! The flags every command shares and the `main` wrapper every command's
//! `main.rs` is one line of.
//!
//! The wrapper owns the process-level contract: `.env` loading before
//! parsing, clap errors as exit 64 (not clap's 2), logging set-up, the run
//! id, panics as exit 70, a closed stdout as a quiet exit 0, and the one
//! `summary` event at the end.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::config::{env_file_arg, load_env_file, parse_size};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::log::{self, LogFormat};
use crate::reader::DEFAULT_MAX_LINE_BYTES;
use crate::run::{log_failure, Run};

/// Flags shared by every command (flattened into each command's parser).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Log format on stderr: json (default when stderr is not a terminal) or text.
    #[arg(
        long,
        value_enum,
        global = true,
        env = "ETL_LOG_FORMAT",
        help_heading = "Common options"
    )]
    pub log_format: Option<LogFormat>,

    /// Append rejected records to FILE as {"line","error","stage","input"} objects.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Common options"
    )]
    pub rejects: Option<PathBuf>,

    /// How many rejected records the run tolerates; one more fails it with exit 65.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        global = true,
        help_heading = "Common options"
    )]
    pub max_rejects: u64,

    /// Write the run summary object to FILE (atomically) as well as to the log.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Common options"
    )]
    pub summary: Option<PathBuf>,

    /// Longest accepted input line; longer lines become rejects (e.g. 16MiB, 1048576).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size,
        env = "ETL_MAX_LINE_BYTES", global = true, help_heading = "Common options")]
    pub max_line_bytes: usize,

    /// Read settings from FILE (KEY=VALUE lines) without overriding the environment [default: ./.env].
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Common options"
    )]
    pub env_file: Option<PathBuf>,

    /// No progress line on a terminal.
    #[arg(long, short = 'q', global = true, help_heading = "Common options")]
    pub quiet: bool,

    /// Print this command's man page or shell completions and exit (e.g. --generate man > etl-parse.1).
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        global = true,
        help_heading = "Common options"
    )]
    pub generate: Option<crate::docs::Generate>,
}

impl Default for CommonArgs {
    fn default() -> Self {
        Self {
            log_format: None,
            rejects: None,
            max_rejects: 0,
            summary: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            env_file: None,
            quiet: false,
            generate: None,
        }
    }
}

/// A command's parsed arguments expose the shared flags.
pub trait HasCommon {
    /// The shared flags.
    fn common(&self) -> &CommonArgs;
}

/// The glue every command's `Cli` needs, written once: `HasCommon` for a
/// struct whose shared flags sit in a `common` field (`#[command(flatten)]`),
/// and `pub fn command()`, the full clap command for man pages and
/// completions. The crate using it must depend on clap.
#[macro_export]
macro_rules! command_glue {
    ($cli:ty) => {
        impl $crate::HasCommon for $cli {
            fn common(&self) -> &$crate::CommonArgs {
                &self.common
            }
        }

        /// The full clap command, for the man page and completions.
        pub fn command() -> ::clap::Command {
            $crate::cli::command::<$cli>()
        }
    };
}

/// The paragraph after every command's long help: environment and exit status.
pub fn after_long_help() -> String {
    format!(
        "Environment:\n  ETL_LOG        log level: error, warn, info (default), debug\n  \
         ETL_RUN_ID     run id shared by the stages of one pipeline run (default: a new UUIDv7)\n  \
         .env           KEY=VALUE settings read from the working directory (or --env-file)\n\n{}\n\
         See etl(7) for the stream, log, reject and state contract.",
        Exit::help_table()
    )
}

/// The full clap command of parser `A`, as the binary, the man page and the
/// completions see it.
pub fn command<A: CommandFactory>() -> clap::Command {
    let cmd = A::command();
    let text = match cmd.get_after_long_help() {
        Some(own) => format!("{own}\n\n{}", after_long_help()),
        None => after_long_help(),
    };
    cmd.after_long_help(text)
}

/// The run id: `ETL_RUN_ID`, else a fresh UUIDv7 (time-ordered, so ids sort
/// by start time in logs and state files).
pub fn run_id() -> String {
    std::env::var("ETL_RUN_ID")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Parses arguments with clap, mapping usage errors to exit 64.
pub fn parse<A: CommandFactory + FromArgMatches>(args: Vec<OsString>) -> Result<A, i32> {
    let matches: ArgMatches = match command::<A>().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return Err(clap_exit(&e)),
    };
    A::from_arg_matches(&matches).map_err(|e| clap_exit(&e))
}

fn clap_exit(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => Exit::Usage.code(),
    }
}

/// The body of every command's `main`: `etl_core::main("etl-x", args_type_run)`.
pub fn main<A>(cmd: &'static str, run: fn(A, &mut Run) -> Result<()>) -> !
where
    A: CommandFactory + FromArgMatches + HasCommon,
{
    std::process::exit(main_with(cmd, std::env::args_os().collect(), run));
}

/// `main` without the process exit, for in-process tests.
pub fn main_with<A>(
    cmd: &'static str,
    args: Vec<OsString>,
    run: fn(A, &mut Run) -> Result<()>,
) -> i32
where
    A: CommandFactory + FromArgMatches + HasCommon,
{
    main_status(cmd, args, |a, ctx| run(a, ctx).map(|()| 0))
}

/// The wrapper for a command whose success can end in a status of its own
/// choosing (`etl-run` exits with its pipeline's status): `run` returns the
/// exit status; anything but 0 ends the run's summary as failed.
pub fn main_status<A>(
    cmd: &'static str,
    args: Vec<OsString>,
    run: impl FnOnce(A, &mut Run) -> Result<i32>,
) -> i32
where
    A: CommandFactory + FromArgMatches + HasCommon,
{
    // --generate needs none of the command's required flags: it is served
    // before clap checks them.
    // A bad KIND is left to clap, which names the kinds there are (64).
    if let Some(Some(kind)) = crate::docs::Generate::from_args(&args) {
        use std::io::Write;
        let page = kind.render(&command::<A>());
        let mut out = std::io::stdout().lock();
        return match out.write_all(&page).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Exit::IoErr.code(),
            _ => 0,
        };
    }
    if let Err(e) = load_env_file(env_file_arg(&args).as_deref()) {
        log::emit(tracing::Level::ERROR, e.message(), &[]);
        return e.exit_code().code();
    }
    let parsed: A = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let common = parsed.common().clone();
    let run_id = run_id();
    if let Err(e) = log::init(cmd, run_id.clone(), common.log_format) {
        log::emit(tracing::Level::ERROR, e.message(), &[]);
        return e.exit_code().code();
    }
    install_panic_hook();
    let mut ctx = match Run::new(cmd, run_id, &common) {
        Ok(r) => r,
        Err(e) => {
            log_failure(&e);
            return e.exit_code().code();
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(parsed, &mut ctx)))
        .unwrap_or_else(|_| Err(Error::internal("the command panicked")));
    // A closed stdout is success; "nothing found" (exit 1, like grep) is
    // not a failure of the run, so it is not logged as an error.
    let (ok, code) = match &outcome {
        Ok(code) => (*code == 0, *code),
        Err(e) if e.is_broken_pipe() => (true, 0),
        Err(e) if e.exit_code() == Exit::NotFound => (true, Exit::NotFound.code()),
        Err(e) => {
            log_failure(e);
            (false, e.exit_code().code())
        }
    };
    match ctx.finish(ok) {
        Err(e) if code == 0 => {
            log_failure(&e);
            e.exit_code().code()
        }
        _ => code,
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        crate::events::panicked(&location, &what);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "etl-test", version)]
    struct Args {
        #[arg(long)]
        fail: Option<u8>,
        #[command(flatten)]
        common: CommonArgs,
    }
    impl HasCommon for Args {
        fn common(&self) -> &CommonArgs {
            &self.common
        }
    }

    #[allow(clippy::needless_pass_by_value)] // the signature `main_with` requires
    fn run(a: Args, _: &mut Run) -> Result<()> {
        match a.fail {
            None => Ok(()),
            Some(1) => Err(Error::stdout(&std::io::ErrorKind::BrokenPipe.into())),
            Some(2) => panic!("boom"),
            Some(3) => Err(Error::new(Exit::NotFound, "nothing")),
            Some(_) => Err(Error::config("bad spec")),
        }
    }

    fn exit(args: &[&str]) -> i32 {
        let mut v = vec![
            OsString::from("etl-test"),
            OsString::from("--log-format=json"),
        ];
        v.extend(args.iter().map(OsString::from));
        main_with::<Args>("etl-test", v, run)
    }

    #[test]
    fn exit_codes_of_the_wrapper() {
        assert_eq!(exit(&[]), 0);
        assert_eq!(
            exit(&["--no-such-flag"]),
            64,
            "clap usage errors are 64, not 2"
        );
        assert_eq!(
            exit(&["--fail", "1"]),
            0,
            "a closed stdout is a quiet success"
        );
        assert_eq!(exit(&["--fail", "2"]), 70, "a panic is an internal error");
        assert_eq!(exit(&["--fail", "9"]), 78);
        assert_eq!(
            exit(&["--fail", "3"]),
            1,
            "nothing found is exit 1, like grep"
        );
        assert_eq!(exit(&["--help"]), 0);
        assert_eq!(exit(&["--max-line-bytes", "lots"]), 64);
    }

    #[test]
    fn long_help_lists_exit_codes_and_environment() {
        let help = command::<Args>().render_long_help().to_string();
        assert!(
            help.contains("ETL_RUN_ID") && help.contains("75  temporary failure"),
            "{help}"
        );
    }
}
