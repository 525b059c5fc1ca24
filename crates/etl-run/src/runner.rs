//! One run of one pipeline: the lock, the attempts (each in a process group
//! of its own, under `--timeout`), the commit or discard of its state, and
//! the runs-log record that says what happened.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etl_core::state::StateFile;
use etl_core::Exit;

use crate::collect::{self, Passthrough, StageLog};
use crate::events;
use crate::redact::Redactor;
use crate::runslog::{self, RunRecord, Status};
use crate::signals::{self, Event};

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Job {
    /// The series name (`pipeline.sh`, or `--name`).
    pub name: String,
    /// `--each`: the client.
    pub client: Option<String>,
    /// The program and its arguments (`bash -o pipefail script args`).
    pub argv: Vec<OsString>,
    /// The pipeline as given, for messages.
    pub shown: String,
    /// Variables set for the pipeline on top of etl-run's environment.
    pub env: Vec<(OsString, OsString)>,
    /// `ETL_RUN_ID` of every stage and retry.
    pub run_id: String,
    /// `--state`: committed on success, discarded on failure.
    pub state: Option<PathBuf>,
    /// The lock file.
    pub lock: PathBuf,
    /// `--retries`.
    pub retries: u32,
    /// `--retry-delay` (doubles each retry).
    pub retry_delay: Duration,
    /// `--timeout` of each attempt.
    pub timeout: Option<Duration>,
    /// `--kill-after`.
    pub kill_after: Duration,
    /// Masks the secrets of this run's environment.
    pub redactor: Redactor,
    /// How the pipeline's stderr is passed on.
    pub pass: Passthrough,
    /// The host name for the record.
    pub host: String,
}

/// How one attempt ended.
struct Attempt {
    code: i32,
    timed_out: bool,
    signal: Option<i32>,
    log: StageLog,
}

/// Runs `job` and says what happened. Never fails: every failure is the
/// record's status and exit code.
pub fn run(job: &Job) -> RunRecord {
    let started = Instant::now();
    let start = now();
    let mut record = RunRecord {
        run_id: job.run_id.clone(),
        pipeline: job.name.clone(),
        client: job.client.clone(),
        host: job.host.clone(),
        start,
        end: String::new(),
        duration_ms: 0,
        status: Status::Failed,
        exit_code: 0,
        attempts: 0,
        timed_out: false,
        signal: None,
        rows_loaded: 0,
        rejects: 0,
        stages: Vec::new(),
        alerts: Vec::new(),
        log_tail: Vec::new(),
    };
    let finish = |mut r: RunRecord| {
        r.end = now();
        r.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        r
    };
    // The lock: held by the open file until this function returns.
    let _lock = match take_lock(job) {
        Ok(Some(f)) => f,
        Ok(None) => {
            events::skipped(job, &job.lock);
            record.status = Status::Skipped;
            record.exit_code = Exit::TempFail.code();
            return finish(record);
        }
        Err((code, msg)) => {
            events::cannot_run(job, &msg);
            record.exit_code = code;
            record.log_tail = vec![job.redactor.apply(&msg)];
            return finish(record);
        }
    };
    let mut delay = job.retry_delay;
    let last = loop {
        if let Some(sig) = signals::stopped() {
            record.status = Status::Interrupted;
            record.signal = Some(signals::name(sig));
            record.exit_code = 128 + sig;
            break None;
        }
        record.attempts += 1;
        events::attempt(job, record.attempts);
        let a = attempt(job);
        record.timed_out = a.timed_out;
        if let Some(sig) = a.signal {
            record.status = Status::Interrupted;
            record.signal = Some(signals::name(sig));
            record.exit_code = 128 + sig;
            break Some(a);
        }
        if a.code == 0 {
            record.status = Status::Ok;
            break Some(a);
        }
        let temporary = a.code == Exit::Unavailable.code() || a.code == Exit::TempFail.code();
        if temporary && record.attempts <= job.retries {
            events::retrying(job, &a_reason(&a, job), record.attempts, job.retries, delay);
            if !signals::sleep(delay) {
                continue; // the loop's top says interrupted
            }
            delay = delay.saturating_mul(2);
            continue;
        }
        record.exit_code = a.code;
        break Some(a);
    };
    settle(job, &mut record, last.as_ref());
    let record = finish(record);
    events::finished(job, &record);
    record
}

/// After the last attempt: the stages' counts, the commit or discard, the
/// log tail of a failure.
fn settle(job: &Job, record: &mut RunRecord, last: Option<&Attempt>) {
    if let Some(a) = last {
        record.stages = a
            .log
            .summaries
            .iter()
            .filter_map(|s| serde_json::value::RawValue::from_string(s.clone()).ok())
            .collect();
        let counts = record.stage_counts();
        record.rows_loaded = runslog::rows_loaded(&counts);
        record.rejects = counts.iter().map(|s| s.records_rejected).sum();
    }
    if let Some(state) = &job.state {
        let store = StateFile::new(state.clone(), Duration::from_secs(30));
        if record.status == Status::Ok {
            if let Err(e) = etl_checkpoint::commit_run(&store, &job.run_id) {
                // Delivered but not committed: the next run fetches the same
                // input again and the idempotent loads make that harmless.
                events::commit_failed(job, e.message());
                record.status = Status::Failed;
                record.exit_code = e.exit_code().code();
                record.log_tail.push(job.redactor.apply(e.message()));
            }
        } else if let Err(e) = etl_checkpoint::discard_run(&store, &job.run_id) {
            events::discard_failed(job, e.message());
        }
    }
    if record.status != Status::Ok {
        if let Some(a) = last {
            let mut tail: Vec<String> = a.log.tail.iter().cloned().collect();
            tail.append(&mut record.log_tail);
            record.log_tail = tail;
        }
    }
}

