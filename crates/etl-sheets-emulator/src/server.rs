//! The HTTP server: routing, authentication, quotas, fault injection, the
//! request log, the admin endpoints and the state file.
//!
//! Requests are served one at a time under one lock (each is atomic, as a
//! reader of a Google spreadsheet sees each API call applied whole);
//! injected latency is spent before the lock is taken.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{Auth, Bearer, Key, User};
use crate::book::{self, Ids};
use crate::error::ApiError;
use crate::events;
use crate::fields;
use crate::model::{Access, Input, Render, Spreadsheet};
use crate::values::{self, Major, WriteOpts};

/// How the server behaves (from the command line).
#[derive(Debug, Clone)]
pub struct Config {
    pub state: Option<PathBuf>,
    pub read_quota: u32,
    pub write_quota: u32,
    pub fail_rate: f64,
    pub fail_status: u16,
    pub latency: Duration,
    pub seed: Option<u64>,
    pub request_log: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub token_lifetime: i64,
    pub retry_after: Option<u64>,
}

impl Default for Config {
    /// Google's limits and quotas, in memory, no faults, no request log.
    fn default() -> Self {
        Config {
            state: None,
            read_quota: 60,
            write_quota: 60,
            fail_rate: 0.0,
            fail_status: 503,
            latency: Duration::ZERO,
            seed: None,
            request_log: None,
            max_body_bytes: 10 * 1024 * 1024,
            token_lifetime: 3599,
            retry_after: None,
        }
    }
}

