//! Every Sheets call goes through here: pacing of writes, retries with
//! backoff, the counts of the summary, the dry-run plan, and the mapping of
//! Google's errors to exit codes.

use std::io::Write as _;
use std::time::{Duration, Instant};

use etl_core::{Error, Exit, Result};
use google_sheets4::api::{
    AppendValuesResponse, BatchClearValuesRequest, BatchUpdateSpreadsheetRequest,
    BatchUpdateValuesRequest, Request, Response as Reply, Scope, ValueRange,
};
use google_sheets4::common::{Delegate, Retry};
use google_sheets4::{hyper_util, Sheets};
use serde_json::{json, Value};

use crate::auth::Connector;
use crate::events;
use crate::pace::Window;
use etl_core::retry::{parse_retry_after, Backoff};

/// Retry settings.
#[derive(Debug, Clone)]
pub struct RetryCfg {
    pub max_retries: u32,
    pub max_retry_time: Duration,
    pub base: Duration,
    pub cap: Duration,
}

/// The counts of the run summary.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub api_calls: u64,
    pub retries: u64,
    pub bytes_sent: u64,
    pub rows_written: u64,
    pub cells_written: u64,
    pub write_calls: u64,
    pub planned: u64,
}

/// State the delegate updates while a call runs.
#[derive(Debug)]
struct Shared {
    stats: Stats,
    pacer: Window,
    cfg: RetryCfg,
    /// The run's progress line (on a terminal, without --quiet): rows
    /// written, bytes sent, requests and quota waits.
    progress: etl_core::progress::Progress,
    quota_waits: u64,
}

impl Shared {
    fn show(&mut self) {
        let (calls, waits) = (self.stats.api_calls, self.quota_waits);
        let s = |n: u64| if n == 1 { "" } else { "s" };
        self.progress.set_extra(format!(
            "{calls} request{}, {waits} quota wait{}",
            s(calls),
            s(waits)
        ));
    }
}

/// A sheet's properties as the run needs them.
#[derive(Debug, Clone)]
pub struct SheetInfo {
    pub id: i32,
    pub title: String,
    pub index: i32,
    pub rows: u64,
    pub cols: u64,
}

/// The Sheets API client of one run.
pub struct Api {
    hub: Sheets<Connector>,
    shared: Shared,
    pub spreadsheet: String,
    pub dry_run: bool,
    pub account: String,
    pub api_url: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("spreadsheet", &self.spreadsheet)
            .finish_non_exhaustive()
    }
}

/// What one call is, for the delegate and the error messages.
#[derive(Debug, Clone, Copy)]
struct Call<'a> {
    method: &'a str,
    what: &'a str,
    write: bool,
    bytes: u64,
    /// Whether a connection error may be retried (not for `append`, which is
    /// not idempotent: the lost reply may have been a success).
    retry_connection: bool,
}

struct Ctl<'a> {
    shared: &'a mut Shared,
    call: Call<'a>,
    attempt: u32,
    slept: Duration,
    last_status: Option<u16>,
}

impl Ctl<'_> {
    fn retry(&mut self, status: Option<u16>, retry_after: Option<Duration>) -> Retry {
        self.last_status = status;
        if self.attempt >= self.shared.cfg.max_retries {
            return Retry::Abort;
        }
        let mut delay = Backoff {
            base: self.shared.cfg.base,
            cap: self.shared.cfg.cap,
        }
        .delay(self.attempt, retry_after);
        if self.call.write {
            delay += self.shared.pacer.wait_at(Instant::now() + delay);
        }
        if self.slept + delay > self.shared.cfg.max_retry_time {
            return Retry::Abort;
        }
        self.attempt += 1;
        self.slept += delay;
        self.shared.stats.retries += 1;
        events::retrying(
            self.call.method,
            self.call.what,
            status,
            self.attempt,
            delay,
        );
        Retry::After(delay)
    }
}

