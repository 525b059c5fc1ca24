//! Helpers for the emulator's integration tests: the real binary on a
//! loopback port, driven over HTTP.
#![allow(dead_code, clippy::missing_panics_doc, missing_debug_implementations)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_etl-sheets-emulator");
pub const SA: &str = "etl-pipeline@etlkit-emulator.iam.gserviceaccount.com";

/// A running emulator; killed on drop.
pub struct Emu {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
}

impl Emu {
    pub fn start(args: &[&str]) -> Emu {
        Self::start_in(tempfile::tempdir().unwrap(), args)
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Emu {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env("ETL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "first stdout line: {first:?}"
        );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Emu {
            child,
            url,
            dir,
            http,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `keygen` against this emulator; returns the key file's JSON.
    pub fn keygen(&self, name: &str, extra: &[&str]) -> Value {
        let out = self.path(name);
        let st = Command::new(BIN)
            .args([
                "keygen",
                "--out",
                out.to_str().unwrap(),
                "--endpoint",
                &self.url,
            ])
            .args(extra)
            .env("ETL_LOG", "warn")
            .status()
            .unwrap();
        assert!(st.success(), "keygen failed: {st}");
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
    }

    /// An access token for `account` through the refresh-token grant.
    pub fn token_for(&self, account: &str) -> String {
        let name = format!("adc-{}.json", account.replace('@', "_"));
        let creds = self.keygen(&name, &["--authorized-user", "--email", account]);
        let (status, v) = self.form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", creds["client_id"].as_str().unwrap()),
                ("client_secret", creds["client_secret"].as_str().unwrap()),
                ("refresh_token", creds["refresh_token"].as_str().unwrap()),
            ],
        );
        assert_eq!(status, 200, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub fn form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body: String = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null),
        )
    }

    /// One request; `token` None sends no Authorization header.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, v) = self.call_full(method, path, token, body);
        (status, v)
    }

    pub fn call_full(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
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
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates spreadsheet `id` owned by `owner` through the admin endpoint.
    pub fn admin_create(&self, id: &str, owner: &str) -> Value {
        let (s, v) = self.call(
            "POST",
            "/_emulator/spreadsheets",
            None,
            Some(json!({"spreadsheetId": id, "owner": owner})),
        );
        assert_eq!(s, 200, "{v}");
        v
    }

    pub fn dump(&self, id: &str, sheet: &str) -> Value {
        let (s, v) = self.call(
            "GET",
            &format!("/_emulator/spreadsheets/{id}/sheets/{sheet}"),
            None,
            None,
        );
        assert_eq!(s, 200, "{v}");
        v
    }

    pub fn log_lines(&self, name: &str) -> Vec<Value> {
        read_ndjson(&self.path(name))
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_ndjson(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
