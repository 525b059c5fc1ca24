//! The two-phase state store: committed watermarks plus pending values
//! tagged with the run that produced them.
//!
//! A stage that advances a watermark writes it as *pending*; `etl-checkpoint
//! commit` promotes one run's pending values after the whole pipeline
//! succeeded. A failed run therefore leaves the committed state as it was, and
//! the next run fetches the same input again.
//!
//! Every read-modify-write holds an exclusive `flock` on `STATE.lock` (a
//! separate file, because the state file itself is replaced by rename and a
//! lock on a replaced inode guards nothing), and every write goes through a
//! temp file, fsync, rename and directory fsync, so a crash at any instant
//! leaves either the old or the new state. A state file that does not parse
//! is never overwritten: the operator must look at it (exit 78).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{atomic_write_via, with_suffix};
use crate::record::Value;

/// The state format version this build reads and writes.
pub const VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; only [`VERSION`] is accepted.
    pub version: u32,
    /// Committed values by key.
    #[serde(default)]
    pub committed: BTreeMap<String, Entry>,
    /// Pending values by run id.
    #[serde(default)]
    pub pending: BTreeMap<String, PendingRun>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: VERSION,
            committed: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }
}

/// One value of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The value (a number keeps its exact text).
    pub value: Value,
    /// How the value compares: `timestamp`, `number` or `string`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it was written (RFC 3339, UTC).
    pub updated: String,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Entry {
    /// A new entry stamped now.
    pub fn new(value: Value, kind: Option<&str>, run_id: Option<&str>) -> Self {
        Self {
            value,
            kind: kind.map(str::to_owned),
            updated: now(),
            run_id: run_id.map(str::to_owned),
        }
    }
}

/// The pending values of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRun {
    /// When the run first wrote a pending value.
    pub created: String,
    /// Pending values by key.
    pub values: BTreeMap<String, Entry>,
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

impl State {
    /// Records `entry` as `run_id`'s pending value of `key`.
    pub fn set_pending(&mut self, run_id: &str, key: &str, entry: Entry) {
        self.pending
            .entry(run_id.to_owned())
            .or_insert_with(|| PendingRun {
                created: now(),
                values: BTreeMap::new(),
            })
            .values
            .insert(key.to_owned(), entry);
    }

    /// Promotes every pending value of `run_id` to committed and removes
    /// them, replacing whatever was committed. Returns the keys committed
    /// (`None`: nothing was pending). `etl-checkpoint commit` uses
    /// [`State::commit_with`] so a watermark never moves backwards.
    pub fn commit(&mut self, run_id: &str) -> Option<Vec<String>> {
        self.commit_with(run_id, |_, _, new| new)
    }

    /// Like [`State::commit`], but `resolve(key, committed, pending)` decides
    /// what is stored for each key: the pending entry, the committed one (a
    /// watermark that must not move back) or a merge of both. The stored
    /// entry is stamped with this run and the time of the commit.
    pub fn commit_with(
        &mut self,
        run_id: &str,
        mut resolve: impl FnMut(&str, Option<&Entry>, Entry) -> Entry,
    ) -> Option<Vec<String>> {
        let run = self.pending.remove(run_id)?;
        let keys = run.values.keys().cloned().collect();
        for (key, mut entry) in run.values {
            entry.updated = now();
            entry.run_id = Some(run_id.to_owned());
            let stored = resolve(&key, self.committed.get(&key), entry);
            self.committed.insert(key, stored);
        }
        Some(keys)
    }

    /// Drops the pending values of `run_id`; true if there were any.
    pub fn discard(&mut self, run_id: &str) -> bool {
        self.pending.remove(run_id).is_some()
    }
}

/// A state file on disk, with its lock.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    lock_timeout: Duration,
}

