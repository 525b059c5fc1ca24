//! etl-run's own log events (one function per event, as in every command).

use std::path::Path;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::duration::human;
use crate::runner::Job;
use crate::runslog::{RunRecord, Status};

fn client(job: &Job) -> &str {
    job.client.as_deref().unwrap_or("")
}

fn who(job: &Job) -> String {
    crate::runslog::label(&job.name, job.client.as_deref())
}

/// The lock is held by another run.
pub fn skipped(job: &Job, lock: &Path) {
    warn!(
        pipeline = job.name.as_str(),
        client = client(job),
        lock = %lock.display(),
        "{} is already running (lock {} held): skipped, exit 75",
        who(job),
        lock.display()
    );
}

/// The pipeline could not be started at all.
pub fn cannot_run(job: &Job, msg: &str) {
    error!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{}: {msg}",
        who(job)
    );
}

/// An attempt starts.
pub fn attempt(job: &Job, n: u32) {
    info!(
        pipeline = job.name.as_str(),
        client = client(job),
        pipeline_run_id = job.run_id.as_str(),
        attempt = n,
        "running {} (run {}, attempt {n} of {})",
        job.shown,
        job.run_id,
        job.retries + 1
    );
}

/// A temporary failure is retried.
pub fn retrying(job: &Job, reason: &str, n: u32, of: u32, delay: Duration) {
    warn!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{} {reason} (temporary); retry {n} of {of} in {}",
        who(job),
        human(delay)
    );
}

/// `--timeout` ran out.
pub fn timed_out(job: &Job, after: Duration, kill_after: Duration) {
    error!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{} timed out after {}: SIGTERM to its process group, SIGKILL in {}",
        who(job),
        human(after),
        human(kill_after)
    );
}

/// The group outlived `--kill-after`.
pub fn killed(job: &Job) {
    error!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{} still running: SIGKILL",
        who(job)
    );
}

/// The pipeline ended but left processes in its group.
pub fn strays(job: &Job) {
    warn!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{} left processes running in its group: SIGTERM to them",
        who(job)
    );
}

/// The commit after a successful pipeline failed.
pub fn commit_failed(job: &Job, msg: &str) {
    error!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{}: commit failed: {msg}",
        who(job)
    );
}

/// The discard after a failed pipeline failed.
pub fn discard_failed(job: &Job, msg: &str) {
    warn!(
        pipeline = job.name.as_str(),
        client = client(job),
        "{}: discard failed: {msg}",
        who(job)
    );
}

/// The run ended.
pub fn finished(job: &Job, r: &RunRecord) {
    let what = match r.status {
        Status::Ok => format!("ok: {} rows loaded, {} rejected", r.rows_loaded, r.rejects),
        Status::Failed if r.timed_out => format!("failed: timed out (exit {})", r.exit_code),
        Status::Failed => format!("failed with exit {}", r.exit_code),
        Status::Skipped => "skipped".to_owned(),
        Status::Interrupted => format!(
            "interrupted by {}",
            r.signal.as_deref().unwrap_or("a signal")
        ),
    };
    let level_ok = r.status == Status::Ok;
    let msg = format!(
        "{} {what} in {} after {} attempt(s)",
        who(job),
        crate::duration::human_ms(r.duration_ms),
        r.attempts
    );
    if level_ok {
        info!(
            pipeline = job.name.as_str(),
            client = client(job),
            status = r.status.as_str(),
            "{msg}"
        );
    } else {
        warn!(
            pipeline = job.name.as_str(),
            client = client(job),
            status = r.status.as_str(),
            "{msg}"
        );
    }
}

/// An alert went out.
pub fn alert_sent(kind: &str, to: &str) {
    info!(kind, "sent the {kind} alert to {to}");
}

/// An alert could not be delivered (the run's outcome stands).
pub fn alert_failed(kind: &str, to: &str, why: &str) {
    error!(kind, "could not send the {kind} alert to {to}: {why}");
}

/// Lines of the runs log that were not runs.
pub fn bad_runs_log_lines(path: &Path, n: u64) {
    warn!(
        runs_log = %path.display(),
        "{}: {n} line(s) are not runs (a torn line or a hand edit): skipped",
        path.display()
    );
}

/// `status --max-age`: a series whose last success is too old.
pub fn stale(label: &str, since: &str) {
    warn!(pipeline = label, "{label}: last success {since}");
}