/// Starts an emulator on a free loopback port in a background thread (for
/// Rust tests of clients): its base URL (`http://127.0.0.1:PORT`). It
/// serves until the process ends.
pub fn spawn(cfg: Config) -> std::io::Result<String> {
    let app = Arc::new(Emulator::new(cfg).map_err(std::io::Error::other)?);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("etl-sheets-emulator".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build();
            match rt {
                Ok(rt) => {
                    let served =
                        rt.block_on(serve(app, SocketAddr::from(([127, 0, 0, 1], 0)), |a| {
                            let _ = tx.send(Ok(a));
                        }));
                    if let Err(e) = served {
                        let _ = tx.send(Err(e));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|e| std::io::Error::other(format!("the emulator did not start: {e}")))??;
    Ok(format!("http://{addr}"))
}

/// What the state file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Store {
    #[serde(default)]
    pub spreadsheets: BTreeMap<String, Spreadsheet>,
    #[serde(default)]
    pub auth: Auth,
}

struct Inner {
    store: Store,
    quotas: HashMap<(String, bool), VecDeque<Instant>>,
    rng: StdRng,
    log: Option<File>,
    requests: u64,
}

impl Ids for StdRng {
    fn sheet_id(&mut self) -> i64 {
        i64::from(self.gen_range(1..=i32::MAX))
    }
}

fn random_string(rng: &mut StdRng, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// The running emulator.
pub struct Emulator {
    cfg: Config,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The outcome of one request, before it becomes an HTTP response.
struct Outcome {
    status: u16,
    body: Value,
    account: Option<String>,
    kind: &'static str,
    fault: bool,
    mutated: bool,
}

impl Outcome {
    fn ok(body: Value, kind: &'static str) -> Self {
        Outcome {
            status: 200,
            body,
            account: None,
            kind,
            fault: false,
            mutated: false,
        }
    }
    fn err(e: &ApiError, kind: &'static str) -> Self {
        Outcome {
            status: e.code,
            body: e.body(),
            account: None,
            kind,
            fault: false,
            mutated: false,
        }
    }
}

/// The query string as (name, value) pairs, in order.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn flag(&self, k: &str) -> bool {
        self.get(k) == Some("true")
    }
}

/// A Sheets API route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Create,
    Get(String),
    BatchUpdate(String),
    ValuesGet(String, String),
    ValuesUpdate(String, String),
    ValuesAppend(String, String),
    ValuesClear(String, String),
    ValuesBatchGet(String),
    ValuesBatchUpdate(String),
    ValuesBatchClear(String),
}

impl Route {
    fn is_write(&self) -> bool {
        !matches!(
            self,
            Route::Get(_) | Route::ValuesGet(..) | Route::ValuesBatchGet(_)
        )
    }
    fn id(&self) -> Option<&str> {
        match self {
            Route::Create => None,
            Route::Get(id)
            | Route::BatchUpdate(id)
            | Route::ValuesGet(id, _)
            | Route::ValuesUpdate(id, _)
            | Route::ValuesAppend(id, _)
            | Route::ValuesClear(id, _)
            | Route::ValuesBatchGet(id)
            | Route::ValuesBatchUpdate(id)
            | Route::ValuesBatchClear(id) => Some(id),
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Matches `rest` (the raw path after `/v4/spreadsheets`).
fn route(method: &Method, rest: &str) -> Option<Route> {
    if rest.is_empty() || rest == "/" {
        return (method == Method::POST).then_some(Route::Create);
    }
    let rest = rest.strip_prefix('/')?;
    let (id_part, tail) = match rest.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let Some(tail) = tail else {
        return match (method, id_part.strip_suffix(":batchUpdate")) {
            (&Method::POST, Some(id)) => Some(Route::BatchUpdate(decode(id))),
            (&Method::GET, None) => Some(Route::Get(decode(id_part))),
            _ => None,
        };
    };
    let id = decode(id_part);
    match (method, tail) {
        (&Method::GET, "values:batchGet") => return Some(Route::ValuesBatchGet(id)),
        (&Method::POST, "values:batchUpdate") => return Some(Route::ValuesBatchUpdate(id)),
        (&Method::POST, "values:batchClear") => return Some(Route::ValuesBatchClear(id)),
        _ => {}
    }
    let range = tail.strip_prefix("values/")?;
    match *method {
        Method::GET => Some(Route::ValuesGet(id, decode(range))),
        Method::PUT => Some(Route::ValuesUpdate(id, decode(range))),
        Method::POST => {
            if let Some(r) = range.strip_suffix(":append") {
                Some(Route::ValuesAppend(id, decode(r)))
            } else {
                range
                    .strip_suffix(":clear")
                    .map(|r| Route::ValuesClear(id, decode(r)))
            }
        }
        _ => None,
    }
}

/// How many cells a response wrote or returned (for the request log).
fn cells_of(v: &Value) -> u64 {
    let count_values = |vr: &Value| -> u64 {
        vr.get("values")
            .and_then(Value::as_array)
            .map_or(0, |rows| {
                rows.iter()
                    .map(|r| r.as_array().map_or(0, Vec::len) as u64)
                    .sum()
            })
    };
    if let Some(n) = v.get("updatedCells").and_then(Value::as_u64) {
        return n;
    }
    if let Some(n) = v.get("totalUpdatedCells").and_then(Value::as_u64) {
        return n;
    }
    if let Some(n) = v.pointer("/updates/updatedCells").and_then(Value::as_u64) {
        return n;
    }
    if let Some(ranges) = v.get("valueRanges").and_then(Value::as_array) {
        return ranges.iter().map(count_values).sum();
    }
    count_values(v)
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

impl Emulator {
    /// Loads `--state` (when it exists) and opens `--request-log`.
    pub fn new(cfg: Config) -> Result<Self, String> {
        let store = match &cfg.state {
            Some(p) if p.exists() => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not an emulator state file: {e}", p.display()))?
            }
            _ => Store::default(),
        };
        let log = match &cfg.request_log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))?,
            ),
            None => None,
        };
        let rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Ok(Emulator {
            cfg,
            inner: Mutex::new(Inner {
                store,
                quotas: HashMap::new(),
                rng,
                log,
                requests: 0,
            }),
        })
    }

    /// How many requests were served.
    pub fn requests(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.requests)
    }

    fn persist(&self, inner: &Inner) {
        let Some(path) = &self.cfg.state else { return };
        match serde_json::to_vec(&inner.store) {
            Ok(bytes) => {
                if let Err(e) = etl_core::fsutil::atomic_write(path, &bytes) {
                    events::state_write_failed(path, &e.to_string());
                }
            }
            Err(e) => events::state_write_failed(path, &e.to_string()),
        }
    }

    fn dispatch(
        &self,
        inner: &mut Inner,
        method: &Method,
        path: &str,
        query: &Query,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Outcome {
        if let Some(rest) = path.strip_prefix("/v4/spreadsheets") {
            let Some(r) = route(method, rest) else {
                return Outcome::err(&ApiError::not_found(), "api");
            };
            return self.api(inner, &r, query, headers, body);
        }
        if matches!(path, "/token" | "/o/oauth2/token" | "/oauth2/v4/token")
            && method == Method::POST
        {
            return self.token(inner, body);
        }
        if matches!(path, "/tokeninfo" | "/oauth2/v3/tokeninfo") {
            let form = Query::parse(Some(&String::from_utf8_lossy(body)));
            let token = query
                .get("access_token")
                .or_else(|| form.get("access_token"))
                .unwrap_or("");
            return match inner.store.auth.tokeninfo(token, unix_now()) {
                Ok(v) => Outcome::ok(v, "token"),
                Err(e) => Outcome {
                    status: e.status,
                    body: e.body(),
                    account: None,
                    kind: "token",
                    fault: false,
                    mutated: false,
                },
            };
        }
        if let Some(rest) = path.strip_prefix("/_emulator/") {
            return match Self::admin(inner, method, rest, body) {
                Ok((v, mutated)) => Outcome {
                    mutated,
                    ..Outcome::ok(v, "admin")
                },
                Err(e) => Outcome::err(&e, "admin"),
            };
        }
        Outcome::err(&ApiError::not_found(), "api")
    }

    fn token(&self, inner: &mut Inner, body: &[u8]) -> Outcome {
        let form: HashMap<String, String> = Query::parse(Some(&String::from_utf8_lossy(body)))
            .0
            .into_iter()
            .collect();
        let Inner { store, rng, .. } = inner;
        let mut next = || format!("ya29.emu-{}", random_string(rng, 43));
        match store
            .auth
            .token(&form, unix_now(), self.cfg.token_lifetime, &mut next)
        {
            Ok(v) => {
                let account = store
                    .auth
                    .tokens
                    .get(v["access_token"].as_str().unwrap_or(""))
                    .map(|t| t.account.clone());
                Outcome {
                    account,
                    mutated: true,
                    ..Outcome::ok(v, "token")
                }
            }
            Err(e) => Outcome {
                status: e.status,
                body: e.body(),
                account: form.get("client_id").cloned(),
                kind: "token",
                fault: false,
                mutated: false,
            },
        }
    }

    fn api(
        &self,
        inner: &mut Inner,
        r: &Route,
        q: &Query,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Outcome {
        let kind = if r.is_write() { "write" } else { "read" };
        // Injected faults come first: the request never reached the service.
        if self.cfg.fail_rate > 0.0 && inner.rng.gen::<f64>() < self.cfg.fail_rate {
            let e = match self.cfg.fail_status {
                429 => ApiError::quota(
                    if r.is_write() { "Write" } else { "Read" },
                    if r.is_write() {
                        self.cfg.write_quota
                    } else {
                        self.cfg.read_quota
                    },
                ),
                500 => ApiError::new(500, "INTERNAL", "Internal error encountered."),
                _ => ApiError::new(503, "UNAVAILABLE", "The service is currently unavailable."),
            };
            return Outcome {
                fault: true,
                ..Outcome::err(&e, kind)
            };
        }
        let (account, write_scope) = match authorize(inner, headers, q, kind) {
            Ok(x) => x,
            Err(o) => return o,
        };
        let with_account = |mut o: Outcome, account: &str| {
            o.account = Some(account.to_owned());
            o
        };
        // Per-user, per-minute quotas (a sliding 60-second window).
        let limit = if r.is_write() {
            self.cfg.write_quota
        } else {
            self.cfg.read_quota
        };
        if limit > 0 {
            let now = Instant::now();
            let window = inner
                .quotas
                .entry((account.clone(), r.is_write()))
                .or_default();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                window.pop_front();
            }
            if window.len() >= limit as usize {
                let e = ApiError::quota(if r.is_write() { "Write" } else { "Read" }, limit);
                return with_account(Outcome::err(&e, kind), &account);
            }
            window.push_back(now);
        }
        if r.is_write() && !write_scope {
            return with_account(
                Outcome::err(&ApiError::insufficient_scopes(), kind),
                &account,
            );
        }
        let result = Self::execute(inner, r, q, body, &account);
        let mut o = match result {
            Ok((mut v, mutated)) => {
                if let Some(f) = q.get("fields") {
                    match fields::parse(f) {
                        Ok(m) => fields::apply(&mut v, &m),
                        Err(e) => {
                            return with_account(
                                Outcome::err(&ApiError::invalid(e), kind),
                                &account,
                            )
                        }
                    }
                }
                Outcome {
                    mutated,
                    ..Outcome::ok(v, kind)
                }
            }
            Err(e) => Outcome::err(&e, kind),
        };
        o.account = Some(account);
        o
    }

    fn execute(
        inner: &mut Inner,
        r: &Route,
        q: &Query,
        body: &[u8],
        account: &str,
    ) -> Result<(Value, bool), ApiError> {
        let body = if r.is_write() {
            parse_body(body)?
        } else {
            json!({})
        };
        let Inner { store, rng, .. } = inner;
        if *r == Route::Create {
            let id = loop {
                let id = random_string(rng, 44);
                if !store.spreadsheets.contains_key(&id) {
                    break id;
                }
            };
            let book = book::create(id.clone(), account, &body, rng)?;
            let v = book::render(&book, &[], false)?;
            store.spreadsheets.insert(id, book);
            return Ok((v, true));
        }
        let id = r.id().unwrap_or_default();
        let book = store
            .spreadsheets
            .get_mut(id)
            .ok_or_else(ApiError::not_found)?;
        let access = book.access(account);
        if access == Access::None || (r.is_write() && access < Access::Write) {
            return Err(ApiError::permission_denied());
        }
        let major = || Major::parse(q.get("majorDimension"));
        let write_opts = || -> Result<WriteOpts, ApiError> {
            Ok(WriteOpts {
                input: Input::parse(q.get("valueInputOption"))?,
                include_values: q.flag("includeValuesInResponse"),
                render: Render::parse(
                    q.get("responseValueRenderOption"),
                    q.get("responseDateTimeRenderOption"),
                )?,
            })
        };
        let render = || Render::parse(q.get("valueRenderOption"), q.get("dateTimeRenderOption"));
        Ok(match r {
            Route::Create => unreachable!("handled above"),
            Route::Get(_) => (
                book::render(book, &q.all("ranges"), q.flag("includeGridData"))?,
                false,
            ),
            Route::BatchUpdate(_) => {
                let mut copy = book.clone();
                let v = book::batch_update(&mut copy, &body, rng)?;
                *book = copy;
                (v, true)
            }
            Route::ValuesGet(_, range) => (values::get(book, range, major()?, render()?)?, false),
            Route::ValuesBatchGet(_) => (
                values::batch_get(book, &q.all("ranges"), major()?, render()?)?,
                false,
            ),
            Route::ValuesUpdate(_, range) => {
                (values::update(book, range, &body, write_opts()?)?, true)
            }
            Route::ValuesAppend(_, range) => {
                let insert = match q.get("insertDataOption") {
                    None | Some("OVERWRITE") => false,
                    Some("INSERT_ROWS") => true,
                    Some(other) => {
                        return Err(ApiError::invalid(format!(
                            "Invalid value at 'insert_data_option' (type.googleapis.com/google.apps.sheets.v4.InsertDataOption), \"{other}\""
                        )))
                    }
                };
                (
                    values::append(book, range, &body, insert, write_opts()?)?,
                    true,
                )
            }
            Route::ValuesClear(_, range) => (values::clear(book, range)?, true),
            Route::ValuesBatchUpdate(_) => {
                let mut copy = book.clone();
                let v = values::batch_update(&mut copy, &body)?;
                *book = copy;
                (v, true)
            }
            Route::ValuesBatchClear(_) => (values::batch_clear(book, &body)?, true),
        })
    }

    #[allow(clippy::too_many_lines)] // the admin route table, one arm per endpoint
    fn admin(
        inner: &mut Inner,
        method: &Method,
        rest: &str,
        body: &[u8],
    ) -> Result<(Value, bool), ApiError> {
        let body = if *method == Method::POST {
            parse_body(body)?
        } else {
            json!({})
        };
        let segments: Vec<String> = rest.split('/').map(decode).collect();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let Inner {
            store, rng, quotas, ..
        } = inner;
        let str_list = |v: &Value, k: &str| values::string_list(v.get(k));
        match (method, seg.as_slice()) {
            (&Method::GET, ["health"]) => Ok((
                json!({"ok": true, "spreadsheets": store.spreadsheets.len()}),
                false,
            )),
            (&Method::POST, ["reset"]) => {
                store.spreadsheets.clear();
                store.auth.tokens.clear();
                quotas.clear();
                Ok((json!({}), true))
            }
            (&Method::POST, ["keys"]) => {
                let key: Key = serde_json::from_value(body)
                    .map_err(|e| ApiError::invalid(format!("Invalid key: {e}")))?;
                store
                    .auth
                    .keys
                    .retain(|k| k.private_key_id != key.private_key_id);
                let out =
                    json!({"client_email": key.client_email, "private_key_id": key.private_key_id});
                store.auth.keys.push(key);
                Ok((out, true))
            }
            (&Method::POST, ["authorized-users"]) => {
                let user: User = serde_json::from_value(body)
                    .map_err(|e| ApiError::invalid(format!("Invalid authorized user: {e}")))?;
                store.auth.users.retain(|u| u.client_id != user.client_id);
                let out = json!({"client_id": user.client_id, "account": user.account});
                store.auth.users.push(user);
                Ok((out, true))
            }
            (&Method::POST, ["tokens", "expire"]) => {
                let n = store.auth.tokens.len();
                store.auth.tokens.clear();
                Ok((json!({"expired": n}), true))
            }
            (&Method::GET, ["spreadsheets"]) => {
                let list: Vec<Value> = store
                    .spreadsheets
                    .values()
                    .map(|b| {
                        json!({"spreadsheetId": b.id, "title": b.title, "owner": b.owner,
                            "sheets": b.sheets.iter().map(|s| s.title.clone()).collect::<Vec<_>>()})
                    })
                    .collect();
                Ok((json!({"spreadsheets": list}), false))
            }
            (&Method::POST, ["spreadsheets"]) => {
                let owner = body
                    .get("owner")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::invalid("'owner' (an account e-mail) is required"))?
                    .to_owned();
                let id = match body.get("spreadsheetId").and_then(Value::as_str) {
                    Some(id) if id.is_empty() || id.contains('/') => {
                        return Err(ApiError::invalid(format!("Invalid spreadsheetId: {id:?}")))
                    }
                    Some(id) => id.to_owned(),
                    None => random_string(rng, 44),
                };
                if store.spreadsheets.contains_key(&id) {
                    return Err(ApiError::new(
                        409,
                        "ALREADY_EXISTS",
                        format!("Spreadsheet {id} already exists"),
                    ));
                }
                let mut b = book::create(id.clone(), &owner, &body, rng)?;
                b.writers = str_list(&body, "writers");
                b.readers = str_list(&body, "readers");
                let v = book::render(&b, &[], false)?;
                store.spreadsheets.insert(id, b);
                Ok((v, true))
            }
            (&Method::GET, ["spreadsheets", id]) => {
                let b = store
                    .spreadsheets
                    .get(*id)
                    .ok_or_else(ApiError::not_found)?;
                let sheets: Vec<Value> = (0..b.sheets.len())
                    .map(|i| book::dump_sheet(b, i))
                    .collect();
                Ok((
                    json!({"spreadsheetId": b.id, "title": b.title, "owner": b.owner, "writers": b.writers,
                    "readers": b.readers, "sheets": sheets}),
                    false,
                ))
            }
            (&Method::GET, ["spreadsheets", id, "sheets", title]) => {
                let b = store
                    .spreadsheets
                    .get(*id)
                    .ok_or_else(ApiError::not_found)?;
                let i = b
                    .sheet_index_by_title(title)
                    .ok_or_else(ApiError::not_found)?;
                Ok((book::dump_sheet(b, i), false))
            }
            (&Method::POST, ["spreadsheets", id, "share"]) => {
                let b = store
                    .spreadsheets
                    .get_mut(*id)
                    .ok_or_else(ApiError::not_found)?;
                b.writers.extend(str_list(&body, "writers"));
                b.readers.extend(str_list(&body, "readers"));
                Ok((json!({"writers": b.writers, "readers": b.readers}), true))
            }
            _ => Err(ApiError::not_found()),
        }
    }

    fn log(
        inner: &mut Inner,
        method: &Method,
        path: &str,
        query: Option<&str>,
        o: &Outcome,
        ms: f64,
        bytes: usize,
    ) {
        inner.requests += 1;
        events::request(method.as_str(), path, o.status, ms);
        let Some(file) = inner.log.as_mut() else {
            return;
        };
        let mut line = json!({
            "ts": jiff::Timestamp::now().to_string(),
            "method": method.as_str(),
            "path": path,
            "status": o.status,
            "kind": o.kind,
            "cells": if o.status == 200 { cells_of(&o.body) } else { 0 },
            "bytes": bytes,
            "ms": (ms * 10.0).round() / 10.0,
        });
        if let Some(q) = query {
            line["query"] = json!(q);
        }
        if let Some(a) = &o.account {
            line["account"] = json!(a);
        }
        if o.fault {
            line["fault"] = json!(true);
        }
        if o.status != 200 {
            line["error"] = o
                .body
                .pointer("/error/status")
                .or_else(|| o.body.get("error"))
                .cloned()
                .unwrap_or(Value::Null);
        }
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = file.write_all(text.as_bytes()) {
            events::request_log_failed(&e.to_string());
        }
    }
}

