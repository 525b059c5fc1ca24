//! Text decoding: everything becomes UTF-8 before it is parsed.
//!
//! A UTF-8 BOM is removed; UTF-16 LE/BE with a BOM is decoded; `--encoding`
//! names a legacy encoding (encoding_rs labels: `windows-1252`, `latin1`,
//! `shift_jis`, ...). Without it, input that is not valid UTF-8 is decoded
//! with the charset chardetng detects on the first 64 KiB, and a warning names
//! it: never silently mangled. Valid UTF-8 passes through without a copy.

use std::io::{self, Read};

use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;
use etl_core::{Error, Result};

use crate::events;

/// Looks up `--encoding`.
pub fn encoding_for(label: &str) -> Result<&'static Encoding> {
    let l = label.trim().to_ascii_lowercase();
    let l = if l == "latin1" {
        "iso-8859-1".to_owned()
    } else {
        l
    };
    Encoding::for_label(l.as_bytes()).ok_or_else(|| {
        Error::usage(format!("--encoding {label}: unknown encoding (e.g. utf-8, windows-1252, latin1, shift_jis, utf-16le)"))
    })
}

/// True if `head` is UTF-8, allowing a sequence cut by the end of the
/// sample when the sample is not the whole input.
fn is_utf8(head: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Decodes `head` + `rest` to UTF-8. `complete`: `head` is the whole input.
/// `forced` (`--encoding`) decides; else a BOM, else valid UTF-8 stays as
/// it is, else `declared` (the charset the file's e-mail part declared)
/// is used, else a detected charset. A declared charset never overrides
/// valid UTF-8: mislabelled parts are common, and UTF-8 read as
/// windows-1252 would be mangled without a word.
pub fn decode<'a>(
    head: Vec<u8>,
    rest: Box<dyn Read + 'a>,
    complete: bool,
    forced: Option<&'static Encoding>,
    declared: Option<&'static Encoding>,
    name: &str,
) -> Box<dyn Read + 'a> {
    let whole = io::Cursor::new(head).chain(rest);
    let head = whole.get_ref().0.get_ref();
    let enc = if let Some(enc) = forced {
        Some(enc)
    } else if head.starts_with(&[0xFF, 0xFE]) {
        Some(encoding_rs::UTF_16LE)
    } else if head.starts_with(&[0xFE, 0xFF]) {
        Some(encoding_rs::UTF_16BE)
    } else if head.starts_with(b"\xEF\xBB\xBF") {
        let mut whole = whole;
        let mut bom = [0u8; 3];
        let _ = whole.read_exact(&mut bom);
        return Box::new(whole);
    } else if is_utf8(head, complete) {
        return Box::new(whole);
    } else if let Some(enc) = declared {
        events::charset_declared(name, enc.name());
        Some(enc)
    } else {
        let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
        det.feed(head, complete);
        let enc = det.guess(None, chardetng::Utf8Detection::Allow);
        events::charset_detected(name, enc.name());
        Some(enc)
    };
    // A BOM (if any) decides over the label, and is removed.
    Box::new(
        DecodeReaderBytesBuilder::new()
            .encoding(enc)
            .bom_override(true)
            .build(whole),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], forced: Option<&'static Encoding>) -> String {
        let mut out = String::new();
        decode(
            bytes.to_vec(),
            Box::new(io::empty()),
            true,
            forced,
            None,
            "t",
        )
        .read_to_string(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn boms_and_legacy_encodings() {
        assert_eq!(dec(b"\xEF\xBB\xBFa,b", None), "a,b");
        assert_eq!(dec(b"\xFF\xFEa\0,\0\xE9\0", None), "a,é");
        assert_eq!(dec(b"\xFE\xFF\0a\0,\0\xE9", None), "a,é");
        assert_eq!(
            dec(b"caf\xE9", Some(encoding_for("latin1").unwrap())),
            "café"
        );
        assert_eq!(
            dec(
                b"\x93quoted\x94 \x80",
                Some(encoding_for("windows-1252").unwrap())
            ),
            "\u{201c}quoted\u{201d} €"
        );
        assert_eq!(dec("déjà".as_bytes(), None), "déjà");
        assert!(encoding_for("klingon").is_err());
    }

    #[test]
    fn undeclared_legacy_text_is_detected_not_mangled() {
        let latin = b"name,city\nJos\xE9,S\xE3o Paulo\nFran\xE7ois,Besan\xE7on\n";
        assert_eq!(
            dec(latin, None),
            "name,city\nJosé,São Paulo\nFrançois,Besançon\n"
        );
    }

    #[test]
    fn a_declared_charset_decodes_legacy_text_but_never_utf8() {
        let dec2 = |bytes: &[u8], declared: &str| {
            let mut out = String::new();
            let enc = encoding_for(declared).ok();
            decode(bytes.to_vec(), Box::new(io::empty()), true, None, enc, "t")
                .read_to_string(&mut out)
                .unwrap();
            out
        };
        // 0xE9 is é in windows-1252 and ISO-8859-1, but щ in ISO-8859-5:
        // the declaration decides, not a guess.
        assert_eq!(dec2(b"caf\xE9", "iso-8859-5"), "caf\u{449}");
        assert_eq!(dec2(b"caf\xE9", "windows-1252"), "caf\u{e9}");
        // Valid UTF-8 stays UTF-8 whatever the label says.
        assert_eq!(dec2("café".as_bytes(), "windows-1252"), "café");
    }

    #[test]
    fn a_sample_cut_inside_a_character_is_still_utf8() {
        let s = "é".as_bytes();
        assert!(is_utf8(&s[..1], false));
        assert!(!is_utf8(&s[..1], true));
    }
}
