//! etl-core: the contract every etlkit command keeps (see `etl(7)`, `man/man7/etl.7`).
//!
//! This crate is deliberately small and boring: the NDJSON record model and
//! its reader and writer, logging, rejects, the run summary, exit codes,
//! configuration from flags/environment/`.env`, the two-phase state store and
//! the `main` wrapper. Nothing here talks to IMAP, HTTP, DuckDB or Sheets;
//! those dependencies live in the one command crate that needs them.

pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod events;
pub mod exit;
pub mod fsutil;
pub mod log;
pub mod names;
pub mod progress;
pub mod reader;
pub mod record;
pub mod redact;
pub mod rejects;
pub mod retry;
pub mod run;
pub mod state;
pub mod writer;

pub use cli::{main, CommonArgs, HasCommon};
pub use error::{Error, Result};
pub use exit::Exit;
pub use reader::{RecordReader, Reject};
pub use record::{map_with_capacity, KeyHasher, Number, Record, Value};
pub use run::Run;
pub use writer::RecordWriter;
