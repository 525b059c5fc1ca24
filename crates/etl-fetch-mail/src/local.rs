//! Local mail: a Maildir, an mbox file, or .eml files. The selection flags
//! that IMAP evaluates on the server are evaluated here on the headers.
//!
//! Watermarks (with --state): a Maildir remembers the (modification time,
//! unique name) of the last message delivered, so files delivered later come
//! next (renames for flags keep a file's time); an mbox remembers the byte
//! offset where the next message starts (an mbox only grows; a smaller file
//! is read from the start). .eml files have no watermark.

use std::path::{Path, PathBuf};

use etl_core::state::StateFile;
use etl_core::{Error, Exit, Result};
use mailparse::MailHeaderMap;
use serde_json::json;

use crate::{committed, events, set_pending, Cli, Origin, Sink};

/// Whether the message's headers pass the selection flags.
fn selected(cli: &Cli, raw: &[u8], seen: bool) -> bool {
    if cli.unseen && seen {
        return false;
    }
    let Ok((headers, _)) = mailparse::parse_headers(raw) else {
        // Unreadable headers: let the MIME parser reject it.
        return true;
    };
    let has = |name: &str, needle: &str| {
        headers
            .get_all_values(name)
            .iter()
            .any(|v| v.to_lowercase().contains(&needle.to_lowercase()))
    };
    if cli.from.as_deref().is_some_and(|f| !has("From", f))
        || cli.to.as_deref().is_some_and(|t| !has("To", t))
        || cli.subject.as_deref().is_some_and(|s| !has("Subject", s))
    {
        return false;
    }
    for h in &cli.header {
        if let Some((n, v)) = h.split_once(':') {
            if !has(n.trim(), v.trim()) {
                return false;
            }
        }
    }
    if cli.since.is_some() || cli.before.is_some() {
        let date = headers
            .get_first_value("Date")
            .and_then(|d| mailparse::dateparse(&d).ok())
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date());
        let Some(d) = date else { return false };
        if cli.since.is_some_and(|s| d < s) || cli.before.is_some_and(|b| d >= b) {
            return false;
        }
    }
    true
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::input(path, &e))
}

fn one(cli: &Cli, sink: &mut Sink<'_>, raw: &[u8], origin: &Origin, seen: bool) -> Result<()> {
    if raw.len() > sink.max_message_bytes {
        events::skipped_large(
            &origin.mailbox,
            &origin.label,
            raw.len() as u64,
            sink.max_message_bytes as u64,
        );
        sink.counts.skipped += 1;
        return Ok(());
    }
    if selected(cli, raw, seen) {
        sink.message(raw, origin)?;
    }
    Ok(())
}

pub fn fetch(
    cli: &Cli,
    sink: &mut Sink<'_>,
    state: Option<&StateFile>,
    run_id: &str,
) -> Result<()> {
    if let Some(dir) = &cli.maildir {
        return maildir(cli, sink, dir, state, run_id);
    }
    if let Some(file) = &cli.mbox {
        return mbox(cli, sink, file, state, run_id);
    }
    for path in &cli.eml {
        let raw = read(path)?;
        let origin = Origin {
            mailbox: path.display().to_string(),
            uidvalidity: None,
            uid: None,
            label: path.display().to_string(),
        };
        one(cli, sink, &raw, &origin, false)?;
    }
    Ok(())
}

fn maildir(
    cli: &Cli,
    sink: &mut Sink<'_>,
    dir: &Path,
    state: Option<&StateFile>,
    run_id: &str,
) -> Result<()> {
    let canon = dir.canonicalize().map_err(|e| Error::input(dir, &e))?;
    let key = format!("maildir/{}", canon.display());
    let prior = committed(state, &key)?;
    let after: Option<(i128, String)> = prior.as_ref().and_then(|p| {
        Some((
            p["mtime_ns"].as_i64()?.into(),
            p["name"].as_str()?.to_owned(),
        ))
    });
    let mut files: Vec<(i128, String, PathBuf, bool)> = Vec::new();
    for sub in ["new", "cur"] {
        let d = canon.join(sub);
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::input(&d, &e)),
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            let meta = e.metadata().map_err(|err| Error::input(&path, &err))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
            let (unique, info) = name.split_once(":2,").unwrap_or((&name, ""));
            let seen = info.contains('S');
            files.push((mtime, unique.to_owned(), path, seen));
        }
    }
    files.sort();
    let mut last = None;
    for (mtime, unique, path, seen) in files {
        if after
            .as_ref()
            .is_some_and(|a| (mtime, unique.clone()) <= *a)
        {
            continue;
        }
        let raw = match std::fs::read(&path) {
            Ok(r) => r,
            // Moved by a mail client meanwhile (new/ to cur/): next run.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::input(&path, &e)),
        };
        let origin = Origin {
            mailbox: canon.display().to_string(),
            uidvalidity: None,
            uid: None,
            label: unique.clone(),
        };
        one(cli, sink, &raw, &origin, seen)?;
        last = Some((mtime, unique));
    }
    if let (Some(s), Some((mtime, name))) = (state, last) {
        set_pending(
            s,
            run_id,
            &key,
            &json!({"mtime_ns": i64::try_from(mtime).unwrap_or(i64::MAX), "name": name}),
        )?;
        events::local_pending(&key);
    }
    Ok(())
}

