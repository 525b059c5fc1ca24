//! Logging: JSON lines on stderr when it is not a terminal, short text lines
//! when it is; `ETL_LOG` sets the level, `--log-format` overrides the format.
//!
//! Every line carries `ts`, `level`, `cmd`, `run_id`, `msg`, then the event's
//! own fields in the order they were given. Commands log through `tracing`
//! macros in their `events` module; a [`tracing_subscriber::Layer`] hands each
//! event to [`emit`], which is also called directly for the run summary (whose
//! fields are only known at run time). One writer, one schema.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::error::{Error, Result};
use crate::record::{write_str, write_value, Value};
use crate::redact;

/// `v` with the URLs of a string masked ([`redact::urls_in`]).
pub(crate) fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) => match redact::urls_in(s) {
            std::borrow::Cow::Owned(masked) => Value::String(masked),
            std::borrow::Cow::Borrowed(_) => v.clone(),
        },
        other => other.clone(),
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default when stderr is not a terminal).
    Json,
    /// Short human lines (the default on a terminal).
    Text,
}

#[derive(Debug)]
struct Logger {
    cmd: &'static str,
    run_id: String,
    format: LogFormat,
    max: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Parses `ETL_LOG`.
pub fn parse_level(s: &str) -> Result<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(Level::ERROR),
        "warn" | "warning" => Ok(Level::WARN),
        "info" | "" => Ok(Level::INFO),
        "debug" => Ok(Level::DEBUG),
        "trace" => Ok(Level::TRACE),
        other => Err(Error::config(format!(
            "ETL_LOG: unknown level {other:?} (expected error, warn, info or debug)"
        ))),
    }
}

/// Installs the logger for this process. Call once, before any event.
pub fn init(cmd: &'static str, run_id: String, format: Option<LogFormat>) -> Result<()> {
    let max = parse_level(&std::env::var("ETL_LOG").unwrap_or_default())?;
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let _ = LOGGER.set(Logger {
        cmd,
        run_id,
        format,
        max,
    });
    let filter = tracing_subscriber::filter::LevelFilter::from_level(max);
    let subscriber = tracing_subscriber::registry().with(EtlLayer.with_filter(filter));
    // A second init (tests calling `main` twice) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Writes one log line (if `level` is enabled). Before [`init`] (argument
/// errors), lines are written as text with an unknown run id.
pub fn emit(level: Level, msg: &str, fields: &[(&str, Value)]) {
    let line = match LOGGER.get() {
        Some(l) if level > l.max => return,
        Some(l) => format_line(l, level, msg, fields, &jiff::Timestamp::now()),
        None => {
            let l = Logger {
                cmd: "etl",
                run_id: String::new(),
                format: LogFormat::Text,
                max: Level::INFO,
            };
            format_line(&l, level, msg, fields, &jiff::Timestamp::now())
        }
    };
    // One write per line so lines from concurrent stages never interleave;
    // a progress line on screen steps aside while it is written.
    let write = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    let bar = crate::progress::ACTIVE.lock().ok().and_then(|a| a.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

fn format_line(
    l: &Logger,
    level: Level,
    msg: &str,
    fields: &[(&str, Value)],
    ts: &jiff::Timestamp,
) -> String {
    // URL credentials and query values never reach a log line, whichever
    // event or library error carried them.
    let msg = &*redact::urls_in(msg);
    let fields: Vec<(&str, Value)> = fields.iter().map(|(k, v)| (*k, redact_value(v))).collect();
    let fields = fields.as_slice();
    match l.format {
        LogFormat::Json => {
            let mut out = Vec::with_capacity(160);
            out.extend_from_slice(b"{\"ts\":");
            write_str(&mut out, &format!("{ts:.3}"));
            out.extend_from_slice(b",\"level\":\"");
            out.extend_from_slice(level_name(level).as_bytes());
            out.extend_from_slice(b"\",\"cmd\":");
            write_str(&mut out, l.cmd);
            out.extend_from_slice(b",\"run_id\":");
            write_str(&mut out, &l.run_id);
            out.extend_from_slice(b",\"msg\":");
            write_str(&mut out, msg);
            for (k, v) in fields {
                if matches!(*k, "ts" | "level" | "cmd" | "run_id" | "msg") {
                    continue;
                }
                out.push(b',');
                write_str(&mut out, k);
                out.push(b':');
                write_value(&mut out, v);
            }
            out.extend_from_slice(b"}\n");
            String::from_utf8(out).unwrap_or_default()
        }
        LogFormat::Text => text_line(l.cmd, level_name(level), msg, fields),
    }
}

/// A short human line: a field whose value the message already shows is
/// left out (JSON lines keep every field).
fn text_line(cmd: &str, level: &str, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut s = format!("{cmd}: {level}: {msg}");
    for (k, v) in fields {
        let text = v.to_raw_text();
        if !msg.contains(text.as_str()) {
            let _ = write!(s, " {k}={text}");
        }
    }
    s.push('\n');
    s
}

/// The text form of one JSON log line another command wrote (what it would
/// have written on a terminal), for a command that runs others and shows
/// their logs (`etl-run`). `None` when `line` is not an etlkit JSON log line.
pub fn json_line_as_text(line: &str) -> Option<String> {
    let Ok(Value::Object(m)) = Value::parse(line.trim_end()) else {
        return None;
    };
    let cmd = m.get("cmd")?.as_str()?;
    let level = m.get("level")?.as_str()?;
    let msg = m.get("msg")?.as_str()?;
    let fields: Vec<(&str, Value)> = m
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "ts" | "level" | "cmd" | "run_id" | "msg"))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    Some(text_line(cmd, level, msg, &fields))
}

struct EtlLayer;

impl<S: Subscriber> Layer<S> for EtlLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = FieldCollector::default();
        event.record(&mut v);
        let fields: Vec<(&str, Value)> = v.fields.iter().map(|(k, v)| (*k, v.clone())).collect();
        emit(*event.metadata().level(), &v.msg, &fields);
    }
}