/// The account and write permission of a request's bearer token, or the
/// 401/403 answer.
fn authorize(
    inner: &Inner,
    headers: &HeaderMap,
    q: &Query,
    kind: &'static str,
) -> Result<(String, bool), Outcome> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| q.get("access_token"))
        .or_else(|| q.get("oauth_token"));
    match inner.store.auth.bearer(bearer, unix_now()) {
        Bearer::Missing => {
            let e = ApiError::new(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            );
            Err(Outcome::err(&e, kind))
        }
        Bearer::Invalid => Err(Outcome::err(&ApiError::unauthenticated(), kind)),
        Bearer::Valid {
            sheets: false,
            account,
            ..
        } => {
            let e = ApiError::insufficient_scopes();
            let mut o = Outcome::err(&e, kind);
            o.account = Some(account);
            Err(o)
        }
        Bearer::Valid { account, write, .. } => Ok((account, write)),
    }
}

/// Serves one HTTP request.
async fn handle(State(app): State<Arc<Emulator>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let raw_path = parts.uri.path().to_owned();
    let path = if raw_path.starts_with("/v4/") {
        raw_path.clone()
    } else {
        decode(&raw_path)
    };
    let query = parts.uri.query().map(str::to_owned);
    if !app.cfg.latency.is_zero() && path.starts_with("/v4/") {
        tokio::time::sleep(app.cfg.latency).await;
    }
    let limit = app.cfg.max_body_bytes;
    let bytes = to_bytes(body, limit.saturating_add(1)).await;
    let body_len = bytes
        .as_ref()
        .map_or(limit.saturating_add(1), axum::body::Bytes::len);
    let Ok(mut inner) = app.inner.lock() else {
        return respond(
            500,
            &ApiError::new(500, "INTERNAL", "Internal error encountered.").body(),
            None,
        );
    };
    let outcome = match bytes {
        Ok(b) if b.len() <= limit => {
            let q = Query::parse(query.as_deref());
            app.dispatch(&mut inner, &method, &path, &q, &parts.headers, &b)
        }
        _ => Outcome::err(
            &ApiError::invalid(format!(
                "Request payload size exceeds the limit: {limit} bytes."
            )),
            "api",
        ),
    };
    if outcome.mutated {
        app.persist(&inner);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Emulator::log(
        &mut inner,
        &method,
        &decode(&raw_path),
        query.as_deref(),
        &outcome,
        ms,
        body_len,
    );
    drop(inner);
    let retry_after = match outcome.status {
        429 | 503 => app.cfg.retry_after,
        _ => None,
    };
    respond(outcome.status, &outcome.body, retry_after)
}

fn respond(status: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// Binds `listen`, prints the address, serves until SIGTERM or SIGINT.
pub async fn serve(
    app: Arc<Emulator>,
    listen: SocketAddr,
    announce: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    announce(addr);
    let router = axum::Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(route(&p, ""), Some(Route::Create));
        assert_eq!(route(&g, "/abc"), Some(Route::Get("abc".into())));
        assert_eq!(
            route(&p, "/abc:batchUpdate"),
            Some(Route::BatchUpdate("abc".into()))
        );
        assert_eq!(
            route(&g, "/abc/values/Sheet1!A1:B2"),
            Some(Route::ValuesGet("abc".into(), "Sheet1!A1:B2".into()))
        );
        assert_eq!(
            route(&p, "/abc/values/'My%20Sheet'!A1:append"),
            Some(Route::ValuesAppend("abc".into(), "'My Sheet'!A1".into()))
        );
        assert_eq!(
            route(&p, "/abc/values/A1:B2:clear"),
            Some(Route::ValuesClear("abc".into(), "A1:B2".into()))
        );
        assert_eq!(
            route(&Method::PUT, "/abc/values/A1"),
            Some(Route::ValuesUpdate("abc".into(), "A1".into()))
        );
        assert_eq!(
            route(&g, "/abc/values:batchGet"),
            Some(Route::ValuesBatchGet("abc".into()))
        );
        assert_eq!(
            route(&p, "/abc/values:batchClear"),
            Some(Route::ValuesBatchClear("abc".into()))
        );
        assert_eq!(route(&Method::DELETE, "/abc"), None);
        assert_eq!(route(&p, "/abc/values/A1"), None);
    }

    #[test]
    fn query_strings() {
        let q = Query::parse(Some(
            "ranges=A1%3AB2&ranges=Sheet2&fields=sheets(properties)&x=a+b",
        ));
        assert_eq!(q.all("ranges"), vec!["A1:B2", "Sheet2"]);
        assert_eq!(q.get("x"), Some("a b"));
    }
}
