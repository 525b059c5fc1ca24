//! `etl-run status`: one line per pipeline of the runs log, and the
//! per-series view the metrics file and the report share.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use etl_core::{Error, Exit, Result};

use crate::duration::{self, human_ms};
use crate::runslog::{self, RunRecord, Status};

/// `etl-run status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The runs log etl-run appends to.
    #[arg(long, value_name = "FILE", env = "ETL_RUNS_LOG")]
    pub runs_log: Option<PathBuf>,
    /// Exit 1 when a pipeline's last success is older than DURATION (or it never succeeded): a health check.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub max_age: Option<Duration>,
    /// One JSON object per pipeline instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How many recent durations a series keeps (the sparkline).
const RECENT: usize = 20;

/// What the runs log says about one pipeline (one client of it).
#[derive(Debug, Clone)]
pub struct Series {
    /// The pipeline.
    pub pipeline: String,
    /// The client, with `--each`.
    pub client: Option<String>,
    /// The last run that ran (not skipped); else the last line.
    pub last: RunRecord,
    /// The last successful run's end.
    pub last_success: Option<jiff::Timestamp>,
    /// Runs per status.
    pub counts: BTreeMap<&'static str, u64>,
    /// Durations of the last runs that ran, oldest first.
    pub recent: VecDeque<(u64, Status)>,
}

