//! etl-run: the operations command. It runs a pipeline script the way cron
//! and systemd should: under a lock, with a timeout, retries of temporary
//! failures, the commit or discard of the run's checkpoint state, alerts
//! that say what happened, one runs-log line per run with every stage's
//! counts, a Prometheus metrics file, `status` and an HTML `report`. No
//! daemon and no database: the runs log is its only store.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use etl_core::log::LogFormat;
use etl_core::{CommonArgs, Error, Exit, Result, Run};

pub mod alerts;
pub mod collect;
pub mod duration;
mod events;
pub mod metrics;
pub mod redact;
pub mod report;
pub mod runner;
pub mod runslog;
pub mod signals;
pub mod status;

use runner::Job;
use runslog::{History, RunRecord, Status};

const ABOUT: &str = "Run a pipeline from cron or systemd: lock, timeout, retries, commit, alerts, runs log, metrics, status, report";

const LONG_ABOUT: &str = "\
Runs one pipeline script (or one per client with --each) the way a scheduled job should run.

- A lock per pipeline (--lock): a run that finds it held does not run, writes a `skipped` \
line to the runs log and exits 75.
- Every stage and retry shares one ETL_RUN_ID. The pipeline runs in a process group of its \
own with `bash -o pipefail` (a script; any other program as it is), its stdin closed.
- --timeout per attempt: the whole process group gets SIGTERM, then SIGKILL after \
--kill-after; the attempt is a temporary failure (75). Exit 69 or 75 is retried --retries \
times, after --retry-delay, doubling. SIGTERM, SIGINT or SIGHUP to etl-run goes on to the \
process group; the run is `interrupted` and no retry starts.
- On success the run's pending checkpoint state is committed (--state, as `etl-checkpoint \
commit` does); on failure, timeout or interruption it is discarded, so the next run fetches \
the same input again.
- The stages log JSON to etl-run, which shows them on its stderr (as text on a terminal), \
keeps each stage's `summary` event and appends one line per run to --runs-log: run id, \
pipeline, client, host, start, end, duration, status (ok, failed, skipped, interrupted), \
exit code, attempts, rows loaded, rejects, every stage's summary (records in/out/rejected, \
inserted, updated, api_calls...), the alerts sent and, for a failure, the last log lines. \
A runs log (or --metrics-file directory) that cannot be written exits 73 before anything runs.
- Alerts (--notify-url, a Slack-compatible webhook; --notify-command, any program reading \
the alert JSON on stdin): `failed`; `recovered` (the first success after failures); `slow` \
(more than --slow-factor times the median of the last 10 successful runs, once there are 3); \
`empty` (--alert-empty-after N successful runs in a row loaded no rows); `rejects` \
(--alert-on-rejects). recovered, slow and empty read the history in --runs-log.
- Secrets never leave the machine: the values of environment variables named like secrets \
(PASSWORD, TOKEN, SECRET, SALT, KEY, CREDENTIAL) become [redacted:NAME] and URL credentials \
and query values *** in everything etl-run writes: the lines it passes on, the runs log, \
alerts and metrics.
- .env (or --env-file) is loaded with the same rules as every command (the environment \
wins), so the pipeline sees its settings without reading .env itself.

Rows loaded: the records_in of the run's last etl-merge stage; without one, of its last \
etl-push-sheets; without either, the records_out of its last stage.

