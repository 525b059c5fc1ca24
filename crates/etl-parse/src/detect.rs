//! Which format an input is: content first (magic bytes, then sniffing),
//! then the file extension; `--format` overrides both.
//!
//! Content wins because clients misname files (`report.csv` that is really
//! an xlsx, `export.xls` that is HTML-free CSV); the extension only breaks
//! ties the content cannot (an empty file, TSV versus CSV hints).

/// A format etl-parse reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma (or sniffed) delimited text.
    Csv,
    /// Tab-separated text.
    Tsv,
    /// Excel 2007+ (also .xlsm).
    Xlsx,
    /// Excel 97-2003.
    Xls,
    /// Excel binary workbook.
    Xlsb,
    /// OpenDocument spreadsheet.
    Ods,
    /// A JSON document: an array of objects (or records at --json-path).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A zip archive: every member parsed by its own format.
    Zip,
    /// Fixed-width text (with --columns, --widths or --columns-file).
    Fixed,
}

impl Format {
    /// The name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Xlsx => "xlsx",
            Format::Xls => "xls",
            Format::Xlsb => "xlsb",
            Format::Ods => "ods",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Zip => "zip",
            Format::Fixed => "fixed",
        }
    }

    /// Spreadsheets need random access and are read a sheet at a time.
    pub fn is_spreadsheet(self) -> bool {
        matches!(
            self,
            Format::Xlsx | Format::Xls | Format::Xlsb | Format::Ods
        )
    }

    /// The format an extension names, if any.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "csv" | "txt" | "dat" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "xlsx" | "xlsm" | "xltx" | "xltm" => Format::Xlsx,
            "xls" | "xla" => Format::Xls,
            "xlsb" => Format::Xlsb,
            "ods" => Format::Ods,
            "json" => Format::Json,
            "ndjson" | "jsonl" | "ldjson" => Format::Ndjson,
            "zip" => Format::Zip,
            _ => return None,
        })
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A zip container: xlsx, xlsb, ods or an archive (look inside to know).
    ZipContainer,
    /// An OLE compound file: xls (or an encrypted xlsx).
    Ole,
    /// Text of this format.
    Text(Format),
}

/// Classifies the first bytes of a (decompressed, decoded-to-UTF-8 when
/// text) input.
pub fn sniff(head: &[u8], ext: Option<Format>) -> Sniffed {
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        return Sniffed::ZipContainer;
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Sniffed::Ole;
    }
    // Named like a zip (or a workbook), binary, and holding a zip record
    // (a central directory or end record, prepended data before them): a
    // damaged or self-extracting archive, opened as one so that it fails as
    // one ("not a readable zip archive"), not read as text.
    if matches!(
        ext,
        Some(Format::Zip | Format::Xlsx | Format::Xlsb | Format::Ods)
    ) && head.contains(&0)
        && [
            &b"PK\x01\x02"[..],
            b"PK\x05\x06",
            b"PK\x06\x06",
            b"PK\x03\x04",
        ]
        .iter()
        .any(|sig| memchr::memmem::find(head, sig).is_some())
    {
        return Sniffed::ZipContainer;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &text[i..]);
    match first.and_then(|t| t.first()) {
        Some(b'[')
            if !matches!(ext, Some(Format::Csv | Format::Tsv))
                || looks_like_json_array(first.unwrap_or_default()) =>
        {
            Sniffed::Text(Format::Json)
        }
        Some(b'{') => {
            let t = first.unwrap_or_default();
            // NDJSON: the first line is a whole object. A pretty-printed
            // document spreads its first object over several lines.
            let line_end = t.iter().position(|&b| b == b'\n').unwrap_or(t.len());
            let line = std::str::from_utf8(&t[..line_end]).unwrap_or("");
            let whole_line =
                serde_json::from_str::<&serde_json::value::RawValue>(line.trim_end()).is_ok();
            if whole_line || ext == Some(Format::Ndjson) {
                Sniffed::Text(Format::Ndjson)
            } else {
                Sniffed::Text(Format::Json)
            }
        }
        _ => match ext {
            // JSON starts with `[` or `{`: anything else is delimited text,
            // whatever the name says.
            Some(Format::Tsv) => Sniffed::Text(Format::Tsv),
            _ => Sniffed::Text(Format::Csv),
        },
    }
}

/// `[` followed by `{`, `[`, `"`, a digit or `]` (a CSV cell can start with `[` too).
fn looks_like_json_array(t: &[u8]) -> bool {
    t.iter()
        .skip(1)
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'[' | b']' | b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_containers_and_text() {
        assert_eq!(sniff(b"PK\x03\x04rest", None), Sniffed::ZipContainer);
        assert_eq!(
            sniff(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0], None),
            Sniffed::Ole
        );
        assert_eq!(
            sniff(b"{\"a\":1}\n{\"a\":2}\n", None),
            Sniffed::Text(Format::Ndjson)
        );
        assert_eq!(
            sniff(b"{\n  \"data\": [\n", None),
            Sniffed::Text(Format::Json)
        );
        assert_eq!(sniff(b"  [ {\"a\":1} ]", None), Sniffed::Text(Format::Json));
        assert_eq!(
            sniff(b"\xEF\xBB\xBF[{\"a\":1}]", None),
            Sniffed::Text(Format::Json)
        );
        assert_eq!(sniff(b"a,b\n1,2\n", None), Sniffed::Text(Format::Csv));
        assert_eq!(
            sniff(b"[note],b\n1,2\n", Some(Format::Csv)),
            Sniffed::Text(Format::Csv)
        );
        assert_eq!(
            sniff(b"a\tb\n", Some(Format::Tsv)),
            Sniffed::Text(Format::Tsv)
        );
    }
}
