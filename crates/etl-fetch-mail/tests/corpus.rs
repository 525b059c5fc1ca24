//! Attachments of the shared e-mail corpora, through the real binary on
//! .eml files, against the corpora's own expected results.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_etl-fetch-mail");

fn corpora() -> PathBuf {
    etl_testkit::corpora("eml")
}

fn fetch(args: &[&str], eml: &[PathBuf]) -> (i32, Vec<Value>, String, tempfile::TempDir) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--out-dir", out_dir.path().to_str().unwrap()])
        .args(args)
        .arg("--eml")
        .args(eml)
        .env("ETL_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out_dir,
    )
}

/// php-mime-mail-parser's expected attachments: name, size and type of
/// every attachment (inline parts with a name count with --include-inline).
#[test]
fn php_mime_mail_parser_attachments() {
    let dir = corpora();
    let dir = dir.join("php-mime-mail-parser");
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected_provideData.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for case in cases {
        let mail = dir.join(case["mail"].as_str().unwrap());
        if !mail.exists() {
            continue; // m0006 is listed upstream but absent from the snapshot
        }
        let (code, lines, err, _dir) = fetch(&["--include-inline"], std::slice::from_ref(&mail));
        assert_eq!(code, 0, "{}: {err}", mail.display());
        let mut want: Vec<(String, u64, String)> = case["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let name = a["filename"].as_str().unwrap();
                // php-mime-mail-parser names nameless parts noname1...
                let name = if name.starts_with("noname") {
                    String::new()
                } else {
                    name.to_owned()
                };
                (
                    name,
                    a["size"].as_u64().unwrap(),
                    a["content_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut got: Vec<(String, u64, String)> = lines
            .iter()
            .map(|l| {
                let name = l["filename"].as_str().unwrap().to_owned();
                let name = if name.starts_with("attachment-") {
                    String::new()
                } else {
                    name
                };
                (
                    name,
                    l["size"].as_u64().unwrap(),
                    l["content_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", mail.display());
        for l in &lines {
            let p = Path::new(l["path"].as_str().unwrap());
            assert_eq!(
                std::fs::metadata(p).unwrap().len(),
                l["size"].as_u64().unwrap()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} cases checked");
}

/// mailparse's corpus: a base64 PDF decodes byte-exact; a pathologically
/// nested message is a reject, not a crash.
#[test]
fn mailparse_cases() {
    let dir = corpora();
    let files = dir.join("mailparse/tests/files");
    let (code, lines, err, _dir) = fetch(&[], &[files.join("test_email_01.txt")]);
    assert_eq!(code, 0, "{err}");
    let pdf = std::fs::read(files.join("test_email_01_sample.pdf")).unwrap();
    let stored: Vec<&Value> = lines
        .iter()
        .filter(|l| l["content_type"] == "application/pdf")
        .collect();
    assert_eq!(stored.len(), 1, "{lines:?}");
    assert_eq!(
        std::fs::read(stored[0]["path"].as_str().unwrap()).unwrap(),
        pdf
    );
    let txt: Vec<&Value> = lines
        .iter()
        .filter(|l| l["content_type"] == "text/plain")
        .collect();
    assert_eq!(
        std::fs::read_to_string(txt[0]["path"].as_str().unwrap()).unwrap(),
        "txt file context for email collector\n1234567890987654321\n"
    );
    let (code, lines, err, _dir) = fetch(&[], &[files.join("nested.eml")]);
    assert_eq!(code, 65, "{err}");
    assert!(lines.is_empty());
    assert!(err.contains("not readable as MIME"), "{err}");
    let (code, _, err, _dir) = fetch(
        &["--max-rejects", "1"],
        &[files.join("nested.eml"), files.join("test_email_01.txt")],
    );
    assert_eq!(code, 0, "the run goes on past a malformed message: {err}");
}

/// postal-mime's attachment counts (the MIME torture test among them).
#[test]
fn postal_mime_counts() {
    let dir = corpora();
    let dir = dir.join("postal-mime");
    for (file, want) in [
        ("mimetorture.eml", 9),
        ("calendar-event.eml", 2),
        ("bounce.eml", 2),
    ] {
        let (code, lines, err, _dir) = fetch(&["--include-inline"], &[dir.join(file)]);
        assert_eq!(code, 0, "{file}: {err}");
        assert_eq!(
            lines.len(),
            want,
            "{file}: {:?}",
            lines
                .iter()
                .map(|l| (&l["filename"], &l["content_type"]))
                .collect::<Vec<_>>()
        );
    }
}