--each PATTERN runs the pipeline once per env file the pattern matches (client = the file \
name without .env), each with its own environment (the file's settings over .env's; the \
process environment wins over both), run id (ETL_RUN_ID-CLIENT), lock, state (the file's \
ETL_STATE, or {client} in --state) and runs-log line; one after the other unless \
--parallel N. One client's failure does not stop the others; the exit status is the worst \
(a permanent failure's over 69 over 75).

`etl-run status` and `etl-run report` read the runs log; --metrics-file rewrites the \
Prometheus text file of every pipeline in the runs log after each run.";

const EXAMPLES: &str = "\
Examples:
  # crontab: the daily job at 06:15, at most 20 minutes, alerts to Slack
  15 6 * * *  cd /srv/etl && etl-run --timeout 20m --state state.json --runs-log runs.ndjson \\
                --notify-url \"$(cat secrets/slack-webhook)\" --metrics-file /var/lib/node_exporter/etl.prom \\
                -- ./pipeline.sh >> etl.log 2>&1

  # one run per client, two at a time, each with clients/NAME.env
  etl-run --each 'clients/*.env' --parallel 2 --state 'state/{client}.json' --runs-log runs.ndjson -- ./pipeline.sh

  # alerts through any program (the alert JSON on stdin)
  etl-run --notify-command 'jq -r .text | mail -s etl ops@example.com' --alert-empty-after 3 \\
    --runs-log runs.ndjson -- ./pipeline.sh

  etl-run status --runs-log runs.ndjson                   # one line per pipeline
  etl-run status --runs-log runs.ndjson --max-age 26h     # exit 1 if a pipeline has not succeeded for 26h
  etl-run report --runs-log runs.ndjson --out report.html # one self-contained page

Exit status: the pipeline's own (its worst client's with --each); 75 when the lock is held \
or every attempt timed out; 128+N when signal N interrupted it.";

/// The `etl-run` command line.
#[derive(Debug, Parser)]
#[command(name = "etl-run", version, about = ABOUT, long_about = LONG_ABOUT,
    after_long_help = EXAMPLES, args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true, disable_help_subcommand = true,
    override_usage = "etl-run [OPTIONS] -- PIPELINE [ARGS]...\n       etl-run status [OPTIONS]\n       etl-run report --out FILE [OPTIONS]")]
pub struct Cli {
    /// `status` or `report`; without one, run a pipeline.
    #[command(subcommand)]
    pub sub: Option<Sub>,
    /// Running a pipeline.
    #[command(flatten)]
    pub run: RunArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

etl_core::command_glue!(Cli);

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// One line per pipeline of the runs log: last run, status, duration, rows, rejects, time since the last success.
    #[command(
        after_long_help = "Examples:\n  etl-run status --runs-log runs.ndjson\n  etl-run status --json | jq 'select(.last_status != \"ok\")'\n  etl-run status --max-age 26h || echo 'a pipeline is stale'   # a health check\n\nExit status: 0; 1 with --max-age when a pipeline's last success is older than that (or it never succeeded); 66 when the runs log is missing."
    )]
    Status(status::StatusArgs),
    /// Write one self-contained HTML page of the runs log: status, runs over time, the last failures.
    #[command(
        after_long_help = "Example:\n  etl-run report --runs-log runs.ndjson --out report.html && xdg-open report.html\n\nThe page needs no network (no script, no CDN): inline SVG charts per pipeline (duration with failures marked, rows loaded, rejects), the status table and the last failures with their log tails."
    )]
    Report(report::ReportArgs),
}

/// Running a pipeline.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Exclusive lock FILE; a run that finds it held is skipped with exit 75 [default: $TMPDIR/etl-run.NAME.lock; with --each, one per client].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// How many times a temporary failure (exit 69 or 75, or a timeout) is retried.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Wait before the first retry, doubling each time (30s, 5m, 0.5 = seconds).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    pub retry_delay: Duration,
    /// Stop an attempt after DURATION: SIGTERM to the pipeline's process group, SIGKILL after --kill-after; a temporary failure (75).
    #[arg(long, value_name = "DURATION", env = "ETL_RUN_TIMEOUT", value_parser = duration::parse)]
    pub timeout: Option<Duration>,
    /// After SIGTERM (a timeout or a signal to etl-run), SIGKILL the group if it is still running after DURATION.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    pub kill_after: Duration,
    /// Checkpoint state FILE: the run's pending values are committed on success, discarded otherwise ({client} is replaced with --each).
    #[arg(long, value_name = "FILE", env = "ETL_STATE")]
    pub state: Option<PathBuf>,
    /// POST every alert as JSON (Slack-compatible `text`) to URL.
    #[arg(
        long,
        value_name = "URL",
        env = "ETL_NOTIFY_URL",
        hide_env_values = true
    )]
    pub notify_url: Option<String>,
    /// Run CMD (with sh -c) for every alert, the alert JSON on its stdin and ETL_ALERT_KIND set.
    #[arg(long, value_name = "CMD", env = "ETL_NOTIFY_COMMAND")]
    pub notify_command: Option<String>,
    /// Append one JSON line per run to FILE (and read the history the recovered, slow and empty alerts need).
    #[arg(long, value_name = "FILE", env = "ETL_RUNS_LOG")]
    pub runs_log: Option<PathBuf>,
    /// After every run, write the Prometheus text file of every pipeline (node_exporter's textfile collector), atomically.
    #[arg(long, value_name = "FILE", env = "ETL_METRICS_FILE")]
    pub metrics_file: Option<PathBuf>,
    /// The `slow` alert: a success that took more than F times the median of the last 10.
    #[arg(long, value_name = "F", default_value_t = 2.0)]
    pub slow_factor: f64,
    /// The `empty` alert: N successful runs in a row loaded no rows (needs --runs-log).
    #[arg(long, value_name = "N")]
    pub alert_empty_after: Option<u32>,
    /// The `rejects` alert: a successful run whose stages rejected records.
    #[arg(long)]
    pub alert_on_rejects: bool,
    /// Run the pipeline once per env file PATTERN matches (e.g. 'clients/*.env'), each with its settings.
    #[arg(long, value_name = "PATTERN")]
    pub each: Option<String>,
    /// With --each, run N clients at once (default: one after the other).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "each")]
    pub parallel: usize,
    /// The pipeline's name in the runs log, alerts and metrics [default: the file name of PIPELINE].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The pipeline: a script (run with bash -o pipefail) or a program, and its arguments.
    #[arg(last = true, value_name = "PIPELINE")]
    pub pipeline: Vec<OsString>,
}

