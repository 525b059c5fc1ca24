//! Crash-safe file replacement: temp file in the same directory, fsync,
//! rename over the target, fsync of the directory.
//!
//! The rename is atomic on POSIX file systems, so a reader (or a process
//! restarted after a crash at any instant) sees either the old or the new
//! file, never a torn one. The directory fsync makes the rename itself
//! durable (vector's file checkpointer does the same).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name (`s.json` -> `s.json.lock`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically, through the temp file `tmp`
/// (which must be in the same directory; a stale one is overwritten).
pub fn atomic_write_via(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(tmp, path)?;
        // Make the rename durable. Some file systems refuse fsync on a
        // directory; the rename has still happened, so that is not an error.
        if let Ok(dir) = File::open(parent_dir(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Replaces `path` atomically through a per-process temp file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    atomic_write_via(path, &tmp, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_error_and_target_untouched() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nope").join("s.json");
        assert_eq!(
            atomic_write(&p, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn suffix_and_parent() {
        assert_eq!(
            with_suffix(Path::new("d/s.json"), ".lock"),
            PathBuf::from("d/s.json.lock")
        );
        assert_eq!(parent_dir(Path::new("s.json")), PathBuf::from("."));
    }
}