/// Splits an mbox at "From " lines that follow an empty line (or start the file).
fn mbox_messages(data: &[u8], start: usize) -> Vec<(usize, usize)> {
    let mut starts = Vec::new();
    let mut i = start;
    while i < data.len() {
        let at_line_start = i == 0 || data[i - 1] == b'\n';
        if at_line_start && data[i..].starts_with(b"From ") {
            let blank_before = i == 0
                || i == start
                || data[..i].ends_with(b"\n\n")
                || data[..i].ends_with(b"\r\n\r\n");
            if blank_before {
                starts.push(i);
            }
        }
        match data[i..].iter().position(|&b| b == b'\n') {
            Some(p) => i += p + 1,
            None => break,
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(data.len());
        out.push((s, e));
    }
    out
}

/// The message of an mbox entry: without its "From " line, `>From ` unquoted.
fn mbox_body(entry: &[u8]) -> Vec<u8> {
    let body = match entry.iter().position(|&b| b == b'\n') {
        Some(p) => &entry[p + 1..],
        None => &[][..],
    };
    let mut out = Vec::with_capacity(body.len());
    let mut line_start = true;
    let mut i = 0;
    while i < body.len() {
        if line_start {
            let quoted = body[i..].iter().take_while(|&&b| b == b'>').count();
            if quoted > 0 && body[i + quoted..].starts_with(b"From ") {
                i += 1;
            }
        }
        out.push(body[i]);
        line_start = body[i] == b'\n';
        i += 1;
    }
    out
}

fn mbox(
    cli: &Cli,
    sink: &mut Sink<'_>,
    file: &Path,
    state: Option<&StateFile>,
    run_id: &str,
) -> Result<()> {
    let canon = file.canonicalize().map_err(|e| Error::input(file, &e))?;
    let key = format!("mbox/{}", canon.display());
    let data = read(&canon)?;
    let prior = committed(state, &key)?;
    let mut start = prior
        .as_ref()
        .and_then(|p| p["offset"].as_u64())
        .and_then(|o| usize::try_from(o).ok())
        .unwrap_or(0);
    if start > data.len() || (start > 0 && !data[start..].starts_with(b"From ")) {
        // The file was rewritten (rotated, compacted): read it all.
        start = 0;
    }
    let messages = mbox_messages(&data, start);
    if start == 0 && !data.is_empty() && messages.is_empty() {
        return Err(Error::new(
            Exit::DataErr,
            format!("{}: not an mbox file (no \"From \" line)", canon.display()),
        ));
    }
    let mut end = start;
    for (n, (s, e)) in messages.into_iter().enumerate() {
        let raw = mbox_body(&data[s..e]);
        let seen = mailparse::parse_headers(&raw)
            .ok()
            .and_then(|(h, _)| h.get_first_value("Status"))
            .is_some_and(|v| v.contains('R'));
        let origin = Origin {
            mailbox: canon.display().to_string(),
            uidvalidity: None,
            uid: None,
            label: format!("#{} (offset {s})", n + 1),
        };
        one(cli, sink, &raw, &origin, seen)?;
        end = e;
    }
    if let Some(s) = state {
        if end > start {
            set_pending(s, run_id, &key, &json!({"offset": end}))?;
            events::local_pending(&key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_split_and_unquote() {
        let data = b"From a@x Mon Jan 1 00:00:00 2024\nSubject: one\n\nbody\n>From here\n\nFrom b@x Mon Jan 1 00:00:00 2024\nSubject: two\n\nx\n";
        let m = mbox_messages(data, 0);
        assert_eq!(m.len(), 2);
        let first = mbox_body(&data[m[0].0..m[0].1]);
        assert_eq!(first, b"Subject: one\n\nbody\nFrom here\n\n".to_vec());
        assert!(mbox_body(&data[m[1].0..m[1].1]).starts_with(b"Subject: two"));
        // Resuming at the second message's offset.
        assert_eq!(mbox_messages(data, m[1].0), vec![m[1]]);
    }
}
