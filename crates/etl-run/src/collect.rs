//! The pipeline's stderr, line by line: passed on to etl-run's own stderr
//! (as text on a terminal, as the JSON lines they are otherwise) with
//! secrets masked, each stage's `summary` event kept for the runs log, and
//! the last lines kept for the alert.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use etl_core::Value;

use crate::redact::Redactor;

/// How many lines of the pipeline's stderr an alert and a failed run's
/// runs-log line carry.
pub const TAIL_LINES: usize = 20;

/// A longer line is passed on in pieces of this size, so a stage that
/// prints without newlines cannot grow etl-run's memory.
const MAX_LINE: u64 = 64 * 1024;

/// What one attempt's stderr said.
#[derive(Debug, Default, Clone)]
pub struct StageLog {
    /// Each stage's summary event without `ts`, `level`, `msg` and `run_id`,
    /// as a JSON object in the stage's own key order.
    pub summaries: Vec<String>,
    /// The last [`TAIL_LINES`] lines, masked, as text.
    pub tail: VecDeque<String>,
}

/// How lines are passed on.
#[derive(Debug, Clone)]
pub struct Passthrough {
    /// Render JSON log lines as the stages' text lines.
    pub text: bool,
    /// `[client] ` before each passed-on line (`--each --parallel`).
    pub prefix: String,
}

/// Reads `input` to its end, passing each line on and filling `into`.
/// `into` is shared so a caller that stops waiting (a process outside the
/// pipeline's group holding the pipe) still sees what came.
pub fn collect(
    input: impl Read,
    pass: &Passthrough,
    redactor: &Redactor,
    into: &Arc<Mutex<StageLog>>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let raw = String::from_utf8_lossy(&buf);
        let line = redactor.apply(raw.trim_end_matches(['\n', '\r']));
        let text = etl_core::log::json_line_as_text(&line);
        // Only a summary line is parsed a second time (etl-core writes
        // `"msg":"summary"` compactly).
        let summary = if text.is_some() && line.contains("\"msg\":\"summary\"") {
            summary_of(&line)
        } else {
            None
        };
        let shown = match (&text, pass.text) {
            (Some(t), true) => t.trim_end().to_owned(),
            _ => line.clone(),
        };
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}{shown}", pass.prefix);
        }
        let mut log = into
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = summary {
            log.summaries.push(s);
        }
        if log.tail.len() == TAIL_LINES {
            log.tail.pop_front();
        }
        log.tail
            .push_back(text.map_or(line, |t| t.trim_end().to_owned()));
    }
}

/// The stage summary of a JSON log line, when it is one.
fn summary_of(line: &str) -> Option<String> {
    let Ok(Value::Object(mut m)) = Value::parse(line) else {
        return None;
    };
    if m.get("msg").and_then(Value::as_str) != Some("summary") {
        return None;
    }
    for k in ["ts", "level", "msg", "run_id"] {
        m.shift_remove(k);
    }
    Some(Value::Object(m).to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_kept_and_the_tail_is_bounded_and_masked() {
        let mut input = String::new();
        input.push_str("{\"ts\":\"t\",\"level\":\"info\",\"cmd\":\"etl-parse\",\"run_id\":\"R\",\"msg\":\"summary\",\"status\":\"ok\",\"records_out\":2,\"amount\":0.10}\n");
        for i in 0..30 {
            input.extend([format!("line {i} pw=sekrit-1\n")]);
        }
        let r = Redactor::from_vars([("X_PASSWORD".into(), "sekrit-1".into())]);
        let log = Arc::new(Mutex::new(StageLog::default()));
        let pass = Passthrough {
            text: true,
            prefix: String::new(),
        };
        collect(input.as_bytes(), &pass, &r, &log);
        let log = log.lock().unwrap();
        assert_eq!(
            log.summaries,
            ["{\"cmd\":\"etl-parse\",\"status\":\"ok\",\"records_out\":2,\"amount\":0.10}"]
        );
        assert_eq!(log.tail.len(), TAIL_LINES);
        assert_eq!(log.tail[0], "line 10 pw=[redacted:X_PASSWORD]");
        assert_eq!(log.tail[TAIL_LINES - 1], "line 29 pw=[redacted:X_PASSWORD]");
    }
}