fn a_reason(a: &Attempt, job: &Job) -> String {
    if a.timed_out {
        format!(
            "timed out after {}",
            crate::duration::human(job.timeout.unwrap_or_default())
        )
    } else {
        format!("exited {}", a.code)
    }
}

/// The lock: `Ok(None)` when another run holds it.
fn take_lock(job: &Job) -> Result<Option<File>, (i32, String)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&job.lock)
        .map_err(|e| {
            (
                Exit::CantCreate.code(),
                format!("cannot open the lock {}: {e}", job.lock.display()),
            )
        })?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err((
            Exit::CantCreate.code(),
            format!("cannot lock {}: {e}", job.lock.display()),
        )),
    }
}

/// One attempt: the pipeline in a process group of its own, its stderr
/// collected, stopped by `--timeout` or a signal to etl-run.
fn attempt(job: &Job) -> Attempt {
    let mut cmd = Command::new(&job.argv[0]);
    cmd.args(&job.argv[1..])
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .env("ETL_RUN_ID", &job.run_id)
        // Stages log JSON to etl-run, which shows them as text on a terminal.
        .env("ETL_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot run {}: {e}", job.shown);
            events::cannot_run(job, &msg);
            let mut log = StageLog::default();
            log.tail.push_back(job.redactor.apply(&msg));
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                Exit::NoInput
            } else {
                Exit::Software
            };
            return Attempt {
                code: code.code(),
                timed_out: false,
                signal: None,
                log,
            };
        }
    };
    let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let (tx, rx) = mpsc::channel();
    signals::register(pgid, &tx);

    let log = Arc::new(Mutex::new(StageLog::default()));
    let (done_tx, done_rx) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        let (log, pass, redactor) = (Arc::clone(&log), job.pass.clone(), job.redactor.clone());
        std::thread::spawn(move || {
            collect::collect(stderr, &pass, &redactor, &log);
            let _ = done_tx.send(());
        });
    }
    std::thread::spawn(move || {
        let status = child.wait();
        let (code, sig) = status.map_or((Some(Exit::Software.code()), None), |s| {
            (s.code(), s.signal())
        });
        let _ = tx.send(Event::Exited(code, sig));
    });

    let Waited {
        code,
        killed_by,
        timed_out,
        signal,
    } = wait(job, pgid, &rx);
    // What the pipeline left running in its group (a stage it put in the
    // background) is stopped too: nothing of a run outlives it.
    if signals::group_alive(pgid) {
        events::strays(job);
        signals::send(pgid, signal_hook::consts::SIGTERM);
        let until = Instant::now() + job.kill_after;
        while signals::group_alive(pgid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if signals::send(pgid, signal_hook::consts::SIGKILL) {
            events::killed(job);
        }
    }
    signals::unregister(pgid);
    // The stderr pipe ends with the group; a process that left the group
    // (setsid) and kept it open is not waited for beyond --kill-after.
    let _ = done_rx.recv_timeout(job.kill_after.max(Duration::from_secs(1)));
    let log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let code = if timed_out {
        Exit::TempFail.code()
    } else {
        code.unwrap_or_else(|| 128 + killed_by.unwrap_or(0))
    };
    Attempt {
        code,
        timed_out,
        signal,
        log,
    }
}

/// How the wait for an attempt ended.
struct Waited {
    code: Option<i32>,
    killed_by: Option<i32>,
    timed_out: bool,
    signal: Option<i32>,
}

/// Waits for the attempt's exit, enforcing `--timeout` and `--kill-after`
/// and noting a signal to etl-run (already forwarded to the group).
fn wait(job: &Job, pgid: i32, rx: &mpsc::Receiver<Event>) -> Waited {
    let mut timed_out = false;
    let mut signal = None;
    // The next thing to do if the pipeline has not ended by then.
    let mut deadline = job
        .timeout
        .map(|t| (Instant::now() + t, signal_hook::consts::SIGTERM));
    let (code, killed_by) = loop {
        let event = match deadline {
            Some((at, _)) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Exited(code, sig)) => break (code, sig),
            Ok(Event::Signal(sig)) => {
                signal.get_or_insert(sig);
                deadline = Some((
                    Instant::now() + job.kill_after,
                    signal_hook::consts::SIGKILL,
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let Some((_, sig)) = deadline else { continue };
                if sig == signal_hook::consts::SIGTERM {
                    timed_out = true;
                    events::timed_out(job, job.timeout.unwrap_or_default(), job.kill_after);
                    signals::send(pgid, sig);
                    deadline = Some((
                        Instant::now() + job.kill_after,
                        signal_hook::consts::SIGKILL,
                    ));
                } else {
                    events::killed(job);
                    signals::send(pgid, sig);
                    deadline = None;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break (Some(Exit::Software.code()), None),
        }
    };
    Waited {
        code,
        killed_by,
        timed_out,
        signal,
    }
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}