/// Runs the command; the exit status is the pipeline's.
pub fn run(cli: Cli, ctx: &mut Run) -> Result<i32> {
    match cli.sub {
        Some(Sub::Status(a)) => status::run(&a),
        Some(Sub::Report(a)) => report::run(&a).map(|()| 0),
        None => pipelines(&cli.run, &cli.common, ctx),
    }
}

fn pipelines(a: &RunArgs, common: &CommonArgs, ctx: &mut Run) -> Result<i32> {
    if a.pipeline.is_empty() {
        return Err(Error::usage(
            "no pipeline: etl-run [OPTIONS] -- PIPELINE [ARGS]... (or etl-run status | report)",
        ));
    }
    if !(a.slow_factor.is_finite() && a.slow_factor > 0.0) {
        return Err(Error::usage("--slow-factor must be a number above 0"));
    }
    if a.parallel == 0 {
        return Err(Error::usage("--parallel must be at least 1"));
    }
    if a.alert_empty_after == Some(0) {
        return Err(Error::usage("--alert-empty-after must be at least 1"));
    }
    if a.alert_empty_after.is_some() && a.runs_log.is_none() {
        return Err(Error::usage(
            "--alert-empty-after needs --runs-log (the history it counts from)",
        ));
    }
    outputs_writable(a)?;
    let base = base_job(a, common, ctx)?;
    let jobs = match &a.each {
        Some(pattern) => clients(&base, pattern, a, common)?,
        None => vec![base],
    };
    signals::install().map_err(|e| Error::internal(format!("cannot handle signals: {e}")))?;
    let cfg = alerts::AlertConfig {
        url: a.notify_url.clone(),
        command: a.notify_command.clone(),
        slow_factor: a.slow_factor,
        empty_after: a.alert_empty_after,
        on_rejects: a.alert_on_rejects,
    };
    let records = run_jobs(&jobs, a, &cfg)?;
    if let Some(path) = &a.metrics_file {
        metrics::write(path, a.runs_log.as_deref(), &records)?;
    }
    let failed = records.iter().filter(|r| r.status != Status::Ok).count();
    ctx.set_count("runs", records.len() as u64);
    ctx.set_count("failed", failed as u64);
    Ok(worst(records.iter().map(|r| r.exit_code)))
}

/// The job of a run without --each (and the template of each client's).
fn base_job(a: &RunArgs, common: &CommonArgs, ctx: &Run) -> Result<Job> {
    let (argv, file_name) = program(&a.pipeline)?;
    let name = a.name.clone().unwrap_or(file_name);
    let shown = a
        .pipeline
        .iter()
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let text = common
        .log_format
        .map_or_else(|| std::io::stderr().is_terminal(), |f| f == LogFormat::Text);
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    Ok(Job {
        name: name.clone(),
        client: None,
        argv,
        shown,
        env: Vec::new(),
        run_id: ctx.run_id().to_owned(),
        state: a.state.clone(),
        lock: a
            .lock
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("etl-run.{name}.lock"))),
        retries: a.retries,
        retry_delay: a.retry_delay,
        timeout: a.timeout,
        kill_after: a.kill_after,
        redactor: redact::Redactor::from_env(),
        pass: collect::Passthrough {
            text,
            prefix: String::new(),
        },
        host,
    })
}

