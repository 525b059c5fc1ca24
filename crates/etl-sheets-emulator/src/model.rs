//! Spreadsheets, sheets and cells, and the two ways values enter a cell
//! (`RAW`, `USER_ENTERED`) and the three ways they leave it
//! (`FORMATTED_VALUE`, `UNFORMATTED_VALUE`, `FORMULA`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::a1::{self, Grid};
use crate::error::ApiError;
use crate::formula;

/// Google's per-cell character limit.
pub const MAX_CELL_CHARS: usize = 50_000;
/// Google's per-spreadsheet cell limit (rows × columns of every sheet).
pub const MAX_CELLS: u64 = 10_000_000;
/// A new sheet's grid, as Google makes it.
pub const DEFAULT_ROWS: u32 = 1000;
pub const DEFAULT_COLS: u32 = 26;

/// What a cell holds (its `userEnteredValue`), with the display format
/// Sheets derived from what was typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum Cell {
    Str(String),
    /// A number; `display` is its formatted text when typed with a format
    /// (`12%`, `$1.50`, `1,234`, a date), `date` marks date/time serials.
    Num {
        n: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        date: bool,
    },
    Bool(bool),
    /// The formula text, with its leading `=`.
    Formula(String),
}

impl Cell {
    pub fn num(n: f64) -> Self {
        Cell::Num {
            n,
            display: None,
            date: false,
        }
    }
}

/// `valueInputOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Raw,
    UserEntered,
}

impl Input {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            Some("RAW") => Ok(Input::Raw),
            Some("USER_ENTERED") => Ok(Input::UserEntered),
            None | Some("INPUT_VALUE_OPTION_UNSPECIFIED") => Err(ApiError::invalid(
                "'valueInputOption' is required but not specified",
            )),
            Some(other) => Err(ApiError::invalid(format!(
                "Invalid value at 'value_input_option' (type.googleapis.com/google.apps.sheets.v4.ValueInputOption), \"{other}\""
            ))),
        }
    }
}

/// `valueRenderOption` (and `dateTimeRenderOption` folded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Formatted,
    Unformatted { dates_as_strings: bool },
    Formula { dates_as_strings: bool },
}

impl Render {
    pub fn parse(value: Option<&str>, date_time: Option<&str>) -> Result<Self, ApiError> {
        let dates_as_strings = match date_time {
            None | Some("SERIAL_NUMBER") => false,
            Some("FORMATTED_STRING") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "Invalid value at 'date_time_render_option' (type.googleapis.com/google.apps.sheets.v4.DateTimeRenderOption), \"{other}\""
                )))
            }
        };
        match value {
            None | Some("FORMATTED_VALUE") => Ok(Render::Formatted),
            Some("UNFORMATTED_VALUE") => Ok(Render::Unformatted { dates_as_strings }),
            Some("FORMULA") => Ok(Render::Formula { dates_as_strings }),
            Some(other) => Err(ApiError::invalid(format!(
                "Invalid value at 'value_render_option' (type.googleapis.com/google.apps.sheets.v4.ValueRenderOption), \"{other}\""
            ))),
        }
    }
}

/// What one input value does to its cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// JSON `null`: the cell keeps its value.
    Keep,
    /// `""`: the cell is cleared.
    Clear,
    Set(Cell),
}

/// One input value of a `ValueRange`.
pub fn input_cell(v: &Value, how: Input, at: &str) -> Result<Write, ApiError> {
    let cell = match v {
        Value::Null => return Ok(Write::Keep),
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => Cell::num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            if s.chars().count() > MAX_CELL_CHARS {
                return Err(ApiError::invalid(format!(
                    "Your input contains more than the maximum of {MAX_CELL_CHARS} characters in a single cell."
                )));
            }
            if s.is_empty() {
                return Ok(Write::Clear);
            }
            match how {
                Input::Raw => Cell::Str(s.clone()),
                Input::UserEntered => user_entered(s),
            }
        }
        Value::Array(_) => {
            return Err(ApiError::invalid(format!(
                "Invalid values{at}: list_value {{\n}}"
            )))
        }
        Value::Object(_) => {
            return Err(ApiError::invalid(format!(
                "Invalid values{at}: struct_value {{\n}}"
            )))
        }
    };
    Ok(Write::Set(cell))
}

