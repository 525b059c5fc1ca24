//! Alerts that say what happened, one JSON object per alert, to a
//! Slack-compatible webhook (`--notify-url`, the object's `text`) and/or
//! any program (`--notify-command`, the object on its stdin):
//!
//! - `failed`: the run failed after its retries, or timed out;
//! - `recovered`: the first success after failures;
//! - `slow`: a success that took more than `--slow-factor` times the median
//!   of the last 10 successful runs (once there are at least 3);
//! - `empty`: `--alert-empty-after N` successful runs in a row loaded no
//!   rows (the client stopped sending); repeated every N such runs;
//! - `rejects`: with `--alert-on-rejects`, a success whose stages rejected
//!   records.
//!
//! A skipped or interrupted run sends none. Every alert carries the
//! pipeline, client, run id, host, status, exit code, attempts, duration,
//! rows loaded, rejects, each stage's summary and the masked log tail.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::duration::human_ms;
use crate::events;
use crate::redact::Redactor;
use crate::runslog::{History, RunRecord, Status};

/// Where alerts go and which are wanted.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    /// `--notify-url`.
    pub url: Option<String>,
    /// `--notify-command`.
    pub command: Option<String>,
    /// `--slow-factor`.
    pub slow_factor: f64,
    /// `--alert-empty-after`.
    pub empty_after: Option<u32>,
    /// `--alert-on-rejects`.
    pub on_rejects: bool,
}

/// Fewest earlier successful runs the `slow` alert needs.
pub const SLOW_MIN_RUNS: usize = 3;

/// One alert: its kind, its one-line text and its own fields.
#[derive(Debug, Clone)]
pub struct Alert {
    /// `failed`, `recovered`, `slow`, `empty`, `rejects`.
    pub kind: &'static str,
    /// The sentence (Slack's `text`).
    pub text: String,
    /// Fields only this kind has.
    pub extra: Vec<(&'static str, Value)>,
}

/// The alerts `r` calls for, given the series' runs before it.
pub fn decide(r: &RunRecord, before: &History, cfg: &AlertConfig) -> Vec<Alert> {
    let who = r.label();
    let mut out = Vec::new();
    match r.status {
        Status::Failed => {
            let text = if r.timed_out {
                format!(
                    "{who} timed out (exit {}, {} attempts)",
                    r.exit_code, r.attempts
                )
            } else {
                format!(
                    "{who} failed with exit {} ({} attempts)",
                    r.exit_code, r.attempts
                )
            };
            out.push(Alert {
                kind: "failed",
                text,
                extra: vec![("timed_out", json!(r.timed_out))],
            });
        }
        Status::Ok => {
            if before.last_status == Some(Status::Failed) {
                out.push(Alert {
                    kind: "recovered",
                    text: format!(
                        "{who} recovered: ok after {} failed run(s)",
                        before.failures_since_ok
                    ),
                    extra: vec![("failed_runs", json!(before.failures_since_ok))],
                });
            }
            if let Some(median) = before
                .median_ok_ms()
                .filter(|_| before.ok_durations.len() >= SLOW_MIN_RUNS)
            {
                #[allow(clippy::cast_precision_loss)] // milliseconds
                let ratio = r.duration_ms as f64 / median.max(1) as f64;
                if ratio > cfg.slow_factor {
                    out.push(Alert {
                        kind: "slow",
                        text: format!(
                            "{who} was slow: {} is {ratio:.1}x the median {} of its last {} successful runs",
                            human_ms(r.duration_ms),
                            human_ms(median),
                            before.ok_durations.len()
                        ),
                        extra: vec![("median_ms", json!(median)), ("factor", json!((ratio * 10.0).round() / 10.0))],
                    });
                }
            }
            if let Some(n) = cfg.empty_after {
                let streak = before.empty_streak + 1;
                if r.rows_loaded == 0 && n > 0 && streak.is_multiple_of(n) {
                    out.push(Alert {
                        kind: "empty",
                        text: format!("{who} loaded no rows for {streak} successful runs in a row: has the client stopped sending?"),
                        extra: vec![("empty_runs", json!(streak))],
                    });
                }
            }
            if cfg.on_rejects && r.rejects > 0 {
                out.push(Alert {
                    kind: "rejects",
                    text: format!("{who} rejected {} record(s)", r.rejects),
                    extra: vec![],
                });
            }
        }
        Status::Skipped | Status::Interrupted => {}
    }
    out
}

/// The alert's JSON object.
pub fn body(a: &Alert, r: &RunRecord, redactor: &Redactor) -> Value {
    let stages: Vec<Value> = r
        .stages
        .iter()
        .filter_map(|s| serde_json::from_str(s.get()).ok())
        .collect();
    let mut v = json!({
        "text": redactor.apply(&format!("etl-run: {} on {} (run {})", a.text, r.host, r.run_id)),
        "kind": a.kind,
        "pipeline": r.pipeline,
        "client": r.client,
        "run_id": r.run_id,
        "host": r.host,
        "status": r.status.as_str(),
        "exit_code": r.exit_code,
        "attempts": r.attempts,
        "start": r.start,
        "end": r.end,
        "duration_ms": r.duration_ms,
        "rows_loaded": r.rows_loaded,
        "rejects": r.rejects,
        "stages": stages,
        "log_tail": r.log_tail,
    });
    if let Value::Object(m) = &mut v {
        for (k, x) in &a.extra {
            m.insert((*k).to_owned(), x.clone());
        }
    }
    v
}

/// Sends one alert everywhere configured. A failure to deliver is logged;
/// it never changes the run's outcome.
pub fn send(kind: &str, body: &Value, cfg: &AlertConfig) {
    let bytes = body.to_string();
    if let Some(url) = &cfg.url {
        // The webhook's URL is a secret (Slack's path is the key): messages
        // name the flag, never the URL.
        match post(url, &bytes) {
            Ok(()) => events::alert_sent(kind, "--notify-url"),
            Err(why) => events::alert_failed(kind, "--notify-url", &why),
        }
    }
    if let Some(cmd) = &cfg.command {
        match run_command(cmd, kind, &bytes) {
            Ok(()) => events::alert_sent(kind, "--notify-command"),
            Err(why) => events::alert_failed(kind, "--notify-command", &why),
        }
    }
}

fn post(url: &str, body: &str) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.without_url().to_string())?;
    let mut last = String::new();
    for attempt in 0..2 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        match client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
        {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if resp.status().is_server_error() => last = format!("HTTP {}", resp.status()),
            Ok(resp) => return Err(format!("HTTP {}", resp.status())),
            Err(e) => last = e.without_url().to_string(),
        }
    }
    Err(last)
}

