//! What etl-sheets-emulator logs: one place, fields first, message last.
//! INFO is the start and the stop; each request is one DEBUG line (the
//! `--request-log` file is the record tests assert on).

use std::path::Path;

use tracing::{debug, info, warn};

/// The server is listening.
pub fn started(url: &str, state: Option<&Path>) {
    let state = state.map_or_else(|| "memory only".to_owned(), |p| p.display().to_string());
    info!(
        url,
        state = state.as_str(),
        "listening on {url} (state: {state})"
    );
}

/// One request was answered.
pub fn request(method: &str, path: &str, status: u16, ms: f64) {
    debug!(method, path, status, ms, "{method} {path} -> {status}");
}

/// SIGTERM or SIGINT: the server stopped accepting and finished its requests.
pub fn stopped(requests: u64) {
    info!(requests, "stopped after {requests} requests");
}

/// The state file could not be written (the in-memory state is still served).
pub fn state_write_failed(path: &Path, error: &str) {
    let path = path.display().to_string();
    warn!(
        path = path.as_str(),
        error, "cannot write the state file {path}: {error}"
    );
}

/// A request-log line could not be written.
pub fn request_log_failed(error: &str) {
    warn!(error, "cannot write the request log: {error}");
}

/// `keygen` wrote a credentials file and registered it.
pub fn key_written(path: &Path, account: &str, endpoint: &str) {
    let path = path.display().to_string();
    info!(
        path = path.as_str(),
        account, endpoint, "wrote {path} for {account}, registered with {endpoint}"
    );
}
