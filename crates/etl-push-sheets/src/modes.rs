//! The four ways a sheet changes: atomic replace, in-place replace, append,
//! upsert. Each reads the spooled input, checks Google's limits, then writes
//! in requests of at most `--max-request-bytes`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::a1::{self, Grid, MAX_COLUMNS};
use etl_core::{Error, Exit, Record, Result, Run};
use google_sheets4::api::ValueRange;
use google_sheets4::{hyper_rustls, hyper_util, Sheets};
use serde_json::{json, Value as J};

use crate::api::{json_len, Api, Encoded, RetryCfg, SheetInfo};
use crate::blocks::{self, header_row, Hashes, Msg};
use crate::cells::Convert;
use crate::cells::{key_of, key_of_cell, CellHash};
use crate::spool::{self, Spool};
use crate::{events, Cli, Mode, OnNewColumn, ValueInput};

/// Google's per-spreadsheet cell limit.
pub const MAX_CELLS: u64 = 10_000_000;

/// `--start-cell`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub row: u32,
    pub col: u32,
}

pub fn parse_start(s: &str) -> Result<Start> {
    let bad = || {
        Error::usage(format!(
            "--start-cell {s:?}: expected one cell like A1 or C5"
        ))
    };
    let (row, col) = a1::parse_cell(s).ok_or_else(bad)?;
    Ok(Start { row, col })
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The whole run: spool, connect, write, count.
pub async fn push(
    cli: &Cli,
    run: &mut Run,
    spreadsheet: String,
    credentials: &Path,
    start: Start,
    retry: RetryCfg,
) -> Result<()> {
    let convert = Convert {
        user_entered: cli.value_input == ValueInput::UserEntered,
        allow_formulas: cli.allow_formulas,
    };
    let fixed = (!cli.columns.is_empty()).then_some(cli.columns.as_slice());
    let opts = spool::Options {
        fixed,
        convert,
        key: &cli.key,
    };
    let mut sp = spool::spool(std::io::stdin().lock(), &opts, run)?;
    events::spooled(sp.records, sp.columns.names.len(), cli.dry_run);
    check_number_formats(cli, &sp)?;
    if sp.numbers_as_text > 0 {
        events::numbers_as_text(sp.numbers_as_text);
    }

    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| Error::internal(format!("TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let executor = hyper_util::rt::TokioExecutor::new();
    let token_client =
        hyper_util::client::legacy::Client::builder(executor.clone()).build(connector.clone());
    let (auth, account) =
        crate::auth::load(credentials, cli.impersonate.as_deref(), token_client).await?;
    let client = hyper_util::client::legacy::Client::builder(executor).build(connector);
    let mut hub = Sheets::new(client, auth);
    let base = format!("{}/", cli.api_url.trim_end_matches('/'));
    hub.base_url(base.clone());
    hub.root_url(base.clone());
    let mut api = Api::new(hub, spreadsheet, retry, cli.max_writes_per_minute);
    api.dry_run = cli.dry_run;
    api.account = account;
    api.api_url = base;

    let ctx = Ctx {
        cli,
        convert,
        start,
        max_bytes: cli.max_request_bytes as u64,
        input: if convert.user_entered {
            "USER_ENTERED"
        } else {
            "RAW"
        },
        formats_set: std::cell::Cell::new(false),
    };
    let deadline = Duration::from_secs(cli.timeout);
    api.set_progress(std::mem::replace(
        &mut run.progress,
        etl_core::progress::Progress::new(false),
    ));
    let work = async {
        let n = match cli.mode {
            Mode::Replace if cli.in_place => ctx.replace_in_place(&mut api, &mut sp).await,
            Mode::Replace => ctx.replace(&mut api, &mut sp, run.run_id()).await,
            Mode::Append => ctx.append(&mut api, &mut sp).await,
            Mode::Upsert => ctx.upsert(&mut api, &mut sp, run).await,
        }?;
        // After a run that wrote (an unchanged input writes nothing, not
        // even formats); replace sets them inside its atomic swap.
        if !cli.number_format.is_empty() && !ctx.formats_set.get() && api.stats().write_calls > 0 {
            ctx.set_number_formats(&mut api).await?;
        }
        Ok(n)
    };
    let result = match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            Exit::Unavailable,
            format!("no end within --timeout {} s", cli.timeout),
        )),
    };
    run.progress = api.take_progress();
    let st = api.stats().clone();
    run.records_out = match &result {
        Ok(n) if !cli.dry_run => *n,
        _ => 0,
    };
    run.set_count("rows_written", st.rows_written);
    run.set_count("cells_written", st.cells_written);
    run.set_count("api_calls", st.api_calls);
    run.set_count("write_calls", st.write_calls);
    run.set_count("retries", st.retries);
    run.set_count("bytes_sent", st.bytes_sent);
    if cli.dry_run {
        run.set_count("planned_requests", st.planned);
    }
    if sp.numbers_as_text > 0 {
        run.set_count("numbers_as_text", sp.numbers_as_text);
    }
    result.map(|_| ())
}

/// Every `--number-format` column is one the input has (before any write).
fn check_number_formats(cli: &Cli, sp: &Spool) -> Result<()> {
    for (col, _) in &cli.number_format {
        if sp.records > 0 && !sp.columns.names.iter().any(|c| c == col) {
            return Err(Error::data(format!(
                "--number-format {col}=...: the input has no column {col:?} (it has: {}). Nothing was written",
                sp.columns.names.join(", ")
            )));
        }
    }
    Ok(())
}

