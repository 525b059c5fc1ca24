//! `spreadsheets.create`, `spreadsheets.get` and `spreadsheets.batchUpdate`.
//!
//! A batchUpdate runs on a copy of the spreadsheet and replaces it only when
//! every request succeeded, so one invalid request changes nothing (as
//! Google applies a batchUpdate atomically).

use serde_json::{json, Map, Value};

use crate::a1::{self, Grid, MAX_COLUMNS};
use crate::error::ApiError;
use crate::model::{grid_error, Cell, Computed, Sheet, Spreadsheet};
use crate::values::Major;

/// Request kinds the emulator implements.
pub const SUPPORTED: [&str; 15] = [
    "addNamedRange",
    "deleteNamedRange",
    "addSheet",
    "copyPaste",
    "repeatCell",
    "updateDimensionProperties",
    "deleteSheet",
    "updateSheetProperties",
    "duplicateSheet",
    "appendDimension",
    "insertDimension",
    "deleteDimension",
    "updateCells",
    "updateSpreadsheetProperties",
    "appendCells",
];

/// Every request kind of the Sheets v4 `Request` message (from Google's
/// discovery document): the ones the emulator does not implement get a
/// clear "not supported" error rather than Google's "unknown name".
pub const KNOWN: [&str; 74] = [
    "addBanding",
    "addChart",
    "addCommentReply",
    "addConditionalFormatRule",
    "addDataSource",
    "addDimensionGroup",
    "addFilterView",
    "addNamedRange",
    "addProtectedRange",
    "addSheet",
    "addSlicer",
    "addTable",
    "appendCells",
    "appendDimension",
    "autoFill",
    "autoResizeDimensions",
    "cancelDataSourceRefresh",
    "clearBasicFilter",
    "copyPaste",
    "createDeveloperMetadata",
    "cutPaste",
    "deleteBanding",
    "deleteComment",
    "deleteCommentReply",
    "deleteConditionalFormatRule",
    "deleteDataSource",
    "deleteDeveloperMetadata",
    "deleteDimension",
    "deleteDimensionGroup",
    "deleteDuplicates",
    "deleteEmbeddedObject",
    "deleteFilterView",
    "deleteNamedRange",
    "deleteProtectedRange",
    "deleteRange",
    "deleteSheet",
    "deleteTable",
    "duplicateFilterView",
    "duplicateSheet",
    "findReplace",
    "insertComment",
    "insertDimension",
    "insertRange",
    "mergeCells",
    "moveDimension",
    "pasteData",
    "randomizeRange",
    "refreshDataSource",
    "repeatCell",
    "setBasicFilter",
    "setDataValidation",
    "sortRange",
    "textToColumns",
    "trimWhitespace",
    "unmergeCells",
    "updateBanding",
    "updateBorders",
    "updateCells",
    "updateChartSpec",
    "updateCommentPost",
    "updateConditionalFormatRule",
    "updateDataSource",
    "updateDeveloperMetadata",
    "updateDimensionGroup",
    "updateDimensionProperties",
    "updateEmbeddedObjectBorder",
    "updateEmbeddedObjectPosition",
    "updateFilterView",
    "updateNamedRange",
    "updateProtectedRange",
    "updateSheetProperties",
    "updateSlicerSpec",
    "updateSpreadsheetProperties",
    "updateTable",
];

/// A source of new sheet ids (random positive 31-bit integers, like Google's).
pub trait Ids {
    fn sheet_id(&mut self) -> i64;
}

/// The `Spreadsheet` resource. `ranges` limits the sheets listed (and the
/// grid data) to those ranges; `grid` adds `data` with each cell's
/// `userEnteredValue`, `effectiveValue` and `formattedValue`.
pub fn render(book: &Spreadsheet, ranges: &[String], grid: bool) -> Result<Value, ApiError> {
    let mut wanted: Vec<(usize, Option<Grid>)> = Vec::new();
    if ranges.is_empty() {
        wanted.extend((0..book.sheets.len()).map(|i| (i, None)));
    } else {
        for r in ranges {
            let (i, g) = book.resolve(r)?;
            wanted.push((i, Some(g)));
        }
    }
    let mut sheets = Vec::new();
    for (i, g) in wanted {
        let s = &book.sheets[i];
        let mut sheet = json!({"properties": s.properties(i)});
        if grid {
            let g = g.unwrap_or_else(|| s.grid());
            sheet["data"] = json!([grid_data(book, i, g)]);
        }
        sheets.push(sheet);
    }
    let mut out = json!({
        "spreadsheetId": book.id,
        "properties": {
            "title": book.title,
            "locale": book.locale,
            "autoRecalc": "ON_CHANGE",
            "timeZone": book.time_zone,
        },
        "sheets": sheets,
        "spreadsheetUrl": format!("https://docs.google.com/spreadsheets/d/{}/edit", book.id),
    });
    // Omitted when empty, as proto3 JSON does.
    if !book.named_ranges.is_empty() {
        out["namedRanges"] = book
            .named_ranges
            .iter()
            .map(crate::model::NamedRange::to_json)
            .collect();
    }
    Ok(out)
}

fn extended_value(c: &Cell) -> Value {
    match c {
        Cell::Str(s) => json!({"stringValue": s}),
        Cell::Num { n, .. } => json!({"numberValue": n}),
        Cell::Bool(b) => json!({"boolValue": b}),
        Cell::Formula(f) => json!({"formulaValue": f}),
    }
}

fn grid_data(book: &Spreadsheet, si: usize, g: Grid) -> Value {
    use crate::model::Computed;
    let s = &book.sheets[si];
    let data_rows = u32::try_from(s.data.len()).unwrap_or(u32::MAX);
    let mut row_data = Vec::new();
    for r in g.r0..g.r1.min(data_rows) {
        let len = u32::try_from(s.data[r as usize].len()).unwrap_or(u32::MAX);
        let mut values = Vec::new();
        for c in g.c0..g.c1.min(len) {
            let format = s.format(r, c).map(|f| Value::Object(f.clone()));
            let Some(cell) = s.cell(r, c) else {
                values.push(format.map_or_else(|| json!({}), |f| json!({"userEnteredFormat": f})));
                continue;
            };
            let computed = book.computed(si, r, c);
            let effective = match &computed {
                Computed::Empty => json!({}),
                Computed::Str(s) => json!({"stringValue": s}),
                Computed::Num { n, .. } => json!({"numberValue": n}),
                Computed::Bool(b) => json!({"boolValue": b}),
                Computed::Error(e) => json!({"errorValue": {"type": "ERROR", "message": e}}),
            };
            let mut v = json!({
                "userEnteredValue": extended_value(cell),
                "effectiveValue": effective,
                "formattedValue": book.formatted(si, r, c, &computed),
            });
            if let Some(f) = format {
                v["userEnteredFormat"] = f;
            }
            values.push(v);
        }
        row_data.push(if values.is_empty() {
            json!({})
        } else {
            json!({"values": values})
        });
    }
    let mut d = json!({});
    if g.r0 > 0 {
        d["startRow"] = json!(g.r0);
    }
    if g.c0 > 0 {
        d["startColumn"] = json!(g.c0);
    }
    if !row_data.is_empty() {
        d["rowData"] = json!(row_data);
    }
    d
}

