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

/// UTF-16 without a BOM: every other byte of ASCII text is NUL. Returns
/// the byte order when at least 30% of the odd (LE) or even (BE) bytes of
/// the first 4 KiB are NUL and almost none of the others.
pub fn utf16_without_bom(head: &[u8]) -> Option<&'static Encoding> {
    let h = &head[..head.len().min(4096) & !1];
    let pairs = h.len() / 2;
    if pairs < 2 {
        return None;
    }
    let even = h.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd = h.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    if odd * 10 >= pairs * 3 && even * 20 < pairs {
        Some(encoding_rs::UTF_16LE)
    } else if even * 10 >= pairs * 3 && odd * 20 < pairs {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

/// The legacy charset of `rest`, bytes from the first row that is not
/// UTF-8 in a file the sample said was UTF-8: chardetng's guess, never
/// UTF-8.
pub fn legacy_after(rest: &[u8]) -> &'static Encoding {
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(rest, false);
    det.guess(None, chardetng::Utf8Detection::Deny)
}

/// `rest` decoded with `enc` (no BOM expected mid-file).
pub fn decoder<'a>(enc: &'static Encoding, rest: Box<dyn Read + 'a>) -> Box<dyn Read + 'a> {
    Box::new(
        DecodeReaderBytesBuilder::new()
            .encoding(Some(enc))
            .bom_override(false)
            .build(rest),
    )
}

/// UTF-8 as it is, its BOM (when `bom`) removed.
fn without_bom<'a>(mut whole: impl Read + 'a, bom: bool) -> Box<dyn Read + 'a> {
    if bom {
        let mut b = [0u8; 3];
        let _ = whole.read_exact(&mut b);
    }
    Box::new(whole)
}

/// A decoded stream and the encoding it was read as.
pub struct Decoded<'a> {
    /// UTF-8 text.
    pub reader: Box<dyn Read + 'a>,
    /// The encoding's name (`UTF-8`, `windows-1252`, `UTF-16LE`, ...).
    pub encoding: String,
    /// UTF-8 was decided on the sample (not forced): a byte that is not
    /// UTF-8 later switches the rest to a detected charset (see
    /// [`legacy_after`]).
    pub may_switch: bool,
}