/// A held lock; released when dropped (and by the kernel if the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateFile {
    /// The state file at `path`; a held lock is waited for up to `lock_timeout`.
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration) -> Self {
        Self {
            path: path.into(),
            lock_timeout,
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state; a missing file is the empty state. No lock is needed
    /// to read: writers replace the file by rename.
    pub fn load(&self) -> Result<State> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(Error::input(&self.path, &e)),
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| {
            Error::config(format!(
                "{}: not a valid etlkit state file ({e}); it was left untouched: repair or move it",
                self.path.display()
            ))
        })?;
        if state.version != VERSION {
            return Err(Error::config(format!(
                "{}: state version {} is not supported by this etlkit (expects {VERSION})",
                self.path.display(),
                state.version
            )));
        }
        Ok(state)
    }

    /// Takes the exclusive lock, waiting up to the lock timeout (exit 75
    /// after that; 73 if the lock file cannot be created).
    pub fn lock(&self) -> Result<StateLock> {
        let lock_path = with_suffix(&self.path, ".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::output(&lock_path, &e))?;
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StateLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(Error::temp_fail(format!(
                            "{}: locked by another process (waited {}s; see --lock-timeout)",
                            lock_path.display(),
                            self.lock_timeout.as_secs_f32()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::output(&lock_path, &e)),
            }
        }
    }

    /// Writes `state` atomically. The caller must hold the lock.
    pub fn save(&self, _lock: &StateLock, state: &State) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::internal(format!("serialising state: {e}")))?;
        bytes.push(b'\n');
        let tmp = with_suffix(&self.path, ".new");
        atomic_write_via(&self.path, &tmp, &bytes).map_err(|e| Error::output(&self.path, &e))
    }

    /// Lock, read, modify, write if changed, unlock. `f` returns its result
    /// and whether it changed the state.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> Result<(T, bool)>) -> Result<T> {
        let lock = self.lock()?;
        let mut state = self.load()?;
        let (out, changed) = f(&mut state)?;
        if changed {
            self.save(&lock, &state)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;

    fn store(d: &tempfile::TempDir) -> StateFile {
        StateFile::new(d.path().join("state.json"), Duration::ZERO)
    }

    #[test]
    fn missing_file_is_empty_state() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(store(&d).load().unwrap(), State::default());
    }

    #[test]
    fn pending_then_commit_promotes_only_that_run() {
        let d = tempfile::tempdir().unwrap();
        let s = store(&d);
        s.update(|st| {
            st.set_pending(
                "r1",
                "k",
                Entry::new(
                    Value::parse("12345678901234567890").unwrap(),
                    Some("number"),
                    None,
                ),
            );
            st.set_pending(
                "r2",
                "k",
                Entry::new(Value::from(5_u64), Some("number"), None),
            );
            Ok(((), true))
        })
        .unwrap();
        let keys = s.update(|st| Ok((st.commit("r1"), true))).unwrap();
        assert_eq!(keys, Some(vec!["k".to_owned()]));
        let st = s.load().unwrap();
        assert_eq!(st.committed["k"].value.to_json(), "12345678901234567890");
        assert_eq!(st.committed["k"].run_id.as_deref(), Some("r1"));
        assert!(st.pending.contains_key("r2") && !st.pending.contains_key("r1"));
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(
            text.contains("\"version\": 1") && text.contains("12345678901234567890"),
            "{text}"
        );
        assert_eq!(
            s.update(|st| Ok((st.commit("r1"), false))).unwrap(),
            None,
            "commit is idempotent"
        );
    }

    #[test]
    fn corrupt_state_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let s = store(&d);
        std::fs::write(s.path(), "{\"version\":1,").unwrap();
        let e = s.update(|_| Ok(((), true))).unwrap_err();
        assert_eq!(e.exit_code(), Exit::Config);
        assert!(e.message().contains("state.json"), "{e}");
        assert_eq!(
            std::fs::read_to_string(s.path()).unwrap(),
            "{\"version\":1,"
        );
    }

    #[test]
    fn unknown_version_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = store(&d);
        std::fs::write(s.path(), r#"{"version":2,"committed":{}}"#).unwrap();
        assert_eq!(s.load().unwrap_err().exit_code(), Exit::Config);
    }

    #[test]
    fn held_lock_fails_with_75_or_waits() {
        let d = tempfile::tempdir().unwrap();
        let s = store(&d);
        let held = s.lock().unwrap();
        assert_eq!(s.lock().unwrap_err().exit_code(), Exit::TempFail);
        let waiting = StateFile::new(s.path(), Duration::from_secs(5));
        let t = std::thread::spawn(move || waiting.lock().map(|_| ()));
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn missing_directory_is_73() {
        let s = StateFile::new("/nonexistent-etl-dir/state.json", Duration::ZERO);
        assert_eq!(s.lock().unwrap_err().exit_code(), Exit::CantCreate);
    }
}