/// `spreadsheets.create`: `body` is a `Spreadsheet` (title, sheets).
pub fn create(
    id: String,
    owner: &str,
    body: &Value,
    ids: &mut dyn Ids,
) -> Result<Spreadsheet, ApiError> {
    let props = body.get("properties").cloned().unwrap_or(json!({}));
    let mut book = Spreadsheet {
        id,
        title: props
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("Untitled spreadsheet")
            .to_owned(),
        locale: props
            .get("locale")
            .and_then(Value::as_str)
            .unwrap_or("en_US")
            .to_owned(),
        time_zone: props
            .get("timeZone")
            .and_then(Value::as_str)
            .unwrap_or("Etc/GMT")
            .to_owned(),
        owner: owner.to_owned(),
        writers: Vec::new(),
        readers: Vec::new(),
        sheets: Vec::new(),
        named_ranges: Vec::new(),
    };
    let sheets = body
        .get("sheets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if sheets.is_empty() {
        book.sheets.push(Sheet::new(0, "Sheet1".into()));
    }
    for (i, s) in sheets.iter().enumerate() {
        if s.get("data").is_some() {
            return Err(ApiError::invalid(
                "Sheet data in spreadsheets.create is not supported by etl-sheets-emulator; write it with values.update",
            ));
        }
        let p = s.get("properties").cloned().unwrap_or(json!({}));
        let req = json!({"properties": p});
        let default_id = if i == 0 { Some(0) } else { None };
        add_sheet(&mut book, &req, ids, default_id)
            .map_err(|m| ApiError::invalid(format!("Invalid sheets[{i}]: {m}")))?;
    }
    book.check_cell_limit()?;
    Ok(book)
}

/// `spreadsheets.batchUpdate` on `book` (the caller's copy): the response,
/// or the first failing request's error.
pub fn batch_update(
    book: &mut Spreadsheet,
    body: &Value,
    ids: &mut dyn Ids,
) -> Result<Value, ApiError> {
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut replies = Vec::new();
    for (i, req) in requests.iter().enumerate() {
        let Some(obj) = req.as_object() else {
            return Err(ApiError::invalid(format!(
                "Invalid requests[{i}]: No request set."
            )));
        };
        let mut kinds = obj.keys();
        let Some(kind) = kinds.next() else {
            return Err(ApiError::invalid(format!(
                "Invalid requests[{i}]: No request set."
            )));
        };
        if let Some(second) = kinds.next() {
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. oneof field 'kind' is already set. Cannot set '{second}'"
            )));
        }
        if !KNOWN.contains(&kind.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': Cannot find field."
            )));
        }
        let r = &obj[kind];
        let reply = match kind.as_str() {
            "addSheet" => {
                add_sheet(book, r, ids, None).map(|p| json!({"addSheet": {"properties": p}}))
            }
            "deleteSheet" => delete_sheet(book, r).map(|()| json!({})),
            "updateSheetProperties" => update_sheet_properties(book, r).map(|()| json!({})),
            "duplicateSheet" => {
                duplicate_sheet(book, r, ids).map(|p| json!({"duplicateSheet": {"properties": p}}))
            }
            "appendDimension" => append_dimension(book, r).map(|()| json!({})),
            "insertDimension" => insert_dimension(book, r).map(|()| json!({})),
            "deleteDimension" => delete_dimension(book, r).map(|()| json!({})),
            "updateCells" => update_cells(book, r).map(|()| json!({})),
            "appendCells" => append_cells(book, r).map(|()| json!({})),
            "copyPaste" => copy_paste(book, r).map(|()| json!({})),
            "repeatCell" => repeat_cell(book, r).map(|()| json!({})),
            "addNamedRange" => {
                add_named_range(book, r, ids).map(|n| json!({"addNamedRange": {"namedRange": n}}))
            }
            "deleteNamedRange" => delete_named_range(book, r).map(|()| json!({})),
            "updateDimensionProperties" => update_dimension_properties(book, r).map(|()| json!({})),
            "updateSpreadsheetProperties" => {
                update_spreadsheet_properties(book, r).map(|()| json!({}))
            }
            other => Err(format!(
                "{other} is not supported by etl-sheets-emulator (supported: {})",
                SUPPORTED.join(", ")
            )),
        }
        .map_err(|m| ApiError::invalid(format!("Invalid requests[{i}].{kind}: {m}")))?;
        book.check_cell_limit()?;
        replies.push(reply);
    }
    let mut out = json!({"spreadsheetId": book.id});
    if !replies.is_empty() {
        out["replies"] = json!(replies);
    }
    if body
        .get("includeSpreadsheetInResponse")
        .and_then(Value::as_bool)
        == Some(true)
    {
        let ranges = crate::values::string_list(body.get("responseRanges"));
        let grid = body.get("responseIncludeGridData").and_then(Value::as_bool) == Some(true);
        out["updatedSpreadsheet"] = render(book, &ranges, grid)?;
    }
    Ok(out)
}

type R<T = ()> = Result<T, String>;

fn int(v: &Value, key: &str) -> Option<i64> {
    let x = v.get(key)?;
    x.as_i64().or_else(|| x.as_str()?.parse().ok())
}

fn u32_of(v: &Value, key: &str) -> R<Option<u32>> {
    match int(v, key) {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| format!("Invalid {key}: {n}")),
    }
}

fn sheet_by_id(book: &Spreadsheet, v: &Value, key: &str) -> R<usize> {
    let id = int(v, key).unwrap_or(0);
    book.sheet_index_by_id(id)
        .ok_or_else(|| format!("No grid with id: {id}"))
}

