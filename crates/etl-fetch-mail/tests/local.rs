//! Maildir, mbox and .eml sources: the same output and the same
//! incremental behaviour as IMAP.

mod common;

use std::path::Path;

use common::{build, commit, run, sha256sum};

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn fetch(out: &Path, args: &[&str]) -> common::Fetched {
    run(&[&["--out-dir", out.to_str().unwrap()], args].concat(), &[])
}

#[test]
fn maildir_incremental() {
    let src = tempfile::tempdir().unwrap();
    let md = src.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let deliver = |n: u32, raw: &[u8]| {
        std::fs::write(
            md.join("new").join(format!("17000000{n:02}.M{n}P1.host")),
            raw,
        )
        .unwrap();
        // Distinct delivery times, as a real MDA's.
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let a = write(src.path(), "a.csv", "n\n1\n");
    deliver(1, &build(&["--subject", "one", "--attach", &a]));
    deliver(2, &build(&["--subject", "two", "--attach", &a]));
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("state.json");
    let md_s = md.to_str().unwrap();
    let st = state.to_str().unwrap();
    let f = fetch(out.path(), &["--maildir", md_s, "--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 2), "{}", f.stderr);
    assert_eq!(
        f.lines[0]["sha256"].as_str().unwrap(),
        sha256sum(Path::new(&a))
    );
    let f = fetch(out.path(), &["--maildir", md_s, "--state", st]);
    assert_eq!(f.lines.len(), 2, "not committed: the same again");
    commit(&state);
    let f = fetch(out.path(), &["--maildir", md_s, "--state", st]);
    assert_eq!(f.lines.len(), 0);
    // A mail client marks one read (a rename to cur/ with flags): not new.
    std::fs::rename(
        md.join("new/1700000001.M1P1.host"),
        md.join("cur/1700000001.M1P1.host:2,S"),
    )
    .unwrap();
    deliver(3, &build(&["--subject", "three", "--attach", &a]));
    let f = fetch(out.path(), &["--maildir", md_s, "--state", st]);
    assert_eq!(f.lines.len(), 1, "{}", f.stderr);
    assert_eq!(f.lines[0]["subject"], "three");
    let f = fetch(out.path(), &["--maildir", md_s, "--unseen"]);
    assert_eq!(f.lines.len(), 2, "--unseen leaves out the read one");
}

#[test]
fn mbox_incremental() {
    let src = tempfile::tempdir().unwrap();
    let a = write(src.path(), "a.csv", "n\n1\n");
    let mbox = src.path().join("inbox.mbox");
    let append = |raw: &[u8]| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mbox)
            .unwrap();
        // mboxrd: a "From " line, body lines starting with From quoted.
        f.write_all(b"From reports@client.example Sat Nov 21 10:00:00 2026\n")
            .unwrap();
        let text = String::from_utf8_lossy(raw)
            .replace("\r\n", "\n")
            .replace("\nFrom ", "\n>From ");
        f.write_all(text.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    };
    append(&build(&["--subject", "one", "--attach", &a]));
    append(&build(&["--subject", "two", "--attach", &a]));
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("state.json");
    let (m, st) = (mbox.to_str().unwrap(), state.to_str().unwrap());
    let f = fetch(out.path(), &["--mbox", m, "--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 2), "{}", f.stderr);
    assert_eq!(
        f.lines[0]["sha256"].as_str().unwrap(),
        sha256sum(Path::new(&a))
    );
    commit(&state);
    append(&build(&["--subject", "three", "--attach", &a]));
    let f = fetch(out.path(), &["--mbox", m, "--state", st]);
    assert_eq!(
        f.lines
            .iter()
            .map(|l| l["subject"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["three"]
    );
    let f = fetch(out.path(), &["--mbox", m, "--subject", "two"]);
    assert_eq!(f.lines.len(), 1);
}

#[test]
fn forwarded_messages_and_oversized_ones() {
    let src = tempfile::tempdir().unwrap();
    let a = write(src.path(), "inner.csv", "n\n1\n");
    let inner = src.path().join("inner.eml");
    std::fs::write(&inner, build(&["--subject", "original", "--attach", &a])).unwrap();
    let fwd = src.path().join("fwd.eml");
    std::fs::write(
        &fwd,
        build(&[
            "--subject",
            "Fwd: original",
            "--forward",
            inner.to_str().unwrap(),
        ]),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = fetch(
        out.path(),
        &["--eml", fwd.to_str().unwrap(), "--attachment", "*.csv"],
    );
    assert_eq!((f.code, f.lines.len()), (0, 1), "{}", f.stderr);
    assert_eq!(f.lines[0]["filename"], "inner.csv");
    let f = fetch(
        out.path(),
        &["--eml", fwd.to_str().unwrap(), "--max-message-bytes", "100"],
    );
    assert_eq!((f.code, f.lines.len()), (0, 0));
    assert_eq!(f.summary()["skipped"], 1);
}

#[test]
fn usage_and_configuration_errors() {
    let out = tempfile::tempdir().unwrap();
    let f = fetch(out.path(), &[]);
    assert_eq!(f.code, 78, "{}", f.stderr);
    assert!(f.stderr.contains("ETL_IMAP_HOST"), "{}", f.stderr);
    let f = fetch(out.path(), &["--host", "127.0.0.1", "--maildir", "x"]);
    assert_eq!(f.code, 64, "{}", f.stderr);
    let f = run(
        &[
            "--host",
            "127.0.0.1",
            "--user",
            "u",
            "--out-dir",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(f.code, 78, "no password: {}", f.stderr);
    assert!(f.stderr.contains("ETL_IMAP_PASSWORD"), "{}", f.stderr);
}

#[test]
fn the_manifest_carries_a_parts_declared_charset() {
    // The demo mailbox's messages, written by Python's email package: the
    // French export declares `charset="windows-1252"`, the CSV and the
    // workbook declare none.
    let mail = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mail/new");
    let out = tempfile::tempdir().unwrap();
    let f = fetch(
        out.path(),
        &[
            "--eml",
            mail.join("1763750100.M4P1.client").to_str().unwrap(),
            "--eml",
            mail.join("1763658300.M1P1.client").to_str().unwrap(),
            "--eml",
            mail.join("1763796600.M5P1.client").to_str().unwrap(),
        ],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    let got: Vec<(String, serde_json::Value)> = f
        .lines
        .iter()
        .map(|l| {
            (
                l["filename"].as_str().unwrap().to_owned(),
                l["charset"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("commandes-2026-11-21.csv".to_owned(), "windows-1252".into()),
            ("orders-2026-11-20.csv".to_owned(), serde_json::Value::Null),
            ("orders-2026-11-22.xlsx".to_owned(), serde_json::Value::Null),
        ]
    );
}
