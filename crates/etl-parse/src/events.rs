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

/// Lines above the table were taken for a preamble and skipped.
pub fn preamble(name: &str, lines: u64, why: &str) {
    info!(
        file = name,
        skipped_lines = lines,
        "{name}: skipping {lines} line{} of preamble: {why} (--skip-rows N to choose)",
        if lines == 1 { "" } else { "s" }
    );
}

/// `--skip-footer` dropped the last lines.
pub fn footer_skipped(name: &str, lines: usize) {
    info!(
        file = name,
        footer_lines = lines,
        "{name}: dropped the last {lines} line{} (--skip-footer)",
        if lines == 1 { "" } else { "s" }
    );
}

/// What a delimited input was read as.
pub fn dialect(name: &str, d: &etl_core::Record) {
    let text = |k: &str| {
        d.get(k)
            .map(etl_core::Value::to_raw_text)
            .unwrap_or_default()
    };
    let (delimiter, quote, escape, encoding) = (
        text("delimiter"),
        text("quote"),
        text("escape"),
        text("encoding"),
    );
    let header = text("header") == "true";
    let skip_rows: u64 = text("skip_rows").parse().unwrap_or(0);
    info!(
        file = name,
        delimiter = delimiter.as_str(),
        quote = quote.as_str(),
        escape = escape.as_str(),
        encoding = encoding.as_str(),
        header,
        skip_rows,
        "{name}: delimiter {delimiter:?}, quote {quote:?}, escape {escape:?}, encoding {encoding}, header {}, {skip_rows} line(s) skipped above it",
        if header { "yes" } else { "no" },
    );
}

/// A byte that is not UTF-8 after the sample: the rest is decoded as `charset`.
pub fn charset_switched(name: &str, line: u64, charset: &str) {
    warn!(
        file = name,
        line,
        charset,
        "{name}: line {line} is not valid UTF-8; decoding it and the rest of {name} as {charset} (detected); pass --encoding to choose"
    );
}

/// No delimiter gives a table, but the columns are aligned: fixed-width.
pub fn fixed_detected(name: &str, layout: &str) {
    info!(
        file = name,
        layout,
        "{name}: no delimiter gives a table and its columns are aligned on every line; reading it as fixed-width text, --columns '{layout}' (detected; --format fixed --columns to pin it, --delimiter to refuse it)"
    );
}