fn check_title(book: &Spreadsheet, title: &str, except: Option<usize>) -> R {
    if title.trim().is_empty() {
        return Err("The sheet name cannot be empty.".into());
    }
    if title.chars().count() > 100 {
        return Err(format!(
            "The sheet name '{title}' is longer than the maximum of 100 characters."
        ));
    }
    let clash = book
        .sheets
        .iter()
        .enumerate()
        .any(|(i, s)| Some(i) != except && s.title.eq_ignore_ascii_case(title));
    if clash {
        return Err(format!(
            "A sheet with the name \"{title}\" already exists. Please enter another name."
        ));
    }
    Ok(())
}

fn check_grid(rows: u32, cols: u32) -> R {
    if rows == 0 || cols == 0 {
        return Err("A sheet must have at least one row and one column.".into());
    }
    if cols > MAX_COLUMNS {
        return Err(format!(
            "This action would increase the number of columns in the sheet above the limit of {MAX_COLUMNS}."
        ));
    }
    Ok(())
}

fn new_sheet_id(book: &Spreadsheet, requested: Option<i64>, ids: &mut dyn Ids) -> R<i64> {
    match requested {
        Some(id) if id < 0 => Err(format!("Invalid sheetId: {id}")),
        Some(id) if book.sheet_index_by_id(id).is_some() => {
            Err(format!("A sheet with the id {id} already exists."))
        }
        Some(id) => Ok(id),
        None => loop {
            let id = ids.sheet_id();
            if book.sheet_index_by_id(id).is_none() {
                return Ok(id);
            }
        },
    }
}

fn place(book: &mut Spreadsheet, sheet: Sheet, index: Option<u32>) -> R<usize> {
    let at = match index {
        None => book.sheets.len(),
        Some(i) if (i as usize) <= book.sheets.len() => i as usize,
        Some(i) => return Err(format!("Invalid index: {i}")),
    };
    book.sheets.insert(at, sheet);
    Ok(at)
}

fn add_sheet(
    book: &mut Spreadsheet,
    r: &Value,
    ids: &mut dyn Ids,
    default_id: Option<i64>,
) -> R<Value> {
    let p = r.get("properties").cloned().unwrap_or(json!({}));
    let id = new_sheet_id(book, int(&p, "sheetId").or(default_id), ids)?;
    let title = match p.get("title").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None => {
            let mut n = book.sheets.len() + 1;
            while book.sheet_index_by_title(&format!("Sheet{n}")).is_some() {
                n += 1;
            }
            format!("Sheet{n}")
        }
    };
    check_title(book, &title, None)?;
    let mut sheet = Sheet::new(id, title);
    sheet.hidden = p.get("hidden").and_then(Value::as_bool).unwrap_or(false);
    if let Some(g) = p.get("gridProperties") {
        apply_grid(
            &mut sheet,
            g,
            &[
                "rowCount",
                "columnCount",
                "frozenRowCount",
                "frozenColumnCount",
            ],
        )?;
    }
    let at = place(book, sheet, u32_of(&p, "index")?)?;
    Ok(book.sheets[at].properties(at))
}

fn apply_grid(sheet: &mut Sheet, g: &Value, fields: &[&str]) -> R {
    for f in fields {
        let Some(n) = u32_of(g, f)? else { continue };
        match *f {
            "rowCount" => {
                check_grid(n, sheet.cols)?;
                if n < sheet.rows {
                    sheet.delete_rows(n, sheet.rows);
                } else {
                    sheet.rows = n;
                }
            }
            "columnCount" => {
                check_grid(sheet.rows, n)?;
                if n < sheet.cols {
                    sheet.delete_cols(n, sheet.cols);
                } else {
                    sheet.cols = n;
                }
            }
            "frozenRowCount" => sheet.frozen_rows = n,
            "frozenColumnCount" => sheet.frozen_cols = n,
            other => {
                return Err(format!(
                    "gridProperties.{other} is not supported by etl-sheets-emulator"
                ))
            }
        }
    }
    Ok(())
}

fn visible(book: &Spreadsheet) -> usize {
    book.sheets.iter().filter(|s| !s.hidden).count()
}

fn delete_sheet(book: &mut Spreadsheet, r: &Value) -> R {
    let i = sheet_by_id(book, r, "sheetId")
        .map_err(|_| format!("No sheet with id: {}", int(r, "sheetId").unwrap_or(0)))?;
    if book.sheets.len() == 1 {
        return Err("You can't remove all the sheets in a document.".into());
    }
    if !book.sheets[i].hidden && visible(book) == 1 {
        return Err("You can't remove all the visible sheets in a document.".into());
    }
    let gone = book.sheets.remove(i);
    retarget_formulas(book, &gone.title, None);
    // Named ranges on it stay, reading as #REF!.
    for n in &mut book.named_ranges {
        if n.sheet_id == Some(gone.id) {
            n.sheet_id = None;
        }
    }
    Ok(())
}

/// Every formula that refers to sheet `title`, rewritten: to `to` (a
/// rename), or to `#REF!` (a deletion). References are bound to sheets.
fn retarget_formulas(book: &mut Spreadsheet, title: &str, to: Option<&str>) {
    for sheet in &mut book.sheets {
        for row in &mut sheet.data {
            for cell in row.iter_mut().flatten() {
                if let Cell::Formula(f) = cell {
                    if let Some(new) = crate::formula::retarget(f, title, to) {
                        *f = new;
                    }
                }
            }
        }
    }
}

