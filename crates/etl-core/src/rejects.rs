//! The rejects file (`--rejects FILE`): one JSON object per rejected record,
//! appended, so several stages of one pipeline (or several runs) can share a
//! file and each line says which stage and run wrote it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::reader::Reject;

/// An open rejects file.
#[derive(Debug)]
pub struct RejectSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl RejectSink {
    /// Opens (creating if needed) `path` for appending. Fails with 73 at
    /// start-up rather than when the first reject arrives.
    pub fn open(path: &Path) -> Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::output(path, &e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(f),
        })
    }

    /// Appends one reject.
    pub fn write(&mut self, r: &Reject, stage: &str, run_id: &str) -> Result<()> {
        self.out
            .write_all(&r.to_json_line(stage, run_id))
            .map_err(|e| Error::output(&self.path, &e))
    }

    /// Flushes and syncs: rejects are data, they must survive the exit.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::output(&self.path, &e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| Error::output(&self.path, &e))
    }
}
