//! Spreadsheets (xlsx, xlsm, xlsb, xls, ods) through calamine.
//!
//! Memory bound: one sheet at a time. calamine materialises a sheet's used
//! range (one `Data` value per cell plus the text of string cells), so peak
//! memory grows with the largest selected sheet, not with the workbook or
//! the number of sheets.
//!
//! Values: text cells exactly as stored (leading zeros kept), numbers as the
//! shortest decimal text that reads back as the same double (`3`, `274.66`),
//! dates as ISO 8601 honouring the workbook's 1900/1904 epoch (a date without
//! time as `YYYY-MM-DD`), booleans as `true`/`false`, error cells (`#N/A`) as
//! rejects naming sheet and cell, unless `--cell-errors empty`.

use calamine::{Data, Ods, Reader, SheetVisible, Sheets, Xls, Xlsb, Xlsx};
use etl_core::reader::RejectInput;
use etl_core::record::Record;
use etl_core::{Error, Reject, Result, Run, Value};

use crate::detect::Format;
use crate::emit::{header_names, numbered, Cell, Emitter, Keys, Normalize, Origin};
use crate::events;
use crate::input::Seekable;

/// `--cell-errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CellErrors {
    /// An error cell (#N/A, #DIV/0!) makes its row a reject.
    #[default]
    Reject,
    /// Error cells become empty strings.
    Empty,
}

/// Which sheets to read.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// `--sheet NAME|INDEX`.
    pub sheet: Option<String>,
    /// `--all-sheets`.
    pub all: bool,
    /// `--list-sheets`.
    pub list: bool,
}

/// Options for spreadsheets.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Sheet selection.
    pub select: Select,
    /// `--no-header`.
    pub no_header: bool,
    /// `--skip-rows`.
    pub skip_rows: u64,
    /// `--normalize-headers`.
    pub normalize: Normalize,
    /// `--cell-errors`.
    pub cell_errors: CellErrors,
}

/// Opens a workbook of `format` (None: try each).
fn open(data: Seekable, format: Option<Format>, name: &str) -> Result<Sheets<Seekable>> {
    use calamine::open_workbook_from_rs as open;
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("password") {
            Error::data(format!(
                "{name}: the workbook is password-protected (encrypted); etl-parse cannot read it"
            ))
        } else {
            Error::data(format!("{name}: not a readable {what} workbook: {text}"))
        }
    };
    Ok(match format {
        Some(Format::Xlsx) => {
            Sheets::Xlsx(open::<Xlsx<_>, _>(data).map_err(|e| failed("xlsx", &e))?)
        }
        Some(Format::Xlsb) => {
            Sheets::Xlsb(open::<Xlsb<_>, _>(data).map_err(|e| failed("xlsb", &e))?)
        }
        Some(Format::Ods) => Sheets::Ods(open::<Ods<_>, _>(data).map_err(|e| failed("ods", &e))?),
        Some(Format::Xls) => Sheets::Xls(open::<Xls<_>, _>(data).map_err(|e| failed("xls", &e))?),
        _ => return Err(Error::internal("spreadsheet format not decided")),
    })
}

/// An OLE file is an xls workbook, or an encrypted Office 2007+ file.
pub fn open_ole(data: Seekable, name: &str) -> Result<(Sheets<Seekable>, Format)> {
    let mut data = data;
    let is_encrypted = ole_has_stream(&mut data, "EncryptionInfo");
    if is_encrypted {
        return Err(Error::data(format!(
            "{name}: the workbook is password-protected (encrypted); etl-parse cannot read it"
        )));
    }
    Ok((open(data, Some(Format::Xls), name)?, Format::Xls))
}

/// Looks for a directory entry name (UTF-16LE) in an OLE file: cheap and
/// enough to recognise an encrypted OOXML package.
fn ole_has_stream(data: &mut Seekable, stream: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let needle: Vec<u8> = stream.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut buf = Vec::new();
    let found = data.seek(SeekFrom::Start(0)).is_ok()
        && data.by_ref().take(8 << 20).read_to_end(&mut buf).is_ok()
        && buf.windows(needle.len()).any(|w| w == needle.as_slice());
    let _ = data.seek(SeekFrom::Start(0));
    found
}

