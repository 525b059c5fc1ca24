//! The runs log: one JSON line per run, appended, never rewritten. It is
//! etl-run's only store: `status`, `report`, the metrics file and the
//! `recovered`, `slow` and `empty` alerts are all read from it.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use etl_core::{Error, Result};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The pipeline succeeded and its state was committed.
    Ok,
    /// The pipeline failed (after its retries) or timed out.
    Failed,
    /// Another run of the same pipeline held the lock; nothing ran.
    Skipped,
    /// A signal stopped etl-run (systemd stopping the unit, Ctrl-C).
    Interrupted,
}

impl Status {
    /// The word in the runs log.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One line of the runs log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The `ETL_RUN_ID` every stage and retry of the run shared.
    pub run_id: String,
    /// The pipeline's name (its file name, or `--name`).
    pub pipeline: String,
    /// The client (`--each`: the env file's name without `.env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The machine it ran on.
    #[serde(default)]
    pub host: String,
    /// Start and end, RFC 3339 UTC with milliseconds.
    pub start: String,
    /// End time.
    pub end: String,
    /// Wall time of the whole run, retries and their delays included.
    pub duration_ms: u64,
    /// How it ended.
    pub status: Status,
    /// etl-run's exit status for it.
    pub exit_code: i32,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// The last attempt ran out of `--timeout`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// The signal that interrupted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Rows the run loaded: see [`rows_loaded`].
    #[serde(default)]
    pub rows_loaded: u64,
    /// Records rejected by all stages together.
    #[serde(default)]
    pub rejects: u64,
    /// Each stage's summary (the last attempt's), in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Box<RawValue>>,
    /// The alerts this run sent (`failed`, `recovered`, `slow`, `empty`, `rejects`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// A failed run's last stderr lines, secrets masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// The counts of one stage summary that etl-run reads back.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StageCounts {
    /// `etl-parse`, ...
    #[serde(default)]
    pub cmd: String,
    /// `ok` / `failed`.
    #[serde(default)]
    pub status: String,
    /// Stage wall time.
    #[serde(default)]
    pub duration_ms: u64,
    /// Records read.
    #[serde(default)]
    pub records_in: u64,
    /// Records written.
    #[serde(default)]
    pub records_out: u64,
    /// Records rejected.
    #[serde(default)]
    pub records_rejected: u64,
}

impl RunRecord {
    /// `pipeline` or `pipeline/client`: how status, metrics and the report
    /// name the series a run belongs to.
    pub fn key(&self) -> (String, Option<String>) {
        (self.pipeline.clone(), self.client.clone())
    }

    /// The stages' counts.
    pub fn stage_counts(&self) -> Vec<StageCounts> {
        self.stages
            .iter()
            .map(|s| serde_json::from_str(s.get()).unwrap_or_default())
            .collect()
    }

    /// Start time as a timestamp.
    pub fn start_ts(&self) -> Option<jiff::Timestamp> {
        self.start.parse().ok()
    }

    /// End time as a timestamp.
    pub fn end_ts(&self) -> Option<jiff::Timestamp> {
        self.end.parse().ok()
    }

    /// The label of a series: `pipeline` or `pipeline/client`.
    pub fn label(&self) -> String {
        label(&self.pipeline, self.client.as_deref())
    }
}

/// `pipeline` or `pipeline/client`.
pub fn label(pipeline: &str, client: Option<&str>) -> String {
    match client {
        Some(c) => format!("{pipeline}/{c}"),
        None => pipeline.to_owned(),
    }
}

/// The rows a run loaded: what reached the warehouse, the `records_in` of
/// its last `etl-merge` stage; without one, of its last `etl-push-sheets`;
/// without either, the `records_out` of its last stage.
pub fn rows_loaded(stages: &[StageCounts]) -> u64 {
    for loader in ["etl-merge", "etl-push-sheets"] {
        if let Some(s) = stages.iter().rev().find(|s| s.cmd == loader) {
            return s.records_in;
        }
    }
    stages.last().map_or(0, |s| s.records_out)
}

/// Appends one line (one `write` of the whole line, so concurrent runs
/// appending to the same log never interleave).
pub fn append(path: &Path, record: &RunRecord) -> Result<()> {
    let mut line = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::output(path, &e))?;
    f.write_all(&line).map_err(|e| Error::output(path, &e))
}

/// Reads every run of the log, calling `each` per run in file order.
/// Lines that are not runs (a torn last line after a crash, a hand edit)
/// are skipped, counted and logged once. A missing log has no runs.
pub fn read(path: &Path, mut each: impl FnMut(RunRecord)) -> Result<u64> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::input(path, &e)),
    };
    let mut bad = 0;
    for line in BufReader::with_capacity(256 * 1024, f).split(b'\n') {
        let line = line.map_err(|e| Error::input(path, &e))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RunRecord>(&line) {
            Ok(r) => each(r),
            Err(_) => bad += 1,
        }
    }
    if bad > 0 {
        crate::events::bad_runs_log_lines(path, bad);
    }
    Ok(bad)
}

