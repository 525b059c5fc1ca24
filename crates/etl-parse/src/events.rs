//! What etl-parse logs: one place, fields first, message last. INFO is one
//! line per file (or sheet, or member), never per record; WARN is for
//! guesses the user should know about (a detected charset) and retries.

use std::time::Duration;

use tracing::{debug, info, warn};

/// A file is being parsed as `format`.
pub fn file(name: &str, format: &str) {
    info!(file = name, format, "parsing {name} as {format}");
}

/// A compressed input is being decompressed.
pub fn decompressing(name: &str, compression: &str) {
    debug!(
        file = name,
        compression, "decompressing {name} ({compression})"
    );
}

/// Input that was not UTF-8 is decoded with a detected charset.
pub fn charset_detected(name: &str, charset: &str) {
    warn!(
        file = name,
        charset,
        "{name} is not valid UTF-8; decoding it as {charset} (detected); pass --encoding to choose"
    );
}

/// Non-UTF-8 input is decoded with the charset its e-mail part declared.
pub fn charset_declared(name: &str, charset: &str) {
    info!(
        file = name,
        charset,
        "{name} is not valid UTF-8; decoding it as {charset} (the charset its e-mail declared)"
    );
}

/// A manifest line declares a charset encoding_rs does not know.
pub fn charset_unknown(name: &str, charset: &str) {
    warn!(
        file = name,
        charset, "{name}: its e-mail declared the unknown charset {charset:?}; ignoring it"
    );
}

/// An HTTP request is retried.
pub fn http_retry(url: &str, attempt: u32, why: &str, delay: Duration) {
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    warn!(
        url,
        attempt, delay_ms, "{url}: {why}; retrying in {delay_ms} ms (attempt {attempt})"
    );
}

/// A sheet is being read.
pub fn sheet(name: &str, sheet: &str, rows: usize, columns: usize) {
    info!(
        file = name,
        sheet, rows, columns, "reading sheet {sheet} of {name}"
    );
}

/// An archive member is being read.
pub fn member(archive: &str, member: &str) {
    info!(
        file = archive,
        member, "reading member {member} of {archive}"
    );
}

/// An archive had no member to parse.
pub fn no_members(archive: &str, glob: Option<&str>) {
    match glob {
        Some(g) => warn!(
            file = archive,
            member_glob = g,
            "{archive}: no member matches --member {g}"
        ),
        None => warn!(
            file = archive,
            "{archive}: the archive has no file to parse"
        ),
    }
}

/// The extension names a binary format but the content is text.
pub fn extension_mismatch(name: &str, ext: &str, format: &str) {
    warn!(file = name, extension = ext, format,
        "{name}: the name says {ext} but the content is text; parsing it as {format} (use --format to insist)");
}