fn update_sheet_properties(book: &mut Spreadsheet, r: &Value) -> R {
    let p = r.get("properties").cloned().unwrap_or(json!({}));
    // Google takes `a/b` in a field mask as `a.b` (gspread sends it so).
    let fields = r
        .get("fields")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('/', ".");
    let fields = fields.as_str();
    if fields.trim().is_empty() {
        return Err("At least one field must be updated, but 'fields' is empty.".into());
    }
    let i = sheet_by_id(book, &p, "sheetId")?;
    // The field mask as repeatCell and partial responses read it: `a.b`,
    // `a(b,c)` and `*` (gspread and Google's own examples send each).
    let mask = crate::fields::parse(fields.trim())?;
    let all = mask.is_whole();
    let mut list: Vec<(&str, Option<&crate::fields::Mask>)> = if all {
        ["title", "index", "hidden", "gridProperties"]
            .map(|f| (f, None))
            .to_vec()
    } else {
        mask.parts()
            .map(|(k, sub)| (k.as_str(), Some(sub)))
            .collect()
    };
    // The move last: the other fields address the sheet by its position `i`.
    list.sort_by_key(|(f, _)| *f == "index");
    let mut grid_fields = Vec::new();
    for (f, sub) in list {
        match f {
            "title" => {
                let t = p
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                check_title(book, &t, Some(i))?;
                let old = std::mem::replace(&mut book.sheets[i].title, t.clone());
                if old != t {
                    retarget_formulas(book, &old, Some(&t));
                }
            }
            "hidden" => {
                let h = p.get("hidden").and_then(Value::as_bool).unwrap_or(false);
                if h && !book.sheets[i].hidden && visible(book) == 1 {
                    return Err("You can't hide all the sheets in a document.".into());
                }
                book.sheets[i].hidden = h;
            }
            "index" => {
                // Google reads `index` as the position before the move.
                let to = u32_of(&p, "index")?.unwrap_or(0) as usize;
                if to > book.sheets.len() {
                    return Err(format!("Invalid index: {to}"));
                }
                let s = book.sheets.remove(i);
                let to = if to > i { to - 1 } else { to };
                book.sheets.insert(to.min(book.sheets.len()), s);
            }
            "gridProperties" => match sub {
                Some(sub) if !sub.is_whole() => {
                    grid_fields.extend(sub.parts().map(|(k, _)| k.as_str()));
                }
                _ => grid_fields.extend([
                    "rowCount",
                    "columnCount",
                    "frozenRowCount",
                    "frozenColumnCount",
                ]),
            },
            "sheetId" => {}
            other => {
                return Err(format!(
                    "Field '{other}' is not supported by etl-sheets-emulator"
                ))
            }
        }
    }
    if !grid_fields.is_empty() {
        let i = book
            .sheet_index_by_id(int(&p, "sheetId").unwrap_or(0))
            .unwrap_or(i);
        let g = p.get("gridProperties").cloned().unwrap_or(json!({}));
        // A field named in the mask but absent from the message is its zero.
        let mut g2 = g.clone();
        for f in &grid_fields {
            if g2.get(*f).is_none() && !all {
                g2[*f] = json!(0);
            }
        }
        let fields: Vec<&str> = grid_fields
            .iter()
            .copied()
            .filter(|f| g2.get(*f).is_some())
            .collect();
        apply_grid(&mut book.sheets[i], &g2, &fields)?;
    }
    Ok(())
}

fn duplicate_sheet(book: &mut Spreadsheet, r: &Value, ids: &mut dyn Ids) -> R<Value> {
    let src = sheet_by_id(book, r, "sourceSheetId")?;
    let id = new_sheet_id(book, int(r, "newSheetId"), ids)?;
    let title = match r.get("newSheetName").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None => {
            let base = format!("Copy of {}", book.sheets[src].title);
            let mut t = base.clone();
            let mut n = 2;
            while book.sheet_index_by_title(&t).is_some() {
                t = format!("{base} {n}");
                n += 1;
            }
            t
        }
    };
    check_title(book, &title, None)?;
    let mut sheet = book.sheets[src].clone();
    sheet.id = id;
    sheet.title = title;
    let at = place(book, sheet, u32_of(r, "insertSheetIndex")?)?;
    Ok(book.sheets[at].properties(at))
}

fn dimension(v: &Value) -> R<bool> {
    match v.get("dimension").and_then(Value::as_str) {
        Some("ROWS") => Ok(true),
        Some("COLUMNS") => Ok(false),
        _ => Err("Invalid dimension: must be ROWS or COLUMNS".into()),
    }
}

fn append_dimension(book: &mut Spreadsheet, r: &Value) -> R {
    let i = sheet_by_id(book, r, "sheetId")?;
    let rows = dimension(r)?;
    let n = u32_of(r, "length")?.unwrap_or(0);
    if n == 0 {
        return Err("length must be at least 1".into());
    }
    let s = &mut book.sheets[i];
    if rows {
        s.rows += n;
    } else {
        check_grid(s.rows, s.cols + n)?;
        s.cols += n;
    }
    Ok(())
}

fn dim_range(book: &Spreadsheet, r: &Value) -> R<(usize, bool, u32, u32)> {
    let range = r.get("range").cloned().unwrap_or(json!({}));
    let i = sheet_by_id(book, &range, "sheetId")?;
    let rows = dimension(&range)?;
    let start = u32_of(&range, "startIndex")?.unwrap_or(0);
    let end = u32_of(&range, "endIndex")?.unwrap_or(0);
    if end <= start {
        return Err(format!(
            "Invalid dimension range: startIndex {start} must be less than endIndex {end}"
        ));
    }
    Ok((i, rows, start, end))
}

fn insert_dimension(book: &mut Spreadsheet, r: &Value) -> R {
    let (i, rows, start, end) = dim_range(book, r)?;
    let s = &mut book.sheets[i];
    let count = if rows { s.rows } else { s.cols };
    if start > count {
        return Err(format!(
            "Cannot insert {} at index {start}: the sheet has only {count}",
            if rows { "rows" } else { "columns" }
        ));
    }
    if rows {
        s.insert_rows(start, end - start);
    } else {
        check_grid(s.rows, s.cols + (end - start))?;
        s.insert_cols(start, end - start);
    }
    Ok(())
}

fn delete_dimension(book: &mut Spreadsheet, r: &Value) -> R {
    let (i, rows, start, end) = dim_range(book, r)?;
    let s = &mut book.sheets[i];
    let count = if rows { s.rows } else { s.cols };
    if end > count {
        return Err(format!(
            "Cannot delete {} {start}..{end}: the sheet has only {count}",
            if rows { "rows" } else { "columns" }
        ));
    }
    if start == 0 && end == count {
        return Err(format!(
            "You can't delete all the {} on the sheet.",
            if rows { "rows" } else { "columns" }
        ));
    }
    if rows {
        s.delete_rows(start, end);
    } else {
        s.delete_cols(start, end);
    }
    Ok(())
}

/// An `ExtendedValue` as a cell.
fn cell_of(v: &Value) -> R<Option<Cell>> {
    let Some(obj) = v.as_object() else {
        return Ok(None);
    };
    let Some((k, x)) = obj.iter().next() else {
        return Ok(None);
    };
    let cell = match (k.as_str(), x) {
        ("stringValue", Value::String(s)) => Cell::Str(s.clone()),
        ("numberValue", x) => Cell::num(
            x.as_f64()
                .ok_or_else(|| format!("Invalid numberValue: {x}"))?,
        ),
        ("boolValue", Value::Bool(b)) => Cell::Bool(*b),
        ("formulaValue", Value::String(f)) => Cell::Formula(f.clone()),
        (k, x) => return Err(format!("Invalid userEnteredValue: {k}: {x}")),
    };
    if let Cell::Str(s) | Cell::Formula(s) = &cell {
        if s.chars().count() > crate::model::MAX_CELL_CHARS {
            return Err(format!(
                "Your input contains more than the maximum of {} characters in a single cell.",
                crate::model::MAX_CELL_CHARS
            ));
        }
    }
    Ok(Some(cell))
}