/// What the alerts need to know about a series' earlier runs.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// The status of the last run that ran (ok or failed).
    pub last_status: Option<Status>,
    /// Failed runs since the last ok one.
    pub failures_since_ok: u32,
    /// Durations of the last 10 ok runs.
    pub ok_durations: VecDeque<u64>,
    /// Ok runs in a row that loaded no rows.
    pub empty_streak: u32,
}

/// How many successful runs the `slow` alert compares with.
pub const SLOW_WINDOW: usize = 10;

impl History {
    /// Adds one run of the series, in time order.
    pub fn push(&mut self, r: &RunRecord) {
        match r.status {
            Status::Ok => {
                self.last_status = Some(Status::Ok);
                self.failures_since_ok = 0;
                if self.ok_durations.len() == SLOW_WINDOW {
                    self.ok_durations.pop_front();
                }
                self.ok_durations.push_back(r.duration_ms);
                self.empty_streak = if r.rows_loaded == 0 {
                    self.empty_streak + 1
                } else {
                    0
                };
            }
            Status::Failed => {
                self.last_status = Some(Status::Failed);
                self.failures_since_ok += 1;
            }
            Status::Skipped | Status::Interrupted => {}
        }
    }

    /// The median of the recent ok durations.
    pub fn median_ok_ms(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.ok_durations.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            u64::midpoint(v[n / 2 - 1], v[n / 2])
        })
    }
}

/// The history of every series in the log.
pub fn histories(path: &Path) -> Result<BTreeMap<(String, Option<String>), History>> {
    let mut all: BTreeMap<(String, Option<String>), History> = BTreeMap::new();
    read(path, |r| all.entry(r.key()).or_default().push(&r))?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: Status, ms: u64, rows: u64) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            pipeline: "p".into(),
            client: None,
            host: String::new(),
            start: String::new(),
            end: String::new(),
            duration_ms: ms,
            status,
            exit_code: 0,
            attempts: 1,
            timed_out: false,
            signal: None,
            rows_loaded: rows,
            rejects: 0,
            stages: vec![],
            alerts: vec![],
            log_tail: vec![],
        }
    }

    #[test]
    fn history_counts_failures_medians_and_empty_streaks() {
        let mut h = History::default();
        for ms in [10, 30, 20, 1000] {
            h.push(&run(Status::Ok, ms, 5));
        }
        assert_eq!(h.median_ok_ms(), Some(25));
        h.push(&run(Status::Failed, 1, 0));
        h.push(&run(Status::Skipped, 1, 0));
        h.push(&run(Status::Failed, 1, 0));
        assert_eq!(
            (h.last_status, h.failures_since_ok),
            (Some(Status::Failed), 2)
        );
        h.push(&run(Status::Ok, 40, 0));
        h.push(&run(Status::Interrupted, 40, 0));
        h.push(&run(Status::Ok, 40, 0));
        assert_eq!((h.failures_since_ok, h.empty_streak), (0, 2));
        for _ in 0..20 {
            h.push(&run(Status::Ok, 7, 1));
        }
        assert_eq!(h.ok_durations.len(), SLOW_WINDOW);
        assert_eq!((h.median_ok_ms(), h.empty_streak), (Some(7), 0));
    }

    #[test]
    fn rows_loaded_is_what_reached_the_loader() {
        let s = |cmd: &str, i, o| StageCounts {
            cmd: cmd.into(),
            records_in: i,
            records_out: o,
            ..StageCounts::default()
        };
        assert_eq!(
            rows_loaded(&[
                s("etl-parse", 0, 9),
                s("etl-merge", 8, 8),
                s("etl-push-sheets", 20, 0)
            ]),
            8
        );
        assert_eq!(
            rows_loaded(&[s("etl-parse", 0, 9), s("etl-push-sheets", 7, 0)]),
            7
        );
        assert_eq!(rows_loaded(&[s("etl-parse", 0, 9)]), 9);
        assert_eq!(rows_loaded(&[]), 0);
    }

    #[test]
    fn old_lines_and_torn_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runs.ndjson");
        std::fs::write(&p, "{\"run_id\":\"a\",\"pipeline\":\"p.sh\",\"start\":\"2026-01-01T00:00:00.000Z\",\"end\":\"2026-01-01T00:00:01.000Z\",\"duration_ms\":1000,\"status\":\"ok\",\"exit_code\":0,\"attempts\":1}\n\n{\"run_id\":\"b\",\"pipel").unwrap();
        let mut seen = vec![];
        let bad = read(&p, |r| seen.push(r.run_id)).unwrap();
        assert_eq!((seen, bad), (vec!["a".to_owned()], 1));
        assert_eq!(read(&d.path().join("none"), |_| {}).unwrap(), 0);
    }
}