#[derive(Default)]
struct FieldCollector {
    msg: String,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.msg);
        } else {
            self.fields.push((field.name(), Value::from(value)));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), Value::from(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::from(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(format: LogFormat) -> Logger {
        Logger {
            cmd: "etl-x",
            run_id: "R1".into(),
            format,
            max: Level::INFO,
        }
    }

    #[test]
    fn json_lines_have_the_contract_fields_first() {
        let ts: jiff::Timestamp = "2026-11-21T06:00:00.123456Z".parse().unwrap();
        let line = format_line(
            &logger(LogFormat::Json),
            Level::WARN,
            "line 3: \"bad\"",
            &[
                ("line", Value::from(3_u64)),
                ("msg", Value::from("dup")),
                ("file", Value::from("a b")),
            ],
            &ts,
        );
        assert_eq!(
            line,
            "{\"ts\":\"2026-11-21T06:00:00.123Z\",\"level\":\"warn\",\"cmd\":\"etl-x\",\"run_id\":\"R1\",\"msg\":\"line 3: \\\"bad\\\"\",\"line\":3,\"file\":\"a b\"}\n"
        );
        assert!(Value::parse(line.trim_end()).is_ok());
    }

    #[test]
    fn url_secrets_never_reach_a_line() {
        let ts = jiff::Timestamp::UNIX_EPOCH;
        for format in [LogFormat::Json, LogFormat::Text] {
            let line = format_line(
                &logger(format),
                Level::WARN,
                "https://u:pw1@h/a.csv?token=tok1: HTTP 503",
                &[("url", Value::from("https://h/a.csv?sig=sig1"))],
                &ts,
            );
            for secret in ["pw1", "tok1", "sig1"] {
                assert!(!line.contains(secret), "{line}");
            }
            assert!(line.contains("https://u:***@h/a.csv?token=***"), "{line}");
        }
    }

    #[test]
    fn text_lines_are_short() {
        let ts = jiff::Timestamp::UNIX_EPOCH;
        let line = format_line(
            &logger(LogFormat::Text),
            Level::INFO,
            "done",
            &[("n", Value::from(2_u64))],
            &ts,
        );
        assert_eq!(line, "etl-x: info: done n=2\n");
        let json = format_line(
            &logger(LogFormat::Json),
            Level::INFO,
            "done",
            &[("n", Value::from(2_u64))],
            &ts,
        );
        assert_eq!(json_line_as_text(&json).as_deref(), Some(line.as_str()));
        assert_eq!(json_line_as_text("plain text"), None);
        assert_eq!(json_line_as_text("{\"a\":1}"), None);
    }

    #[test]
    fn levels_parse_and_bad_levels_are_config_errors() {
        assert_eq!(parse_level("WARN").unwrap(), Level::WARN);
        assert_eq!(parse_level("").unwrap(), Level::INFO);
        assert_eq!(
            parse_level("loud").unwrap_err().exit_code(),
            crate::Exit::Config
        );
    }
}
