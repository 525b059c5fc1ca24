//! The emulator over HTTP: auth, access, error bodies, quotas, faults,
//! limits, the request log, admin endpoints, the state file, SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::Emu;
use serde_json::{json, Value};

const BOB: &str = "bob@example.com";

fn values_path(id: &str, range: &str) -> String {
    format!("/v4/spreadsheets/{id}/values/{range}")
}

#[test]
fn tokens_and_google_error_bodies() {
    let emu = Emu::start(&[]);
    emu.admin_create("s1", BOB);
    // No credential at all.
    let (s, v) = emu.call("GET", "/v4/spreadsheets/s1", None, None);
    assert_eq!(s, 401);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(v["error"]["code"], 401);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Request is missing required authentication credential."));
    // A token the emulator never issued.
    let (s, v) = emu.call("GET", "/v4/spreadsheets/s1", Some("ya29.forged"), None);
    assert_eq!(s, 401);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Request had invalid authentication credentials."));
    // A valid token of an account without access.
    let eve = emu.token_for("eve@example.com");
    let (s, v) = emu.call("GET", "/v4/spreadsheets/s1", Some(&eve), None);
    assert_eq!(
        (s, v),
        (
            403,
            json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}})
        )
    );
    // Unknown spreadsheet.
    let (s, v) = emu.call("GET", "/v4/spreadsheets/nope", Some(&eve), None);
    assert_eq!(
        (s, v),
        (
            404,
            json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})
        )
    );
    // Bad grants at the token endpoint.
    let (s, v) = emu.form("/token", &[("grant_type", "password")]);
    assert_eq!(
        (s, v),
        (
            400,
            json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type: password"})
        )
    );
    let (s, v) = emu.form(
        "/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", "a.b.c"),
        ],
    );
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_grant");
    let (s, v) = emu.form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "x"),
            ("client_secret", "y"),
            ("refresh_token", "z"),
        ],
    );
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
}