impl Delegate for Ctl<'_> {
    fn pre_request(&mut self) {
        self.shared.stats.api_calls += 1;
        self.shared.stats.bytes_sent += self.call.bytes;
        self.shared.progress.advance(0, self.call.bytes);
        self.shared.show();
        if self.call.write {
            self.shared.stats.write_calls += 1;
            self.shared.pacer.record(Instant::now());
        }
    }

    fn http_error(&mut self, _err: &hyper_util::client::legacy::Error) -> Retry {
        if self.call.retry_connection {
            self.retry(None, None)
        } else {
            Retry::Abort
        }
    }

    fn http_failure(
        &mut self,
        response: &google_sheets4::common::Response,
        _err: Option<&Value>,
    ) -> Retry {
        let status = response.status().as_u16();
        if matches!(status, 429 | 500 | 502 | 503 | 504) {
            let after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            self.retry(Some(status), after)
        } else {
            self.last_status = Some(status);
            Retry::Abort
        }
    }
}

/// JSON size of a value as it goes on the wire (counted, not kept).
pub fn json_len(v: &impl serde::Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, v).map_or(0, |()| n.0)
}

/// One call: the write quota's pacing, the delegate (retries, counts),
/// and Google's errors mapped to exit codes. `raw` runs an expression that
/// returns a `google_sheets4::Result` itself (see [`send_json`]).
macro_rules! call {
    ($self:ident, $call:expr, |$hub:ident, $d:ident| raw $run:expr) => {{
        let call: Call = $call;
        if call.write {
            let wait = $self.shared.pacer.wait_at(Instant::now());
            if !wait.is_zero() {
                events::pacing(wait);
                $self.shared.quota_waits += 1;
                $self.shared.show();
                tokio::time::sleep(wait).await;
            }
        }
        let mut $d = Ctl {
            shared: &mut $self.shared,
            call,
            attempt: 0,
            slept: Duration::ZERO,
            last_status: None,
        };
        let $hub = &$self.hub;
        let result = $run;
        let (attempts, status) = ($d.attempt, $d.last_status);
        if call.write {
            $self.shared.pacer.settle_last(Instant::now());
        }
        result.map_err(|e| classify(&e, call, attempts, status, &$self.account, &$self.api_url))
    }};
    ($self:ident, $call:expr, |$hub:ident, $d:ident| $build:expr) => {
        call!($self, $call, |$hub, $d| raw $build
            .add_scope(Scope::Spreadsheet)
            .delegate(&mut $d)
            .doit()
            .await
            .map(|(_, v)| v))
    };
}

/// Rows encoded as a `ValueRange` body (`{"values":[[...],...]}`), ready to
/// send as they are.
#[derive(Debug)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub rows: u64,
    pub cells: u64,
}