struct Ctx<'a> {
    cli: &'a Cli,
    convert: Convert,
    start: Start,
    max_bytes: u64,
    input: &'static str,
    /// `--number-format` was applied (inside replace's swap).
    formats_set: std::cell::Cell<bool>,
}

/// The rows of a sheet from the start cell, read a window at a time (see
/// `Ctx::holds_already`).
#[derive(Default)]
struct Window {
    /// Rows per read.
    per: u64,
    /// The first row (from the start cell) of the window read.
    from: u64,
    /// Its rows (trailing empty rows and cells left out by the API) and,
    /// with user-entered input, their formatted text.
    values: Vec<Vec<J>>,
    formatted: Vec<Vec<J>>,
    /// Whether a window was read.
    loaded: bool,
}

impl Window {
    /// Windows of about a quarter of a write request's bytes in cells
    /// (500,000 with the default 2 MB): a window's values take ~20 MB at
    /// most, and a 100,000-row table is read in a handful of requests.
    fn new(ctx: &Ctx<'_>, t: &SheetInfo) -> Self {
        let width = t.cols.saturating_sub(u64::from(ctx.start.col)).max(1);
        Window {
            per: (ctx.max_bytes / 4 / width).clamp(100, 1_000_000),
            ..Window::default()
        }
    }

    /// Reads the window that holds row `i` (from the start cell) unless
    /// it is the one read.
    async fn load(&mut self, ctx: &Ctx<'_>, api: &mut Api, t: &SheetInfo, i: u64) -> Result<()> {
        if self.loaded && i >= self.from && i < self.from + self.per {
            return Ok(());
        }
        let r0 = u64::from(ctx.start.row);
        self.from = i;
        let end = (r0 + i + self.per).min(t.rows);
        let range = a1::format(
            &t.title,
            Grid {
                r0: to_u32(r0 + i),
                c0: ctx.start.col,
                r1: to_u32(end),
                c1: to_u32(t.cols),
            },
        );
        self.values = api.get(&range, "FORMULA").await?;
        self.formatted = if ctx.convert.user_entered {
            api.get(&range, "FORMATTED_VALUE").await?
        } else {
            Vec::new()
        };
        self.loaded = true;
        Ok(())
    }

    /// Row `i` of the window read (empty past the rows the API returned)
    /// and its formatted text.
    fn get(&self, i: u64) -> (&[J], Option<&Vec<J>>) {
        let k = usize::try_from(i - self.from).unwrap_or(usize::MAX);
        (
            self.values.get(k).map_or(&[][..], Vec::as_slice),
            self.formatted.get(k),
        )
    }

    /// The row to look at after row `i`: the next one, or the next
    /// window's first when the API returned no row past `i` in this one.
    fn next_after(&self, i: u64) -> u64 {
        if i - self.from >= self.values.len() as u64 {
            self.from + self.per
        } else {
            i + 1
        }
    }

    /// Whether row `i` (from the start cell) holds exactly `want`, and
    /// nothing after it.
    async fn row_is(
        &mut self,
        ctx: &Ctx<'_>,
        api: &mut Api,
        t: &SheetInfo,
        i: u64,
        want: &[CellHash],
    ) -> Result<bool> {
        self.load(ctx, api, t, i).await?;
        let (have, fmt) = self.get(i);
        let blank = CellHash::of(None, None);
        for (c, mine) in want.iter().enumerate() {
            if !CellHash::of(have.get(c), fmt.and_then(|r| r.get(c))).matches(mine) {
                return Ok(false);
            }
        }
        Ok(have
            .get(want.len()..)
            .is_none_or(|rest| rest.iter().all(|v| CellHash::of(Some(v), None) == blank)))
    }
}

fn find_sheet<'s>(sheets: &'s [SheetInfo], name: Option<&str>) -> Option<&'s SheetInfo> {
    match name {
        Some(n) => sheets
            .iter()
            .find(|s| s.title == n)
            .or_else(|| sheets.iter().find(|s| s.title.eq_ignore_ascii_case(n))),
        None => sheets.iter().min_by_key(|s| s.index),
    }
}

fn cells_of(sheets: &[SheetInfo]) -> u64 {
    sheets.iter().map(|s| s.rows * s.cols).sum()
}

/// The requests that delete the staging sheets left by killed runs, each
/// one logged.
fn remove_stale(stale: &[&SheetInfo]) -> Vec<J> {
    stale
        .iter()
        .map(|s| {
            events::stale_staging(&s.title);
            json!({"deleteSheet": {"sheetId": s.id}})
        })
        .collect()
}

/// The end of a replace: after a failed swap the temporary sheet `tmp` (id
/// `tmp_id`) is removed and the error returned; else the replace is logged.
async fn finish_swap(
    api: &mut Api,
    swapped: Result<()>,
    tmp_id: i32,
    tmp: &str,
    title: &str,
    records: u64,
) -> Result<u64> {
    if let Err(e) = swapped {
        if !api.dry_run {
            let ok = api
                .batch_update(vec![json!({"deleteSheet": {"sheetId": tmp_id}})])
                .await
                .is_ok();
            events::cleanup(tmp, ok);
        }
        return Err(e);
    }
    if !api.dry_run {
        events::swapped(title, records);
    }
    Ok(records)
}

/// The `numberFormat.type` of a pattern: a date, a time or both when it
/// has date or time parts and no digit placeholders, else a number.
fn number_format_type(pattern: &str) -> &'static str {
    if pattern.contains(['0', '#']) {
        return "NUMBER";
    }
    let p = pattern.to_ascii_lowercase();
    let date = p.contains(['y', 'd']) || p.contains("mmm");
    let time = p.contains(['h', 's']);
    match (date, time) {
        (true, true) => "DATE_TIME",
        (true, false) => "DATE",
        (false, true) => "TIME",
        (false, false) => "NUMBER",
    }
}