/// What Sheets makes of a string typed into a cell (locale en_US).
pub fn user_entered(s: &str) -> Cell {
    if let Some(rest) = s.strip_prefix('\'') {
        return Cell::Str(rest.to_owned());
    }
    if s.len() > 1 && s.starts_with('=') {
        return Cell::Formula(s.to_owned());
    }
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") {
        return Cell::Bool(true);
    }
    if t.eq_ignore_ascii_case("false") {
        return Cell::Bool(false);
    }
    if let Some(c) = typed_number(t) {
        return c;
    }
    if let Some(n) = typed_date_time(t) {
        return Cell::Num {
            n,
            display: Some(t.to_owned()),
            date: true,
        };
    }
    Cell::Str(s.to_owned())
}

/// `1234.5`, `-7`, `1e3`, `1,234.50`, `$1.50`, `-$3`, `12%`, `1.5E+3`.
fn typed_number(t: &str) -> Option<Cell> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (currency, body) = match body.strip_prefix('$') {
        Some(r) => (true, r),
        None => (false, body),
    };
    let (percent, body) = match body.strip_suffix('%') {
        Some(r) => (true, r.trim_end()),
        None => (false, body),
    };
    if body.is_empty() || (currency && percent) {
        return None;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let grouped = int.contains(',');
    if grouped {
        let groups: Vec<&str> = int.split(',').collect();
        let ok = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return None;
        }
    } else if !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(f) = frac {
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if int.is_empty() && frac.is_none_or(str::is_empty) {
        return None;
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || grouped {
            return None;
        }
    }
    let plain: String = body.chars().filter(|c| *c != ',').collect();
    let mut n: f64 = plain.parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    if percent {
        n /= 100.0;
    }
    if neg {
        n = -n;
    }
    let display = (currency || percent || grouped || exponent.is_some()).then(|| t.to_owned());
    Some(Cell::Num {
        n,
        display,
        date: false,
    })
}

/// Days from 1899-12-30 (Sheets' epoch) to `date`, plus the time of day.
fn typed_date_time(t: &str) -> Option<f64> {
    let (date_part, time_part) = match t.split_once(' ') {
        Some((d, rest)) if d.contains(['-', '/']) => (Some(d), Some(rest.trim())),
        _ if t.contains(':') => (None, Some(t)),
        _ => (Some(t), None),
    };
    let mut serial = 0.0;
    if let Some(d) = date_part {
        serial += date_serial(d)?;
    }
    if let Some(tm) = time_part {
        serial += time_fraction(tm)?;
    }
    Some(serial)
}

fn date_serial(d: &str) -> Option<f64> {
    let parts: Vec<&str> = d.split(['-', '/']).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let num = |s: &str| s.parse::<i16>().ok();
    // yyyy-mm-dd / yyyy/mm/dd, else m/d/yyyy (en_US).
    let (y, m, dd) = if parts[0].len() == 4 {
        (num(parts[0])?, num(parts[1])?, num(parts[2])?)
    } else if parts[2].len() == 4 && d.contains('/') {
        (num(parts[2])?, num(parts[0])?, num(parts[1])?)
    } else {
        return None;
    };
    let date = jiff::civil::Date::new(y, i8::try_from(m).ok()?, i8::try_from(dd).ok()?).ok()?;
    let epoch = jiff::civil::date(1899, 12, 30);
    let days = (date - epoch).get_days();
    Some(f64::from(days))
}

