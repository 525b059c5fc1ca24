//! Content-addressed, atomic storage: `OUT/<sha256[0:2]>/<sha256>/<name>`.
//! The same file fetched twice is stored once; a re-run is harmless; a
//! crash leaves either no file or the whole file (temp file, fsync, rename,
//! fsync of the directory).

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where an attachment went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub path: PathBuf,
    pub sha256: String,
    /// False when the same content under the same name was already there.
    pub new: bool,
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Stores `data` as `name` under `out`.
pub fn store(out: &Path, name: &str, data: &[u8]) -> std::io::Result<Stored> {
    let sha = sha256_hex(data);
    let dir = out.join(&sha[..2]).join(&sha);
    let path = dir.join(name);
    if path.is_file() && fs::metadata(&path)?.len() == data.len() as u64 {
        return Ok(Stored {
            path,
            sha256: sha,
            new: false,
        });
    }
    fs::create_dir_all(&dir)?;
    // The same content under another name: a hard link, not a second copy.
    let existing = fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
        });
    if let Some(src) = existing {
        if fs::hard_link(&src, &path).is_ok() {
            fsync_dir(&dir)?;
            return Ok(Stored {
                path,
                sha256: sha,
                new: false,
            });
        }
    }
    let mut tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    fsync_dir(&dir)?;
    Ok(Stored {
        path,
        sha256: sha,
        new: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_once() {
        let d = tempfile::tempdir().unwrap();
        let a = store(d.path(), "r.csv", b"a,b\n1,2\n").unwrap();
        assert!(a.new);
        assert_eq!(a.sha256.len(), 64);
        let rel = a
            .path
            .strip_prefix(d.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(rel, format!("{}/{}/r.csv", &a.sha256[..2], a.sha256));
        let b = store(d.path(), "r.csv", b"a,b\n1,2\n").unwrap();
        assert!(!b.new);
        let c = store(d.path(), "copy.csv", b"a,b\n1,2\n").unwrap();
        assert!(!c.new);
        assert_eq!(fs::read(&c.path).unwrap(), b"a,b\n1,2\n");
        // Python: hashlib.sha256(b"").hexdigest()
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
