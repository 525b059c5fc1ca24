//! `spreadsheets.values.*`: get, update, append, clear and their batch
//! forms, over one spreadsheet. Every write validates all its input before
//! it changes a cell, so a failed request changes nothing.

use serde_json::{json, Map, Value};

use crate::a1::{self, Grid};
use crate::error::ApiError;
use crate::model::{grid_error, input_cell, Input, Render, Spreadsheet, Write};

/// `majorDimension`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Major {
    Rows,
    Columns,
}

impl Major {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("ROWS" | "DIMENSION_UNSPECIFIED") => Ok(Major::Rows),
            Some("COLUMNS") => Ok(Major::Columns),
            Some(other) => Err(ApiError::invalid(format!(
                "Invalid value at 'major_dimension' (type.googleapis.com/google.apps.sheets.v4.Dimension), \"{other}\""
            ))),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Major::Rows => "ROWS",
            Major::Columns => "COLUMNS",
        }
    }
}

/// Options of a write that come from the query string.
#[derive(Debug, Clone, Copy)]
pub struct WriteOpts {
    pub input: Input,
    pub include_values: bool,
    pub render: Render,
}

/// Inserts `key: n` unless `n` is zero (proto3 JSON omits defaults).
fn put_count(m: &mut Map<String, Value>, key: &str, n: u64) {
    if n > 0 {
        m.insert(key.into(), json!(n));
    }
}

/// `values.get`: the range's values, trailing empty rows and cells omitted.
pub fn get(
    book: &Spreadsheet,
    range: &str,
    major: Major,
    render: Render,
) -> Result<Value, ApiError> {
    let (si, g) = book.resolve(range)?;
    Ok(read(book, si, g, major, render))
}

/// The `ValueRange` of an already resolved range.
pub fn read(book: &Spreadsheet, si: usize, g: Grid, major: Major, render: Render) -> Value {
    let sheet = &book.sheets[si];
    let data_rows = u32::try_from(sheet.data.len()).unwrap_or(u32::MAX);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for r in g.r0..g.r1.min(data_rows) {
        let row_len = u32::try_from(sheet.data[r as usize].len()).unwrap_or(u32::MAX);
        let mut row: Vec<Value> = (g.c0..g.c1.min(row_len))
            .map(|c| book.render(si, r, c, render).unwrap_or_else(|| json!("")))
            .collect();
        trim(&mut row);
        rows.push(row);
    }
    let mut values = match major {
        Major::Rows => rows,
        Major::Columns => {
            let width = rows.iter().map(Vec::len).max().unwrap_or(0);
            let mut cols: Vec<Vec<Value>> = (0..width)
                .map(|c| {
                    rows.iter()
                        .map(|row| row.get(c).cloned().unwrap_or_else(|| json!("")))
                        .collect()
                })
                .collect();
            for col in &mut cols {
                trim(col);
            }
            cols
        }
    };
    while values.last().is_some_and(Vec::is_empty) {
        values.pop();
    }
    let mut out = json!({"range": a1::format(&sheet.title, g), "majorDimension": major.name()});
    if !values.is_empty() {
        out["values"] = json!(values);
    }
    out
}

fn trim(row: &mut Vec<Value>) {
    while row.last().is_some_and(|v| v.as_str() == Some("")) {
        row.pop();
    }
}

/// A validated write: cells by (row offset, column offset) within the area.
struct Plan {
    /// Row-major.
    cells: Vec<Vec<Write>>,
    rows: u32,
    cols: u32,
    count: u64,
}