/// Rows of `CellData` as cells (`userEnteredValue` only: formats are not
/// modelled).
fn rows_of(r: &Value) -> R<Vec<Vec<Option<Cell>>>> {
    let mut out = Vec::new();
    for row in r
        .get("rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut cells = Vec::new();
        for cd in row
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            cells.push(match cd.get("userEnteredValue") {
                Some(v) => cell_of(v)?,
                None => None,
            });
        }
        out.push(cells);
    }
    Ok(out)
}

fn check_fields(r: &Value) -> R {
    let fields = r.get("fields").and_then(Value::as_str).unwrap_or("");
    let ok = fields
        .split(',')
        .map(str::trim)
        .any(|f| f == "*" || f == "userEnteredValue" || f.starts_with("userEnteredValue."));
    if fields.trim().is_empty() {
        return Err("At least one field must be updated, but 'fields' is empty.".into());
    }
    if !ok {
        return Err(format!(
            "fields '{fields}' is not supported by etl-sheets-emulator: only userEnteredValue (or *) is modelled"
        ));
    }
    Ok(())
}

fn update_cells(book: &mut Spreadsheet, r: &Value) -> R {
    check_fields(r)?;
    let rows = rows_of(r)?;
    let (i, r0, c0, bound) = if let Some(start) = r.get("start") {
        let i = sheet_by_id(book, start, "sheetId")?;
        (
            i,
            u32_of(start, "rowIndex")?.unwrap_or(0),
            u32_of(start, "columnIndex")?.unwrap_or(0),
            None,
        )
    } else if let Some(range) = r.get("range") {
        let i = sheet_by_id(book, range, "sheetId")?;
        let s = &book.sheets[i];
        let g = Grid {
            r0: u32_of(range, "startRowIndex")?.unwrap_or(0),
            c0: u32_of(range, "startColumnIndex")?.unwrap_or(0),
            r1: u32_of(range, "endRowIndex")?.unwrap_or(s.rows),
            c1: u32_of(range, "endColumnIndex")?.unwrap_or(s.cols),
        };
        (i, g.r0, g.c0, Some(g))
    } else {
        return Err("Must specify either start or range".into());
    };
    let s = &book.sheets[i];
    let height = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let width = u32::try_from(rows.iter().map(Vec::len).max().unwrap_or(0)).unwrap_or(u32::MAX);
    let area = bound.unwrap_or(Grid {
        r0,
        c0,
        r1: r0 + height,
        c1: c0 + width,
    });
    if let Some(g) = bound {
        if height > g.rows() || width > g.cols() {
            return Err(format!(
                "The data does not fit in the range {}",
                a1::format(&s.title, g)
            ));
        }
    }
    if area.r1 > s.rows || area.c1 > s.cols {
        return Err(grid_error(s, area).message);
    }
    let s = &mut book.sheets[i];
    // Within a bounded range every cell is written: those the rows do not
    // cover are cleared, as with Google's field mask semantics.
    for r in area.r0..area.r1 {
        for c in area.c0..area.c1 {
            let v = rows
                .get((r - r0) as usize)
                .and_then(|row| row.get((c - c0) as usize))
                .cloned();
            match v {
                Some(cell) => s.set(r, c, cell),
                None if bound.is_some() => s.set(r, c, None),
                None => {}
            }
        }
    }
    Ok(())
}

/// A `GridRange`: its sheet and its bounds (an absent bound is the
/// sheet's edge).
fn grid_range(book: &Spreadsheet, v: &Value) -> R<(usize, Grid)> {
    let i = sheet_by_id(book, v, "sheetId")?;
    let s = &book.sheets[i];
    let g = Grid {
        r0: u32_of(v, "startRowIndex")?.unwrap_or(0),
        c0: u32_of(v, "startColumnIndex")?.unwrap_or(0),
        r1: u32_of(v, "endRowIndex")?.unwrap_or(s.rows),
        c1: u32_of(v, "endColumnIndex")?.unwrap_or(s.cols),
    };
    if g.r1 < g.r0 || g.c1 < g.c0 {
        return Err("Invalid range: the end index is before the start index.".into());
    }
    Ok((i, g))
}

/// `copyPaste`: the source range's cells into the destination. As at
/// Google, a destination that spans a multiple of the source's height or
/// width gets the source repeated; a smaller one still gets the whole
/// source from its top-left cell. `PASTE_NORMAL` copies the cells as they
/// are (formulas as their text: the emulator does not shift relative
/// references) and their formats; `PASTE_VALUES` copies what they compute
/// to (a formula's value, an error as its text), without formats (the
/// destination keeps its own, and drops the display a typed value
/// carried); `PASTE_FORMAT` copies formats only. Other paste types and
/// `TRANSPOSE` are refused as not supported.
fn copy_paste(book: &mut Spreadsheet, r: &Value) -> R {
    let src = r.get("source").ok_or("Must specify a source range.")?;
    let dst = r
        .get("destination")
        .ok_or("Must specify a destination range.")?;
    let (si, sg) = grid_range(book, src)?;
    let (di, dg) = grid_range(book, dst)?;
    let how = r
        .get("pasteType")
        .and_then(Value::as_str)
        .unwrap_or("PASTE_NORMAL");
    match how {
        "PASTE_NORMAL" | "PASTE_VALUES" | "PASTE_FORMAT" => {}
        other => {
            return Err(format!(
                "pasteType {other} is not supported by etl-sheets-emulator"
            ))
        }
    }
    match r
        .get("pasteOrientation")
        .and_then(Value::as_str)
        .unwrap_or("NORMAL")
    {
        "NORMAL" => {}
        other => {
            return Err(format!(
                "pasteOrientation {other} is not supported by etl-sheets-emulator"
            ))
        }
    }
    let s = &book.sheets[si];
    if sg.r1 > s.rows || sg.c1 > s.cols {
        return Err(grid_error(s, sg).message);
    }
    let (h, w) = (sg.rows(), sg.cols());
    if h == 0 || w == 0 {
        return Ok(());
    }
    let times = |dest: u32, src: u32| {
        if dest >= src && dest.is_multiple_of(src) {
            dest / src
        } else {
            1
        }
    };
    let area = Grid {
        r0: dg.r0,
        c0: dg.c0,
        r1: dg.r0 + h * times(dg.rows(), h),
        c1: dg.c0 + w * times(dg.cols(), w),
    };
    let d = &book.sheets[di];
    if area.r1 > d.rows || area.c1 > d.cols {
        return Err(grid_error(d, area).message);
    }
    // The source as it is before the paste (the two may overlap).
    let mut cells = Vec::with_capacity((h * w) as usize);
    let mut formats = Vec::with_capacity((h * w) as usize);
    for r in sg.r0..sg.r1 {
        for c in sg.c0..sg.c1 {
            formats.push(book.sheets[si].format(r, c).cloned());
            cells.push(if how == "PASTE_VALUES" {
                match book.computed(si, r, c) {
                    Computed::Empty => None,
                    Computed::Str(t) | Computed::Error(t) => Some(Cell::Str(t)),
                    Computed::Num { n, .. } => Some(Cell::num(n)),
                    Computed::Bool(b) => Some(Cell::Bool(b)),
                }
            } else {
                book.sheets[si].cell(r, c).cloned()
            });
        }
    }
    let d = &mut book.sheets[di];
    for r in area.r0..area.r1 {
        for c in area.c0..area.c1 {
            let k = ((r - area.r0) % h * w + (c - area.c0) % w) as usize;
            if how != "PASTE_FORMAT" {
                d.set(r, c, cells[k].clone());
            }
            if how != "PASTE_VALUES" {
                d.set_format(r, c, formats[k].clone());
            }
        }
    }
    Ok(())
}