/// Sends a request whose JSON body is already encoded, with the steps and
/// retries of google-sheets4's generated calls (token, `pre_request`,
/// `http_error`/`http_failure` of the delegate), and returns the reply's
/// body. The generated calls take a typed body, turn it into a
/// `serde_json::Value` tree and encode that: three copies of every cell of
/// a values write, where this sends the bytes the rows were encoded to.
async fn send_json(
    hub: &Sheets<Connector>,
    d: &mut Ctl<'_>,
    method: google_sheets4::hyper::Method,
    url: &str,
    body: google_sheets4::hyper::body::Bytes,
) -> google_sheets4::Result<google_sheets4::hyper::body::Bytes> {
    use google_sheets4::common::{self, Error as E};
    use google_sheets4::hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
    loop {
        let token = hub
            .auth
            .get_token(&[Scope::Spreadsheet.as_ref()])
            .await
            .map_err(E::MissingToken)?;
        d.pre_request();
        let mut req = google_sheets4::hyper::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(USER_AGENT, USER_AGENT_VALUE);
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .body(common::to_body(Some(body.clone())))
            .map_err(|e| E::Io(std::io::Error::other(e)))?;
        match hub.client.request(req).await {
            Err(err) => {
                if let Retry::After(delay) = d.http_error(&err) {
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(E::HttpError(err));
            }
            Ok(res) => {
                let (parts, reply) = res.into_parts();
                let bytes = common::to_bytes(reply).await.unwrap_or_default();
                if parts.status.is_success() {
                    return Ok(bytes);
                }
                let error = serde_json::from_str(&common::to_string(&bytes));
                let response = common::to_response(parts, Some(bytes));
                if let Retry::After(delay) = d.http_failure(&response, error.as_ref().ok()) {
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(match error {
                    Ok(v) => E::BadRequest(v),
                    Err(_) => E::Failure(response),
                });
            }
        }
    }
}

/// The User-Agent of every call (google-sheets4's own, for the calls it makes).
const USER_AGENT_VALUE: &str = "google-api-rust-client/7.0.0";

impl Api {
    pub fn new(
        hub: Sheets<Connector>,
        spreadsheet: String,
        cfg: RetryCfg,
        writes_per_minute: u32,
    ) -> Self {
        Api {
            hub,
            shared: Shared {
                stats: Stats::default(),
                pacer: Window::new(writes_per_minute, Duration::from_secs(60)),
                cfg,
                progress: etl_core::progress::Progress::new(false),
                quota_waits: 0,
            },
            spreadsheet,
            dry_run: false,
            account: String::new(),
            api_url: String::new(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Lends the run's progress line to the client for the calls.
    pub fn set_progress(&mut self, mut progress: etl_core::progress::Progress) {
        progress.set_unit("rows");
        self.shared.progress = progress;
    }

    /// Gives the progress line back (the run clears it at the end).
    pub fn take_progress(&mut self) -> etl_core::progress::Progress {
        std::mem::replace(
            &mut self.shared.progress,
            etl_core::progress::Progress::new(false),
        )
    }

    /// Counts rows and cells written (by the caller, which knows them).
    pub fn wrote(&mut self, rows: u64, cells: u64) {
        if !self.dry_run {
            self.shared.stats.rows_written += rows;
            self.shared.stats.cells_written += cells;
            self.shared.progress.advance(rows, 0);
        }
    }

    /// In a dry run, prints the plan line for a write and returns true.
    fn plan(&mut self, line: &Value) -> bool {
        if !self.dry_run {
            return false;
        }
        self.shared.stats.planned += 1;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        true
    }

    /// The spreadsheet's sheets.
    pub async fn sheets(&mut self) -> Result<Vec<SheetInfo>> {
        let id = self.spreadsheet.clone();
        let book = call!(
            self,
            Call {
                method: "spreadsheets.get",
                what: &id,
                write: false,
                bytes: 0,
                retry_connection: true
            },
            |hub, d| hub
                .spreadsheets()
                .get(&id)
                .param("fields", "sheets.properties")
        )?;
        Ok(book
            .sheets
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.properties)
            .map(|p| {
                let g = p.grid_properties.unwrap_or_default();
                SheetInfo {
                    id: p.sheet_id.unwrap_or(0),
                    title: p.title.unwrap_or_default(),
                    index: p.index.unwrap_or(0),
                    rows: u64::try_from(g.row_count.unwrap_or(0)).unwrap_or(0),
                    cols: u64::try_from(g.column_count.unwrap_or(0)).unwrap_or(0),
                }
            })
            .collect())
    }

    /// `values.get` with `valueRenderOption`.
    pub async fn get(&mut self, range: &str, render: &str) -> Result<Vec<Vec<Value>>> {
        let id = self.spreadsheet.clone();
        let vr = call!(
            self,
            Call {
                method: "values.get",
                what: range,
                write: false,
                bytes: 0,
                retry_connection: true
            },
            |hub, d| hub
                .spreadsheets()
                .values_get(&id, range)
                .value_render_option(render)
        )?;
        Ok(vr.values.unwrap_or_default())
    }

    /// `values.update` of one block (see [`Encoded`]).
    pub async fn update(&mut self, range: &str, block: Encoded, input: &str) -> Result<()> {
        let Encoded { body, rows, cells } = block;
        let bytes = body.len() as u64;
        if self.plan(&json!({"request": "values.update", "range": range, "rows": rows, "cells": cells, "bytes": bytes})) {
            return Ok(());
        }
        let url = self.values_url(range, &[("valueInputOption", input)])?;
        let call = Call {
            method: "values.update",
            what: range,
            write: true,
            bytes,
            retry_connection: true,
        };
        self.send(call, google_sheets4::hyper::Method::PUT, &url, body)
            .await?;
        self.wrote(rows, cells);
        Ok(())
    }

    /// A values write of an encoded body (see [`send_json`]); the reply.
    async fn send(
        &mut self,
        call: Call<'_>,
        method: google_sheets4::hyper::Method,
        url: &reqwest::Url,
        body: Vec<u8>,
    ) -> Result<google_sheets4::hyper::body::Bytes> {
        call!(self, call, |hub, d| raw send_json(
            hub,
            &mut d,
            method,
            url.as_str(),
            body.into()
        )
        .await)
    }

    /// `values.batchUpdate` of several ranges (one request, atomic).
    pub async fn batch_update_values(
        &mut self,
        data: Vec<ValueRange>,
        input: &str,
        rows: u64,
    ) -> Result<()> {
        let cells: u64 = data
            .iter()
            .flat_map(|d| d.values.iter().flatten())
            .map(|r| r.len() as u64)
            .sum();
        let ranges = data.len();
        let body = BatchUpdateValuesRequest {
            data: Some(data),
            value_input_option: Some(input.to_owned()),
            ..Default::default()
        };
        let bytes = json_len(&body);
        if self.plan(&json!({"request": "values.batchUpdate", "ranges": ranges, "rows": rows, "cells": cells, "bytes": bytes})) {
            return Ok(());
        }
        let id = self.spreadsheet.clone();
        let what = format!("{ranges} ranges");
        call!(
            self,
            Call {
                method: "values.batchUpdate",
                what: &what,
                write: true,
                bytes,
                retry_connection: true
            },
            |hub, d| hub.spreadsheets().values_batch_update(body, &id)
        )?;
        self.wrote(rows, cells);
        Ok(())
    }

    /// `values.append` of one block with `INSERT_ROWS` after the table at
    /// `range`; returns the range Google says it wrote.
    pub async fn append(
        &mut self,
        range: &str,
        block: Encoded,
        input: &str,
    ) -> Result<Option<String>> {
        let Encoded { body, rows, cells } = block;
        let bytes = body.len() as u64;
        if self.plan(&json!({"request": "values.append", "range": range, "rows": rows, "cells": cells, "bytes": bytes})) {
            return Ok(None);
        }
        let url = self.values_url(
            &format!("{range}:append"),
            &[
                ("valueInputOption", input),
                ("insertDataOption", "INSERT_ROWS"),
            ],
        )?;
        let call = Call {
            method: "values.append",
            what: range,
            write: true,
            bytes,
            retry_connection: false,
        };
        let reply = self
            .send(call, google_sheets4::hyper::Method::POST, &url, body)
            .await?;
        self.wrote(rows, cells);
        let r: AppendValuesResponse = serde_json::from_slice(&reply).map_err(|e| {
            Error::new(
                Exit::Unavailable,
                format!(
                    "values.append {range}: Google Sheets' reply is not the JSON expected: {e}"
                ),
            )
        })?;
        Ok(r.updates.and_then(|u| u.updated_range))
    }

    /// The URL google-sheets4 builds for a values call on `range`: the range
    /// goes in the path as it is (the URL parser escapes what it must),
    /// then the parameters and `alt=json`.
    fn values_url(&self, range: &str, params: &[(&str, &str)]) -> Result<reqwest::Url> {
        reqwest::Url::parse_with_params(
            &format!(
                "{}v4/spreadsheets/{}/values/{range}",
                self.api_url, self.spreadsheet
            ),
            params.iter().copied().chain([("alt", "json")]),
        )
        .map_err(|e| Error::internal(format!("the URL of {range}: {e}")))
    }

    /// `values.batchClear`.
    pub async fn clear(&mut self, ranges: Vec<String>) -> Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let body = BatchClearValuesRequest {
            ranges: Some(ranges.clone()),
        };
        let bytes = json_len(&body);
        if self.plan(&json!({"request": "values.batchClear", "ranges": ranges, "bytes": bytes})) {
            return Ok(());
        }
        let id = self.spreadsheet.clone();
        let what = ranges.join(", ");
        call!(
            self,
            Call {
                method: "values.batchClear",
                what: &what,
                write: true,
                bytes,
                retry_connection: true
            },
            |hub, d| hub.spreadsheets().values_batch_clear(body, &id)
        )?;
        Ok(())
    }

    /// `spreadsheets.batchUpdate` (atomic); `requests` are JSON `Request`s.
    pub async fn batch_update(&mut self, requests: Vec<Value>) -> Result<Vec<Reply>> {
        let kinds: Vec<String> = requests
            .iter()
            .filter_map(|r| r.as_object().and_then(|o| o.keys().next().cloned()))
            .collect();
        // From text: FieldMask deserialises only from borrowed strings.
        let typed: Vec<Request> = requests
            .iter()
            .map(|r| serde_json::from_str(&r.to_string()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::internal(format!("batchUpdate request: {e}")))?;
        let body = BatchUpdateSpreadsheetRequest {
            requests: Some(typed),
            ..Default::default()
        };
        let bytes = json_len(&body);
        if self
            .plan(&json!({"request": "spreadsheets.batchUpdate", "kinds": kinds, "bytes": bytes}))
        {
            return Ok(Vec::new());
        }
        let id = self.spreadsheet.clone();
        let what = kinds.join(", ");
        let r = call!(
            self,
            Call {
                method: "spreadsheets.batchUpdate",
                what: &what,
                write: true,
                bytes,
                retry_connection: true
            },
            |hub, d| hub.spreadsheets().batch_update(body, &id)
        )?;
        Ok(r.replies.unwrap_or_default())
    }
}

/// Google's `{"error": {...}}` body: code, status, message.
fn error_parts(v: &Value) -> (Option<u16>, String, String) {
    let e = &v["error"];
    let code = e["code"].as_u64().and_then(|c| u16::try_from(c).ok());
    let status = e["status"].as_str().unwrap_or("").to_owned();
    let message = e["message"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| v["error_description"].as_str().map(str::to_owned))
        .unwrap_or_else(|| v.to_string());
    (code, status, message)
}

/// Maps a failed call to the exit code and message users see.
fn classify(
    e: &google_sheets4::Error,
    call: Call<'_>,
    retries: u32,
    last: Option<u16>,
    account: &str,
    api_url: &str,
) -> Error {
    use google_sheets4::Error as E;
    let what = format!("{} {}", call.method, call.what);
    let after = if retries > 0 {
        format!(" after {retries} retries")
    } else {
        String::new()
    };
    let (code, status, message) = match e {
        E::BadRequest(v) => error_parts(v),
        E::Failure(r) => (
            Some(r.status().as_u16()),
            r.status().canonical_reason().unwrap_or("").to_owned(),
            String::new(),
        ),
        E::HttpError(err) => {
            let hint = if call.retry_connection {
                String::new()
            } else {
                " (not retried: the request may have been applied; check the sheet before re-running)".to_owned()
            };
            return Error::new(
                Exit::Unavailable,
                format!("{what}: cannot reach {api_url}{after}: {err}{hint}"),
            );
        }
        E::MissingToken(err) => {
            let text = err.to_string();
            let lower = text.to_lowercase();
            let unreachable = ["connect", "cannot reach", "dns", "timed out", "timeout"]
                .iter()
                .any(|w| lower.contains(w));
            let exit = if unreachable {
                Exit::Unavailable
            } else {
                Exit::NoPerm
            };
            return Error::new(exit, format!("no access token for {account}: {text}"));
        }
        other => (last, String::new(), other.to_string()),
    };
    let code = code.or(last).unwrap_or(0);
    let text = format!("{what}: Google Sheets answered {code} {status}{after}: {message}");
    match code {
        401 => Error::new(
            Exit::NoPerm,
            format!("{text} (are the credentials valid and for this API?)"),
        ),
        403 => Error::new(
            Exit::NoPerm,
            format!("{text} (share the spreadsheet with {account} as an editor)"),
        ),
        429 => Error::new(
            Exit::TempFail,
            format!("{text} (write quota; try again later or lower --max-writes-per-minute)"),
        ),
        400..=499 => Error::data(text),
        _ => Error::new(Exit::Unavailable, text),
    }
}