/// Converts a `ValueRange`'s `values` into a row-major plan, validating
/// every value first.
fn plan(body: &Value, how: Input) -> Result<Plan, ApiError> {
    let major = Major::parse(body.get("majorDimension").and_then(Value::as_str))?;
    let values =
        match body.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(ApiError::invalid(
                "Invalid value at 'data.values' (type.googleapis.com/google.protobuf.ListValue)",
            )),
        };
    let mut lines: Vec<Vec<Write>> = Vec::with_capacity(values.len());
    let mut count = 0u64;
    for (i, line) in values.iter().enumerate() {
        let Value::Array(items) = line else {
            return Err(ApiError::invalid(format!(
                "Invalid value at 'data.values[{i}]' (type.googleapis.com/google.protobuf.ListValue)"
            )));
        };
        let mut out = Vec::with_capacity(items.len());
        for (j, v) in items.iter().enumerate() {
            out.push(input_cell(v, how, &format!("[{i}][{j}]"))?);
        }
        count += out.len() as u64;
        lines.push(out);
    }
    let cells = match major {
        Major::Rows => lines,
        Major::Columns => {
            let height = lines.iter().map(Vec::len).max().unwrap_or(0);
            (0..height)
                .map(|r| {
                    let mut row: Vec<Write> = lines
                        .iter()
                        .map(|col| col.get(r).cloned().unwrap_or(Write::Keep))
                        .collect();
                    while row.last() == Some(&Write::Keep) {
                        row.pop();
                    }
                    row
                })
                .collect()
        }
    };
    let rows = u32::try_from(cells.len()).unwrap_or(u32::MAX);
    let cols = u32::try_from(cells.iter().map(Vec::len).max().unwrap_or(0)).unwrap_or(u32::MAX);
    Ok(Plan {
        cells,
        rows,
        cols,
        count,
    })
}

fn apply(book: &mut Spreadsheet, si: usize, r0: u32, c0: u32, p: Plan) {
    let sheet = &mut book.sheets[si];
    for (dr, row) in p.cells.into_iter().enumerate() {
        for (dc, v) in row.into_iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            let (r, c) = (r0 + dr as u32, c0 + dc as u32);
            match v {
                Write::Keep => {}
                Write::Clear => sheet.set(r, c, None),
                Write::Set(cell) => sheet.set(r, c, Some(cell)),
            }
        }
    }
}

/// The `UpdateValuesResponse` body of a write of `p` at (r0, c0).
fn update_response(
    book: &Spreadsheet,
    si: usize,
    area: Grid,
    count: u64,
    opts: WriteOpts,
) -> Value {
    let title = &book.sheets[si].title;
    let mut m = Map::new();
    m.insert("spreadsheetId".into(), json!(book.id));
    let range = if area.rows() == 0 || area.cols() == 0 {
        a1::format(
            title,
            Grid {
                r1: area.r0 + 1,
                c1: area.c0 + 1,
                ..area
            },
        )
    } else {
        a1::format(title, area)
    };
    m.insert("updatedRange".into(), json!(range));
    put_count(&mut m, "updatedRows", u64::from(area.rows()));
    put_count(&mut m, "updatedColumns", u64::from(area.cols()));
    put_count(&mut m, "updatedCells", count);
    if opts.include_values {
        let mut data = read(book, si, area, Major::Rows, opts.render);
        if area.rows() == 0 || area.cols() == 0 {
            data["range"] = json!(range);
        }
        m.insert("updatedData".into(), data);
    }
    Value::Object(m)
}

/// `values.update`.
pub fn update(
    book: &mut Spreadsheet,
    range: &str,
    body: &Value,
    opts: WriteOpts,
) -> Result<Value, ApiError> {
    if let Some(r) = body.get("range").and_then(Value::as_str) {
        if !same_range(book, r, range) {
            return Err(ApiError::invalid(format!(
                "Requested writing within range [{range}], but the ValueRange in the request body has range [{r}]"
            )));
        }
    }
    let (si, g) = book.resolve_unchecked(range)?;
    let p = plan(body, opts.input)?;
    let title = book.sheets[si].title.clone();
    // A single cell (`Sheet1!A1`) is the anchor of the block, as Google
    // takes it; a larger range bounds what may be written.
    let cell = range.rsplit_once('!').map_or(range, |(_, c)| c);
    let anchor = !cell.contains(':') && g.rows() == 1 && g.cols() == 1;
    if !anchor && p.rows > g.rows() {
        return Err(ApiError::invalid(format!(
            "Requested writing within range [{}], but tried writing to row [{}]",
            a1::format(&title, g),
            g.r0 + g.rows() + 1
        )));
    }
    if !anchor && p.cols > g.cols() {
        return Err(ApiError::invalid(format!(
            "Requested writing within range [{}], but tried writing to column [{}]",
            a1::format(&title, g),
            a1::column_name(g.c0 + g.cols())
        )));
    }
    let area = Grid {
        r0: g.r0,
        c0: g.c0,
        r1: g.r0 + p.rows,
        c1: g.c0 + p.cols,
    };
    let sheet = &book.sheets[si];
    if area.r1.max(g.r0 + 1) > sheet.rows || area.c1.max(g.c0 + 1) > sheet.cols {
        return Err(grid_error(sheet, if p.rows == 0 { g } else { area }));
    }
    let count = p.count;
    apply(book, si, g.r0, g.c0, p);
    Ok(update_response(book, si, area, count, opts))
}