/// How long a notify command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn run_command(cmd: &str, kind: &str, body: &str) -> Result<(), String> {
    // The command's own output goes to etl-run's stderr: stdout is data.
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| e.to_string())?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("ETL_ALERT_KIND", kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is not an error.
        let _ = stdin
            .write_all(body.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"));
    }
    let until = Instant::now() + COMMAND_TIMEOUT;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(s) if s.success() => return Ok(()),
            Some(s) => return Err(format!("it exited with {s}")),
            None if Instant::now() > until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it took more than {}s: killed",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, ms: u64, rows: u64, rejects: u64) -> RunRecord {
        serde_json::from_value(json!({
            "run_id": "R", "pipeline": "p.sh", "host": "h", "start": "", "end": "",
            "duration_ms": ms, "status": status.as_str(), "exit_code": 0, "attempts": 1,
            "rows_loaded": rows, "rejects": rejects
        }))
        .unwrap()
    }

    fn kinds(r: &RunRecord, h: &History, cfg: &AlertConfig) -> Vec<&'static str> {
        decide(r, h, cfg).iter().map(|a| a.kind).collect()
    }

    #[test]
    fn each_kind_fires_when_it_should_and_not_otherwise() {
        let cfg = AlertConfig {
            slow_factor: 2.0,
            empty_after: Some(3),
            on_rejects: true,
            ..AlertConfig::default()
        };
        let mut h = History::default();
        assert_eq!(
            kinds(&record(Status::Failed, 5, 0, 0), &h, &cfg),
            ["failed"]
        );
        assert!(kinds(&record(Status::Skipped, 5, 0, 0), &h, &cfg).is_empty());
        assert!(kinds(&record(Status::Interrupted, 5, 0, 0), &h, &cfg).is_empty());
        // Slow needs 3 earlier successes; then 2.0x the median is not slow, more is.
        for ms in [100, 120, 80] {
            assert!(kinds(&record(Status::Ok, 1000, 1, 0), &h, &cfg).is_empty());
            h.push(&record(Status::Ok, ms, 1, 0));
        }
        assert!(kinds(&record(Status::Ok, 200, 1, 0), &h, &cfg).is_empty());
        assert_eq!(kinds(&record(Status::Ok, 201, 1, 0), &h, &cfg), ["slow"]);
        // Recovered: the first success after failures, once.
        h.push(&record(Status::Failed, 5, 0, 0));
        h.push(&record(Status::Failed, 5, 0, 0));
        let a = decide(&record(Status::Ok, 100, 1, 0), &h, &cfg);
        assert_eq!(a[0].kind, "recovered");
        assert!(a[0].text.contains("after 2 failed run(s)"), "{}", a[0].text);
        h.push(&record(Status::Ok, 100, 1, 0));
        assert!(kinds(&record(Status::Ok, 100, 1, 0), &h, &cfg).is_empty());
        // Empty: the third empty success in a row, then the sixth.
        for n in 1..=6 {
            let r = record(Status::Ok, 100, 0, 0);
            let k = kinds(&r, &h, &cfg);
            assert_eq!(k == ["empty"], n % 3 == 0, "run {n}: {k:?}");
            h.push(&r);
        }
        assert_eq!(kinds(&record(Status::Ok, 100, 3, 2), &h, &cfg), ["rejects"]);
        let off = AlertConfig {
            slow_factor: 2.0,
            ..AlertConfig::default()
        };
        assert!(kinds(&record(Status::Ok, 100, 0, 2), &h, &off).is_empty());
    }
}
