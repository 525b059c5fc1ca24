//! Helpers for etl-push-sheets' tests: a real etl-sheets-emulator (the
//! library's server, on a loopback port, in a thread of the test process),
//! a key made by its keygen, and the real etl-push-sheets binary.
#![allow(dead_code, clippy::missing_panics_doc, missing_debug_implementations)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use etl_testkit::Cmd;
pub use etl_testkit::Out;

use etl_sheets_emulator::server::{self, Config};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-push-sheets");
pub const SA: &str = "etl-pipeline@etlkit-emulator.iam.gserviceaccount.com";

pub fn config() -> Config {
    Config {
        seed: Some(1),
        ..Config::default()
    }
}

pub struct Emu {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
}

impl Emu {
    /// An emulator with `f` applied to the default config; its request log
    /// is `requests.ndjson` in the scratch directory.
    pub fn start(f: impl FnOnce(&mut Config)) -> Emu {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config();
        cfg.request_log = Some(dir.path().join("requests.ndjson"));
        f(&mut cfg);
        let url = server::spawn(cfg).unwrap();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let emu = Emu { url, dir, http };
        etl_sheets_emulator::keygen::service_account(&emu.path("key.json"), &emu.url, SA, false)
            .unwrap();
        emu
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, path, None, body)
    }

    /// A request to the emulator (with a bearer token for the Sheets API).
    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(&r.text().unwrap()).unwrap_or(Value::Null),
        )
    }

    /// A spreadsheet owned by the test service account.
    pub fn create(&self, id: &str) {
        self.create_with(json!({"spreadsheetId": id, "owner": SA}));
    }

    pub fn create_with(&self, body: Value) {
        let (s, v) = self.admin("POST", "/_emulator/spreadsheets", Some(body));
        assert_eq!(s, 200, "{v}");
    }

    /// The sheet as a user sees it (formatted values, trailing blanks trimmed).
    pub fn sheet(&self, id: &str, title: &str) -> Value {
        self.dump(id, title)["formatted"].clone()
    }

    pub fn dump(&self, id: &str, title: &str) -> Value {
        let t: String = title.replace(' ', "%20");
        let (s, v) = self.admin(
            "GET",
            &format!("/_emulator/spreadsheets/{id}/sheets/{t}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v
    }

    pub fn sheets(&self, id: &str) -> Vec<Value> {
        let (s, v) = self.admin("GET", &format!("/_emulator/spreadsheets/{id}"), None);
        assert_eq!(s, 200, "{v}");
        v["sheets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["properties"].clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("requests.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Sheets API requests that write (not token, not admin).
    pub fn writes(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["kind"] == "write")
            .collect()
    }

    /// An access token of another user (authorized-user credentials made
    /// by keygen), shared on spreadsheet `id` as a writer or a reader.
    pub fn user_token(&self, id: &str, email: &str, writer: bool) -> String {
        let file = self.path(&format!("{email}.json"));
        etl_sheets_emulator::keygen::authorized_user(&file, &self.url, email).unwrap();
        let role = if writer { "writers" } else { "readers" };
        let (s, v) = self.admin(
            "POST",
            &format!("/_emulator/spreadsheets/{id}/share"),
            Some(json!({ role: [email] })),
        );
        assert_eq!(s, 200, "{v}");
        let creds: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let token: Value = self
            .http
            .post(format!("{}/token", self.url))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", creds["client_id"].as_str().unwrap()),
                ("client_secret", creds["client_secret"].as_str().unwrap()),
                ("refresh_token", creds["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .unwrap()
            .text()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        token["access_token"].as_str().unwrap().to_owned()
    }

    /// A Sheets API call with `token`: status and reply.
    pub fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            method,
            &format!("/v4/spreadsheets/{path}"),
            Some(token),
            body,
        )
    }

    /// A `batchUpdate` of spreadsheet "book" with `token`, which must
    /// succeed; its reply.
    pub fn batch(&self, token: &str, requests: Value) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("requests".into(), requests);
        let (s, v) = self.api(token, "POST", "book:batchUpdate", Some(Value::Object(body)));
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Clears the request log (to look at one run only).
    pub fn forget(&self) {
        std::fs::write(self.path("requests.ndjson"), "").unwrap();
    }

    /// Runs etl-push-sheets against this emulator with the test key.
    pub fn push(&self, args: &[&str], stdin: &str) -> Out {
        self.push_with(args, stdin, &self.path("key.json"))
    }

    pub fn push_with(&self, args: &[&str], stdin: &str, key: &Path) -> Out {
        Cmd::new(BIN)
            .args(["--api-url", &self.url, "--retry-base-ms", "20"])
            .args(args)
            .current_dir(self.dir.path())
            .env("GOOGLE_APPLICATION_CREDENTIALS", key)
            .env_remove("ETL_SPREADSHEET_ID")
            .env_remove("ETL_SHEET")
            .stdin(stdin)
            .run()
    }
}

/// `{"id":1,...}` lines.
pub fn ndjson(records: &[Value]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out
}
