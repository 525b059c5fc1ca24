//! The progress line: one line on a terminal for runs longer than a second.
//!
//! Shown only when stderr is a terminal and `--quiet` is not given, never
//! when stderr is a file or a pipe (cron, CI, `2>log`). It appears after the
//! first second (short runs stay silent), shows records, bytes, rate and
//! elapsed time, and is cleared at the end. Log lines written meanwhile
//! suspend it so the two never mix (see `log::emit`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar currently on screen, for `log::emit` to suspend.
pub(crate) static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Counts records and bytes; draws when enabled.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    target: fn() -> ProgressDrawTarget,
    started: Instant,
    bar: Option<ProgressBar>,
    records: u64,
    bytes: u64,
    /// What a record is called on the line (`records`, `messages`, `rows`).
    unit: &'static str,
    /// The command's own counts, shown after the rate (API requests, ...).
    extra: String,
}

impl Progress {
    /// A progress line on stderr when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self::with_target(enabled, ProgressDrawTarget::stderr)
    }

    fn with_target(enabled: bool, target: fn() -> ProgressDrawTarget) -> Self {
        Self {
            enabled,
            target,
            started: Instant::now(),
            bar: None,
            records: 0,
            bytes: 0,
            unit: "records",
            extra: String::new(),
        }
    }

    /// Calls the items `unit` on the line (`messages` for etl-fetch-mail,
    /// `rows` for etl-push-sheets).
    pub fn set_unit(&mut self, unit: &'static str) {
        self.unit = unit;
    }

    /// The command's own counts, shown after the rate (e.g. `12 requests,
    /// 1 quota wait`); redrawn at once.
    pub fn set_extra(&mut self, extra: String) {
        self.extra = extra;
        if self.enabled {
            self.redraw();
        }
    }

    /// One record of `bytes` bytes was processed. Cheap: the clock is read
    /// every 256 records.
    #[inline]
    pub fn tick(&mut self, bytes: usize) {
        self.records += 1;
        self.bytes += bytes as u64;
        if self.enabled && self.records.is_multiple_of(256) {
            self.redraw();
        }
    }

    /// `records` records of `bytes` bytes in all were processed (a batch;
    /// the clock is read once).
    pub fn advance(&mut self, records: u64, bytes: u64) {
        self.records += records;
        self.bytes += bytes;
        if self.enabled && (records > 0 || bytes > 0) {
            self.redraw();
        }
    }

    fn redraw(&mut self) {
        let elapsed = self.started.elapsed();
        if elapsed < SHOW_AFTER {
            return;
        }
        let target = self.target;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, target());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        #[allow(clippy::cast_precision_loss)] // a display rate
        let rate = self.records as f64 / elapsed.as_secs_f64();
        let unit = self.unit;
        let extra = if self.extra.is_empty() {
            String::new()
        } else {
            format!(", {}", self.extra)
        };
        bar.set_message(format!(
            "{} {unit}, {}, {rate:.0} {unit}/s{extra}, {:.1}s",
            self.records,
            HumanBytes(self.bytes),
            elapsed.as_secs_f64()
        ));
        bar.tick();
    }

    /// Whether a line is (or was) on screen.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE.lock() {
                *active = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_when_disabled_and_during_the_first_second() {
        let mut p = Progress::with_target(false, ProgressDrawTarget::hidden);
        p.started -= Duration::from_secs(5);
        for _ in 0..1000 {
            p.tick(10);
        }
        assert!(!p.is_shown(), "disabled (not a terminal, or --quiet)");
        let mut p = Progress::with_target(true, ProgressDrawTarget::hidden);
        for _ in 0..1000 {
            p.tick(10);
        }
        assert!(!p.is_shown(), "short runs stay silent");
    }

    #[test]
    fn shown_after_a_second_and_cleared_at_the_end() {
        let mut p = Progress::with_target(true, ProgressDrawTarget::hidden);
        p.started -= Duration::from_secs(2);
        for _ in 0..512 {
            p.tick(1024);
        }
        assert!(p.is_shown());
        let msg = p.bar.as_ref().unwrap().message();
        assert!(msg.starts_with("512 records, 512.00 KiB, "), "{msg}");
        p.advance(512, 512 * 1024);
        let msg = p.bar.as_ref().unwrap().message();
        assert!(msg.starts_with("1024 records, 1.00 MiB, "), "{msg}");
        p.finish();
        assert!(!p.is_shown());
    }

    #[test]
    fn units_and_the_commands_own_counts() {
        let mut p = Progress::with_target(true, ProgressDrawTarget::hidden);
        p.started -= Duration::from_secs(2);
        p.set_unit("rows");
        p.advance(3, 300);
        p.set_extra("2 requests, 1 quota wait".into());
        let msg = p.bar.as_ref().unwrap().message();
        assert!(msg.starts_with("3 rows, 300 B, "), "{msg}");
        assert!(msg.contains(" rows/s, 2 requests, 1 quota wait, "), "{msg}");
        let mut p = Progress::with_target(false, ProgressDrawTarget::hidden);
        p.started -= Duration::from_secs(2);
        p.set_extra("x".into());
        p.advance(3, 300);
        assert!(!p.is_shown(), "--quiet or not a terminal");
    }
}
