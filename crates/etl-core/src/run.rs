//! One command run: its identity (`cmd`, `run_id`), its counters, its
//! rejects, and the summary it ends with.
//!
//! Per-record problems go through [`Run::reject`], which counts them, writes
//! them to `--rejects`, logs them, and fails the run (exit 65) only once the
//! count exceeds `--max-rejects`: ripgrep's "set a flag and continue", with
//! the limit decided in one place.

use std::path::PathBuf;
use std::time::Instant;

use tracing::Level;

use crate::cli::CommonArgs;
use crate::error::{Error, Result};
use crate::events;
use crate::fsutil::atomic_write;
use crate::reader::Reject;
use crate::record::{write_str, write_value, Value};
use crate::rejects::RejectSink;

/// The state of one command run.
#[derive(Debug)]
pub struct Run {
    cmd: &'static str,
    stage: String,
    run_id: String,
    started: Instant,
    /// Records read.
    pub records_in: u64,
    /// Records written to stdout.
    pub records_out: u64,
    records_rejected: u64,
    max_rejects: u64,
    rejects: Option<RejectSink>,
    counts: Vec<(&'static str, Value)>,
    summary_file: Option<PathBuf>,
    /// `--max-line-bytes`.
    pub max_line_bytes: usize,
    /// The terminal progress line; commands call `progress.tick(bytes)` per record.
    pub progress: crate::progress::Progress,
}

impl Run {
    /// A run of `cmd`; opens the rejects file now so a bad path fails early.
    pub fn new(cmd: &'static str, run_id: String, common: &CommonArgs) -> Result<Self> {
        use std::io::IsTerminal;
        let show_progress = !common.quiet && std::io::stderr().is_terminal();
        Ok(Self {
            cmd,
            stage: cmd.to_owned(),
            run_id,
            started: Instant::now(),
            records_in: 0,
            records_out: 0,
            records_rejected: 0,
            max_rejects: common.max_rejects,
            rejects: common
                .rejects
                .as_deref()
                .map(RejectSink::open)
                .transpose()?,
            counts: Vec::new(),
            summary_file: common.summary.clone(),
            max_line_bytes: common.max_line_bytes,
            progress: crate::progress::Progress::new(show_progress),
        })
    }

    /// The command name (`etl-checkpoint`).
    pub fn cmd(&self) -> &'static str {
        self.cmd
    }

    /// This run's id (`ETL_RUN_ID` or generated).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Names the stage in rejects, e.g. `etl-checkpoint filter`.
    pub fn set_stage(&mut self, stage: impl Into<String>) {
        self.stage = stage.into();
    }

    /// Rejects so far.
    pub fn records_rejected(&self) -> u64 {
        self.records_rejected
    }

