//! Helpers the crates' integration tests share, so each is written once.
//! A dev-dependency only: nothing here ships in a command.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `SUB` of the shared test corpora (`../shared/corpora` beside the
/// project).
///
/// # Panics
/// When it is absent: a test of a corpus never passes without the corpus
/// (CI has `../shared`; a missing fixture is a failure that says what is
/// missing, never a silent pass).
pub fn corpora(sub: &str) -> PathBuf {
    shared(&Path::new("corpora").join(sub))
}

/// `REL` of the shared folder beside the project (`../shared`).
///
/// # Panics
/// When it is absent, naming the path.
pub fn shared(rel: &Path) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(
        p.exists(),
        "missing fixture: {} (the shared folder sits beside the project; \
         its tests fail without it rather than pass)",
        p.display()
    );
    p
}

/// The `summary` event among a command's JSON log lines on stderr.
///
/// # Panics
/// When there is none: the test shows the whole stderr.
pub fn summary(stderr: &str) -> Value {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["msg"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stderr}"))
}