/// Parses a workbook.
pub fn parse(
    data: Seekable,
    format: Format,
    opts: &Opts,
    origin: &Origin,
    em: &mut Emitter,
    run: &mut Run,
) -> Result<()> {
    let name = origin.label.as_str();
    let (mut wb, _) = if format == Format::Xls {
        open_ole(data, name)?
    } else {
        (open(data, Some(format), name)?, format)
    };
    let meta = wb.sheets_metadata().to_vec();
    if opts.select.list {
        for (i, m) in meta.iter().enumerate() {
            let (rows, cols) = wb.worksheet_range(&m.name).map_or((0, 0), |r| r.get_size());
            let mut rec = Record::default();
            rec.insert("name".into(), Value::from(m.name.as_str()));
            rec.insert("index".into(), Value::from(i as u64));
            rec.insert(
                "visible".into(),
                Value::from(m.visible == SheetVisible::Visible),
            );
            rec.insert("rows".into(), Value::from(rows as u64));
            rec.insert("columns".into(), Value::from(cols as u64));
            if !origin.is_plain() {
                rec.insert("_source".into(), Value::from(name));
            }
            em.plain(&rec).map_err(|e| Error::stdout(&e))?;
            run.records_out += 1;
        }
        return Ok(());
    }
    let chosen: Vec<usize> = if opts.select.all {
        (0..meta.len()).collect()
    } else if let Some(want) = &opts.select.sheet {
        let by_name = meta.iter().position(|m| &m.name == want);
        let by_index = want.parse::<usize>().ok().filter(|&i| i < meta.len());
        match by_name.or(by_index) {
            Some(i) => vec![i],
            None => {
                let names: Vec<&str> = meta.iter().map(|m| m.name.as_str()).collect();
                return Err(Error::usage(format!(
                    "{name}: no sheet {want:?} (sheets: {}; an INDEX counts from 0)",
                    names.join(", ")
                )));
            }
        }
    } else {
        match meta.iter().position(|m| m.visible == SheetVisible::Visible) {
            Some(i) => vec![i],
            None if meta.is_empty() => vec![],
            None => vec![0],
        }
    };
    for i in chosen {
        let sheet = &meta[i].name;
        let range = wb
            .worksheet_range(sheet)
            .map_err(|e| Error::data(format!("{name}: sheet {sheet}: {e}")))?;
        let sheet_origin = origin.sheet(sheet, opts.select.all);
        events::sheet(name, sheet, range.height(), range.width());
        parse_range(&range, opts, &sheet_origin, sheet, em, run)?;
    }
    Ok(())
}

/// A1-style column letters for a 0-based column.
pub fn column_name(mut col: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + u8::try_from(col % 26).unwrap_or(0));
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// The number as Excel shows and stores it: 15 significant digits (Excel's
/// precision, so binary noise like `274.65999999999997` is the `274.66` the
/// user typed), printed as the shortest text that reads back as that double
/// (`3`, not `3.0`).
pub fn number_text(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return "0".into();
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    format!("{rounded}")
}

/// ISO 8601 for an Excel date/time cell.
fn datetime_text(dt: &calamine::ExcelDateTime) -> String {
    if dt.is_duration() {
        let secs = (dt.as_f64() * 86_400.0).round();
        #[allow(clippy::cast_possible_truncation)] // durations of a sane spreadsheet
        let secs = secs as i64;
        let sign = if secs < 0 { "-" } else { "" };
        let s = secs.abs();
        return format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    if (h, mi, s, ms) == (0, 0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else if ms == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}")
    }
}

/// Text of a cell used in a header or a reject.
fn display(c: &Data) -> String {
    match c {
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Float(f) => number_text(*f),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => datetime_text(dt),
        Data::Error(e) => e.to_string(),
        Data::Empty => String::new(),
    }
}