/// Runs the jobs (`--parallel` at a time); after each, its alerts and its
/// runs-log line.
fn run_jobs(jobs: &[Job], a: &RunArgs, cfg: &alerts::AlertConfig) -> Result<Vec<RunRecord>> {
    let alerting = cfg.url.is_some() || cfg.command.is_some();
    let histories = match (&a.runs_log, alerting) {
        (Some(p), true) => runslog::histories(p)?,
        _ => BTreeMap::new(),
    };
    let after = Mutex::new(After {
        histories,
        records: Vec::new(),
    });
    let finish = |job: &Job, mut record: RunRecord| -> Result<()> {
        let mut after = after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let history = after.histories.entry(record.key()).or_default();
        if alerting {
            let due = alerts::decide(&record, history, cfg);
            record.alerts = due.iter().map(|x| x.kind.to_owned()).collect();
            for alert in &due {
                alerts::send(
                    alert.kind,
                    &alerts::body(alert, &record, &job.redactor),
                    cfg,
                );
            }
        }
        history.push(&record);
        if let Some(p) = &a.runs_log {
            runslog::append(p, &record)?;
        }
        after.records.push(record);
        Ok(())
    };
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(job) = jobs.get(i) else { break };
        if signals::stopped().is_some() && i > 0 {
            break; // no new client after a signal
        }
        let record = runner::run(job);
        if let Err(e) = finish(job, record) {
            errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(e);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..a.parallel.min(jobs.len()) {
            s.spawn(worker);
        }
        worker();
    });
    let After { records, .. } = after
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = errors.into_inner().unwrap_or_default().into_iter().next() {
        return Err(e);
    }
    Ok(records)
}