fn time_fraction(t: &str) -> Option<f64> {
    let (clock, pm) = match t.rsplit_once(' ') {
        Some((c, ampm)) if ampm.eq_ignore_ascii_case("am") => (c, Some(false)),
        Some((c, ampm)) if ampm.eq_ignore_ascii_case("pm") => (c, Some(true)),
        Some(_) => return None,
        None => (t, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut h: f64 = parts[0].parse::<u8>().ok()?.into();
    let m: f64 = parts[1].parse::<u8>().ok()?.into();
    let s: f64 = match parts.get(2) {
        Some(s) => s.parse::<f64>().ok()?,
        None => 0.0,
    };
    if parts[1].len() != 2 || m >= 60.0 || !(0.0..60.0).contains(&s) {
        return None;
    }
    match pm {
        Some(pm) => {
            if !(1.0..=12.0).contains(&h) {
                return None;
            }
            h %= 12.0;
            if pm {
                h += 12.0;
            }
        }
        None if h >= 24.0 => return None,
        None => {}
    }
    Some((h * 3600.0 + m * 60.0 + s) / 86_400.0)
}

/// A number in Sheets' automatic format: integers in full up to 15 digits,
/// otherwise up to 10 decimals without trailing zeros, scientific (`1.5E+20`)
/// for very large or very small magnitudes.
pub fn general(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    let a = n.abs();
    if !(1e-10..1e15).contains(&a) {
        let s = format!("{n:.2E}");
        let (m, e) = s.split_once('E').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}E{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{n:.10}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// A JSON number for `n`: an integer when it is one.
pub fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        #[allow(clippy::cast_possible_truncation)]
        return json!(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// A computed value: what a cell evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Computed {
    Empty,
    Str(String),
    Num {
        n: f64,
        display: Option<String>,
        date: bool,
    },
    Bool(bool),
    /// A formula error such as `#NAME?` or `#DIV/0!`.
    Error(String),
}

impl Computed {
    pub fn formatted(&self) -> String {
        match self {
            Computed::Empty => String::new(),
            Computed::Str(s) | Computed::Error(s) => s.clone(),
            Computed::Num { n, display, .. } => display.clone().unwrap_or_else(|| general(*n)),
            Computed::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        }
    }
}

/// One sheet (tab) of a spreadsheet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sheet {
    pub id: i64,
    pub title: String,
    #[serde(default)]
    pub hidden: bool,
    pub rows: u32,
    pub cols: u32,
    #[serde(default)]
    pub frozen_rows: u32,
    #[serde(default)]
    pub frozen_cols: u32,
    /// Row-major cells; a row holds cells up to its last written column.
    #[serde(default)]
    pub data: Vec<Vec<Option<Cell>>>,
    /// Each cell's `userEnteredFormat`, laid out as `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<Vec<Option<Map<String, Value>>>>,
    /// Column widths and row heights set by `updateDimensionProperties`
    /// (`pixelSize`), by index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub col_px: BTreeMap<u32, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_px: BTreeMap<u32, u32>,
}

/// Sets `grid[r][c]`, keeping rows and the grid trimmed of trailing `None`s.
fn set_in<T: Clone>(grid: &mut Vec<Vec<Option<T>>>, r: u32, c: u32, v: Option<T>) {
    let (r, c) = (r as usize, c as usize);
    if v.is_none()
        && grid
            .get(r)
            .and_then(|row| row.get(c))
            .is_none_or(Option::is_none)
    {
        return;
    }
    if grid.len() <= r {
        grid.resize_with(r + 1, Vec::new);
    }
    let row = &mut grid[r];
    if row.len() <= c {
        row.resize(c + 1, None);
    }
    row[c] = v;
    while row.last().is_some_and(Option::is_none) {
        row.pop();
    }
    while grid.last().is_some_and(Vec::is_empty) {
        grid.pop();
    }
}

fn insert_rows_in<T>(grid: &mut Vec<Vec<Option<T>>>, at: u32, n: u32) {
    let at = at as usize;
    if at < grid.len() {
        grid.splice(at..at, std::iter::repeat_with(Vec::new).take(n as usize));
    }
}

fn delete_rows_in<T>(grid: &mut Vec<Vec<Option<T>>>, from: u32, to: u32) {
    let len = grid.len();
    let (a, b) = ((from as usize).min(len), (to as usize).min(len));
    grid.drain(a..b);
}

fn insert_cols_in<T: Clone>(grid: &mut [Vec<Option<T>>], at: u32, n: u32) {
    let at = at as usize;
    for row in grid {
        if at < row.len() {
            row.splice(at..at, std::iter::repeat_n(None, n as usize));
        }
    }
}

fn delete_cols_in<T>(grid: &mut [Vec<Option<T>>], from: u32, to: u32) {
    for row in grid {
        let len = row.len();
        row.drain((from as usize).min(len)..(to as usize).min(len));
        while row.last().is_some_and(Option::is_none) {
            row.pop();
        }
    }
}

/// Moves the entries of a size map at or past `at` by `n` (an insert).
fn shift_px(m: &mut BTreeMap<u32, u32>, at: u32, n: u32) {
    *m = std::mem::take(m)
        .into_iter()
        .map(|(k, v)| (if k >= at { k + n } else { k }, v))
        .collect();
}

/// Drops the entries of a size map in `from..to` and moves later ones back.
fn drop_px(m: &mut BTreeMap<u32, u32>, from: u32, to: u32) {
    *m = std::mem::take(m)
        .into_iter()
        .filter(|(k, _)| !(from..to).contains(k))
        .map(|(k, v)| (if k >= to { k - (to - from) } else { k }, v))
        .collect();
}

impl Sheet {
    pub fn new(id: i64, title: String) -> Self {
        Sheet {
            id,
            title,
            hidden: false,
            rows: DEFAULT_ROWS,
            cols: DEFAULT_COLS,
            frozen_rows: 0,
            frozen_cols: 0,
            data: Vec::new(),
            formats: Vec::new(),
            col_px: BTreeMap::new(),
            row_px: BTreeMap::new(),
        }
    }

    /// The `userEnteredFormat` of a cell.
    pub fn format(&self, r: u32, c: u32) -> Option<&Map<String, Value>> {
        self.formats.get(r as usize)?.get(c as usize)?.as_ref()
    }

    pub fn set_format(&mut self, r: u32, c: u32, f: Option<Map<String, Value>>) {
        set_in(&mut self.formats, r, c, f);
    }

    pub fn cell(&self, r: u32, c: u32) -> Option<&Cell> {
        self.data.get(r as usize)?.get(c as usize)?.as_ref()
    }

    pub fn set(&mut self, r: u32, c: u32, cell: Option<Cell>) {
        set_in(&mut self.data, r, c, cell);
    }

    /// Whether row `r` has any value in columns `[c0, c1)`.
    pub fn row_has_data(&self, r: u32, c0: u32, c1: u32) -> bool {
        self.data.get(r as usize).is_some_and(|row| {
            row.iter()
                .take(c1 as usize)
                .skip(c0 as usize)
                .any(Option::is_some)
        })
    }

    /// The whole grid as a range.
    pub fn grid(&self) -> Grid {
        Grid {
            r0: 0,
            c0: 0,
            r1: self.rows,
            c1: self.cols,
        }
    }

    pub fn cell_count(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.cols)
    }

    pub fn insert_rows(&mut self, at: u32, n: u32) {
        self.rows += n;
        insert_rows_in(&mut self.data, at, n);
        insert_rows_in(&mut self.formats, at, n);
        shift_px(&mut self.row_px, at, n);
    }

    pub fn delete_rows(&mut self, from: u32, to: u32) {
        self.rows -= to - from;
        delete_rows_in(&mut self.data, from, to);
        delete_rows_in(&mut self.formats, from, to);
        drop_px(&mut self.row_px, from, to);
    }

    pub fn insert_cols(&mut self, at: u32, n: u32) {
        self.cols += n;
        insert_cols_in(&mut self.data, at, n);
        insert_cols_in(&mut self.formats, at, n);
        shift_px(&mut self.col_px, at, n);
    }

    pub fn delete_cols(&mut self, from: u32, to: u32) {
        self.cols -= to - from;
        delete_cols_in(&mut self.data, from, to);
        delete_cols_in(&mut self.formats, from, to);
        drop_px(&mut self.col_px, from, to);
    }

    /// The grid properties object of the API.
    pub fn properties(&self, index: usize) -> Value {
        let mut grid = json!({"rowCount": self.rows, "columnCount": self.cols});
        if self.frozen_rows > 0 {
            grid["frozenRowCount"] = json!(self.frozen_rows);
        }
        if self.frozen_cols > 0 {
            grid["frozenColumnCount"] = json!(self.frozen_cols);
        }
        let mut p = json!({
            "sheetId": self.id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        });
        if self.hidden {
            p["hidden"] = json!(true);
        }
        p
    }
}

/// A spreadsheet and who may use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spreadsheet {
    pub id: String,
    pub title: String,
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The account that created it (or the admin endpoint's `owner`).
    pub owner: String,
    /// Accounts with edit access besides the owner.
    #[serde(default)]
    pub writers: Vec<String>,
    /// Accounts with read-only access.
    #[serde(default)]
    pub readers: Vec<String>,
    pub sheets: Vec<Sheet>,
    /// Named ranges (`addNamedRange`), bound to a sheet by its id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ranges: Vec<NamedRange>,
}

/// A named range: a name for a range of one sheet, bound to the sheet's id
/// (a rename does not change it; when the sheet is deleted it reads as
/// `#REF!`, as at Google).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamedRange {
    pub id: String,
    pub name: String,
    /// `None` once the sheet is deleted.
    pub sheet_id: Option<i64>,
    /// Bounds; `None` is the sheet's edge.
    pub r0: Option<u32>,
    pub r1: Option<u32>,
    pub c0: Option<u32>,
    pub c1: Option<u32>,
}

impl NamedRange {
    /// The API's `NamedRange` object.
    pub fn to_json(&self) -> Value {
        let mut range = json!({});
        if let Some(id) = self.sheet_id {
            range["sheetId"] = json!(id);
        }
        for (k, v) in [
            ("startRowIndex", self.r0),
            ("endRowIndex", self.r1),
            ("startColumnIndex", self.c0),
            ("endColumnIndex", self.c1),
        ] {
            if let Some(v) = v {
                range[k] = json!(v);
            }
        }
        json!({"namedRangeId": self.id, "name": self.name, "range": range})
    }
}

fn default_locale() -> String {
    "en_US".into()
}
fn default_time_zone() -> String {
    "Etc/GMT".into()
}

/// What a caller may do with a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
}

