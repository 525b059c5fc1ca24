//! What etl-checkpoint logs: one place, fields first, message last.
//! INFO is one line per phase, never per record; WARN marks manual repairs.

use etl_core::Value;
use tracing::{info, warn};

fn text(v: Option<&Value>) -> String {
    v.map_or_else(|| "none".to_owned(), Value::to_raw_text)
}

/// `filter` is about to stream: what it compares against.
pub fn filter_started(key: &str, committed: Option<&Value>, threshold: Option<&str>) {
    let committed = text(committed);
    let threshold = threshold.unwrap_or("none (all records pass)");
    info!(
        key,
        committed = committed.as_str(),
        threshold,
        "filtering {key}: passing records after {threshold}"
    );
}

/// `filter` recorded this run's pending watermark.
pub fn pending_recorded(key: &str, value: &Value, run_id: &str) {
    let value = value.to_raw_text();
    info!(key, value = value.as_str(), pending_run_id = run_id,
        "pending watermark {key}={value}; run `etl-checkpoint commit --run-id {run_id}` after the pipeline succeeds");
}

/// `filter` delivered nothing past the committed watermark.
pub fn nothing_new(key: &str) {
    info!(
        key,
        "no record past the watermark of {key}: nothing pending"
    );
}

/// The reader downstream closed stdout before the input ended.
pub fn downstream_closed(delivered: u64) {
    info!(
        delivered,
        "stdout closed early; the pending watermark covers only delivered records"
    );
}

/// `commit` promoted a run's values.
pub fn committed(run_id: &str, keys: &[String]) {
    let list = keys.join(",");
    info!(
        commit_run_id = run_id,
        keys = list.as_str(),
        "committed {} value(s) of run {run_id}",
        keys.len()
    );
}

/// `commit`/`discard` found nothing pending for the run.
pub fn nothing_pending(run_id: &str) {
    info!(target_run_id = run_id, "nothing pending for run {run_id}");
}

/// `commit` kept a committed value greater than the run's pending one.
pub fn kept_greater(key: &str, committed: &Value, pending: &Value, run_id: &str) {
    let (committed, pending) = (committed.to_raw_text(), pending.to_raw_text());
    warn!(
        key,
        committed = committed.as_str(),
        pending = pending.as_str(),
        commit_run_id = run_id,
        "watermark {key} not moved back from {committed} to {pending} (run {run_id} is older than the committed value; `etl-checkpoint set` moves it back on purpose)"
    );
}

/// `discard` dropped pending values.
pub fn discarded(runs: usize) {
    info!(runs, "discarded the pending values of {runs} run(s)");
}

/// `set`: a manual repair; WARN so it stands out in the log.
pub fn set_manually(key: &str, old: Option<&Value>, new: &Value) {
    let (old, new) = (text(old), new.to_raw_text());
    warn!(
        key,
        old = old.as_str(),
        new = new.as_str(),
        "watermark {key} set manually: {old} -> {new}"
    );
}

/// `reset`: the watermark was removed.
pub fn reset(key: &str, old: Option<&Value>) {
    if old.is_some() {
        let old = text(old);
        warn!(key, old = old.as_str(), "watermark {key} reset (was {old})");
    } else {
        info!(key, "watermark {key} was not set: nothing to reset");
    }
}

/// `get` found no committed value.
pub fn not_found(key: &str) {
    info!(key, "no committed value for {key}");
}
