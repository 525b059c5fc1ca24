//! Attachments of one message, decoded through `mailparse`.
//!
//! A leaf part is an attachment when its Content-Disposition is
//! `attachment`, or, without a disposition, when it is not body text (a file
//! name, disposition `filename` or Content-Type `name`, or a type other than
//! text/plain and text/html); `inline` parts with a file name count only
//! with `--include-inline`. Forwarded messages (`message/rfc822`) are opened and
//! their attachments found too. Names are decoded from RFC 2231 (mailparse)
//! and from RFC 2047 encoded words, which many mailers put in parameters.

use mailparse::{DispositionType, MailHeaderMap, ParsedMail};

/// How deep forwarded messages are opened.
const MAX_NESTING: usize = 8;

/// One decoded attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The decoded file name, if the part had one.
    pub filename: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The part's declared `charset` parameter, lower case, if any.
    pub charset: Option<String>,
    pub data: Vec<u8>,
}

/// A part's own `charset` parameter (mailparse reports `us-ascii` when
/// there is none; only a declared one is useful downstream).
fn declared_charset(p: &ParsedMail<'_>) -> Option<String> {
    p.ctype
        .params
        .get("charset")
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
}

/// The headers a manifest line carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339, UTC.
    pub date: Option<String>,
}

/// A message that cannot be read as MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Decodes RFC 2047 encoded words in a parameter value.
fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_owned();
    }
    let line = format!("X: {s}\r\n");
    match mailparse::parse_header(line.as_bytes()) {
        Ok((h, _)) => h.get_value(),
        Err(_) => s.to_owned(),
    }
}

fn part_filename(p: &ParsedMail<'_>) -> Option<String> {
    let d = p.get_content_disposition();
    d.params
        .get("filename")
        .or_else(|| p.ctype.params.get("name"))
        .map(|n| decode_words(n.trim()))
        .filter(|n| !n.is_empty())
}

/// The envelope of a message (`From`, `Subject`, `Message-ID`, `Date`).
pub fn envelope(m: &ParsedMail<'_>) -> Envelope {
    let h = m.get_headers();
    let date = h.get_first_value("Date").and_then(|d| {
        let secs = mailparse::dateparse(&d).ok()?;
        jiff::Timestamp::from_second(secs)
            .ok()
            .map(|t| t.to_string())
    });
    Envelope {
        message_id: h.get_first_value("Message-ID").map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        }),
        from: h.get_first_value("From"),
        subject: h.get_first_value("Subject"),
        date,
    }
}

/// Parses `raw` and collects its attachments (and its envelope).
pub fn attachments(
    raw: &[u8],
    include_inline: bool,
) -> Result<(Envelope, Vec<Attachment>), Malformed> {
    // Blank (or all-space) lines before the first header, as some mailers
    // and exports leave them, are not part of the message.
    let mut raw = raw;
    while let Some(end) = raw.iter().position(|&b| b == b'\n') {
        if raw[..end].iter().all(u8::is_ascii_whitespace) && end + 1 < raw.len() {
            raw = &raw[end + 1..];
        } else {
            break;
        }
    }
    let m = mailparse::parse_mail(raw).map_err(|e| Malformed(e.to_string()))?;
    let env = envelope(&m);
    let mut out = Vec::new();
    walk(&m, include_inline, 0, &mut out)?;
    Ok((env, out))
}

fn walk(
    p: &ParsedMail<'_>,
    include_inline: bool,
    depth: usize,
    out: &mut Vec<Attachment>,
) -> Result<(), Malformed> {
    let mime = p.ctype.mimetype.to_ascii_lowercase();
    if !p.subparts.is_empty() {
        for sp in &p.subparts {
            walk(sp, include_inline, depth, out)?;
        }
        return Ok(());
    }
    // mailparse reports `inline` for a part without the header at all.
    let disposition = if p.headers.get_first_header("Content-Disposition").is_some() {
        Some(p.get_content_disposition().disposition)
    } else {
        None
    };
    let name = part_filename(p);
    // A body text is text/plain or text/html without a name; any other leaf
    // (a named part, or e.g. an image/gif or a zip without a name) is a file.
    let body_text = name.is_none() && matches!(mime.as_str(), "text/plain" | "text/html");
    let is_attachment = match disposition {
        Some(DispositionType::Attachment) => true,
        Some(DispositionType::Inline) => include_inline && name.is_some(),
        _ => !body_text,
    };
    if mime == "message/rfc822" && depth < MAX_NESTING {
        let body = decoded(p)?;
        // A forwarded message: the message itself is a file unless it is
        // shown inline, and its own attachments count too.
        if is_attachment {
            out.push(Attachment {
                filename: name,
                content_type: mime,
                charset: None,
                data: body.clone(),
            });
        }
        if let Ok(inner) = mailparse::parse_mail(&body) {
            walk(&inner, include_inline, depth + 1, out)?;
        }
        return Ok(());
    }
    if is_attachment {
        let data = decoded(p)?;
        out.push(Attachment {
            filename: name,
            content_type: mime,
            charset: declared_charset(p),
            data,
        });
    }
    Ok(())
}

