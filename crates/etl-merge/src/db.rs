//! The DuckDB connection: opening with the run's settings, error mapping,
//! and what the catalog says about the target table.

use std::path::{Path, PathBuf};

use duckdb::{Config, Connection};
use etl_core::{Error, Exit, Result};

use crate::sql::{ident, literal};

/// Maps a DuckDB error to the exit-code contract. `what` says which step
/// failed ("creating the table", ...).
pub fn err(what: &str, e: &duckdb::Error) -> Error {
    let text = e.to_string();
    let exit = if text.contains("Could not set lock")
        || text.contains("Conflicting lock")
        || text.contains("Out of Memory")
        || text.contains("could not allocate")
    {
        Exit::TempFail
    } else if text.contains("IO Error") {
        Exit::IoErr
    } else {
        Exit::Software
    };
    Error::new(exit, format!("{what}: {text}"))
}

/// An error for a statement whose failure means the user's flags were wrong
/// (a bad type name, an unknown --order-by column, a bad --query).
pub fn usage_err(what: &str, e: &duckdb::Error) -> Error {
    Error::usage(format!("{what}: {e}"))
}

/// Settings for [`open`].
#[derive(Debug)]
pub struct Settings<'a> {
    pub memory_limit: Option<&'a str>,
    pub threads: Option<u32>,
}

/// The spill directory beside the database: `FILE.tmp`, DuckDB's own default.
pub fn temp_dir(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Opens (or creates) the database with the run's settings. Extensions are
/// never downloaded: everything needed (JSON) is compiled in.
pub fn open(db: &Path, settings: &Settings<'_>) -> Result<Connection> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Error::new(
                Exit::CantCreate,
                format!(
                    "{}: the directory {} does not exist",
                    db.display(),
                    parent.display()
                ),
            ));
        }
    }
    let mut config = Config::default()
        .enable_autoload_extension(false)
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .map_err(|e| err("configuring DuckDB", &e))?;
    let limit = settings.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT);
    check_size(limit)?;
    config = config
        .max_memory(limit)
        .map_err(|e| Error::usage(format!("--memory-limit {limit}: {e}")))?;
    if let Some(n) = settings.threads {
        if n == 0 {
            return Err(Error::usage("--threads must be at least 1"));
        }
        config = config
            .threads(i64::from(n))
            .map_err(|e| Error::usage(format!("--threads {n}: {e}")))?;
    }
    let conn = Connection::open_with_flags(db, config).map_err(|e| {
        let text = e.to_string();
        if text.contains("Could not set lock") || text.contains("Conflicting lock") {
            Error::new(
                Exit::TempFail,
                format!(
                    "{}: the database is in use by another process ({text})",
                    db.display()
                ),
            )
        } else {
            Error::new(Exit::CantCreate, format!("{}: {text}", db.display()))
        }
    })?;
    let tmp = temp_dir(db);
    conn.execute_batch(&format!(
        "SET temp_directory = {}; SET preserve_insertion_order = false;",
        literal(&tmp.to_string_lossy())
    ))
    .map_err(|e| err("configuring DuckDB", &e))?;
    Ok(conn)
}

/// DuckDB's memory limit when `--memory-limit` is not given. DuckDB's own
/// default, 80% of the machine, would let one merge take a small VPS's
/// memory from the rest of the pipeline; past this, DuckDB spills to
/// `FILE.tmp`. A 1M-row upsert into 1M rows runs within 5% of its unlimited
/// time under it (`scripts/bench merge`).
pub const DEFAULT_MEMORY_LIMIT: &str = "256MB";

/// `--memory-limit` must look like a size (DuckDB's own parser then reads it).
fn check_size(s: &str) -> Result<()> {
    let t = s.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ');
    let unit = t[digits.len()..].trim().to_ascii_uppercase();
    let ok_number = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.parse::<f64>().is_ok();
    let ok_unit = matches!(
        unit.as_str(),
        "" | "B"
            | "BYTES"
            | "KB"
            | "MB"
            | "GB"
            | "TB"
            | "KIB"
            | "MIB"
            | "GIB"
            | "TIB"
            | "K"
            | "M"
            | "G"
            | "T"
    );
    if ok_number && ok_unit {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "--memory-limit {s:?}: expected a size such as 256MB or 1GiB"
        )))
    }
}

/// A column of an existing table.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: String,
}

/// The target table.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// `"schema"."name"`.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// `schema.name` for logs and `_etl_runs`.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The table's columns in order, or `None` when it does not exist.
    /// Names match case-insensitively, as DuckDB resolves them.
    pub fn columns(&self, conn: &Connection) -> Result<Option<Vec<Column>>> {
        let mut stmt = conn
            .prepare(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE lower(table_schema) = lower(?) AND lower(table_name) = lower(?) \
                   AND table_catalog = current_database() \
                 ORDER BY ordinal_position",
            )
            .map_err(|e| err("reading the catalog", &e))?;
        let cols = stmt
            .query_map([&self.schema, &self.name], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    ty: r.get(1)?,
                })
            })
            .and_then(Iterator::collect::<duckdb::Result<Vec<_>>>)
            .map_err(|e| err("reading the catalog", &e))?;
        Ok((!cols.is_empty()).then_some(cols))
    }
}

/// One integer from a query.
pub fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| err("counting rows", &e))
}

/// Runs statements that cannot fail on valid input (a failure is a bug or
/// an environment problem: disk full, out of memory).
pub fn exec(conn: &Connection, what: &str, sql: &str) -> Result<()> {
    let t = std::time::Instant::now();
    let done = conn.execute_batch(sql).map_err(|e| err(what, &e));
    let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(ms, sql, "{what}: {ms} ms");
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_look_like_sizes() {
        for ok in ["256MB", "1GiB", "512 MB", "1.5GB", "100000"] {
            assert!(check_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "lots", "256XB", "1GB'; DROP TABLE t", "-1GB"] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn temp_dir_is_beside_the_database() {
        assert_eq!(
            temp_dir(Path::new("/data/w.duckdb")),
            PathBuf::from("/data/w.duckdb.tmp")
        );
    }
}
