//! What etl-merge logs: one line per phase, never per record.

use tracing::{info, warn};

/// The input is staged.
pub fn staged(rows: u64, columns: usize, sha256: &str) {
    info!(
        rows,
        columns,
        input_sha256 = sha256,
        "staged {rows} records ({columns} columns)"
    );
}

/// The same input was already applied: nothing done.
pub fn replay_skipped(table: &str, previous_run: &str, finished_at: &str) {
    warn!(
        table,
        previous_run,
        finished_at,
        "input already applied to {table} by run {previous_run} at {finished_at}; skipped (--force applies it again)"
    );
}

/// The table was created.
pub fn created(table: &str, columns: &str) {
    info!(table, columns, "created table {table} ({columns})");
}

/// Columns were added to the table.
pub fn columns_added(table: &str, columns: &str) {
    info!(table, columns, "added columns to {table}: {columns}");
}

/// Input columns the table lacks were dropped (--on-new-column ignore).
pub fn columns_ignored(table: &str, columns: &str) {
    warn!(
        table,
        columns, "ignored input columns not in {table}: {columns}"
    );
}

/// A --types entry had no effect.
pub fn type_ignored(column: &str, why: &str) {
    warn!(column, "--types {column}: {why}");
}

/// The merge is done (or would be, in a dry run).
pub fn merged(table: &str, mode: &str, counts: [u64; 4], dry_run: bool) {
    let [inserted, updated, unchanged, deleted] = counts;
    let what = if dry_run {
        "dry run, rolled back: would change"
    } else {
        "merged into"
    };
    info!(
        table,
        mode,
        inserted,
        updated,
        unchanged,
        deleted,
        dry_run,
        "{what} {table}: {inserted} inserted, {updated} updated, {unchanged} unchanged, {deleted} deleted"
    );
}

/// Nothing to do: no records.
pub fn empty_input(table: &str) {
    info!(table, "no records; {table} left as it was");
}

/// `ETL_MERGE_PAUSE_AT`: the run stopped at `point` and waits to be killed.
pub fn paused(point: &str) {
    warn!(
        point,
        "paused at {point} (ETL_MERGE_PAUSE_AT, a testing hook): waiting to be killed"
    );
}