/// A part's decoded body. Base64 that mailparse refuses (bad length,
/// stray characters: common in real mail) is decoded leniently, as mail
/// clients do: characters outside the alphabet are skipped, a final partial
/// group is decoded as far as it goes.
fn decoded(p: &ParsedMail<'_>) -> Result<Vec<u8>, Malformed> {
    match p.get_body_raw() {
        Ok(b) => Ok(b),
        Err(e) => match p.get_body_encoded() {
            mailparse::body::Body::Base64(enc) => Ok(lenient_base64(enc.get_raw())),
            _ => Err(Malformed(e.to_string())),
        },
    }
}

// Truncation to the low byte is the point of each cast.
#[allow(clippy::cast_possible_truncation)]
pub fn lenient_base64(text: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut n) = (0u32, 0u32);
    for &c in text {
        if c == b'=' {
            break;
        }
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// A file name safe to create inside the output directory: no path
/// separators, no `..`, no control characters, at most 200 bytes, never
/// empty (`attachment-N.<ext>` from the content type).
pub fn safe_filename(name: Option<&str>, n: usize, content_type: &str) -> String {
    let cleaned: String = name
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut s = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if s.is_empty() || s.chars().all(|c| c == '.' || c == '_') {
        s = format!("attachment-{n}.{}", extension(content_type));
    }
    if s.len() > 200 {
        // Keep the extension, cut the stem on a character boundary.
        let ext = s
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 16)
            .unwrap_or("")
            .to_owned();
        let room = 200 - if ext.is_empty() { 0 } else { ext.len() + 1 };
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        if !ext.is_empty() {
            s.push('.');
            s.push_str(&ext);
        }
    }
    s
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "text/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "text/plain" => "txt",
        "text/html" => "html",
        "application/json" => "json",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/pdf" => "pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "message/rfc822" => "eml",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(
            safe_filename(Some("../../etc/passwd"), 1, "text/plain"),
            "_.._etc_passwd"
        );
        assert_eq!(
            safe_filename(Some("a\u{0}b\r\n.csv"), 1, "text/csv"),
            "a_b__.csv"
        );
        assert_eq!(safe_filename(Some(".."), 3, "text/csv"), "attachment-3.csv");
        assert_eq!(
            safe_filename(None, 2, "application/zip"),
            "attachment-2.zip"
        );
        assert_eq!(safe_filename(Some("C:\\x\\y.xlsx"), 1, ""), "C__x_y.xlsx");
        let long = format!("{}.xlsx", "é".repeat(300));
        let s = safe_filename(Some(&long), 1, "");
        assert!(
            s.len() <= 200 && s.rsplit_once('.').map(|x| x.1) == Some("xlsx"),
            "{s}"
        );
    }

    #[test]
    fn lenient_base64_decodes() {
        // Python: base64.b64encode(b"hello world") == b"aGVsbG8gd29ybGQ="
        assert_eq!(lenient_base64(b"aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(lenient_base64(b"aGVs\r\nbG8g d29y!bGQ"), b"hello world");
        assert_eq!(lenient_base64(b"aGVsbG8gd29ybGQ=x"), b"hello world");
    }

    #[test]
    fn encoded_word_names() {
        assert_eq!(decode_words("=?UTF-8?B?csOpc3Vtw6kuY3N2?="), "résumé.csv");
        assert_eq!(decode_words("plain.csv"), "plain.csv");
    }
}