/// The title of a replace's staging sheet for the sheet with id `id`, up
/// to the run id: a sheet with this prefix and another run's id was left by
/// a run that was killed, and the next replace removes it.
fn staging_prefix(id: i32) -> String {
    format!("etl-push-sheets staging {id} ")
}

/// The sheet id in the reply to an `addSheet` (-1 in a dry run).
fn added_sheet_id(replies: &[google_sheets4::api::Response]) -> i32 {
    replies
        .iter()
        .find_map(|r| r.add_sheet.as_ref())
        .and_then(|a| a.properties.as_ref())
        .and_then(|p| p.sheet_id)
        .unwrap_or(-1)
}

impl Ctx<'_> {
    fn policy(&self) -> OnNewColumn {
        self.cli.on_new_column.unwrap_or(match self.cli.mode {
            Mode::Replace => OnNewColumn::Add,
            _ => OnNewColumn::Fail,
        })
    }

    /// The columns from the input alone (replace, and append to an empty
    /// sheet): all keys, or the first record's under `fail`/`ignore`.
    fn input_columns(&self, sp: &Spool) -> Result<Vec<String>> {
        let c = &sp.columns;
        if !self.cli.columns.is_empty() {
            return Ok(c.names.clone());
        }
        match self.policy() {
            OnNewColumn::Add => Ok(c.names.clone()),
            OnNewColumn::Ignore => Ok(c.names[..c.first_record.min(c.names.len())].to_vec()),
            OnNewColumn::Fail => match c.names.get(c.first_record) {
                Some(extra) => Err(Error::data(format!(
                    "line {}: field {extra:?} is not among the columns of the first record ({}); nothing was written (--on-new-column add|ignore)",
                    c.first_line[c.first_record],
                    c.names[..c.first_record].join(", ")
                ))),
                None => Ok(c.names.clone()),
            },
        }
    }

    /// One row for `rec` in `cols` order (validated in the first pass).
    fn row(&self, rec: &Record, cols: &[String]) -> Vec<J> {
        blocks::row_of(self.convert, rec, cols)
    }

    fn check_fit(other_cells: u64, rows: u64, cols: u64, what: &str) -> Result<()> {
        if cols > u64::from(MAX_COLUMNS) {
            return Err(Error::data(format!(
                "{what} needs {cols} columns; Google allows {MAX_COLUMNS}. Nothing was written"
            )));
        }
        let need = rows * cols;
        if other_cells + need > MAX_CELLS {
            return Err(Error::data(format!(
                "{what} needs {need} cells ({rows} rows x {cols} columns) besides the {other_cells} cells of the rest of the spreadsheet: {} in all, more than Google's {MAX_CELLS}. Nothing was written",
                other_cells + need
            )));
        }
        Ok(())
    }

    fn range(title: &str, r0: u64, c0: u32, rows: u64, cols: u64) -> String {
        a1::format(
            title,
            Grid {
                r0: to_u32(r0),
                c0,
                r1: to_u32(r0 + rows.max(1)),
                c1: c0 + to_u32(cols.max(1)),
            },
        )
    }

    /// Writes the header (unless `--no-header`) and every record as rows
    /// from `first_row` down, in values.update requests, each body encoded
    /// while the one before is on the wire (see `blocks`).
    async fn write_rows(
        &self,
        api: &mut Api,
        sp: &Spool,
        title: &str,
        cols: &[String],
        first_row: u64,
    ) -> Result<u64> {
        let width = cols.len() as u64;
        let mut next = first_row;
        let mut blocks = blocks::spawn(
            sp.records_owned()?,
            blocks::Plan {
                cols: cols.to_vec(),
                convert: self.convert,
                header: !self.cli.no_header,
                max_bytes: self.max_bytes,
            },
        )?;
        loop {
            match blocks.recv().await {
                Some(Msg::Block(block)) => {
                    let n = block.rows;
                    let range = Self::range(title, next, self.start.col, n, width);
                    api.update(&range, block, self.input).await?;
                    next += n;
                }
                Some(Msg::Done) => break,
                Some(Msg::Failed(e)) => return Err(e),
                None => return Err(Error::internal("the row encoder stopped before the end")),
            }
        }
        Ok(next - first_row)
    }

    /// replace: the rows into a hidden staging sheet, then one atomic
    /// batchUpdate pastes their values into the existing sheet (which keeps
    /// its id, place, formats and every reference to it) and removes the
    /// staging sheet. A missing sheet is made from the staging sheet.
    async fn replace(&self, api: &mut Api, sp: &mut Spool, run_id: &str) -> Result<u64> {
        let cols = self.input_columns(sp)?;
        let sheets = api.sheets().await?;
        let target = find_sheet(&sheets, self.cli.sheet.as_deref()).cloned();
        if let Some(t) = target.filter(|t| {
            self.cli
                .sheet
                .as_deref()
                .is_none_or(|n| t.title.eq_ignore_ascii_case(n))
        }) {
            return self
                .replace_keeping(api, sp, run_id, &sheets, &t, &cols)
                .await;
        }
        let target = find_sheet(&sheets, self.cli.sheet.as_deref()).cloned();
        let title = self
            .cli
            .sheet
            .clone()
            .or_else(|| target.as_ref().map(|t| t.title.clone()))
            .unwrap_or_else(|| "Sheet1".into());
        if sp.records == 0 && !self.cli.allow_empty {
            return Err(Error::data(format!(
                "no records on stdin: refusing to empty sheet {title:?} (a failed upstream stage looks like this; --allow-empty if it is meant)"
            )));
        }
        let rows = sp.records + u64::from(!self.cli.no_header);
        let grid_rows = (u64::from(self.start.row) + rows).max(1);
        let grid_cols = (u64::from(self.start.col) + cols.len() as u64).max(1);
        Self::check_fit(
            cells_of(&sheets),
            grid_rows,
            grid_cols,
            &format!("the new sheet {title:?}"),
        )?;
        let short: String = run_id
            .chars()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let tmp_title = format!(
            "{} (etl-push-sheets {short})",
            title.chars().take(60).collect::<String>()
        );
        let replies = api
            .batch_update(vec![json!({"addSheet": {"properties": {
                "title": tmp_title, "hidden": true,
                "gridProperties": {"rowCount": grid_rows, "columnCount": grid_cols}}}})])
            .await?;
        let new_id = added_sheet_id(&replies);
        let written = self
            .write_rows(api, sp, &tmp_title, &cols, u64::from(self.start.row))
            .await;
        let swapped = match written {
            Ok(_) => {
                let mut reqs = vec![json!({"updateSheetProperties": {
                    "properties": {"sheetId": new_id, "hidden": false}, "fields": "hidden"}})];
                match &target {
                    Some(old) if old.title.eq_ignore_ascii_case(&title) => {
                        reqs.push(json!({"deleteSheet": {"sheetId": old.id}}));
                        reqs.push(json!({"updateSheetProperties": {
                            "properties": {"sheetId": new_id, "title": title, "index": old.index},
                            "fields": "title,index"}}));
                    }
                    _ => reqs.push(json!({"updateSheetProperties": {
                        "properties": {"sheetId": new_id, "title": title}, "fields": "title"}})),
                }
                api.batch_update(reqs).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        finish_swap(api, swapped, new_id, &tmp_title, &title, sp.records).await
    }

    /// replace into the existing sheet `t`, keeping it (see [`Self::replace`]).
    #[allow(clippy::too_many_lines)] // one sequence: preflight, stage, one swap, clean up
    async fn replace_keeping(
        &self,
        api: &mut Api,
        sp: &mut Spool,
        run_id: &str,
        sheets: &[SheetInfo],
        t: &SheetInfo,
        cols: &[String],
    ) -> Result<u64> {
        if sp.records == 0 && !self.cli.allow_empty {
            return Err(Error::data(format!(
                "no records on stdin: refusing to empty sheet {:?} (a failed upstream stage looks like this; --allow-empty if it is meant)",
                t.title
            )));
        }
        let rows = sp.records + u64::from(!self.cli.no_header);
        let (r0, c0) = (u64::from(self.start.row), u64::from(self.start.col));
        let (end_row, end_col) = (r0 + rows, c0 + cols.len() as u64);
        let (grid_rows, grid_cols) = (end_row.max(1), end_col.max(1));
        // The target grows to hold the table; it never shrinks (deleting
        // rows would break references to them): what lies beyond the new
        // table is cleared instead.
        let (t_rows, t_cols) = (t.rows.max(grid_rows), t.cols.max(grid_cols));
        let prefix = staging_prefix(t.id);
        let stale: Vec<&SheetInfo> = sheets
            .iter()
            .filter(|s| s.id != t.id && s.title.starts_with(&prefix))
            .collect();
        // The staging copy counts against the limit until the swap removes it.
        let others = cells_of(sheets) - stale.iter().map(|s| s.rows * s.cols).sum::<u64>()
            + (t_rows * t_cols - t.rows * t.cols);
        // An input the sheet already holds needs no staging copy, so room
        // for one is only asked of an input that changes the sheet.
        if self.holds_already(api, t, cols, sp).await? {
            // Nothing to write (a stale staging sheet is still removed).
            if !stale.is_empty() && !api.dry_run {
                api.batch_update(remove_stale(&stale)).await?;
            }
            events::unchanged(&t.title, sp.records);
            return Ok(sp.records);
        }
        Self::check_fit(
            others,
            grid_rows,
            grid_cols,
            &format!("the staging copy of sheet {:?}", t.title),
        )
        .map_err(|e| {
            Error::data(format!(
                "{} (--in-place overwrites the sheet without a staging copy, not atomically)",
                e.message()
            ))
        })?;
        let staging = format!("{prefix}{run_id}");
        let mut reqs = remove_stale(&stale);
        reqs.push(json!({"addSheet": {"properties": {
            "title": staging, "hidden": true,
            "gridProperties": {"rowCount": grid_rows, "columnCount": grid_cols}}}}));
        let replies = api.batch_update(reqs).await?;
        let staging_id = added_sheet_id(&replies);
        let written = self.write_rows(api, sp, &staging, cols, r0).await;
        let swapped = match written {
            Ok(_) => {
                let mut reqs = Vec::new();
                if t_rows > t.rows || t_cols > t.cols {
                    reqs.push(json!({"updateSheetProperties": {
                        "properties": {"sheetId": t.id,
                            "gridProperties": {"rowCount": t_rows, "columnCount": t_cols}},
                        "fields": "gridProperties.rowCount,gridProperties.columnCount"}}));
                }
                let area = |sheet: i32, r0: u64, r1: u64, c0: u64, c1: u64| {
                    json!({"sheetId": sheet, "startRowIndex": r0, "endRowIndex": r1,
                        "startColumnIndex": c0, "endColumnIndex": c1})
                };
                // RAW values paste as values: the sheet's formats stay. With
                // user-entered input, the formats Sheets derived from the
                // typed text (12%, a date) travel with the values.
                let paste = if self.input == "USER_ENTERED" {
                    "PASTE_NORMAL"
                } else {
                    "PASTE_VALUES"
                };
                if rows > 0 && !cols.is_empty() {
                    reqs.push(json!({"copyPaste": {
                        "source": area(staging_id, r0, end_row, c0, end_col),
                        "destination": area(t.id, r0, end_row, c0, end_col),
                        "pasteType": paste, "pasteOrientation": "NORMAL"}}));
                }
                // Values beyond the new table go; formats stay.
                if t_rows > end_row {
                    reqs.push(json!({"updateCells": {
                        "range": area(t.id, end_row, t_rows, c0, t_cols),
                        "fields": "userEnteredValue"}}));
                }
                if t_cols > end_col && end_row > r0 {
                    reqs.push(json!({"updateCells": {
                        "range": area(t.id, r0, end_row, end_col, t_cols),
                        "fields": "userEnteredValue"}}));
                }
                reqs.extend(self.number_format_requests(t.id, t_rows, cols));
                reqs.push(json!({"deleteSheet": {"sheetId": staging_id}}));
                let r = api.batch_update(reqs).await.map(|_| ());
                self.formats_set.set(r.is_ok());
                r
            }
            Err(e) => Err(e),
        };
        finish_swap(api, swapped, staging_id, &staging, &t.title, sp.records).await
    }

    /// Whether sheet `t` already holds exactly what a replace would leave
    /// in it: the header, every record and nothing else from the start cell
    /// on. The sheet is read in windows of rows of about one request's size
    /// (memory holds one window; the first difference ends the reading),
    /// with user-entered input also as formatted text.
    async fn holds_already(
        &self,
        api: &mut Api,
        t: &SheetInfo,
        cols: &[String],
        sp: &Spool,
    ) -> Result<bool> {
        let (r0, c0) = (u64::from(self.start.row), u64::from(self.start.col));
        let rows = sp.records + u64::from(!self.cli.no_header);
        if r0 + rows > t.rows || c0 + cols.len() as u64 > t.cols {
            return Ok(false);
        }
        let mut window = Window::new(self, t);
        let mut i = 0u64;
        if !self.cli.no_header {
            let header: Vec<CellHash> = cols
                .iter()
                .map(|c| {
                    CellHash::input(
                        &etl_core::Value::String(c.clone()),
                        &J::String(c.clone()),
                        false,
                    )
                })
                .collect();
            if !window.row_is(self, api, t, 0, &header).await? {
                return Ok(false);
            }
            i = 1;
        }
        // The input's cells are hashed on a second thread while the sheet's
        // windows are read and compared here.
        let mut hashes = blocks::spawn_hashes(
            sp.records_owned()?,
            cols.to_vec(),
            self.convert,
            self.cli.allow_formulas,
        )?;
        loop {
            match hashes.recv().await {
                Some(Hashes::Rows(rows)) => {
                    for want in &rows {
                        if !window.row_is(self, api, t, i, want).await? {
                            return Ok(false);
                        }
                        i += 1;
                    }
                }
                Some(Hashes::Formula) => return Ok(false),
                Some(Hashes::Failed(e)) => return Err(e),
                Some(Hashes::Done) => break,
                None => return Err(Error::internal("the row hasher stopped before the end")),
            }
        }
        // Nothing below the table (a row of empty strings is something to clear).
        while r0 + i < t.rows {
            if !window.row_is(self, api, t, i, &[]).await? {
                return Ok(false);
            }
            i = window.next_after(i);
        }
        Ok(true)
    }

    /// `repeatCell` requests that give each `--number-format` column of
    /// sheet `id` (header `cols`) its format, from below the header to the
    /// grid's last row `rows`.
    fn number_format_requests(&self, id: i32, rows: u64, cols: &[String]) -> Vec<J> {
        let first = u64::from(self.start.row) + u64::from(!self.cli.no_header);
        self.cli
            .number_format
            .iter()
            .filter_map(|(col, pattern)| {
                let c = u64::from(self.start.col) + cols.iter().position(|x| x == col)? as u64;
                Some(json!({"repeatCell": {
                    "range": {"sheetId": id, "startRowIndex": first, "endRowIndex": rows.max(first),
                        "startColumnIndex": c, "endColumnIndex": c + 1},
                    "cell": {"userEnteredFormat": {"numberFormat": {
                        "type": number_format_type(pattern), "pattern": pattern}}},
                    "fields": "userEnteredFormat.numberFormat"}}))
            })
            .collect()
    }

    /// `--number-format` after an append, upsert or in-place replace: the
    /// sheet's header locates the columns; one batchUpdate.
    async fn set_number_formats(&self, api: &mut Api) -> Result<()> {
        let sheets = api.sheets().await?;
        let Some(t) = find_sheet(&sheets, self.cli.sheet.as_deref()).cloned() else {
            return Ok(());
        };
        let cols = if self.cli.no_header {
            self.cli.columns.clone()
        } else {
            self.read_header(api, &t).await?
        };
        let reqs = self.number_format_requests(t.id, t.rows, &cols);
        if !reqs.is_empty() {
            api.batch_update(reqs).await?;
        }
        Ok(())
    }

    /// Creates `title` (for a missing sheet) with at least the given grid.
    async fn create_sheet(
        &self,
        api: &mut Api,
        title: &str,
        rows: u64,
        cols: u64,
    ) -> Result<SheetInfo> {
        let replies = api
            .batch_update(vec![json!({"addSheet": {"properties": {
                "title": title, "gridProperties": {"rowCount": rows.max(1), "columnCount": cols.max(1)}}}})])
            .await?;
        let id = added_sheet_id(&replies);
        Ok(SheetInfo {
            id,
            title: title.to_owned(),
            index: 0,
            rows: rows.max(1),
            cols: cols.max(1),
        })
    }

    /// The target sheet, created when missing (with the grid `rows` x `cols`).
    async fn target(
        &self,
        api: &mut Api,
        sheets: &[SheetInfo],
        rows: u64,
        cols: u64,
    ) -> Result<(SheetInfo, bool)> {
        match find_sheet(sheets, self.cli.sheet.as_deref()) {
            Some(s) => Ok((s.clone(), false)),
            None => {
                let title = self.cli.sheet.clone().unwrap_or_else(|| "Sheet1".into());
                let other = cells_of(sheets);
                Self::check_fit(
                    other,
                    rows.max(1000),
                    cols.max(26),
                    &format!("the new sheet {title:?}"),
                )?;
                Ok((
                    self.create_sheet(api, &title, rows.max(1000), cols.max(26))
                        .await?,
                    true,
                ))
            }
        }
    }

    /// Grows `t`'s grid to at least rows x cols (one batchUpdate).
    async fn grow(&self, api: &mut Api, t: &mut SheetInfo, rows: u64, cols: u64) -> Result<()> {
        let mut reqs = Vec::new();
        if rows > t.rows {
            reqs.push(json!({"appendDimension": {"sheetId": t.id, "dimension": "ROWS", "length": rows - t.rows}}));
        }
        if cols > t.cols {
            reqs.push(json!({"appendDimension": {"sheetId": t.id, "dimension": "COLUMNS", "length": cols - t.cols}}));
        }
        if !reqs.is_empty() {
            api.batch_update(reqs).await?;
            t.rows = t.rows.max(rows);
            t.cols = t.cols.max(cols);
        }
        Ok(())
    }

    /// replace --in-place: overwrite, then clear what lies beyond.
    async fn replace_in_place(&self, api: &mut Api, sp: &mut Spool) -> Result<u64> {
        let cols = self.input_columns(sp)?;
        let sheets = api.sheets().await?;
        if sp.records == 0 && !self.cli.allow_empty {
            return Err(Error::data(
                "no records on stdin: refusing to empty the sheet (a failed upstream stage looks like this; --allow-empty if it is meant)",
            ));
        }
        let rows = sp.records + u64::from(!self.cli.no_header);
        let need_rows = u64::from(self.start.row) + rows;
        let need_cols = u64::from(self.start.col) + cols.len() as u64;
        let (mut t, _) = self.target(api, &sheets, need_rows, need_cols).await?;
        let others = cells_of(&sheets).saturating_sub(t.rows * t.cols);
        Self::check_fit(
            others,
            need_rows.max(t.rows),
            need_cols.max(t.cols),
            &format!("sheet {:?}", t.title),
        )?;
        self.grow(api, &mut t, need_rows, need_cols).await?;
        let written = self
            .write_rows(api, sp, &t.title, &cols, u64::from(self.start.row))
            .await?;
        let end_row = u64::from(self.start.row) + written;
        let end_col = need_cols;
        let mut clear = Vec::new();
        if t.rows > end_row {
            clear.push(a1::format(
                &t.title,
                Grid {
                    r0: to_u32(end_row),
                    c0: self.start.col,
                    r1: to_u32(t.rows),
                    c1: to_u32(t.cols),
                },
            ));
        }
        if t.cols > end_col && written > 0 {
            clear.push(a1::format(
                &t.title,
                Grid {
                    r0: self.start.row,
                    c0: to_u32(end_col),
                    r1: to_u32(end_row),
                    c1: to_u32(t.cols),
                },
            ));
        }
        api.clear(clear).await?;
        Ok(sp.records)
    }

    /// Writes (or rewrites) the header row at the start cell.
    async fn write_header(&self, api: &mut Api, title: &str, cols: &[String]) -> Result<()> {
        let range = Self::range(
            title,
            u64::from(self.start.row),
            self.start.col,
            1,
            cols.len() as u64,
        );
        api.update(&range, blocks::encode(&[header_row(cols)]), "RAW")
            .await
    }

    /// The existing header at the start row (trailing empty cells dropped).
    async fn read_header(&self, api: &mut Api, t: &SheetInfo) -> Result<Vec<String>> {
        let row = self.start.row + 1;
        let range = format!("{}!{row}:{row}", a1::quote_sheet(&t.title));
        let rows = api.get(&range, "FORMATTED_VALUE").await?;
        let mut h: Vec<String> = rows
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .skip(self.start.col as usize)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        while h.last().is_some_and(String::is_empty) {
            h.pop();
        }
        Ok(h)
    }

    /// Matches input columns to an existing header: the columns to write
    /// (header order, new ones at the right under `add`) and whether the
    /// header gained columns.
    fn match_header(&self, header: &[String], sp: &Spool) -> Result<(Vec<String>, bool)> {
        let input = &sp.columns.names;
        let new: Vec<&String> = input.iter().filter(|c| !header.contains(c)).collect();
        if new.is_empty() {
            return Ok((header.to_vec(), false));
        }
        match self.policy() {
            OnNewColumn::Ignore => Ok((header.to_vec(), false)),
            OnNewColumn::Add => {
                let mut cols = header.to_vec();
                cols.extend(new.into_iter().cloned());
                Ok((cols, true))
            }
            OnNewColumn::Fail => {
                let missing: Vec<&String> = header.iter().filter(|h| !input.contains(h)).collect();
                let list = |v: &[&String]| {
                    v.iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut msg = format!(
                    "the input's columns differ from the sheet's header: not in the header: {}",
                    list(&new)
                );
                if !missing.is_empty() {
                    let _ = write!(
                        msg,
                        "; in the header but not in the input: {}",
                        list(&missing)
                    );
                }
                msg.push_str(". Nothing was written (--on-new-column add|ignore)");
                Err(Error::data(msg))
            }
        }
    }

    /// append: rows after the table at the start cell.
    async fn append(&self, api: &mut Api, sp: &mut Spool) -> Result<u64> {
        let sheets = api.sheets().await?;
        let rows_in = sp.records;
        let (t, created) = self
            .target(
                api,
                &sheets,
                u64::from(self.start.row) + rows_in + 1,
                u64::from(self.start.col) + sp.columns.names.len() as u64,
            )
            .await?;
        let header = if self.cli.no_header || created {
            Vec::new()
        } else {
            self.read_header(api, &t).await?
        };
        let (cols, write_header, extend_header) = if self.cli.no_header {
            (self.input_columns(sp)?, false, false)
        } else if header.is_empty() {
            (self.input_columns(sp)?, true, false)
        } else {
            let (cols, extended) = self.match_header(&header, sp)?;
            (cols, false, extended)
        };
        let others = cells_of(&sheets);
        let add_rows = rows_in + u64::from(write_header);
        let width = u64::from(self.start.col) + cols.len() as u64;
        Self::check_fit(
            others,
            add_rows,
            width.max(t.cols),
            &format!("appending to sheet {:?}", t.title),
        )?;
        if extend_header {
            self.write_header(api, &t.title, &cols).await?;
        }
        let at = a1::format(
            &t.title,
            Grid {
                r0: self.start.row,
                c0: self.start.col,
                r1: self.start.row + 1,
                c1: self.start.col + 1,
            },
        );
        let mut blocks = blocks::spawn(
            sp.records_owned()?,
            blocks::Plan {
                cols,
                convert: self.convert,
                header: write_header,
                max_bytes: self.max_bytes,
            },
        )?;
        loop {
            match blocks.recv().await {
                Some(Msg::Block(block)) => {
                    api.append(&at, block, self.input).await?;
                }
                Some(Msg::Done) => break,
                Some(Msg::Failed(e)) => return Err(e),
                None => return Err(Error::internal("the row encoder stopped before the end")),
            }
        }
        Ok(sp.records)
    }

    /// upsert: compare with the sheet, write only what changed.
    #[allow(clippy::too_many_lines)] // read, index, count, check, write: one story
    async fn upsert(&self, api: &mut Api, sp: &mut Spool, run: &mut Run) -> Result<u64> {
        let sheets = api.sheets().await?;
        let (t, created) = self
            .target(
                api,
                &sheets,
                u64::from(self.start.row) + sp.records + 1,
                u64::from(self.start.col) + sp.columns.names.len() as u64,
            )
            .await?;
        // The sheet is read a window of rows at a time: memory holds the
        // key index (keys and cell hashes) and one window, not the sheet.
        let mut window = Window::new(self, &t);
        let rows_below = t.rows.saturating_sub(u64::from(self.start.row));
        let header: Vec<String> = if created || rows_below == 0 {
            Vec::new()
        } else {
            window.load(self, api, &t, 0).await?;
            let mut h: Vec<String> = window
                .get(0)
                .0
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            while h.last().is_some_and(String::is_empty) {
                h.pop();
            }
            h
        };
        let (cols, write_header, extend_header) = if header.is_empty() {
            (self.input_columns(sp)?, true, false)
        } else {
            let (cols, ext) = self.match_header(&header, sp)?;
            (cols, false, ext)
        };
        let key_pos: Vec<usize> = self
            .cli
            .key
            .iter()
            .map(|k| {
                cols.iter().position(|c| c == k).ok_or_else(|| {
                    Error::data(format!(
                        "key column {k:?} is not in the sheet's header ({})",
                        cols.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?;
        // The key index of the sheet: key -> (row offset, cell hashes).
        let mut index: HashMap<Vec<String>, (u64, Vec<CellHash>)> = HashMap::new();
        let mut sheet_dups = 0u64;
        let mut i = 1u64;
        while !created && i < rows_below {
            window.load(self, api, &t, i).await?;
            let (row, fmt_row) = window.get(i);
            let key: Vec<String> = key_pos.iter().map(|&p| key_of_cell(row.get(p))).collect();
            if !key.iter().all(String::is_empty) {
                let hashes = (0..cols.len())
                    .map(|c| CellHash::of(row.get(c), fmt_row.and_then(|r| r.get(c))))
                    .collect();
                if index.insert(key, (i, hashes)).is_some() {
                    sheet_dups += 1;
                }
            }
            i = window.next_after(i);
        }
        drop(window);
        if sheet_dups > 0 {
            run.set_count("sheet_duplicate_keys", sheet_dups);
        }
        // Pass 1: count, so the limits are checked before any write.
        let plan = self
            .compare(sp, &cols, &index, false, api, &t.title)
            .await?;
        let deleted: Vec<u64> = if self.cli.delete_missing {
            let mut d: Vec<u64> = index
                .iter()
                .filter(|(k, _)| !plan.seen.contains(*k))
                .map(|(_, (r, _))| *r)
                .collect();
            d.sort_unstable_by(|a, b| b.cmp(a));
            d
        } else {
            Vec::new()
        };
        events::compared(
            plan.updated_rows,
            plan.changed_cells,
            plan.new_rows,
            deleted.len() as u64,
            plan.unchanged,
        );
        run.set_count("updated_rows", plan.updated_rows);
        run.set_count("new_rows", plan.new_rows);
        run.set_count("deleted_rows", deleted.len() as u64);
        run.set_count("unchanged_rows", plan.unchanged);
        run.set_count("input_duplicate_keys", sp.duplicate_keys);
        let width = u64::from(self.start.col) + cols.len() as u64;
        let data_rows = (index.len() as u64 + 1).max(1);
        Self::check_fit(
            cells_of(&sheets).saturating_sub(t.rows * t.cols),
            (t.rows + plan.new_rows + u64::from(write_header)).max(data_rows),
            width.max(t.cols),
            &format!("sheet {:?}", t.title),
        )?;
        if write_header || extend_header {
            self.write_header(api, &t.title, &cols).await?;
        }
        // Pass 2: write.
        self.compare(sp, &cols, &index, true, api, &t.title).await?;
        if !deleted.is_empty() {
            let mut reqs = Vec::new();
            let mut bytes = 0u64;
            for r in deleted {
                let row = u64::from(self.start.row) + r;
                let req = json!({"deleteDimension": {"range": {"sheetId": t.id, "dimension": "ROWS",
                    "startIndex": row, "endIndex": row + 1}}});
                bytes += json_len(&req) + 1;
                reqs.push(req);
                if bytes > self.max_bytes.saturating_sub(512) {
                    api.batch_update(std::mem::take(&mut reqs)).await?;
                    bytes = 0;
                }
            }
            if !reqs.is_empty() {
                api.batch_update(reqs).await?;
            }
        }
        Ok(plan.updated_rows + plan.new_rows)
    }

    /// Walks the input against the index; with `write`, sends the updates
    /// (values.batchUpdate) and the new rows (values.append).
    #[allow(clippy::too_many_arguments, clippy::too_many_lines)]
    async fn compare(
        &self,
        sp: &Spool,
        cols: &[String],
        index: &HashMap<Vec<String>, (u64, Vec<CellHash>)>,
        write: bool,
        api: &mut Api,
        title: &str,
    ) -> Result<Compared> {
        let mut out = Compared::default();
        let mut updates: Vec<ValueRange> = Vec::new();
        let mut update_bytes = 0u64;
        let mut update_rows = 0u64;
        let mut appends = blocks::Builder::new(self.max_bytes);
        let at = a1::format(
            title,
            Grid {
                r0: self.start.row,
                c0: self.start.col,
                r1: self.start.row + 1,
                c1: self.start.col + 1,
            },
        );
        let budget = self.max_bytes.saturating_sub(512);
        let keys: Vec<String> = self.cli.key.clone();
        let mut records = sp.records()?;
        let mut batches: Vec<(Vec<ValueRange>, u64)> = Vec::new();
        let mut new_chunks: Vec<Encoded> = Vec::new();
        loop {
            let item = records.next().transpose()?;
            let Some((line, rec)) = item else { break };
            let key: Vec<String> = keys.iter().map(|k| key_of(&rec[k.as_str()])).collect();
            if !sp.is_last_for_key(&key, line) {
                // An earlier record of a key that comes again: the last wins.
                continue;
            }
            match index.get(&key) {
                Some((row, hashes)) => {
                    out.seen.insert(key);
                    let mut changed: Vec<(usize, J)> = Vec::new();
                    for (c, name) in cols.iter().enumerate() {
                        let Some(v) = rec.get(name.as_str()) else {
                            continue;
                        };
                        let cell = self
                            .convert
                            .cell(v)
                            .unwrap_or_else(|_| J::String(String::new()));
                        let mine = CellHash::input(v, &cell, self.convert.user_entered);
                        if !hashes.get(c).is_some_and(|h| h.matches(&mine)) {
                            changed.push((c, cell));
                        }
                    }
                    if changed.is_empty() {
                        out.unchanged += 1;
                        continue;
                    }
                    out.updated_rows += 1;
                    out.changed_cells += changed.len() as u64;
                    if !write {
                        continue;
                    }
                    // Contiguous runs of changed cells become one range each.
                    let r = u64::from(self.start.row) + row;
                    let mut i = 0;
                    while i < changed.len() {
                        let mut j = i + 1;
                        while j < changed.len() && changed[j].0 == changed[j - 1].0 + 1 {
                            j += 1;
                        }
                        let c0 = self.start.col + to_u32(changed[i].0 as u64);
                        let vals: Vec<J> = changed[i..j].iter().map(|(_, v)| v.clone()).collect();
                        let vr = ValueRange {
                            range: Some(Self::range(title, r, c0, 1, vals.len() as u64)),
                            values: Some(vec![vals]),
                            ..Default::default()
                        };
                        let size = json_len(&vr) + 1;
                        if !updates.is_empty() && update_bytes + size > budget {
                            batches.push((std::mem::take(&mut updates), update_rows));
                            update_bytes = 0;
                            update_rows = 0;
                        }
                        update_bytes += size;
                        updates.push(vr);
                        i = j;
                    }
                    update_rows += 1;
                }
                None => {
                    out.new_rows += 1;
                    if write {
                        if let Some(rows) = appends.push(&self.row(&rec, cols)) {
                            new_chunks.push(rows);
                        }
                    }
                }
            }
            for (data, rows) in batches.drain(..) {
                api.batch_update_values(data, self.input, rows).await?;
            }
            for rows in new_chunks.drain(..) {
                api.append(&at, rows, self.input).await?;
            }
        }
        if write {
            if !updates.is_empty() {
                api.batch_update_values(updates, self.input, update_rows)
                    .await?;
            }
            if let Some(rows) = appends.take() {
                api.append(&at, rows, self.input).await?;
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Default)]
struct Compared {
    updated_rows: u64,
    changed_cells: u64,
    new_rows: u64,
    unchanged: u64,
    seen: HashSet<Vec<String>>,
}
