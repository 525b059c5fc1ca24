//! Zip archives: every member parsed by its own format (`_member` added
//! with `--provenance`).
//!
//! Members stream straight out of the archive (text formats) or are read into
//! memory (spreadsheets and nested archives, which need random access), always
//! under the decompression limits. Directories and macOS metadata
//! (`__MACOSX/`, `.DS_Store`) are skipped; `--member GLOB` selects. An
//! encrypted member or an unsupported compression method is a clear error
//! naming the member, never garbage output.

use std::io::Read;

use etl_core::{Error, Result, Run};
use globset::GlobMatcher;
use zip::result::ZipError;
use zip::ZipArchive;

use crate::emit::Origin;
use crate::events;
use crate::input::{Limits, Seekable};
use crate::{Job, Parser};

/// How deep zips may nest inside zips.
const MAX_DEPTH: usize = 3;

/// Lists and parses the members of an archive.
pub fn parse(
    data: Seekable,
    origin: &Origin,
    parser: &mut Parser<'_>,
    run: &mut Run,
    depth: usize,
) -> Result<()> {
    let name = origin.label.clone();
    if depth >= MAX_DEPTH {
        return Err(Error::data(format!(
            "{name}: zip archives nested more than {MAX_DEPTH} deep"
        )));
    }
    let mut zip = ZipArchive::new(data)
        .map_err(|e| Error::data(format!("{name}: not a readable zip archive: {e}")))?;
    let mut parsed = 0;
    for i in 0..zip.len() {
        let member_name = match zip.name_for_index(i) {
            Some(Ok(n)) => n.into_owned(),
            Some(Err(e)) => {
                return Err(Error::data(format!(
                    "{name}: member {i}: unreadable name: {e}"
                )))
            }
            None => continue,
        };
        if member_name.ends_with('/') || skip_metadata(&member_name) {
            continue;
        }
        if let Some(glob) = &parser.member_glob {
            if !matches(glob, &member_name) {
                continue;
            }
        }
        let member_origin = origin.member(&member_name);
        let label = member_origin.label.clone();
        let file = zip.by_index(i).map_err(|e| member_error(&label, &e))?;
        if file.is_dir() {
            continue;
        }
        if file.encrypted() {
            return Err(Error::data(format!(
                "{label}: the member is encrypted (password-protected); etl-parse cannot read it"
            )));
        }
        let guarded = guard_member(&parser.limits, file);
        events::member(&name, &member_name);
        parser.parse_stream(
            Job {
                name: &member_name,
                origin: &member_origin,
                depth: depth + 1,
            },
            Box::new(guarded) as Box<dyn Read + '_>,
            run,
        )?;
        parsed += 1;
    }
    if parsed == 0 {
        events::no_members(&name, parser.member_glob.as_ref().map(|g| g.glob().glob()));
    }
    Ok(())
}

/// A zip member's decompressed stream under the limits (its ratio against
/// the compressed size the archive declares).
fn guard_member<'a, R: Read>(
    limits: &Limits,
    file: zip::read::ZipFile<'a, R>,
) -> crate::input::Guarded<zip::read::ZipFile<'a, R>> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(file.compressed_size().max(1)));
    limits.guard(file, compressed)
}

fn skip_metadata(name: &str) -> bool {
    name.starts_with("__MACOSX/")
        || name
            .rsplit('/')
            .next()
            .is_some_and(|b| b == ".DS_Store" || b.starts_with("._"))
}

/// `--member` matches the whole path or just the file name.
fn matches(glob: &GlobMatcher, member: &str) -> bool {
    glob.is_match(member) || member.rsplit('/').next().is_some_and(|b| glob.is_match(b))
}

fn member_error(label: &str, e: &ZipError) -> Error {
    match e {
        ZipError::UnsupportedArchive(m) if *m == ZipError::PASSWORD_REQUIRED => {
            Error::data(format!(
                "{label}: the member is encrypted (password-protected); etl-parse cannot read it"
            ))
        }
        ZipError::UnsupportedArchive(m) => Error::data(format!("{label}: unsupported member: {m}")),
        other => Error::data(format!("{label}: unreadable member: {other}")),
    }
}

/// Decompresses every member of the zip inside a workbook (xlsx, xlsb, ods)
/// under the limits before calamine opens it, so a workbook is held to
/// `--max-decompressed-bytes` and `--max-ratio` like any archive (calamine
/// inflates the parts itself, out of our reach). The data is rewound.
pub fn check_workbook(data: &mut Seekable, limits: &Limits, name: &str) -> Result<()> {
    use std::io::Seek;
    {
        let mut zip = ZipArchive::new(&mut *data)
            .map_err(|e| Error::data(format!("{name}: not a readable workbook: {e}")))?;
        for i in 0..zip.len() {
            let Ok(file) = zip.by_index(i) else {
                // calamine reports unreadable parts with its own message.
                continue;
            };
            if file.is_dir() || file.encrypted() {
                continue;
            }
            let mut guarded = guard_member(limits, file);
            if let Err(e) = std::io::copy(&mut guarded, &mut std::io::sink()) {
                return Err(limits.read_error(name, &e));
            }
        }
    }
    data.rewind()
        .map_err(|e| Error::new(etl_core::Exit::IoErr, format!("{name}: {e}")))
}