impl Spreadsheet {
    /// A spreadsheet with Google's defaults (locale en_US, time zone Etc/GMT).
    pub fn new(id: String, title: String, owner: &str, sheets: Vec<Sheet>) -> Self {
        Spreadsheet {
            id,
            title,
            locale: default_locale(),
            time_zone: default_time_zone(),
            owner: owner.to_owned(),
            writers: Vec::new(),
            readers: Vec::new(),
            sheets,
            named_ranges: Vec::new(),
        }
    }

    /// The named range called `name` (case-insensitively, as Sheets).
    pub fn named_range(&self, name: &str) -> Option<&NamedRange> {
        self.named_ranges
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    pub fn access(&self, account: &str) -> Access {
        let is = |list: &[String]| {
            list.iter()
                .any(|a| a.eq_ignore_ascii_case(account) || a == "*")
        };
        if self.owner.eq_ignore_ascii_case(account) || is(&self.writers) {
            Access::Write
        } else if is(&self.readers) {
            Access::Read
        } else {
            Access::None
        }
    }

    pub fn sheet_index_by_title(&self, title: &str) -> Option<usize> {
        // Google matches sheet titles case-insensitively.
        self.sheets
            .iter()
            .position(|s| s.title == title)
            .or_else(|| {
                self.sheets
                    .iter()
                    .position(|s| s.title.eq_ignore_ascii_case(title))
            })
    }

    pub fn sheet_index_by_id(&self, id: i64) -> Option<usize> {
        self.sheets.iter().position(|s| s.id == id)
    }

    pub fn total_cells(&self) -> u64 {
        self.sheets.iter().map(Sheet::cell_count).sum()
    }

    /// Fails with Google's message when the grids exceed 10,000,000 cells.
    pub fn check_cell_limit(&self) -> Result<(), ApiError> {
        if self.total_cells() > MAX_CELLS {
            return Err(ApiError::invalid(format!(
                "This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."
            )));
        }
        Ok(())
    }

    /// Resolves an A1 range: the sheet index and the concrete grid range.
    /// Fails on an unknown sheet, or past the grid (Google's error).
    pub fn resolve(&self, text: &str) -> Result<(usize, Grid), ApiError> {
        let (i, g) = self.resolve_unchecked(text)?;
        let s = &self.sheets[i];
        if g.r1 > s.rows || g.c1 > s.cols {
            return Err(grid_error(s, g));
        }
        Ok((i, g))
    }

    /// Like `resolve` but a range may extend past the grid (writes check
    /// the cells they actually touch).
    pub fn resolve_unchecked(&self, text: &str) -> Result<(usize, Grid), ApiError> {
        let r = a1::parse(text).map_err(ApiError::invalid)?;
        let i = match &r.sheet {
            None => 0,
            Some(t) => self
                .sheet_index_by_title(t)
                .ok_or_else(|| ApiError::invalid(format!("Unable to parse range: {text}")))?,
        };
        let s = &self.sheets[i];
        let g = Grid {
            r0: r.start_row.unwrap_or(0),
            c0: r.start_col.unwrap_or(0),
            r1: r
                .end_row
                .unwrap_or(s.rows.max(r.start_row.unwrap_or(0) + 1)),
            c1: r
                .end_col
                .unwrap_or(s.cols.max(r.start_col.unwrap_or(0) + 1)),
        };
        Ok((i, g))
    }

    /// A cell's computed value (formulas evaluated).
    pub fn computed(&self, sheet: usize, r: u32, c: u32) -> Computed {
        match self.sheets[sheet].cell(r, c) {
            None => Computed::Empty,
            Some(Cell::Formula(f)) => formula::evaluate(f, self, sheet, 0),
            Some(cell) => literal(cell).unwrap_or(Computed::Empty),
        }
    }

    /// Computed value `v` of a cell as it reads (`FORMATTED_VALUE`): in
    /// the cell's number format when it has one that applies, else as
    /// typed or in Sheets' automatic style.
    pub fn formatted(&self, sheet: usize, r: u32, c: u32, v: &Computed) -> String {
        let nf = self.sheets[sheet]
            .format(r, c)
            .and_then(|f| f.get("numberFormat"));
        match (v, nf) {
            (Computed::Num { n, .. }, Some(nf)) => {
                crate::format::number(*n, nf).unwrap_or_else(|| v.formatted())
            }
            _ => v.formatted(),
        }
    }

    /// A cell rendered for a values response; `None` for an empty cell.
    pub fn render(&self, sheet: usize, r: u32, c: u32, how: Render) -> Option<Value> {
        let cell = self.sheets[sheet].cell(r, c)?;
        if let (Render::Formula { .. }, Cell::Formula(f)) = (how, cell) {
            return Some(json!(f));
        }
        let v = self.computed(sheet, r, c);
        Some(match (how, v) {
            (_, Computed::Empty) => json!(""),
            (Render::Formatted, v) => json!(self.formatted(sheet, r, c, &v)),
            (_, Computed::Str(s) | Computed::Error(s)) => json!(s),
            (_, Computed::Bool(b)) => json!(b),
            (
                Render::Unformatted { dates_as_strings } | Render::Formula { dates_as_strings },
                Computed::Num { n, display, date },
            ) => {
                if date && dates_as_strings {
                    json!(display.unwrap_or_else(|| general(n)))
                } else {
                    json_number(n)
                }
            }
        })
    }
}

/// Converts a stored cell to its computed value without evaluating formulas
/// (used by the formula evaluator for referenced cells).
pub fn literal(cell: &Cell) -> Option<Computed> {
    match cell {
        Cell::Str(s) => Some(Computed::Str(s.clone())),
        Cell::Num { n, display, date } => Some(Computed::Num {
            n: *n,
            display: display.clone(),
            date: *date,
        }),
        Cell::Bool(b) => Some(Computed::Bool(*b)),
        Cell::Formula(_) => None,
    }
}

/// Google's error for a range past the sheet's grid.
pub fn grid_error(s: &Sheet, g: Grid) -> ApiError {
    ApiError::invalid(format!(
        "Range ({}) exceeds grid limits. Max rows: {}, max columns: {}",
        a1::format_quoted(&s.title, g),
        s.rows,
        s.cols
    ))
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // serial numbers here are exact binary fractions
mod tests {
    use super::*;

    fn num(c: &Cell) -> (f64, Option<&str>) {
        match c {
            Cell::Num { n, display, .. } => (*n, display.as_deref()),
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn user_entered_values() {
        assert_eq!(num(&user_entered("1234.5")), (1234.5, None));
        assert_eq!(num(&user_entered("007")), (7.0, None));
        assert_eq!(num(&user_entered("-7")), (-7.0, None));
        assert_eq!(num(&user_entered("1,234.50")), (1234.5, Some("1,234.50")));
        assert_eq!(num(&user_entered("$1.50")), (1.5, Some("$1.50")));
        assert_eq!(num(&user_entered("-$3")), (-3.0, Some("-$3")));
        assert_eq!(num(&user_entered("12%")), (0.12, Some("12%")));
        assert_eq!(num(&user_entered("1e3")), (1000.0, Some("1e3")));
        assert_eq!(user_entered("TRUE"), Cell::Bool(true));
        assert_eq!(user_entered("false"), Cell::Bool(false));
        assert_eq!(user_entered("'007"), Cell::Str("007".into()));
        assert_eq!(user_entered("'=1+1"), Cell::Str("=1+1".into()));
        assert_eq!(user_entered("=1+1"), Cell::Formula("=1+1".into()));
        assert_eq!(user_entered("="), Cell::Str("=".into()));
        for s in [
            "1,23",
            "12,34,567",
            "abc",
            "1.2.3",
            "$",
            "%",
            "1e",
            "--1",
            "1 000",
        ] {
            assert_eq!(user_entered(s), Cell::Str(s.into()), "{s:?}");
        }
    }

    #[test]
    fn dates_are_serial_numbers() {
        // The serial numbers the API reference gives: 1900-01-01 is 2,
        // 1900-02-01 15:00 is 33.625.
        assert_eq!(num(&user_entered("1900-01-01")).0, 2.0);
        assert_eq!(num(&user_entered("1900-02-01 15:00")).0, 33.625);
        assert_eq!(num(&user_entered("2/1/1900 3:00 PM")).0, 33.625);
        // 2024-01-15 is serial 45306 (as in every spreadsheet program).
        assert_eq!(
            num(&user_entered("2024-01-15")),
            (45306.0, Some("2024-01-15"))
        );
        assert_eq!(num(&user_entered("12:00")).0, 0.5);
        assert_eq!(user_entered("2024-02-30"), Cell::Str("2024-02-30".into()));
    }

    #[test]
    fn general_format() {
        assert_eq!(general(1234.5), "1234.5");
        assert_eq!(general(7.0), "7");
        assert_eq!(general(0.1 + 0.2), "0.3");
        assert_eq!(general(-0.5), "-0.5");
        assert_eq!(general(1e20), "1E+20");
        assert_eq!(general(1.5e-12), "1.5E-12");
        assert_eq!(general(123_456_789_012.0), "123456789012");
    }

    #[test]
    fn sheet_edits() {
        let mut s = Sheet::new(0, "S".into());
        s.set(2, 3, Some(Cell::num(1.0)));
        assert!(s.row_has_data(2, 0, 26));
        assert!(!s.row_has_data(2, 0, 3));
        s.insert_rows(0, 2);
        assert_eq!(s.rows, 1002);
        assert!(s.cell(4, 3).is_some());
        s.delete_cols(0, 1);
        assert!(s.cell(4, 2).is_some());
        s.set(4, 2, None);
        assert!(
            s.data.is_empty(),
            "clearing the last cell drops the trailing empty rows"
        );
    }
}