/// `repeatCell`: `cell`'s parts that `fields` names, into every cell of
/// `range`: its `userEnteredFormat` (any part: number format, text format,
/// colours... kept as sent) and its `userEnteredValue`.
fn repeat_cell(book: &mut Spreadsheet, r: &Value) -> R {
    let range = r.get("range").ok_or("Must specify a range.")?;
    let (i, g) = grid_range(book, range)?;
    let fields = r.get("fields").and_then(Value::as_str).unwrap_or("");
    if fields.trim().is_empty() {
        return Err("At least one field must be updated, but 'fields' is empty.".into());
    }
    let mask = crate::fields::parse(fields)?;
    let cell = r.get("cell").cloned().unwrap_or(json!({}));
    let (mut fmt_mask, mut value) = (None, false);
    if mask.is_whole() {
        fmt_mask = Some(crate::fields::Mask::default());
        value = true;
    } else {
        for (k, sub) in mask.parts() {
            match k.as_str() {
                "userEnteredFormat" => fmt_mask = Some(sub.clone()),
                "userEnteredValue" => value = true,
                other => {
                    return Err(format!(
                        "Field '{other}' of repeatCell is not supported by etl-sheets-emulator"
                    ))
                }
            }
        }
    }
    let new_value = if value {
        match cell.get("userEnteredValue") {
            Some(v) => cell_of(&json!({"userEnteredValue": v}))?,
            None => None,
        }
    } else {
        None
    };
    let s = &mut book.sheets[i];
    if g.r1 > s.rows || g.c1 > s.cols {
        return Err(grid_error(s, g).message);
    }
    for row in g.r0..g.r1 {
        for col in g.c0..g.c1 {
            if let Some(m) = &fmt_mask {
                let mut f = s.format(row, col).cloned();
                crate::format::apply(&mut f, cell.get("userEnteredFormat"), m);
                s.set_format(row, col, f);
            }
            if value {
                s.set(row, col, new_value.clone());
            }
        }
    }
    Ok(())
}

/// `updateDimensionProperties`: `pixelSize` (a column's width, a row's
/// height) over a `DimensionRange`; `hiddenByUser` is accepted as Google
/// has it and kept nowhere else.
fn update_dimension_properties(book: &mut Spreadsheet, r: &Value) -> R {
    let range = r.get("range").ok_or("Must specify a range.")?;
    let fields = r.get("fields").and_then(Value::as_str).unwrap_or("");
    if fields.trim().is_empty() {
        return Err("At least one field must be updated, but 'fields' is empty.".into());
    }
    for f in fields.split(',').map(str::trim) {
        if !matches!(f, "pixelSize" | "*") {
            return Err(format!(
                "Field '{f}' of updateDimensionProperties is not supported by etl-sheets-emulator"
            ));
        }
    }
    let i = sheet_by_id(book, range, "sheetId")?;
    let rows = dimension(range)?;
    let s = &book.sheets[i];
    let limit = if rows { s.rows } else { s.cols };
    let from = u32_of(range, "startIndex")?.unwrap_or(0);
    let to = u32_of(range, "endIndex")?.unwrap_or(limit);
    if from > to || to > limit {
        return Err(format!(
            "Invalid range: {from} to {to} (the sheet has {limit})"
        ));
    }
    let px = u32_of(r.get("properties").unwrap_or(&json!({})), "pixelSize")?;
    let s = &mut book.sheets[i];
    let m = if rows { &mut s.row_px } else { &mut s.col_px };
    for k in from..to {
        match px {
            Some(p) => {
                m.insert(k, p);
            }
            None => {
                m.remove(&k);
            }
        }
    }
    Ok(())
}

/// `addNamedRange`: a name (a letter or `_` first, then letters, digits,
/// `_` and `.`; not a cell reference; unique, case-insensitively) for a
/// range of one sheet.
fn add_named_range(book: &mut Spreadsheet, r: &Value, ids: &mut dyn Ids) -> R<Value> {
    let n = r.get("namedRange").ok_or("Must specify a namedRange.")?;
    let name = n
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    let cell_like = a1::parse(&name).is_ok_and(|p| p.start_row.is_some());
    if !plain
        || cell_like
        || name.eq_ignore_ascii_case("true")
        || name.eq_ignore_ascii_case("false")
    {
        return Err(format!("Invalid name: {name}"));
    }
    if book.named_range(&name).is_some() {
        return Err(format!(
            "A named range with the name '{name}' already exists."
        ));
    }
    let range = n.get("range").ok_or("Must specify a range.")?;
    let (i, _) = grid_range(book, range)?;
    let id = n
        .get("namedRangeId")
        .and_then(Value::as_str)
        .map_or_else(|| format!("nr{}", ids.sheet_id()), str::to_owned);
    let nr = crate::model::NamedRange {
        id,
        name,
        sheet_id: Some(book.sheets[i].id),
        r0: u32_of(range, "startRowIndex")?,
        r1: u32_of(range, "endRowIndex")?,
        c0: u32_of(range, "startColumnIndex")?,
        c1: u32_of(range, "endColumnIndex")?,
    };
    let out = nr.to_json();
    book.named_ranges.push(nr);
    Ok(out)
}