#[test]
fn sharing_and_read_only_access() {
    let emu = Emu::start(&[]);
    emu.admin_create("s1", BOB);
    let bob = emu.token_for(BOB);
    let ann = emu.token_for("ann@example.com");
    let (s, _) = emu.call(
        "POST",
        "/_emulator/spreadsheets/s1/share",
        None,
        Some(json!({"readers": ["ann@example.com"]})),
    );
    assert_eq!(s, 200);
    let body = json!({"values": [["x"]]});
    let (s, v) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "A1")),
        Some(&bob),
        Some(body.clone()),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = emu.call("GET", &values_path("s1", "A1"), Some(&ann), None);
    assert_eq!((s, &v["values"]), (200, &json!([["x"]])));
    let (s, v) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "A1")),
        Some(&ann),
        Some(body),
    );
    assert_eq!(
        (s, v["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
}

#[test]
fn values_api_over_http() {
    let emu = Emu::start(&[]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let t = Some(t.as_str());
    // valueInputOption is required for writes.
    let (s, v) = emu.call(
        "PUT",
        &values_path("s1", "A1"),
        t,
        Some(json!({"values": [[1]]})),
    );
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (
            400,
            Some("'valueInputOption' is required but not specified")
        )
    );
    // A quoted sheet name with a space, percent-encoded as clients send it.
    let (s, v) = emu.call(
        "POST",
        "/v4/spreadsheets/s1:batchUpdate",
        t,
        Some(json!({"requests": [{"addSheet": {"properties": {"title": "Q1 '24"}}}]})),
    );
    assert_eq!(s, 200, "{v}");
    let range = "'Q1%20''24'!A1:C3";
    let (s, v) = emu.call(
        "PUT",
        &format!(
            "{}?valueInputOption=USER_ENTERED&includeValuesInResponse=true",
            values_path("s1", range)
        ),
        t,
        Some(json!({"values": [["id", "amount"], ["007", "1,234.50"], ["=B2*2"]]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["updatedRange"], "'Q1 ''24'!A1:B3");
    assert_eq!(v["updatedCells"], 5);
    assert_eq!(
        v["updatedData"]["values"],
        json!([["id", "amount"], ["7", "1,234.50"], ["2469"]])
    );
    let (_, v) = emu.call(
        "GET",
        &format!(
            "{}?valueRenderOption=UNFORMATTED_VALUE&majorDimension=COLUMNS",
            values_path("s1", "'Q1%20''24'!A:B")
        ),
        t,
        None,
    );
    assert_eq!(
        v,
        json!({"range": "'Q1 ''24'!A1:B1000", "majorDimension": "COLUMNS", "values": [["id", 7, 2469], ["amount", 1234.5]]})
    );
    // Append with INSERT_ROWS after the detected table.
    let (s, v) = emu.call(
        "POST",
        &format!(
            "{}:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS",
            values_path("s1", "'Q1%20''24'!A1")
        ),
        t,
        Some(json!({"values": [["8", 9]]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tableRange"], "'Q1 ''24'!A1:B3");
    assert_eq!(v["updates"]["updatedRange"], "'Q1 ''24'!A4:B4");
    // batchGet and fields.
    let (_, v) = emu.call("GET", "/v4/spreadsheets/s1/values:batchGet?ranges=%27Q1%20%27%2724%27!A4:B4&ranges=Sheet1!A1&fields=valueRanges(values)", t, None);
    assert_eq!(v, json!({"valueRanges": [{"values": [["8", "9"]]}, {}]}));
    let (_, v) = emu.call(
        "GET",
        "/v4/spreadsheets/s1?fields=sheets.properties(title,gridProperties.rowCount)",
        t,
        None,
    );
    assert_eq!(
        v,
        json!({"sheets": [{"properties": {"title": "Sheet1", "gridProperties": {"rowCount": 1000}}}, {"properties": {"title": "Q1 '24", "gridProperties": {"rowCount": 1001}}}]})
    );
    // Writing past the grid.
    let (s, v) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "Sheet1!AA1")),
        t,
        Some(json!({"values": [[1]]})),
    );
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Range ('Sheet1'!AA1) exceeds grid limits. Max rows: 1000, max columns: 26"
    );
    // Clear, and the admin dump shows stored values.
    let (s, v) = emu.call(
        "POST",
        &format!("{}:clear", values_path("s1", "'Q1%20''24'!A3:B4")),
        t,
        Some(json!({})),
    );
    assert_eq!((s, &v["clearedRange"]), (200, &json!("'Q1 ''24'!A3:B4")));
    let d = emu.dump("s1", "Q1%20'24");
    assert_eq!(d["values"], json!([["id", "amount"], [7, 1234.5]]));
}

#[test]
fn write_quota_per_user_per_minute() {
    let emu = Emu::start(&["--write-quota", "3", "--read-quota", "0"]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let put = |v: i32| {
        emu.call(
            "PUT",
            &format!("{}?valueInputOption=RAW", values_path("s1", "A1")),
            Some(&t),
            Some(json!({"values": [[v]]})),
        )
    };
    for i in 0..3 {
        assert_eq!(put(i).0, 200);
    }
    let (s, v) = put(99);
    assert_eq!(s, 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'Write requests per minute per user'"));
    // Reads are a separate quota (unlimited here) and the refused write changed nothing.
    for _ in 0..10 {
        let (s, v) = emu.call("GET", &values_path("s1", "A1"), Some(&t), None);
        assert_eq!((s, &v["values"]), (200, &json!([["2"]])));
    }
    // Another user has a quota of their own.
    emu.call(
        "POST",
        "/_emulator/spreadsheets/s1/share",
        None,
        Some(json!({"writers": ["ann@example.com"]})),
    );
    let ann = emu.token_for("ann@example.com");
    let (s, _) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "B1")),
        Some(&ann),
        Some(json!({"values": [[1]]})),
    );
    assert_eq!(s, 200);
}

#[test]
fn injected_faults_change_nothing_and_are_logged() {
    let emu = Emu::start(&[
        "--fail-rate",
        "1",
        "--fail-status",
        "503",
        "--request-log",
        "req.ndjson",
        "--retry-after",
        "2",
    ]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let (s, h, v) = emu.call_full(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "A1")),
        Some(&t),
        Some(json!({"values": [[1]]})),
    );
    assert_eq!(
        (s, v),
        (
            503,
            json!({"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})
        )
    );
    assert_eq!(
        h.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(emu.dump("s1", "Sheet1")["values"], json!([]));
    let log = emu.log_lines("req.ndjson");
    let api: Vec<&Value> = log.iter().filter(|l| l["kind"] == "write").collect();
    assert_eq!(api.len(), 1);
    assert_eq!(
        (api[0]["status"].as_u64(), api[0]["fault"].as_bool()),
        (Some(503), Some(true))
    );
    // The token exchange and admin calls are never faulted, and are logged.
    assert!(log
        .iter()
        .any(|l| l["path"] == "/token" && l["status"] == 200));
}

#[test]
fn seeded_faults_are_reproducible() {
    let pattern = |seed: &str| -> Vec<u16> {
        let emu = Emu::start(&[
            "--fail-rate",
            "0.5",
            "--fail-status",
            "429",
            "--seed",
            seed,
            "--read-quota",
            "0",
        ]);
        emu.admin_create("s1", BOB);
        let t = emu.token_for(BOB);
        (0..20)
            .map(|_| emu.call("GET", &values_path("s1", "A1"), Some(&t), None).0)
            .collect()
    };
    let a = pattern("7");
    assert_eq!(a, pattern("7"));
    let failures = a.iter().filter(|s| **s == 429).count();
    assert!((3..=17).contains(&failures), "{a:?}");
    assert!(a.iter().all(|s| *s == 200 || *s == 429));
}

#[test]
fn latency_is_added() {
    let emu = Emu::start(&["--latency-ms", "300"]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let start = Instant::now();
    assert_eq!(
        emu.call("GET", &values_path("s1", "A1"), Some(&t), None).0,
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn request_body_cap() {
    let emu = Emu::start(&["--max-body", "1KiB"]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let big = json!({"values": [["x".repeat(2000)]]});
    let (s, v) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "A1")),
        Some(&t),
        Some(big),
    );
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Request payload size exceeds the limit: 1024 bytes."
    );
}

#[test]
fn expired_tokens_are_refused() {
    // The emulator counts whole seconds, so a 2-second token lives between
    // 1 and 2 s (a 1-second one could be gone before its first use): good
    // at once, refused once its time is up, which is polled for (no read
    // quota: the polls are not what is tested).
    let emu = Emu::start(&["--token-lifetime", "2", "--read-quota", "0"]);
    emu.admin_create("s1", BOB);
    let issued = Instant::now();
    let t = emu.token_for(BOB);
    assert_eq!(
        emu.call("GET", &values_path("s1", "A1"), Some(&t), None).0,
        200
    );
    let refused = loop {
        let status = emu.call("GET", &values_path("s1", "A1"), Some(&t), None).0;
        if status != 200 || issued.elapsed() > Duration::from_secs(10) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused, 401);
    let lived = issued.elapsed();
    assert!(lived >= Duration::from_secs(1), "refused after {lived:?}");
    // The admin endpoint expires tokens on demand too.
    let t2 = emu.token_for(BOB);
    emu.call("POST", "/_emulator/tokens/expire", None, Some(json!({})));
    assert_eq!(
        emu.call("GET", &values_path("s1", "A1"), Some(&t2), None).0,
        401
    );
}

#[test]
fn state_file_survives_restart_and_sigterm_is_clean() {
    let emu = Emu::start(&["--state", "state.json"]);
    emu.admin_create("s1", BOB);
    let t = emu.token_for(BOB);
    let (s, _) = emu.call(
        "PUT",
        &format!("{}?valueInputOption=RAW", values_path("s1", "A1:B1")),
        Some(&t),
        Some(json!({"values": [["kept", 42]]})),
    );
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(emu.path("state.json"), dir.path().join("state.json")).unwrap();
    let status = emu.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");
    let emu = Emu::start_in(dir, &["--state", "state.json"]);
    // Same token, same data: the state file holds both.
    let (s, v) = emu.call("GET", &values_path("s1", "A1:B1"), Some(&t), None);
    assert_eq!((s, v["values"].clone()), (200, json!([["kept", "42"]])));
}

#[test]
fn admin_reset_and_listing() {
    let emu = Emu::start(&[]);
    emu.admin_create("s1", BOB);
    let (s, v) = emu.call(
        "POST",
        "/_emulator/spreadsheets",
        None,
        Some(json!({"spreadsheetId": "s1", "owner": BOB})),
    );
    assert_eq!(
        (s, v["error"]["status"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
    let (_, v) = emu.call("GET", "/_emulator/spreadsheets", None, None);
    assert_eq!(v["spreadsheets"][0]["spreadsheetId"], "s1");
    emu.call("POST", "/_emulator/reset", None, Some(json!({})));
    let (_, v) = emu.call("GET", "/_emulator/spreadsheets", None, None);
    assert_eq!(v["spreadsheets"], json!([]));
}

#[test]
fn keygen_needs_a_running_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args([
            "keygen",
            "--out",
            dir.path().join("k.json").to_str().unwrap(),
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .env("ETL_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot register"));
    assert!(!dir.path().join("k.json").exists());
}

/// Every Sheets path the emulator serves is a path of Google's discovery
/// document (the reference the emulator is held to).
#[test]
fn routes_exist_in_googles_discovery_document() {
    let p = etl_testkit::shared(std::path::Path::new("reference/sheets.v4.json"));
    let text = std::fs::read_to_string(&p).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut paths = Vec::new();
    let mut stack = vec![&doc["resources"]];
    while let Some(r) = stack.pop() {
        for (_, res) in r.as_object().unwrap() {
            for (_, m) in res["methods"].as_object().into_iter().flatten() {
                paths.push((
                    m["httpMethod"].as_str().unwrap().to_owned(),
                    m["flatPath"].as_str().unwrap().to_owned(),
                ));
            }
            if let Some(sub) = res.get("resources") {
                stack.push(sub);
            }
        }
    }
    let ours = [
        ("POST", "v4/spreadsheets"),
        ("GET", "v4/spreadsheets/{spreadsheetId}"),
        ("POST", "v4/spreadsheets/{spreadsheetId}:batchUpdate"),
        ("GET", "v4/spreadsheets/{spreadsheetId}/values/{range}"),
        ("PUT", "v4/spreadsheets/{spreadsheetId}/values/{range}"),
        (
            "POST",
            "v4/spreadsheets/{spreadsheetId}/values/{range}:append",
        ),
        (
            "POST",
            "v4/spreadsheets/{spreadsheetId}/values/{range}:clear",
        ),
        ("GET", "v4/spreadsheets/{spreadsheetId}/values:batchGet"),
        ("POST", "v4/spreadsheets/{spreadsheetId}/values:batchUpdate"),
        ("POST", "v4/spreadsheets/{spreadsheetId}/values:batchClear"),
    ];
    for (m, path) in ours {
        assert!(
            paths.iter().any(|(pm, pp)| pm == m && pp == path),
            "{m} {path} is not in the discovery document"
        );
    }
    // And every request kind the emulator knows is one Google defines.
    let kinds: Vec<&String> = doc["schemas"]["Request"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(kinds.len(), etl_sheets_emulator::book::KNOWN.len());
    for k in etl_sheets_emulator::book::SUPPORTED {
        assert!(kinds.iter().any(|x| *x == k), "{k}");
    }
}