/// The runs log and the metrics file's directory are checked before
/// anything runs: a typo in a cron line must not cost a run its audit line
/// after the pipeline ran and committed (exit 73 instead, nothing run).
fn outputs_writable(a: &RunArgs) -> Result<()> {
    if let Some(p) = &a.runs_log {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::output(p, &e))?;
    }
    if let Some(p) = &a.metrics_file {
        let dir = etl_core::fsutil::parent_dir(p);
        if !dir.is_dir() {
            return Err(Error::new(
                Exit::CantCreate,
                format!(
                    "--metrics-file {}: no directory {}",
                    p.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

struct After {
    histories: BTreeMap<(String, Option<String>), History>,
    records: Vec<RunRecord>,
}

/// The worst of several exit statuses: a permanent failure's (the highest
/// such code) over 69 (unavailable) over 75 (temporary) over 0.
pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
    let rank = |c: i32| match c {
        0 => (0, 0),
        75 => (1, c),
        69 => (2, c),
        _ => (3, c),
    };
    codes.into_iter().max_by_key(|c| rank(*c)).unwrap_or(0)
}

/// How to start PIPELINE: a script file with `bash -o pipefail` (unless it
/// is executable and names another interpreter), a program on PATH as it
/// is. Also the file name, the pipeline's default name.
fn program(pipeline: &[OsString]) -> Result<(Vec<OsString>, String)> {
    let first = Path::new(&pipeline[0]);
    let file_name = first.file_name().map_or_else(
        || first.to_string_lossy().into_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let rest = pipeline[1..].iter().cloned();
    if first.is_file() {
        let head = std::fs::File::open(first)
            .and_then(|f| {
                use std::io::Read;
                let mut b = Vec::with_capacity(256);
                f.take(256).read_to_end(&mut b).map(|_| b)
            })
            .map_err(|e| Error::input(first, &e))?;
        if executable(first) && !shell_script(&head) {
            return Ok((pipeline.to_vec(), file_name));
        }
        let mut argv: Vec<OsString> =
            vec!["bash".into(), "-o".into(), "pipefail".into(), first.into()];
        argv.extend(rest);
        return Ok((argv, file_name));
    }
    if first.components().count() > 1 || first.is_dir() {
        return Err(Error::new(
            Exit::NoInput,
            format!("cannot read the pipeline {}: no such file", first.display()),
        ));
    }
    let found = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(first))
            .any(|c| c.is_file() && executable(&c))
    });
    if !found {
        return Err(Error::new(
            Exit::NoInput,
            format!(
                "no pipeline {}: not a file here and not a program on PATH",
                first.display()
            ),
        ));
    }
    Ok((pipeline.to_vec(), file_name))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// A file without a `#!` line, or whose `#!` names a POSIX shell.
fn shell_script(head: &[u8]) -> bool {
    let Some(line) = head.strip_prefix(b"#!") else {
        return true;
    };
    let line = String::from_utf8_lossy(line);
    let line = line.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    let mut interp = words.next().unwrap_or("");
    if interp.ends_with("/env") {
        interp = words.find(|w| !w.starts_with('-')).unwrap_or("");
    }
    let base = interp.rsplit('/').next().unwrap_or("");
    matches!(base, "sh" | "bash" | "dash" | "ksh")
}

/// `--each`: one job per env file.
fn clients(base: &Job, pattern: &str, a: &RunArgs, common: &CommonArgs) -> Result<Vec<Job>> {
    let paths = glob::glob(pattern).map_err(|e| Error::usage(format!("--each {pattern}: {e}")))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(std::result::Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::new(
            Exit::NoInput,
            format!("--each {pattern}: no env file matches"),
        ));
    }
    // What the project's .env set may be overridden by a client's file;
    // what the process environment set may not.
    let from_dotenv = dotenv_keys(common.env_file.as_deref());
    let state_has_client = a
        .state
        .as_ref()
        .is_some_and(|s| s.to_string_lossy().contains("{client}"));
    let mut seen = HashSet::new();
    let mut jobs = Vec::with_capacity(files.len());
    for file in files {
        let client = file
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".env").to_owned())
            .unwrap_or_default();
        if !seen.insert(client.clone()) {
            return Err(Error::usage(format!(
                "--each {pattern}: two env files for client {client}"
            )));
        }
        let mut env = Vec::new();
        let items = dotenvy::from_path_iter(&file)
            .map_err(|e| Error::config(format!("{}: {e}", file.display())))?;
        for item in items {
            let (k, v) = item.map_err(|e| Error::config(format!("{}: {e}", file.display())))?;
            if std::env::var_os(&k).is_none() || from_dotenv.contains(&k) {
                env.push((OsString::from(k), OsString::from(v)));
            }
        }
        let client_state = env
            .iter()
            .find(|(k, _)| k == "ETL_STATE")
            .map(|(_, v)| PathBuf::from(v));
        let state = match (client_state, &a.state) {
            (Some(s), _) => Some(s),
            (None, Some(s)) if state_has_client => Some(PathBuf::from(s.to_string_lossy().replace("{client}", &client))),
            (None, Some(_)) => {
                return Err(Error::usage(format!(
                    "--each: client {client} would share --state with the others: put {{client}} in --state or ETL_STATE in {}",
                    file.display()
                )))
            }
            (None, None) => None,
        };
        let lock = match &a.lock {
            Some(l) if l.to_string_lossy().contains("{client}") => {
                PathBuf::from(l.to_string_lossy().replace("{client}", &client))
            }
            Some(l) => PathBuf::from(format!("{}.{client}", l.display())),
            None => std::env::temp_dir().join(format!("etl-run.{}.{client}.lock", base.name)),
        };
        let redactor = redact::Redactor::from_vars(std::env::vars_os().chain(env.iter().cloned()));
        let prefix = if a.parallel > 1 {
            format!("[{client}] ")
        } else {
            String::new()
        };
        jobs.push(Job {
            client: Some(client.clone()),
            env,
            run_id: format!("{}-{client}", base.run_id),
            state,
            lock,
            redactor,
            pass: collect::Passthrough {
                text: base.pass.text,
                prefix,
            },
            ..base.clone()
        });
    }
    Ok(jobs)
}

/// The keys of the project's env file whose value in the environment is
/// the file's: set by etl-core from `.env`, not by the caller.
fn dotenv_keys(explicit: Option<&Path>) -> HashSet<String> {
    let path = explicit.map_or_else(|| PathBuf::from(".env"), Path::to_path_buf);
    let Ok(items) = dotenvy::from_path_iter(&path) else {
        return HashSet::new();
    };
    items
        .filter_map(std::result::Result::ok)
        .filter(|(k, v)| std::env::var(k).is_ok_and(|cur| &cur == v))
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins() {
        assert_eq!(worst([0, 0]), 0);
        assert_eq!(worst([0, 75, 69]), 69);
        assert_eq!(worst([65, 75, 69, 0]), 65);
        assert_eq!(worst([65, 78]), 78);
        assert_eq!(worst([]), 0);
    }

    #[test]
    fn which_files_bash_runs() {
        assert!(shell_script(b"echo hi\n"));
        assert!(shell_script(b"#!/bin/sh\n"));
        assert!(shell_script(b"#!/usr/bin/env bash\nset -e\n"));
        assert!(!shell_script(b"#!/usr/bin/env python3\n"));
        assert!(!shell_script(b"#!/usr/bin/env -S fish -l\n"));
    }
}