fn delete_named_range(book: &mut Spreadsheet, r: &Value) -> R {
    let id = r.get("namedRangeId").and_then(Value::as_str).unwrap_or("");
    let before = book.named_ranges.len();
    book.named_ranges.retain(|n| n.id != id);
    if book.named_ranges.len() == before {
        return Err(format!("No named range with id: {id}"));
    }
    Ok(())
}

fn append_cells(book: &mut Spreadsheet, r: &Value) -> R {
    check_fields(r)?;
    let i = sheet_by_id(book, r, "sheetId")?;
    let rows = rows_of(r)?;
    let s = &mut book.sheets[i];
    let last = (0..s.data.len())
        .rev()
        .find(|&r| !s.data[r].is_empty())
        .map_or(0, |r| r + 1);
    let start = u32::try_from(last).unwrap_or(u32::MAX);
    let need = start + u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let width = u32::try_from(rows.iter().map(Vec::len).max().unwrap_or(0)).unwrap_or(u32::MAX);
    if need > s.rows {
        s.rows = need;
    }
    if width > s.cols {
        check_grid(s.rows, width)?;
        s.cols = width;
    }
    for (dr, row) in rows.into_iter().enumerate() {
        for (dc, cell) in row.into_iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            s.set(start + dr as u32, dc as u32, cell);
        }
    }
    Ok(())
}

fn update_spreadsheet_properties(book: &mut Spreadsheet, r: &Value) -> R {
    let p = r.get("properties").cloned().unwrap_or(json!({}));
    let fields = r.get("fields").and_then(Value::as_str).unwrap_or("");
    if fields.trim().is_empty() {
        return Err("At least one field must be updated, but 'fields' is empty.".into());
    }
    for f in fields.split(',').map(str::trim) {
        match f {
            "title" | "*" => {
                p.get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .clone_into(&mut book.title);
            }
            "locale" => p
                .get("locale")
                .and_then(Value::as_str)
                .unwrap_or("en_US")
                .clone_into(&mut book.locale),
            "timeZone" => {
                p.get("timeZone")
                    .and_then(Value::as_str)
                    .unwrap_or("Etc/GMT")
                    .clone_into(&mut book.time_zone);
            }
            other => {
                return Err(format!(
                    "Field '{other}' is not supported by etl-sheets-emulator"
                ))
            }
        }
    }
    Ok(())
}