fn same_range(book: &Spreadsheet, a: &str, b: &str) -> bool {
    match (book.resolve_unchecked(a), book.resolve_unchecked(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `values.append`, with Google's table detection: within the range's
/// columns, the first row holding data starts the table; the table runs
/// down while rows hold data and sideways while columns do; values go to
/// the row after it, from its first column. With no table they go to the
/// range's first cell.
pub fn append(
    book: &mut Spreadsheet,
    range: &str,
    body: &Value,
    insert_rows: bool,
    opts: WriteOpts,
) -> Result<Value, ApiError> {
    let (si, g) = book.resolve(range)?;
    let p = plan(body, opts.input)?;
    let sheet = &book.sheets[si];
    let table = detect_table(sheet, g);
    let (r0, c0) = match table {
        Some(t) => (t.r1, t.c0),
        None => (g.r0, g.c0),
    };
    // Grow the grid (INSERT_ROWS always inserts; OVERWRITE grows only
    // past the last row) and check the spreadsheet's cell limit first.
    let need_rows = r0 + p.rows;
    let add_rows = if insert_rows {
        p.rows
    } else {
        need_rows.saturating_sub(sheet.rows)
    };
    let add_cols = (c0 + p.cols).saturating_sub(sheet.cols);
    let extra = u64::from(add_rows) * u64::from(sheet.cols + add_cols)
        + u64::from(add_cols) * u64::from(sheet.rows);
    if book.total_cells() + extra > crate::model::MAX_CELLS {
        return Err(ApiError::invalid(format!(
            "This action would increase the number of cells in the workbook above the limit of {} cells.",
            crate::model::MAX_CELLS
        )));
    }
    let title = sheet.title.clone();
    let table_range = table.map(|t| a1::format(&title, t));
    let sheet = &mut book.sheets[si];
    if insert_rows && p.rows > 0 {
        sheet.insert_rows(r0, p.rows);
    } else if add_rows > 0 {
        sheet.rows += add_rows;
    }
    if add_cols > 0 {
        sheet.cols += add_cols;
    }
    let area = Grid {
        r0,
        c0,
        r1: r0 + p.rows,
        c1: c0 + p.cols,
    };
    let count = p.count;
    apply(book, si, r0, c0, p);
    let mut out =
        json!({"spreadsheetId": book.id, "updates": update_response(book, si, area, count, opts)});
    if let Some(t) = table_range {
        out["tableRange"] = json!(t);
    }
    Ok(out)
}

fn detect_table(sheet: &crate::model::Sheet, g: Grid) -> Option<Grid> {
    let data_rows = u32::try_from(sheet.data.len()).unwrap_or(u32::MAX);
    let c1 = g.c1.min(sheet.cols);
    // The first row of the range with data in the range's columns starts
    // the table; it spreads left and right over adjacent filled cells and
    // down (past the range) while rows hold data in its columns.
    let t0 = (g.r0..g.r1.min(data_rows)).find(|&r| sheet.row_has_data(r, g.c0, c1))?;
    let filled = |c: u32| sheet.cell(t0, c).is_some();
    let mut first = (g.c0..c1).find(|&c| filled(c))?;
    while first > 0 && filled(first - 1) {
        first -= 1;
    }
    let mut end = (g.c0..c1).rev().find(|&c| filled(c)).unwrap_or(first) + 1;
    while end < sheet.cols && filled(end) {
        end += 1;
    }
    let mut t1 = t0 + 1;
    while t1 < data_rows && sheet.row_has_data(t1, first, end) {
        t1 += 1;
    }
    Some(Grid {
        r0: t0,
        c0: first,
        r1: t1,
        c1: end,
    })
}

/// `values.clear`: values go, the grid stays.
pub fn clear(book: &mut Spreadsheet, range: &str) -> Result<Value, ApiError> {
    let (si, g) = book.resolve(range)?;
    clear_grid(book, si, g);
    Ok(json!({"spreadsheetId": book.id, "clearedRange": a1::format(&book.sheets[si].title, g)}))
}

fn clear_grid(book: &mut Spreadsheet, si: usize, g: Grid) {
    let sheet = &mut book.sheets[si];
    let data_rows = u32::try_from(sheet.data.len()).unwrap_or(u32::MAX);
    for r in g.r0..g.r1.min(data_rows) {
        let len = u32::try_from(sheet.data[r as usize].len()).unwrap_or(u32::MAX);
        for c in g.c0..g.c1.min(len) {
            sheet.set(r, c, None);
        }
    }
}

/// `values.batchClear`: all ranges resolve before any is cleared.
pub fn batch_clear(book: &mut Spreadsheet, body: &Value) -> Result<Value, ApiError> {
    let ranges = string_list(body.get("ranges"));
    let mut resolved = Vec::new();
    for r in &ranges {
        resolved.push(book.resolve(r)?);
    }
    let mut cleared = Vec::new();
    for (si, g) in resolved {
        clear_grid(book, si, g);
        cleared.push(a1::format(&book.sheets[si].title, g));
    }
    Ok(json!({"spreadsheetId": book.id, "clearedRanges": cleared}))
}

/// `values.batchGet`.
pub fn batch_get(
    book: &Spreadsheet,
    ranges: &[String],
    major: Major,
    render: Render,
) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for r in ranges {
        out.push(get(book, r, major, render)?);
    }
    let mut v = json!({"spreadsheetId": book.id});
    if !out.is_empty() {
        v["valueRanges"] = json!(out);
    }
    Ok(v)
}

/// `values.batchUpdate`: every `data` entry is an update; all or none
/// apply (the caller runs this on a copy and keeps it only on success).
pub fn batch_update(book: &mut Spreadsheet, body: &Value) -> Result<Value, ApiError> {
    let input = Input::parse(body.get("valueInputOption").and_then(Value::as_str))?;
    let render = Render::parse(
        body.get("responseValueRenderOption")
            .and_then(Value::as_str),
        body.get("responseDateTimeRenderOption")
            .and_then(Value::as_str),
    )?;
    let opts = WriteOpts {
        input,
        include_values: body
            .get("includeValuesInResponse")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        render,
    };
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut responses = Vec::new();
    let (mut rows, mut cols, mut cells) = (0u64, 0u64, 0u64);
    let mut sheets = std::collections::BTreeSet::new();
    for d in &data {
        let Some(range) = d.get("range").and_then(Value::as_str) else {
            return Err(ApiError::invalid(
                "Invalid data[0]: Unable to parse range: ",
            ));
        };
        let r = update(book, range, d, opts)?;
        rows += r.get("updatedRows").and_then(Value::as_u64).unwrap_or(0);
        cols += r.get("updatedColumns").and_then(Value::as_u64).unwrap_or(0);
        let n = r.get("updatedCells").and_then(Value::as_u64).unwrap_or(0);
        cells += n;
        if n > 0 {
            sheets.insert(book.resolve_unchecked(range).map_or(0, |x| x.0));
        }
        responses.push(r);
    }
    let mut m = Map::new();
    m.insert("spreadsheetId".into(), json!(book.id));
    put_count(&mut m, "totalUpdatedRows", rows);
    put_count(&mut m, "totalUpdatedColumns", cols);
    put_count(&mut m, "totalUpdatedCells", cells);
    put_count(&mut m, "totalUpdatedSheets", sheets.len() as u64);
    if !responses.is_empty() {
        m.insert("responses".into(), json!(responses));
    }
    Ok(Value::Object(m))
}

pub fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sheet;

    fn book() -> Spreadsheet {
        Spreadsheet::new(
            "book".into(),
            "t".into(),
            "o",
            vec![Sheet::new(0, "Sheet1".into())],
        )
    }

    const RAW: WriteOpts = WriteOpts {
        input: Input::Raw,
        include_values: false,
        render: Render::Formatted,
    };
    const USER: WriteOpts = WriteOpts {
        input: Input::UserEntered,
        include_values: false,
        render: Render::Formatted,
    };

    fn rows(b: &Spreadsheet, range: &str) -> Value {
        get(b, range, Major::Rows, Render::Formatted).unwrap()
    }

    #[test]
    fn update_then_get() {
        let mut b = book();
        let r = update(
            &mut b,
            "Sheet1!A1:C2",
            &json!({"values": [["a", 1, true], ["007"]]}),
            RAW,
        )
        .unwrap();
        assert_eq!(
            r,
            json!({"spreadsheetId": "book", "updatedRange": "Sheet1!A1:C2", "updatedRows": 2, "updatedColumns": 3, "updatedCells": 4})
        );
        assert_eq!(
            rows(&b, "Sheet1"),
            json!({"range": "Sheet1!A1:Z1000", "majorDimension": "ROWS", "values": [["a", "1", "TRUE"], ["007"]]})
        );
        let cols = get(
            &b,
            "A1:C2",
            Major::Columns,
            Render::Unformatted {
                dates_as_strings: false,
            },
        )
        .unwrap();
        assert_eq!(cols["values"], json!([["a", "007"], [1], [true]]));
    }

    #[test]
    fn writing_outside_the_range_or_grid_fails() {
        let mut b = book();
        let e = update(&mut b, "Sheet1!A1:B1", &json!({"values": [[1, 2, 3]]}), RAW).unwrap_err();
        assert_eq!(
            e.message,
            "Requested writing within range [Sheet1!A1:B1], but tried writing to column [C]"
        );
        // A single cell anchors a larger block; past the grid it still fails.
        let e = update(&mut b, "Sheet1!A1000", &json!({"values": [[1], [2]]}), RAW).unwrap_err();
        assert_eq!(
            e.message,
            "Range ('Sheet1'!A1000:A1001) exceeds grid limits. Max rows: 1000, max columns: 26"
        );
        let e = update(
            &mut b,
            "Sheet1!A1000:A1001",
            &json!({"values": [[1], [2]]}),
            RAW,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Range ('Sheet1'!A1000:A1001) exceeds grid limits. Max rows: 1000, max columns: 26"
        );
        assert!(
            b.sheets[0].data.is_empty(),
            "a failed write changes nothing"
        );
        let e = get(&b, "Sheet1!A1:AA1", Major::Rows, Render::Formatted).unwrap_err();
        assert_eq!(
            e.message,
            "Range ('Sheet1'!A1:AA1) exceeds grid limits. Max rows: 1000, max columns: 26"
        );
        update(
            &mut b,
            "Sheet1!B2",
            &json!({"values": [[1, 2], [3, 4]]}),
            RAW,
        )
        .unwrap();
        assert_eq!(
            get(&b, "Sheet1!B2:C3", Major::Rows, Render::Formatted).unwrap()["values"],
            json!([["1", "2"], ["3", "4"]])
        );
    }

    #[test]
    fn user_entered_and_render_options() {
        let mut b = book();
        update(
            &mut b,
            "A1:E1",
            &json!({"values": [["12%", "$1.50", "=A1*2", "2024-01-15", "'=x"]]}),
            USER,
        )
        .unwrap();
        assert_eq!(
            rows(&b, "A1:E1")["values"],
            json!([["12%", "$1.50", "0.24", "2024-01-15", "=x"]])
        );
        let u = get(
            &b,
            "A1:E1",
            Major::Rows,
            Render::Unformatted {
                dates_as_strings: false,
            },
        )
        .unwrap();
        assert_eq!(u["values"], json!([[0.12, 1.5, 0.24, 45306, "=x"]]));
        let u = get(
            &b,
            "A1:E1",
            Major::Rows,
            Render::Formula {
                dates_as_strings: true,
            },
        )
        .unwrap();
        assert_eq!(
            u["values"],
            json!([[0.12, 1.5, "=A1*2", "2024-01-15", "=x"]])
        );
    }

    #[test]
    fn null_keeps_and_empty_clears() {
        let mut b = book();
        update(&mut b, "A1:C1", &json!({"values": [[1, 2, 3]]}), RAW).unwrap();
        update(&mut b, "A1:C1", &json!({"values": [[null, "", 9]]}), RAW).unwrap();
        assert_eq!(rows(&b, "A1:C1")["values"], json!([["1", "", "9"]]));
    }

    #[test]
    fn append_finds_the_table() {
        let mut b = book();
        update(
            &mut b,
            "A1:C3",
            &json!({"values": [["h1", "h2", "h3"], [1, 2, 3], [4, 5, 6]]}),
            RAW,
        )
        .unwrap();
        // A blank row, then another block: Google appends after the first table.
        update(&mut b, "A6", &json!({"values": [["x"]]}), RAW).unwrap();
        let r = append(
            &mut b,
            "Sheet1!A1",
            &json!({"values": [[7, 8, 9]]}),
            false,
            RAW,
        )
        .unwrap();
        assert_eq!(r["tableRange"], json!("Sheet1!A1:C3"));
        assert_eq!(r["updates"]["updatedRange"], json!("Sheet1!A4:C4"));
        // A range over column B finds the table's first column, A.
        let r = append(&mut b, "Sheet1!B:B", &json!({"values": [[10]]}), false, RAW).unwrap();
        assert_eq!(r["tableRange"], json!("Sheet1!A1:C4"));
        assert_eq!(r["updates"]["updatedRange"], json!("Sheet1!A5"));
        // An empty sheet: no table, values land at the range's start.
        let mut e = book();
        let r = append(&mut e, "Sheet1!B2:D", &json!({"values": [[1]]}), false, RAW).unwrap();
        assert!(r.get("tableRange").is_none());
        assert_eq!(r["updates"]["updatedRange"], json!("Sheet1!B2"));
    }

    #[test]
    fn append_grows_the_grid_and_insert_rows_shifts() {
        let mut b = book();
        let rows1000: Vec<Value> = (0..1000).map(|i| json!([i])).collect();
        update(&mut b, "A1:A1000", &json!({"values": rows1000}), RAW).unwrap();
        let r = append(
            &mut b,
            "A1",
            &json!({"values": [[1000], [1001]]}),
            false,
            RAW,
        )
        .unwrap();
        assert_eq!(r["updates"]["updatedRange"], json!("Sheet1!A1001:A1002"));
        assert_eq!(b.sheets[0].rows, 1002);
        // INSERT_ROWS in the middle of the sheet shifts what is below.
        let mut c = book();
        update(&mut c, "A1:A2", &json!({"values": [["a"], ["b"]]}), RAW).unwrap();
        update(&mut c, "A4", &json!({"values": [["below"]]}), RAW).unwrap();
        append(&mut c, "A1:A2", &json!({"values": [["new"]]}), true, RAW).unwrap();
        assert_eq!(
            rows(&c, "A1:A5")["values"],
            json!([["a"], ["b"], ["new"], [], ["below"]])
        );
        assert_eq!(c.sheets[0].rows, 1001);
    }

    #[test]
    fn cell_and_size_limits() {
        let mut b = book();
        let long = "x".repeat(50_001);
        let e = update(&mut b, "A1", &json!({"values": [[long]]}), RAW).unwrap_err();
        assert!(e.message.contains("maximum of 50000 characters"), "{e}");
        b.sheets[0].rows = 384_615; // 9,999,990 cells
        let e = append(&mut b, "A1", &json!({"values": [[1]]}), true, RAW).unwrap_err();
        assert!(
            e.message.contains("above the limit of 10000000 cells"),
            "{e}"
        );
    }

    #[test]
    fn clear_and_batches() {
        let mut b = book();
        let r = batch_update(
            &mut b,
            &json!({"valueInputOption": "RAW", "data": [
                {"range": "A1:B1", "values": [[1, 2]]},
                {"range": "A3", "values": [[3]]}]}),
        )
        .unwrap();
        assert_eq!(r["totalUpdatedCells"], json!(3));
        assert_eq!(r["totalUpdatedSheets"], json!(1));
        let r = clear(&mut b, "A1:A3").unwrap();
        assert_eq!(r["clearedRange"], json!("Sheet1!A1:A3"));
        let v = batch_get(
            &b,
            &["A1:B1".into(), "A3".into()],
            Major::Rows,
            Render::Formatted,
        )
        .unwrap();
        assert_eq!(v["valueRanges"][0]["values"], json!([["", "2"]]));
        assert!(v["valueRanges"][1].get("values").is_none());
    }
}