    /// Sets a command-specific summary count (`inserted`, `keys_committed`, ...).
    pub fn set_count(&mut self, name: &'static str, value: impl Into<Value>) {
        let value = value.into();
        match self.counts.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.counts.push((name, value)),
        }
    }

    /// Records one reject. Returns an error (exit 65) once the count exceeds
    /// `--max-rejects`; the rejects written so far are flushed first.
    pub fn reject(&mut self, r: &Reject) -> Result<()> {
        self.records_rejected += 1;
        events::record_rejected(r, self.rejects.is_some());
        if let Some(sink) = &mut self.rejects {
            sink.write(r, &self.stage, &self.run_id)?;
        }
        if self.records_rejected > self.max_rejects {
            self.flush_rejects()?;
            let at = match &r.source {
                Some(s) => format!("{s}: line {}", r.line),
                None => format!("line {}", r.line),
            };
            return Err(Error::data(format!(
                "{at}: {} ({} rejected, more than --max-rejects {})",
                r.error, self.records_rejected, self.max_rejects
            )));
        }
        Ok(())
    }

    fn flush_rejects(&mut self) -> Result<()> {
        self.rejects.as_mut().map_or(Ok(()), RejectSink::flush)
    }

    /// Ends the run: flushes rejects, logs the summary event and writes
    /// `--summary FILE`. Returns an error only if that bookkeeping fails.
    pub fn finish(&mut self, ok: bool) -> Result<()> {
        self.progress.finish();
        let flushed = self.flush_rejects();
        let ok = ok && flushed.is_ok();
        let fields = self.summary_fields(ok);
        crate::log::emit(
            if ok { Level::INFO } else { Level::ERROR },
            "summary",
            &fields,
        );
        if let Some(path) = &self.summary_file {
            let mut out = Vec::with_capacity(256);
            out.extend_from_slice(b"{\"cmd\":");
            write_str(&mut out, self.cmd);
            out.extend_from_slice(b",\"run_id\":");
            write_str(&mut out, &self.run_id);
            for (k, v) in &fields {
                out.push(b',');
                write_str(&mut out, k);
                out.push(b':');
                write_value(&mut out, &crate::log::redact_value(v));
            }
            out.extend_from_slice(b"}\n");
            atomic_write(path, &out).map_err(|e| Error::output(path, &e))?;
        }
        flushed
    }

    /// The summary object's fields, in documented order.
    pub fn summary_fields(&self, ok: bool) -> Vec<(&'static str, Value)> {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut f = vec![
            ("status", Value::from(if ok { "ok" } else { "failed" })),
            ("duration_ms", Value::from(ms)),
            ("records_in", Value::from(self.records_in)),
            ("records_out", Value::from(self.records_out)),
            ("records_rejected", Value::from(self.records_rejected)),
        ];
        f.extend(self.counts.iter().cloned());
        f
    }
}

/// Logs a run failure through the typed event.
pub(crate) fn log_failure(e: &Error) {
    events::run_failed(e.exit_code().code(), e.message());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::RejectInput;

    fn rej(line: u64) -> Reject {
        Reject {
            line,
            error: "bad".into(),
            input: RejectInput::Raw("x".into()),
            source: None,
        }
    }

    #[test]
    fn rejects_are_tolerated_up_to_the_limit_then_fail_with_65() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("rejects.ndjson");
        let common = CommonArgs {
            rejects: Some(path.clone()),
            max_rejects: 1,
            ..CommonArgs::default()
        };
        let mut run = Run::new("etl-x", "R".into(), &common).unwrap();
        run.reject(&rej(2)).unwrap();
        let e = run.reject(&rej(5)).unwrap_err();
        assert_eq!(e.exit_code(), crate::Exit::DataErr);
        assert!(
            e.message()
                .starts_with("line 5: bad (2 rejected, more than --max-rejects 1)"),
            "{e}"
        );
        // Both rejects were flushed before the error was returned.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| Value::parse(l).is_ok()));
    }

    #[test]
    fn summary_file_has_counts_in_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("summary.json");
        let common = CommonArgs {
            summary: Some(path.clone()),
            ..CommonArgs::default()
        };
        let mut run = Run::new("etl-x", "R".into(), &common).unwrap();
        run.records_in = 3;
        run.records_out = 2;
        run.set_count("passed", 2_u64);
        run.set_count("passed", 7_u64);
        run.finish(true).unwrap();
        let v = Value::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Value::Object(m) = v else { panic!() };
        let keys: Vec<_> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "cmd",
                "run_id",
                "status",
                "duration_ms",
                "records_in",
                "records_out",
                "records_rejected",
                "passed"
            ]
        );
        assert_eq!(m["passed"].to_json(), "7");
        assert_eq!(m["status"].as_str(), Some("ok"));
    }

    #[test]
    fn unwritable_rejects_file_fails_at_start_with_73() {
        let common = CommonArgs {
            rejects: Some("/nonexistent/dir/r".into()),
            ..CommonArgs::default()
        };
        let e = Run::new("etl-x", "R".into(), &common).unwrap_err();
        assert_eq!(e.exit_code(), crate::Exit::CantCreate);
    }
}