/// A sheet as the admin dump endpoint returns it: properties and the
/// stored (user-entered) values, formulas as their text.
pub fn dump_sheet(book: &Spreadsheet, si: usize) -> Value {
    let s = &book.sheets[si];
    let values: Vec<Value> = s
        .data
        .iter()
        .map(|row| {
            Value::Array(
                row.iter()
                    .map(|c| match c {
                        None => Value::Null,
                        Some(Cell::Str(s) | Cell::Formula(s)) => json!(s),
                        Some(Cell::Num { n, .. }) => crate::model::json_number(*n),
                        Some(Cell::Bool(b)) => json!(b),
                    })
                    .collect(),
            )
        })
        .collect();
    let mut m = Map::new();
    m.insert("spreadsheetId".into(), json!(book.id));
    m.insert("properties".into(), s.properties(si));
    m.insert("values".into(), json!(values));
    m.insert(
        "formatted".into(),
        crate::values::read(
            book,
            si,
            s.grid(),
            Major::Rows,
            crate::model::Render::Formatted,
        )
        .get("values")
        .cloned()
        .unwrap_or(json!([])),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: crate::values::WriteOpts = crate::values::WriteOpts {
        input: crate::model::Input::Raw,
        include_values: false,
        render: crate::model::Render::Formatted,
    };

    #[test]
    fn named_ranges_are_bound_to_their_sheet() {
        let mut b = book();
        let run = |b: &mut Spreadsheet, reqs: Value| {
            batch_update(b, &json!({"requests": reqs}), &mut Seq(7))
        };
        run(
            &mut b,
            json!([{"addSheet": {"properties": {"title": "Data", "sheetId": 5}}}]),
        )
        .unwrap();
        crate::values::update(
            &mut b,
            "Data!A1:A3",
            &json!({"values": [[1], [2], [3]]}),
            OPTS,
        )
        .unwrap();
        let r = run(
            &mut b,
            json!([{"addNamedRange": {"namedRange": {"name": "Nums",
            "range": {"sheetId": 5, "startColumnIndex": 0, "endColumnIndex": 1}}}}]),
        )
        .unwrap();
        let id = r["replies"][0]["addNamedRange"]["namedRange"]["namedRangeId"].clone();
        assert_eq!(
            render(&b, &[], false).unwrap()["namedRanges"][0]["name"],
            "Nums"
        );
        crate::values::update(
            &mut b,
            "Sheet1!A1",
            &json!({"values": [["=SUM(nums)"]]}),
            crate::values::WriteOpts {
                input: crate::model::Input::UserEntered,
                ..OPTS
            },
        )
        .unwrap();
        let read = |b: &Spreadsheet| {
            crate::values::get(b, "Sheet1!A1", Major::Rows, crate::model::Render::Formatted)
                .unwrap()["values"][0][0]
                .clone()
        };
        assert_eq!(read(&b), "6");
        run(&mut b, json!([{"updateSheetProperties": {"properties": {"sheetId": 5, "title": "Renamed"}, "fields": "title"}}])).unwrap();
        assert_eq!(read(&b), "6", "a rename keeps the binding");
        let e = run(
            &mut b,
            json!([{"addNamedRange": {"namedRange": {"name": "NUMS", "range": {"sheetId": 5}}}}]),
        )
        .unwrap_err();
        assert!(e.message.contains("already exists"), "{e}");
        let e = run(
            &mut b,
            json!([{"addNamedRange": {"namedRange": {"name": "A1", "range": {"sheetId": 5}}}}]),
        )
        .unwrap_err();
        assert!(e.message.contains("Invalid name"), "{e}");
        run(&mut b, json!([{"deleteSheet": {"sheetId": 5}}])).unwrap();
        assert_eq!(read(&b), "#REF!", "its sheet deleted");
        run(&mut b, json!([{"deleteNamedRange": {"namedRangeId": id}}])).unwrap();
        assert_eq!(read(&b), "#NAME?");
    }

    struct Seq(i64);
    impl Ids for Seq {
        fn sheet_id(&mut self) -> i64 {
            self.0 += 1;
            self.0
        }
    }

    #[test]
    fn update_sheet_properties_reads_dotted_and_parenthesised_masks_alike() {
        let rows = |fields: &str| {
            let mut b = book();
            batch_update(
                &mut b,
                &json!({"requests": [{"updateSheetProperties": {
                    "properties": {"sheetId": 0, "gridProperties": {"rowCount": 7, "columnCount": 3}},
                    "fields": fields}}]}),
                &mut Seq(200),
            )
            .unwrap();
            (b.sheets[0].rows, b.sheets[0].cols)
        };
        assert_eq!(
            rows("gridProperties.rowCount,gridProperties.columnCount"),
            (7, 3)
        );
        assert_eq!(rows("gridProperties(rowCount,columnCount)"), (7, 3));
        assert_eq!(rows("gridProperties/rowCount"), (7, 26));
        assert_eq!(rows("gridProperties"), (7, 3));
        // A move and a rename in one request, in either order: the moved
        // sheet is the one renamed.
        for fields in ["title,index", "index,title"] {
            let mut b = book();
            batch_update(
                &mut b,
                &json!({"requests": [
                    {"addSheet": {"properties": {"title": "New", "sheetId": 9}}},
                    {"updateSheetProperties": {"properties": {"sheetId": 9, "title": "Orders", "index": 0},
                        "fields": fields}}]}),
                &mut Seq(200),
            )
            .unwrap();
            let titles: Vec<(&str, i64)> =
                b.sheets.iter().map(|s| (s.title.as_str(), s.id)).collect();
            assert_eq!(titles, [("Orders", 9), ("Sheet1", 0)], "{fields}");
        }
    }

    fn book() -> Spreadsheet {
        create(
            "b".into(),
            "o@x",
            &json!({"properties": {"title": "T"}}),
            &mut Seq(100),
        )
        .unwrap()
    }

    #[test]
    fn create_has_googles_defaults() {
        let b = book();
        let v = render(&b, &[], false).unwrap();
        assert_eq!(
            v["sheets"],
            json!([{"properties": {"sheetId": 0, "title": "Sheet1", "index": 0, "sheetType": "GRID",
                "gridProperties": {"rowCount": 1000, "columnCount": 26}}}])
        );
        assert_eq!(v["properties"]["title"], json!("T"));
    }

    #[test]
    fn atomic_replace_sequence() {
        // The sequence etl-push-sheets uses: a hidden sheet, then one
        // batchUpdate that unhides it, deletes the old one, renames it.
        let mut b = book();
        let r = batch_update(
            &mut b,
            &json!({"requests": [{"addSheet": {"properties": {"title": "tmp", "hidden": true}}}]}),
            &mut Seq(100),
        )
        .unwrap();
        let new_id = r["replies"][0]["addSheet"]["properties"]["sheetId"]
            .as_i64()
            .unwrap();
        assert_eq!(
            r["replies"][0]["addSheet"]["properties"]["hidden"],
            json!(true)
        );
        batch_update(
            &mut b,
            &json!({"requests": [
                {"updateSheetProperties": {"properties": {"sheetId": new_id, "hidden": false}, "fields": "hidden"}},
                {"deleteSheet": {"sheetId": 0}},
                {"updateSheetProperties": {"properties": {"sheetId": new_id, "title": "Sheet1", "index": 0}, "fields": "title,index"}}]}),
            &mut Seq(200),
        )
        .unwrap();
        assert_eq!(b.sheets.len(), 1);
        assert_eq!(
            (
                b.sheets[0].id,
                b.sheets[0].title.as_str(),
                b.sheets[0].hidden
            ),
            (new_id, "Sheet1", false)
        );
    }

    #[test]
    fn one_bad_request_changes_nothing_and_names_itself() {
        let mut b = book();
        let before = format!("{:?}", b.sheets);
        let mut copy = b.clone();
        let e = batch_update(
            &mut copy,
            &json!({"requests": [{"addSheet": {"properties": {"title": "New"}}}, {"deleteSheet": {"sheetId": 0}}, {"addSheet": {"properties": {"title": "new"}}}]}),
            &mut Seq(1),
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(e.message, "Invalid requests[2].addSheet: A sheet with the name \"new\" already exists. Please enter another name.");
        // The server keeps `b` (not the failed copy).
        assert_eq!(format!("{:?}", b.sheets), before);
        let e = batch_update(
            &mut b,
            &json!({"requests": [{"deleteSheet": {"sheetId": 0}}]}),
            &mut Seq(1),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid requests[0].deleteSheet: You can't remove all the sheets in a document."
        );
        let e = batch_update(
            &mut b,
            &json!({"requests": [{"frobnicate": {}}]}),
            &mut Seq(1),
        )
        .unwrap_err();
        assert_eq!(e.message, "Invalid JSON payload received. Unknown name \"frobnicate\" at 'requests[0]': Cannot find field.");
        let e = batch_update(
            &mut b,
            &json!({"requests": [{"addChart": {}}]}),
            &mut Seq(1),
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid requests[0].addChart: addChart is not supported"),
            "{e}"
        );
    }

    #[test]
    fn dimensions_and_cells() {
        let mut b = book();
        let reqs = json!({"requests": [
            {"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 10}},
            {"insertDimension": {"range": {"sheetId": 0, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 2}}},
            {"updateCells": {"start": {"sheetId": 0, "rowIndex": 1, "columnIndex": 1},
                "rows": [{"values": [{"userEnteredValue": {"stringValue": "x"}}, {"userEnteredValue": {"formulaValue": "=1+2"}}]}],
                "fields": "userEnteredValue"}},
            {"deleteDimension": {"range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 0, "endIndex": 1}}}]});
        batch_update(&mut b, &reqs, &mut Seq(1)).unwrap();
        let s = &b.sheets[0];
        assert_eq!((s.rows, s.cols), (1009, 28));
        assert_eq!(s.cell(0, 1), Some(&Cell::Str("x".into())));
        let v =
            crate::values::get(&b, "A1:C1", Major::Rows, crate::model::Render::Formatted).unwrap();
        assert_eq!(v["values"], json!([["", "x", "3"]]));
        let e = batch_update(&mut b, &json!({"requests": [{"deleteDimension": {"range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 0, "endIndex": 1009}}}]}), &mut Seq(1)).unwrap_err();
        assert!(
            e.message
                .ends_with("You can't delete all the rows on the sheet."),
            "{e}"
        );
    }

    #[test]
    fn cell_limit_applies_to_grids() {
        let mut b = book();
        let e = batch_update(
            &mut b,
            &json!({"requests": [{"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 400_000}}]}),
            &mut Seq(1),
        )
        .unwrap_err();
        assert_eq!(e.message, "This action would increase the number of cells in the workbook above the limit of 10000000 cells.");
    }
}