impl Series {
    fn new(r: RunRecord) -> Self {
        Self {
            pipeline: r.pipeline.clone(),
            client: r.client.clone(),
            last: r,
            last_success: None,
            counts: BTreeMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// Adds one run, in log order.
    pub fn push(&mut self, r: RunRecord) {
        *self.counts.entry(r.status.as_str()).or_default() += 1;
        if r.status == Status::Ok {
            self.last_success = r.end_ts().or(self.last_success);
        }
        if r.status != Status::Skipped {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((r.duration_ms, r.status));
        }
        if r.status != Status::Skipped || self.last.status == Status::Skipped {
            self.last = r;
        }
    }

    /// `pipeline` or `pipeline/client`.
    pub fn label(&self) -> String {
        runslog::label(&self.pipeline, self.client.as_deref())
    }
}

/// Every series of `runs` (in log order), sorted by label.
pub fn series_of(runs: impl IntoIterator<Item = RunRecord>) -> Vec<Series> {
    let mut all = Collector::default();
    for r in runs {
        all.push(r);
    }
    all.into_series()
}

/// Series built one run at a time, as a runs log is read.
#[derive(Debug, Default)]
pub(crate) struct Collector(BTreeMap<(String, Option<String>), Series>);

impl Collector {
    /// Adds one run, in log order.
    pub(crate) fn push(&mut self, r: RunRecord) {
        match self.0.get_mut(&r.key()) {
            Some(s) => s.push(r),
            None => {
                let mut s = Series::new(r.clone());
                s.push(r);
                self.0.insert((s.pipeline.clone(), s.client.clone()), s);
            }
        }
    }

    /// The series, sorted by pipeline and client.
    pub(crate) fn into_series(self) -> Vec<Series> {
        self.0.into_values().collect()
    }
}

/// The runs log flag or variable, which must name an existing file.
pub fn runs_log_path(p: Option<&Path>) -> Result<PathBuf> {
    let p = p.ok_or_else(|| Error::missing_setting("--runs-log", "ETL_RUNS_LOG"))?;
    if !p.is_file() {
        return Err(Error::new(
            Exit::NoInput,
            format!("--runs-log {}: no such file", p.display()),
        ));
    }
    Ok(p.to_path_buf())
}

/// Every series of the runs log at `path` (the last run of each with its
/// stages; log tails are not kept).
pub fn read_series(path: &Path) -> Result<Vec<Series>> {
    let mut all = Collector::default();
    runslog::read(path, |mut r| {
        r.log_tail.clear();
        all.push(r);
    })?;
    Ok(all.into_series())
}

/// `etl-run status`. The exit status: 1 when `--max-age` finds a stale pipeline.
pub fn run(a: &StatusArgs) -> Result<i32> {
    let path = runs_log_path(a.runs_log.as_deref())?;
    let series = read_series(&path)?;
    let now = jiff::Timestamp::now();
    let age_ms = |s: &Series| {
        s.last_success
            .map(|t| u64::try_from(now.duration_since(t).as_millis()).unwrap_or(0))
    };
    let stale = |s: &Series| {
        a.max_age
            .is_some_and(|max| age_ms(s).is_none_or(|ms| u128::from(ms) > max.as_millis()))
    };
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::stdout(&e);
    if a.json {
        for s in &series {
            let mut v = json!({
                "pipeline": s.pipeline,
                "client": s.client,
                "last_run_id": s.last.run_id,
                "last_start": s.last.start,
                "last_end": s.last.end,
                "last_status": s.last.status.as_str(),
                "last_exit_code": s.last.exit_code,
                "last_duration_ms": s.last.duration_ms,
                "rows_loaded": s.last.rows_loaded,
                "rejects": s.last.rejects,
                "last_success": s.last_success.map(|t| format!("{t:.3}")),
                "since_last_success_s": age_ms(s).map(|ms| ms / 1000),
                "runs": s.counts,
                "recent_durations_ms": s.recent.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            });
            if a.max_age.is_some() {
                v["stale"] = json!(stale(s));
            }
            writeln!(out, "{v}").map_err(io)?;
        }
    } else {
        let spark = std::io::stdout().is_terminal();
        let mut rows = vec![vec![
            "PIPELINE".to_owned(),
            "LAST RUN (UTC)".to_owned(),
            "STATUS".to_owned(),
            "TOOK".to_owned(),
            "ROWS".to_owned(),
            "REJECTS".to_owned(),
            "LAST SUCCESS".to_owned(),
        ]];
        if spark {
            rows[0].push("RECENT".to_owned());
        }
        for s in &series {
            let mut status = s.last.status.as_str().to_owned();
            if s.last.status != Status::Ok && s.last.status != Status::Skipped {
                status = format!("{status} ({})", s.last.exit_code);
            }
            if stale(s) {
                status.push_str(" STALE");
            }
            let mut row = vec![
                s.label(),
                s.last
                    .start
                    .get(..16)
                    .unwrap_or(&s.last.start)
                    .replace('T', " "),
                status,
                human_ms(s.last.duration_ms),
                s.last.rows_loaded.to_string(),
                s.last.rejects.to_string(),
                age_ms(s).map_or_else(|| "never".to_owned(), |ms| format!("{} ago", human_ms(ms))),
            ];
            if spark {
                row.push(sparkline(&s.recent));
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
                }
            }
            writeln!(out, "{}", line.trim_end()).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    let stale: Vec<&Series> = series.iter().filter(|s| stale(s)).collect();
    for s in &stale {
        let since =
            age_ms(s).map_or_else(|| "never".to_owned(), |ms| format!("{} ago", human_ms(ms)));
        crate::events::stale(&s.label(), &since);
    }
    Ok(i32::from(!stale.is_empty()))
}

/// Recent durations as block characters; a failed run is `×`.
pub fn sparkline(recent: &VecDeque<(u64, Status)>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = recent.iter().map(|(d, _)| *d).max().unwrap_or(0).max(1);
    recent
        .iter()
        .map(|(d, st)| {
            if *st == Status::Ok {
                BARS[usize::try_from(d * 7 / max).unwrap_or(7).min(7)]
            } else {
                '×'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_longest_and_marks_failures() {
        let r: VecDeque<_> = [
            (10, Status::Ok),
            (70, Status::Ok),
            (35, Status::Failed),
            (40, Status::Ok),
        ]
        .into();
        assert_eq!(sparkline(&r), "▂█×▅");
    }
}
