//! Helpers the crates' integration tests share, so each is written once.
//! A dev-dependency only: nothing here ships in a command.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `SUB` of the shared test corpora (`../shared/corpora` beside the
/// project), or `None` after saying why on stderr: the test then skips.
pub fn corpora(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} is absent (the shared corpora sit beside the project)",
            p.display()
        );
        None
    }
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