impl std::fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// Decodes `head` + `rest` to UTF-8. `complete`: `head` is the whole input.
/// `forced` (`--encoding`) decides; else a BOM, else UTF-16 without a BOM
/// (NUL bytes every other byte), else valid UTF-8 stays as it is (and a
/// byte that is not UTF-8 later switches the rest of the input to the
/// charset detected from there on, with a warning naming the line), else
/// `declared` (the charset the file's e-mail part declared) is used, else
/// a detected charset. A declared charset never overrides valid UTF-8:
/// mislabelled parts are common, and UTF-8 read as windows-1252 would be
/// mangled without a word.
pub fn decode<'a>(
    head: Vec<u8>,
    rest: Box<dyn Read + 'a>,
    complete: bool,
    forced: Option<&'static Encoding>,
    declared: Option<&'static Encoding>,
    name: &str,
) -> Decoded<'a> {
    let whole = io::Cursor::new(head).chain(rest);
    let head = whole.get_ref().0.get_ref();
    let decoded = |enc: &'static Encoding, whole| Decoded {
        // A BOM (if any) decides over the label, and is removed.
        reader: Box::new(
            DecodeReaderBytesBuilder::new()
                .encoding(Some(enc))
                .bom_override(true)
                .build(whole),
        ),
        encoding: enc.name().to_owned(),
        may_switch: false,
    };
    if let Some(enc) = forced {
        if enc == encoding_rs::UTF_8
            && !head.starts_with(&[0xFF, 0xFE])
            && !head.starts_with(&[0xFE, 0xFF])
        {
            // `--encoding utf-8` insists: bytes that are not UTF-8 make
            // their rows rejects, never replacement characters.
            let bom = head.starts_with(b"\xEF\xBB\xBF");
            return Decoded {
                reader: without_bom(whole, bom),
                encoding: "UTF-8".into(),
                may_switch: false,
            };
        }
        return decoded(enc, whole);
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return decoded(encoding_rs::UTF_16LE, whole);
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return decoded(encoding_rs::UTF_16BE, whole);
    }
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Decoded {
            reader: without_bom(whole, true),
            encoding: "UTF-8".into(),
            may_switch: true,
        };
    }
    if let Some(enc) = utf16_without_bom(head) {
        events::charset_detected(name, enc.name());
        return decoded(enc, whole);
    }
    if is_utf8(head, complete) {
        return Decoded {
            reader: Box::new(whole),
            encoding: "UTF-8".into(),
            may_switch: true,
        };
    }
    if let Some(enc) = declared {
        events::charset_declared(name, enc.name());
        return decoded(enc, whole);
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    det.feed(head, complete);
    let enc = det.guess(None, chardetng::Utf8Detection::Allow);
    events::charset_detected(name, enc.name());
    decoded(enc, whole)
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
        .reader
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
                .reader
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

    #[test]
    fn utf16_without_a_bom_is_recognised() {
        let le: Vec<u8> = "id,name\nA,é\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let be: Vec<u8> = "id,name\nA,é\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(utf16_without_bom(&le), Some(encoding_rs::UTF_16LE));
        assert_eq!(utf16_without_bom(&be), Some(encoding_rs::UTF_16BE));
        assert_eq!(dec(&le, None), "id,name\nA,é\n");
        assert_eq!(dec(&be, None), "id,name\nA,é\n");
        assert_eq!(utf16_without_bom(b"id,name\n1,2\n"), None);
        // One NUL in ASCII text is not UTF-16.
        assert_eq!(utf16_without_bom(b"id,name\n1,\x002\n"), None);
    }

    #[test]
    fn what_follows_a_legacy_byte_is_guessed_never_utf8() {
        assert_eq!(
            legacy_after(b"5001,Besan\xE7on caf\xE9\n"),
            encoding_rs::WINDOWS_1252
        );
        assert_ne!(legacy_after("caf\u{e9}".as_bytes()), encoding_rs::UTF_8);
        let mut out = String::new();
        decoder(encoding_rs::WINDOWS_1252, Box::new(&b"Z\xFCrich"[..]))
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "Zürich");
    }

    #[test]
    fn legacy_charsets_are_detected_over_the_sample() {
        // Each text encoded in its legacy charset, then read back without a
        // label: chardetng decides over the sample.
        let cases: [(&str, &'static Encoding); 5] = [
            (
                "город,улица,сумма\nМосква,Тверская,1200\nСанкт-Петербург,Невский проспект,800\nКазань,Баумана,450\n",
                encoding_rs::WINDOWS_1251,
            ),
            (
                "都市,住所,金額\n東京,新宿区西新宿二丁目,1200\n大阪,北区梅田一丁目,800\n京都,下京区烏丸通,450\n",
                encoding_rs::SHIFT_JIS,
            ),
            (
                "城市,地址,金额\n北京,朝阳区建国路,1200\n上海,浦东新区世纪大道,800\n广州,天河区体育西路,450\n",
                encoding_rs::GB18030,
            ),
            (
                "ville,rue,montant\nSaint-Étienne,Rue de la République,1200\nBesançon,Grande Rue,800\nNîmes,Boulevard Victor-Hugo,450\n",
                encoding_rs::WINDOWS_1252,
            ),
            (
                "miasto,ulica,kwota\nŁódź,Piotrkowska,1200\nKraków,Floriańska,800\nGdańsk,Długa,450\nŻyrardów,Źródlana,300\n",
                encoding_rs::ISO_8859_2,
            ),
        ];
        for (text, enc) in cases {
            let (bytes, _, bad) = enc.encode(text);
            assert!(!bad, "{} cannot hold the test text", enc.name());
            assert_eq!(dec(&bytes, None), text, "{}", enc.name());
        }
    }
}
