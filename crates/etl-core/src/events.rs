//! What etl-core itself logs. One place, so the log schema is documented by
//! the code (vector's `internal_events`): fields first, message last.
//! ERROR: data loss or an operator must act; WARN: something skipped or
//! retried; INFO: one line per phase, never per record.

use tracing::{error, warn};

use crate::reader::Reject;

/// A record was rejected (it went to `--rejects` if given; the run goes on
/// while the count stays within `--max-rejects`).
pub fn record_rejected(r: &Reject, to_file: bool) {
    let source = r.source.as_deref().unwrap_or("-");
    warn!(
        line = r.line,
        source,
        error = r.error.as_str(),
        rejects_file = to_file,
        "rejected line {}: {}",
        r.line,
        r.error
    );
}

/// The run is failing.
pub fn run_failed(exit_code: i32, error: &str) {
    error!(exit_code, "{error}");
}

/// A panic: a bug. The location helps the report.
pub fn panicked(location: &str, what: &str) {
    error!(location, "internal error (please report this bug): {what}");
}