fn parse_range(
    range: &calamine::Range<Data>,
    opts: &Opts,
    origin: &Origin,
    sheet: &str,
    em: &mut Emitter,
    run: &mut Run,
) -> Result<()> {
    let (row0, col0) = range.start().unwrap_or((0, 0));
    let mut keys: Option<Keys> = None;
    let mut data_row = 0_u64;
    let mut owned: Vec<String> = Vec::new();
    for (i, cells) in range
        .rows()
        .enumerate()
        .skip(usize::try_from(opts.skip_rows).unwrap_or(usize::MAX))
    {
        let sheet_row = u64::from(row0) + i as u64 + 1;
        if cells.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        let k = match &keys {
            Some(k) => k,
            None if opts.no_header => keys.insert(Keys::new(&numbered(cells.len()))),
            None => {
                let names: Vec<String> = cells.iter().map(display).collect();
                keys = Some(Keys::new(&header_names(
                    names.iter().map(String::as_str),
                    opts.normalize,
                )));
                continue;
            }
        };
        data_row += 1;
        run.records_in += 1;
        run.progress.tick(cells.len() * 8);
        // Error cells first: a row with one is a reject (unless --cell-errors empty).
        let error = cells.iter().enumerate().find_map(|(j, c)| match c {
            Data::Error(e) if opts.cell_errors == CellErrors::Reject => Some((j, e.to_string())),
            _ => None,
        });
        if let Some((j, e)) = error {
            let cell = format!(
                "{}{sheet_row}",
                column_name(col0 + u32::try_from(j).unwrap_or(0))
            );
            let fields: Vec<Value> = cells.iter().map(|c| Value::from(display(c))).collect();
            run.reject(&Reject {
                line: sheet_row,
                error: format!("sheet {sheet} cell {cell}: {e} (see --cell-errors empty)"),
                input: RejectInput::Value(Value::Array(fields)),
                source: Some(origin.label.clone()),
            })?;
            continue;
        }
        owned.clear();
        let mut kinds: Vec<u8> = Vec::with_capacity(cells.len());
        for c in cells {
            let (kind, text) = match c {
                Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => (0, s.clone()),
                Data::Float(f) => (1, number_text(*f)),
                Data::Int(n) => (1, n.to_string()),
                Data::Bool(b) => (if *b { 2 } else { 3 }, String::new()),
                Data::DateTime(dt) => (0, datetime_text(dt)),
                Data::Error(_) | Data::Empty => (4, String::new()),
            };
            kinds.push(kind);
            owned.push(text);
        }
        let cell_of = |j: usize| match kinds[j] {
            0 => Cell::Text(&owned[j]),
            1 => Cell::Number(&owned[j]),
            2 => Cell::Bool(true),
            3 => Cell::Bool(false),
            _ => Cell::Empty,
        };
        let n = cells.len().min(k.len());
        // Trailing columns past the header are kept only when they hold data.
        let extra: Vec<Cell<'_>> = (k.len()..cells.len()).map(cell_of).collect();
        let extra = if extra.iter().all(|c| matches!(c, Cell::Empty)) {
            Vec::new()
        } else {
            extra
        };
        em.row(k, (0..n).map(cell_of), &extra, origin, data_row)
            .map_err(|e| Error::stdout(&e))?;
        run.records_out += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_numbers() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(274.66), "274.66");
        assert_eq!(number_text(0.1 + 0.2), "0.3");
        assert_eq!(number_text(274.659_999_999_999_97), "274.66");
        assert_eq!(number_text(68.664_999_999_999_99), "68.665");
        assert_eq!(number_text(4.511_197_751_972_99), "4.51119775197299");
        assert_eq!(number_text(123_456_789_012_345.0), "123456789012345");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(1e21), "1000000000000000000000");
    }

    #[test]
    fn dates_honour_the_epoch() {
        use calamine::{ExcelDateTime, ExcelDateTimeType};
        let d = ExcelDateTime::new(42735.0, ExcelDateTimeType::DateTime, true);
        assert_eq!(datetime_text(&d), "2021-01-01");
        let d = ExcelDateTime::new(44197.5, ExcelDateTimeType::DateTime, false);
        assert_eq!(datetime_text(&d), "2021-01-01T12:00:00");
        let d = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(datetime_text(&d), "36:00:00");
    }
}
