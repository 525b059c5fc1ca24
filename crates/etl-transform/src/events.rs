//! What etl-transform logs: one place, fields first, message last.
//! INFO is one line per phase, never per record (rejects are logged by
//! etl-core); WARN marks schema drift that `--on-drift warn` let through.

use tracing::{info, warn};

/// The steps are compiled and the input is about to stream.
pub fn started(steps: usize, spec: Option<&str>, schema: Option<&str>) {
    let spec = spec.unwrap_or("none");
    let schema = schema.unwrap_or("none");
    info!(
        steps,
        spec, schema, "transforming with {steps} step(s) (spec {spec}, schema {schema})"
    );
}

/// `--check`: the spec and flags are valid; nothing was read.
pub fn checked(steps: usize, spec: Option<&str>) {
    let spec = spec.unwrap_or("none");
    info!(steps, spec, "check passed: {steps} step(s) are valid");
}

/// `--check` with a hash mask but no salt in this environment.
pub fn check_without_salt() {
    warn!(
        "a hash mask is used but ETL_MASK_SALT is not set here: a real run would refuse to start"
    );
}

/// A record's columns differ from the schema and `--on-drift warn` lets it pass.
/// Logged once per distinct difference.
pub fn drift(line: u64, schema: &str, differences: &str) {
    warn!(
        line,
        schema, differences, "schema drift at line {line} against {schema}: {differences}"
    );
}

/// Too many distinct drifts to keep warning about each.
pub fn drift_warnings_capped(limit: usize) {
    warn!(
        limit,
        "more than {limit} distinct schema drifts: no further drift warnings"
    );
}

/// The steps are done; how many distinct keys `unique` holds.
pub fn unique_keys(step: usize, keys: usize) {
    info!(step, keys, "unique step {step} held {keys} distinct key(s)");
}
