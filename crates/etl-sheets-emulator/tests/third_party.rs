//! A widely used third-party client against the emulator: gspread with
//! Google's auth library (`tests/gspread_client.py`), unmodified except for
//! where its requests go. `scripts/test` installs both from PyPI; without
//! them this test fails, naming what to install.

mod common;

use std::process::Command;

use common::{Emu, SA};
use serde_json::json;

#[test]
fn gspread_serves_its_everyday_operations() {
    let probe = Command::new("python3")
        .args(["-c", "import gspread, google.auth"])
        .output()
        .expect("python3");
    assert!(
        probe.status.success(),
        "gspread and google-auth are needed (pip install gspread google-auth; scripts/test installs them): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let emu = Emu::start(&[]);
    emu.keygen("key.json", &[]);
    let (s, v) = emu.call(
        "POST",
        "/_emulator/spreadsheets",
        None,
        Some(json!({"spreadsheetId": "client-book", "owner": SA,
            "properties": {"title": "Client book"}})),
    );
    assert_eq!(s, 200, "{v}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gspread_client.py");
    let out = Command::new("python3")
        .args([
            script,
            &emu.url,
            emu.path("key.json").to_str().unwrap(),
            "client-book",
        ])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("all everyday operations served"),
        "{stdout}"
    );
}
