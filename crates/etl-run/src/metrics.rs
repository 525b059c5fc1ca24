//! `--metrics-file`: the Prometheus text exposition format, for
//! node_exporter's textfile collector, rewritten atomically after every
//! run. Every pipeline of the runs log is in it (so several cron jobs can
//! share one file), or, without a runs log, the pipelines of this run.

use std::fmt::Write as _;
use std::path::Path;

use etl_core::{Error, Result};

use crate::runslog::{RunRecord, Status};
use crate::status::{self, Series};

/// Writes the metrics file.
pub fn write(path: &Path, runs_log: Option<&Path>, this_run: &[RunRecord]) -> Result<()> {
    let series = match runs_log {
        Some(log) if log.is_file() => status::read_series(log)?,
        _ => status::series_of(this_run.iter().cloned()),
    };
    let text = render(&series);
    etl_core::fsutil::atomic_write(path, text.as_bytes()).map_err(|e| Error::output(path, &e))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[allow(clippy::cast_precision_loss)] // seconds and counts as floats, as Prometheus keeps them
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// One gauge per series: its name, help, and value (none: no sample).
type Gauge = (&'static str, &'static str, fn(&Series) -> Option<String>);

const GAUGES: [Gauge; 7] = [
    (
        "etl_run_last_ok",
        "1 if the last run of the pipeline succeeded, else 0.",
        |s| Some(u8::from(s.last.status == Status::Ok).to_string()),
    ),
    (
        "etl_run_last_exit_code",
        "Exit status of the last run.",
        |s| Some(s.last.exit_code.to_string()),
    ),
    (
        "etl_run_last_duration_seconds",
        "Wall time of the last run, retries included.",
        |s| Some(secs(s.last.duration_ms).to_string()),
    ),
    (
        "etl_run_last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        |s| s.last.end_ts().map(|t| t.as_second().to_string()),
    ),
    (
        "etl_run_last_success_timestamp_seconds",
        "When the last successful run ended (Unix time); absent if none did.",
        |s| s.last_success.map(|t| t.as_second().to_string()),
    ),
    (
        "etl_run_last_rows_loaded",
        "Rows the last run loaded.",
        |s| Some(s.last.rows_loaded.to_string()),
    ),
    (
        "etl_run_last_rejects",
        "Records the stages of the last run rejected.",
        |s| Some(s.last.rejects.to_string()),
    ),
];

/// The exposition text of `series`.
pub fn render(series: &[Series]) -> String {
    let labels = |s: &Series| {
        format!(
            "pipeline=\"{}\",client=\"{}\"",
            escape(&s.pipeline),
            escape(s.client.as_deref().unwrap_or(""))
        )
    };
    let mut out = String::new();
    let head = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    for (name, help, value) in GAUGES {
        head(&mut out, name, "gauge", help);
        for s in series {
            if let Some(v) = value(s) {
                let _ = writeln!(out, "{name}{{{}}} {v}", labels(s));
            }
        }
    }
    head(
        &mut out,
        "etl_run_runs_total",
        "counter",
        "Runs in the runs log, per status.",
    );
    for s in series {
        for (status, n) in &s.counts {
            let _ = writeln!(
                out,
                "etl_run_runs_total{{{},status=\"{status}\"}} {n}",
                labels(s)
            );
        }
    }
    head(
        &mut out,
        "etl_run_last_stage_records",
        "gauge",
        "Records per stage of the last run (step: the stage's place in the order the stages ended).",
    );
    for s in series {
        for (i, st) in s.last.stage_counts().iter().enumerate() {
            for (dir, n) in [
                ("in", st.records_in),
                ("out", st.records_out),
                ("rejected", st.records_rejected),
            ] {
                let _ = writeln!(
                    out,
                    "etl_run_last_stage_records{{{},stage=\"{}\",step=\"{}\",direction=\"{dir}\"}} {n}",
                    labels(s),
                    escape(&st.cmd),
                    i + 1
                );
            }
        }
    }
    out
}
