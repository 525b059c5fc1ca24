//! What etl-push-sheets logs: one place, fields first, message last.
//! INFO is one line per phase (spooled, plan, swapped), never per row.

use std::time::Duration;

use tracing::{info, warn};

/// The input was read and checked.
pub fn spooled(records: u64, columns: usize, dry_run: bool) {
    let next = if dry_run {
        "planning (dry run: nothing is written)"
    } else {
        "writing"
    };
    info!(
        records,
        columns, "read {records} records with {columns} columns; {next}"
    );
}

/// A request is waiting for the write quota window.
pub fn pacing(wait: Duration) {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    info!(
        wait_ms = ms,
        "pacing writes: waiting {ms} ms to stay inside the per-minute quota"
    );
}

/// A request failed and will be retried.
pub fn retrying(method: &str, what: &str, status: Option<u16>, attempt: u32, delay: Duration) {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let why = status.map_or_else(|| "connection error".to_owned(), |s| format!("HTTP {s}"));
    warn!(
        method,
        target = what,
        reason = why.as_str(),
        attempt,
        delay_ms = ms,
        "{method} {what}: {why}; retry {attempt} in {ms} ms"
    );
}

/// The new sheet replaced the old one (one atomic batchUpdate).
pub fn swapped(sheet: &str, rows: u64) {
    info!(sheet, rows, "replaced sheet {sheet:?} with {rows} rows");
}

/// A replace whose input the sheet already holds: nothing written.
pub fn unchanged(sheet: &str, rows: u64) {
    info!(
        sheet,
        rows, "sheet {sheet:?} already holds these {rows} rows: nothing to write"
    );
}

/// A staging sheet left by a killed run, removed.
pub fn stale_staging(sheet: &str) {
    warn!(
        sheet,
        "removing the staging sheet {sheet:?} left by an earlier run that did not finish"
    );
}

/// A failed replace removed its temporary sheet (or could not).
pub fn cleanup(sheet: &str, ok: bool) {
    if ok {
        warn!(
            sheet,
            "removed the temporary sheet {sheet:?}; the old sheet is unchanged"
        );
    } else {
        warn!(sheet, "could not remove the temporary hidden sheet {sheet:?}: delete it by hand; the old sheet is unchanged");
    }
}

/// upsert compared the input with the sheet.
pub fn compared(
    updated_rows: u64,
    changed_cells: u64,
    new_rows: u64,
    deleted: u64,
    unchanged: u64,
) {
    info!(updated_rows, changed_cells, new_rows, deleted_rows = deleted, unchanged_rows = unchanged,
        "upsert: {updated_rows} rows to update ({changed_cells} cells), {new_rows} new, {deleted} to delete, {unchanged} unchanged");
}

/// Numbers sent as text because a double would lose digits.
pub fn numbers_as_text(records: u64) {
    warn!(records, "{records} records hold numbers with more than 15 significant digits: written as text so no digit is lost");
}
