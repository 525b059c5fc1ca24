//! etl-fetch-mail against a real Dovecot on 127.0.0.1.

mod common;

use std::path::Path;

use common::{build, commit, discard, sha256sum, Dovecot};
use serde_json::Value;

/// A file of the shared corpora (the test fails when it is absent).
fn corpora_file(rel: &str) -> std::path::PathBuf {
    etl_testkit::corpora(rel)
}

fn csv(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn attachments_arrive_byte_exact_with_their_manifest() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "orders.csv", "id,amount\n1,12.50\n2,3.00\n");
    dv.deliver(&build(&[
        "--subject",
        "Daily orders",
        "--id",
        "<d1@client.example>",
        "--attach",
        &a,
    ]));
    let x = corpora_file("xlsx/calamine/date.xlsx");
    let spec = format!(
        "{}|report.xlsx|application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        x.display()
    );
    let name = format!("résumé {}.csv", "ü");
    let b = csv(src.path(), "b.csv", "x\n1\n");
    dv.deliver(&build(&[
        "--subject",
        "Weekly",
        "--attach",
        &spec,
        "--attach",
        &format!("{b}|{name}"),
    ]));
    let z = corpora_file("zip/zip2/chinese.zip");
    let spec = format!("{}|reports.zip|application/zip", z.display());
    dv.deliver(&build(&["--subject", "Zipped", "--attach", &spec]));
    let files = [
        Path::new(&a).to_path_buf(),
        x,
        Path::new(&b).to_path_buf(),
        z,
    ];
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(out.path(), &[]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.lines.len(), files.len(), "{:?}", f.lines);
    for (line, file) in f.lines.iter().zip(&files) {
        let path = Path::new(line["path"].as_str().unwrap());
        assert!(path.starts_with(out.path()));
        assert_eq!(line["sha256"].as_str().unwrap(), sha256sum(file), "{line}");
        assert_eq!(line["sha256"].as_str().unwrap(), sha256sum(path));
        assert_eq!(
            line["size"].as_u64().unwrap(),
            std::fs::metadata(file).unwrap().len()
        );
        assert_eq!(line["mailbox"], "INBOX");
        assert!(line["uidvalidity"].as_u64().unwrap() > 0);
    }
    let first = &f.lines[0];
    assert_eq!(first["filename"], "orders.csv");
    assert_eq!(first["content_type"], "text/csv");
    assert_eq!(first["message_id"], "d1@client.example");
    assert_eq!(first["subject"], "Daily orders");
    assert_eq!(first["date"], "2026-11-21T10:00:00Z");
    assert_eq!(first["uid"], 1);
    // Regression: this sat under `if files.len() == 3` (there were 4 files,
    // or 1) and never ran.
    assert_eq!(
        f.lines[2]["filename"], "résumé ü.csv",
        "RFC 2231 name decoded"
    );
    assert_eq!(f.lines[1]["filename"], "report.xlsx");
    assert_eq!(f.lines[3]["filename"], "reports.zip");
    let s = f.summary();
    assert_eq!(s["attachments_stored"].as_u64(), Some(files.len() as u64));
    assert_eq!(
        s["messages_seen"].as_u64(),
        f.lines.iter().map(|l| l["uid"].as_u64().unwrap()).max()
    );
    // The mailbox was only read (BODY.PEEK): nothing became \Seen.
    assert!(
        !dv.flags().is_empty() && dv.flags().iter().all(|f| !f.contains('S')),
        "{:?}",
        dv.flags()
    );
}

#[test]
fn incremental_runs_fetch_each_message_once() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let a = csv(src.path(), &format!("r{i}.csv"), &format!("n\n{i}\n"));
        dv.deliver(&build(&["--subject", &format!("r{i}"), "--attach", &a]));
    }
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("state.json");
    let st = state.to_str().unwrap();
    let f = dv.fetch(out.path(), &["--state", st]);
    assert_eq!((f.code, f.uids()), (0, vec![1, 2, 3]), "{}", f.stderr);
    // The pipeline failed before commit: the next run fetches the same.
    let f = dv.fetch(out.path(), &["--state", st]);
    assert_eq!(f.uids(), vec![1, 2, 3]);
    assert_eq!(f.summary()["attachments_present"], 3, "stored once");
    commit(&state);
    let f = dv.fetch(out.path(), &["--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 0), "{}", f.stderr);
    let a = csv(src.path(), "r3.csv", "n\n3\n");
    dv.deliver(&build(&["--subject", "r3", "--attach", &a]));
    let f = dv.fetch(out.path(), &["--state", st]);
    assert_eq!(f.uids(), vec![4]);
    commit(&state);
    // UIDVALIDITY changes (the server rebuilt its index): everything again,
    // nothing stored twice.
    dv.rebuild();
    let f = dv.fetch(out.path(), &["--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 4), "{}", f.stderr);
    assert!(f.stderr.contains("UIDVALIDITY changed"), "{}", f.stderr);
    assert_eq!(f.summary()["attachments_stored"], 0);
    // Not committed: the state still holds the old UIDVALIDITY.
    let f = dv.fetch(
        out.path(),
        &["--state", st, "--on-uidvalidity-change", "fail"],
    );
    assert_eq!(f.code, 65, "{}", f.stderr);
    commit(&state);
    let f = dv.fetch(
        out.path(),
        &["--state", st, "--on-uidvalidity-change", "fail"],
    );
    assert_eq!((f.code, f.lines.len()), (0, 0), "{}", f.stderr);
}

#[test]
fn uidvalidity_change_can_fail_the_run() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    dv.deliver(&build(&["--attach", &a]));
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("state.json");
    let st = state.to_str().unwrap();
    assert_eq!(dv.fetch(out.path(), &["--state", st]).code, 0);
    commit(&state);
    dv.rebuild();
    let f = dv.fetch(
        out.path(),
        &["--state", st, "--on-uidvalidity-change", "fail"],
    );
    assert_eq!(f.code, 65, "{}", f.stderr);
    assert!(f.stderr.contains("UIDVALIDITY changed"), "{}", f.stderr);
    assert!(f.lines.is_empty());
}

#[test]
fn a_restart_mid_fetch_resumes_after_the_last_delivered_uid() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let n = 150;
    let a = csv(
        src.path(),
        "r.csv",
        &format!("n\n{}\n", "x".repeat(300_000)),
    );
    let raw = build(&["--attach", &a]);
    for _ in 0..n {
        dv.deliver(&raw);
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args(dv.login_args(common::USER))
        .args([
            "--out-dir",
            out.path().to_str().unwrap(),
            "--batch",
            "1",
            "--retry-base-ms",
            "200",
        ])
        .env("ETL_IMAP_PASSWORD", common::PASSWORD)
        .env("ETL_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for l in std::io::BufReader::new(stdout).lines() {
            let l = l.unwrap();
            let _ = tx.send(());
            lines.push(l);
        }
        lines
    });
    // Let a few messages through, then crash and restart the server.
    for _ in 0..3 {
        rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
    }
    dv.restart();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let uids: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["uid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        uids,
        (1..=n).collect::<Vec<_>>(),
        "every message once, in order"
    );
    assert!(
        stderr.contains("reconnecting"),
        "the connection did drop: {stderr}"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one server, every way of failing to log in
fn wrong_password_unreachable_port_wrong_ca() {
    let dv = Dovecot::start();
    let out = tempfile::tempdir().unwrap();
    let port = dv.imaps.to_string();
    let ca = dv.ca();
    let base = [
        "--host",
        "127.0.0.1",
        "--user",
        common::USER,
        "--out-dir",
        out.path().to_str().unwrap(),
        "--retry-base-ms",
        "20",
    ];
    let f = common::run(
        &[
            &base[..],
            &["--port", &port, "--ca-file", ca.to_str().unwrap()],
        ]
        .concat(),
        &[("ETL_IMAP_PASSWORD", "wrong")],
    );
    assert_eq!(f.code, 77, "{}", f.stderr);
    assert!(
        f.stderr.contains("IMAP login refused for alice"),
        "{}",
        f.stderr
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let f = common::run(
        &[&base[..], &["--port", &closed, "--max-retries", "2"]].concat(),
        &[("ETL_IMAP_PASSWORD", common::PASSWORD)],
    );
    assert_eq!(f.code, 69, "{}", f.stderr);
    assert!(
        f.stderr.contains("gave up after 2 reconnects"),
        "{}",
        f.stderr
    );
    let other = dv.dir.path().join("other-ca.pem");
    let f = common::run(
        &[
            &base[..],
            &["--port", &port, "--ca-file", other.to_str().unwrap()],
        ]
        .concat(),
        &[("ETL_IMAP_PASSWORD", common::PASSWORD)],
    );
    assert_eq!(f.code, 78, "{}", f.stderr);
    assert!(
        f.stderr.contains("certificate is not trusted"),
        "{}",
        f.stderr
    );
    // AUTHENTICATE PLAIN.
    let f = common::run(
        &[
            &base[..],
            &[
                "--port",
                &port,
                "--ca-file",
                ca.to_str().unwrap(),
                "--auth",
                "plain",
            ],
        ]
        .concat(),
        &[("ETL_IMAP_PASSWORD", common::PASSWORD)],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    // STARTTLS on the plain port, and plain text only to loopback.
    let plain = dv.imap.to_string();
    let f = common::run(
        &[
            &base[..],
            &[
                "--port",
                &plain,
                "--tls",
                "starttls",
                "--ca-file",
                ca.to_str().unwrap(),
            ],
        ]
        .concat(),
        &[("ETL_IMAP_PASSWORD", common::PASSWORD)],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    let f = common::run(
        &[
            "--host",
            "imap.example.com",
            "--user",
            "u",
            "--tls",
            "none",
            "--out-dir",
            out.path().to_str().unwrap(),
        ],
        &[("ETL_IMAP_PASSWORD", "x")],
    );
    assert_eq!(f.code, 64, "{}", f.stderr);
    assert!(
        f.stderr.contains("only for a loopback address"),
        "{}",
        f.stderr
    );
}

#[test]
fn hostile_filenames_stay_inside_the_output_directory() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    let names = [
        "../../evil.csv",
        "/etc/passwd",
        "..",
        "a\\..\\b.csv",
        &"x".repeat(400),
    ];
    let mut args = vec!["--subject".to_owned(), "hostile".to_owned()];
    for n in names {
        args.push("--attach".into());
        args.push(format!("{a}|{n}|text/csv"));
    }
    dv.deliver(&build(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(out.path(), &[]);
    assert_eq!((f.code, f.lines.len()), (0, names.len()), "{}", f.stderr);
    let root = out.path().canonicalize().unwrap();
    for (l, n) in f.lines.iter().zip(names) {
        let p = Path::new(l["path"].as_str().unwrap())
            .canonicalize()
            .unwrap();
        assert!(p.starts_with(&root), "{}", p.display());
        assert!(p.file_name().unwrap().len() <= 200);
        assert_eq!(l["filename"], n, "the manifest keeps the original name");
    }
}

#[test]
fn mark_seen_only_after_storage_and_commit() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    dv.deliver(&build(&["--attach", &a]));
    dv.deliver(&build(&["--subject", "no attachment"]));
    let state = src.path().join("state.json");
    let st = state.to_str().unwrap();
    // Storage fails (--out-dir is a file): nothing is marked.
    let file = src.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let f = dv.fetch(&file, &["--mark-seen", "--state", st]);
    assert_ne!(f.code, 0);
    assert!(
        !dv.flags().is_empty() && dv.flags().iter().all(|f| !f.contains('S')),
        "{:?}",
        dv.flags()
    );
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(out.path(), &["--mark-seen", "--state", st]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        !dv.flags().is_empty() && dv.flags().iter().all(|f| !f.contains('S')),
        "not before the run is committed: {:?}",
        dv.flags()
    );
    commit(&state);
    let f = dv.fetch(out.path(), &["--apply-committed", "--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 0), "{}", f.stderr);
    assert_eq!(f.summary()["marked_seen"], 1, "{}", f.stderr);
    assert_eq!(
        dv.flags().iter().filter(|f| f.contains('S')).count(),
        1,
        "only the message whose attachment was stored"
    );
    let f = dv.fetch(out.path(), &["--unseen"]);
    assert_eq!(f.lines.len(), 0, "--unseen skips it now");
    // Without --state there is no commit to wait for: refused.
    let f = dv.fetch(out.path(), &["--mark-seen"]);
    assert_eq!(f.code, 64, "{}", f.stderr);
    assert!(f.stderr.contains("--state"), "{}", f.stderr);
}

/// Regression: --move-to moved the messages as soon as their attachments
/// were on disk, so when a later stage failed (watermark not committed)
/// the next run never saw them again. Now the pipeline fails after the
/// fetch, the next run fetches the same messages, and after a success each
/// is moved exactly once.
#[test]
fn moved_only_after_the_pipeline_commits_and_exactly_once() {
    let mut dv = Dovecot::start();
    let archive = dv.folder("Archive");
    let count = |dir: &Path| {
        ["cur", "new"]
            .iter()
            .map(|s| std::fs::read_dir(dir.join(s)).unwrap().count())
            .sum::<usize>()
    };
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    let b = csv(src.path(), "b.csv", "n\n2\n");
    dv.deliver(&build(&["--attach", &a]));
    dv.deliver(&build(&["--attach", &b, "--subject", "second"]));
    let state = src.path().join("state.json");
    let st = state.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = ["--move-to", "Archive", "--state", st, "--unseen"];
    // Run 1: the fetch succeeds, a later stage fails: its pending values
    // are discarded (as etl-run does), nothing is committed.
    let f = dv.fetch(out.path(), &args);
    assert_eq!((f.code, f.uids()), (0, vec![1, 2]), "{}", f.stderr);
    assert_eq!(
        (count(&dv.maildir()), count(&archive)),
        (2, 0),
        "nothing moved yet"
    );
    discard(&state);
    // Run 2 fetches the same messages again, and this time the pipeline succeeds.
    let f = dv.fetch(out.path(), &args);
    assert_eq!((f.code, f.uids()), (0, vec![1, 2]), "{}", f.stderr);
    assert_eq!((count(&dv.maildir()), count(&archive)), (2, 0));
    commit(&state);
    // Run 3 applies the committed moves first, then finds nothing new.
    let f = dv.fetch(out.path(), &args);
    assert_eq!((f.code, f.lines.len()), (0, 0), "{}", f.stderr);
    assert_eq!(f.summary()["moved"], 2, "{}", f.stderr);
    assert_eq!(
        (count(&dv.maildir()), count(&archive)),
        (0, 2),
        "each moved once"
    );
    let f = dv.fetch(out.path(), &["--mailbox", "Archive"]);
    assert_eq!(f.lines.len(), 2, "{}", f.stderr);
    // Run 4: nothing left to apply, nothing moved twice.
    commit(&state);
    let f = dv.fetch(out.path(), &args);
    assert_eq!(
        (f.code, f.summary()["moved"].as_u64()),
        (0, Some(0)),
        "{}",
        f.stderr
    );
    assert_eq!((count(&dv.maildir()), count(&archive)), (0, 2));
    assert!(
        !std::fs::read_to_string(&state)
            .unwrap()
            .contains("imap-actions"),
        "applied actions leave the state"
    );
}

#[test]
fn selection_on_the_server_and_on_attachments() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    let t = csv(src.path(), "notes.txt", "hello\n");
    dv.deliver(&build(&[
        "--from",
        "reports@client.example",
        "--subject",
        "Orders",
        "--attach",
        &a,
        "--attach",
        &t,
    ]));
    dv.deliver(&build(&[
        "--from",
        "spam@elsewhere.example",
        "--subject",
        "Offer",
        "--attach",
        &a,
    ]));
    dv.deliver(&build(&[
        "--from",
        "reports@client.example",
        "--subject",
        "Old",
        "--date",
        "Mon, 02 Jan 2023 10:00:00 +0000",
        "--attach",
        &a,
    ]));
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(
        out.path(),
        &[
            "--from",
            "reports@client.example",
            "--attachment",
            "*.CSV",
            "--since",
            "2024-01-01",
        ],
    );
    assert_eq!(f.code, 0, "{}", f.stderr);
    let got: Vec<(u64, &str)> = f
        .lines
        .iter()
        .map(|l| (l["uid"].as_u64().unwrap(), l["filename"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![(1, "a.csv")]);
    let f = dv.fetch(out.path(), &["--content-type", "text/plain"]);
    assert_eq!(
        f.lines
            .iter()
            .map(|l| l["filename"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["notes.txt"]
    );
    let f = dv.fetch(out.path(), &["--subject", "Offer", "--max-size", "1"]);
    assert_eq!(f.lines.len(), 0);
    let f = dv.fetch(
        out.path(),
        &[
            "--to",
            "alice@example.test",
            "--header",
            "Subject:Offer",
            "--attachment",
            "*.csv",
        ],
    );
    assert_eq!(f.uids(), vec![2], "{}", f.stderr);
    let f = dv.fetch(out.path(), &["--header", "no colon"]);
    assert_eq!(f.code, 64);
}

/// Fetching 1,000 messages with a 100 KB attachment each (time and peak RSS
/// are measured by scripts/bench fetch; this checks the batches work).
#[test]
fn many_messages_in_batches() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "big.csv", &"0123456789".repeat(10_000));
    let raw = build(&["--attach", &a]);
    for _ in 0..120 {
        dv.deliver(&raw);
    }
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(out.path(), &["--batch", "25"]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.lines.len(), 120);
    assert_eq!(
        f.summary()["attachments_stored"],
        1,
        "the same file is stored once"
    );
    assert_eq!(f.summary()["attachments_present"], 119);
}

#[test]
fn move_to_another_mailbox_after_storage() {
    let mut dv = Dovecot::start();
    dv.folder("Archive");
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    dv.deliver(&build(&["--attach", &a]));
    dv.deliver(&build(&["--subject", "no attachment"]));
    let state = src.path().join("state.json");
    let st = state.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let f = dv.fetch(out.path(), &["--move-to", "Archive", "--state", st]);
    assert_eq!((f.code, f.lines.len()), (0, 1), "{}", f.stderr);
    commit(&state);
    let f = dv.fetch(out.path(), &["--apply-committed", "--state", st]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    let f = dv.fetch(out.path(), &["--mailbox", "Archive"]);
    assert_eq!(f.lines.len(), 1, "moved: {}", f.stderr);
    let f = dv.fetch(out.path(), &[]);
    assert_eq!(
        f.summary()["messages_seen"],
        1,
        "only the message without attachment stayed"
    );
}

#[test]
fn password_from_a_file_or_a_command() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    dv.deliver(&build(&["--attach", &a]));
    let pw = src.path().join("pw");
    std::fs::write(&pw, format!("{}\nignored second line\n", common::PASSWORD)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let login = dv.login_args(common::USER);
    let mut base: Vec<&str> = login.iter().map(String::as_str).collect();
    base.extend(["--out-dir", out.path().to_str().unwrap()]);
    let f = common::run(
        &[&base[..], &["--password-file", pw.to_str().unwrap()]].concat(),
        &[],
    );
    assert_eq!((f.code, f.lines.len()), (0, 1), "{}", f.stderr);
    let cmd = format!("printf '%s\\n' {}", common::PASSWORD);
    let f = common::run(&[&base[..], &["--password-command", &cmd]].concat(), &[]);
    assert_eq!((f.code, f.lines.len()), (0, 1), "{}", f.stderr);
    let f = common::run(
        &[&base[..], &["--password-command", "exit 3"]].concat(),
        &[],
    );
    assert_eq!(f.code, 78, "{}", f.stderr);
    assert!(f.stderr.contains("password command failed"), "{}", f.stderr);
}

/// The IMAP password, from the environment, a file or a command, at debug
/// level, in a good run and a refused login: never in a log line, the
/// summary, the rejects or the state (tests/secrets.bats does the rest).
#[test]
fn imap_secrets_never_reach_a_log() {
    let mut dv = Dovecot::start();
    let src = tempfile::tempdir().unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    dv.deliver(&build(&["--attach", &a]));
    let pw = src.path().join("pw");
    std::fs::write(&pw, format!("{}\n", common::PASSWORD)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let login = dv.login_args(common::USER);
    let mut base: Vec<&str> = login.iter().map(String::as_str).collect();
    let summary = src.path().join("summary.json");
    let rejects = src.path().join("rejects.ndjson");
    let state = src.path().join("state.json");
    base.extend([
        "--out-dir",
        out.path().to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--max-rejects",
        "5",
        "--state",
        state.to_str().unwrap(),
    ]);
    let cmd = format!("printf '%s\\n' {}", common::PASSWORD);
    let debug = ("ETL_LOG", "debug");
    let runs = [
        common::run(&base, &[("ETL_IMAP_PASSWORD", common::PASSWORD), debug]),
        common::run(
            &[&base[..], &["--password-file", pw.to_str().unwrap()]].concat(),
            &[debug],
        ),
        common::run(
            &[&base[..], &["--password-command", &cmd]].concat(),
            &[debug],
        ),
    ];
    let mut seen = String::new();
    for f in &runs {
        assert_eq!(f.code, 0, "{}", f.stderr);
        seen += &f.stderr;
        seen += &std::fs::read_to_string(&summary).unwrap();
    }
    // A refused login says who was refused, never with what.
    let wrong = "wr0ng-pa55word";
    let f = common::run(&base, &[("ETL_IMAP_PASSWORD", wrong), debug]);
    assert_eq!(f.code, 77, "{}", f.stderr);
    seen += &f.stderr;
    seen += &std::fs::read_to_string(&rejects).unwrap_or_default();
    seen += &std::fs::read_to_string(&state).unwrap();
    for secret in [common::PASSWORD, wrong] {
        assert!(!seen.contains(secret), "{secret} leaked: {seen}");
    }
}

/// XOAUTH2 as with Gmail: a service-account key with domain-wide
/// delegation, its token from the emulator's token endpoint (yup-oauth2),
/// validated by Dovecot's oauth2 passdb at the emulator's tokeninfo.
#[test]
#[allow(clippy::too_many_lines)] // emulator, Dovecot, three logins
fn xoauth2_with_a_delegated_service_account() {
    let url =
        etl_sheets_emulator::server::spawn(etl_sheets_emulator::server::Config::default()).unwrap();
    let mut dv = Dovecot::start_with(Some(&format!("{url}/tokeninfo")));
    let src = tempfile::tempdir().unwrap();
    let key = src.path().join("dwd.json");
    etl_sheets_emulator::keygen::service_account(
        &key,
        &url,
        "mail-fetcher@etlkit-emulator.iam.gserviceaccount.com",
        true,
    )
    .unwrap();
    let a = csv(src.path(), "a.csv", "n\n1\n");
    let raw = build(&["--attach", &a]);
    let inbox = dv
        .dir
        .path()
        .join("mail")
        .join(common::OAUTH_USER)
        .join("new")
        .join("1700000001.M1P1.test");
    std::fs::write(&inbox, raw).unwrap();
    std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(dv.dir.path().join("mail"))
        .status()
        .unwrap();
    let _ = &mut dv;
    let out = tempfile::tempdir().unwrap();
    let login = dv.login_args(common::OAUTH_USER);
    let mut args: Vec<&str> = login.iter().map(String::as_str).collect();
    args.extend([
        "--auth",
        "xoauth2",
        "--oauth-credentials",
        key.to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
    ]);
    let f = common::run(&args, &[]);
    assert_eq!(
        (f.code, f.lines.len()),
        (0, 1),
        "{}\n{}",
        f.stderr,
        dv.log()
    );
    // A key without delegation gets no token for the user: exit 77.
    let plain = src.path().join("plain.json");
    etl_sheets_emulator::keygen::service_account(
        &plain,
        &url,
        "other@etlkit-emulator.iam.gserviceaccount.com",
        false,
    )
    .unwrap();
    let mut bad = args.clone();
    let p = plain.to_str().unwrap().to_owned();
    bad[11] = &p;
    let f = common::run(&bad, &[]);
    assert_eq!(f.code, 77, "{}", f.stderr);
    // A token command (here: the refresh-token grant by curl) works the same
    // way; a wrong token is refused by Dovecot.
    let adc = src.path().join("adc.json");
    etl_sheets_emulator::keygen::authorized_user(&adc, &url, common::OAUTH_USER).unwrap();
    let cmd = format!(
        "curl -sf {url}/token -d grant_type=refresh_token -d client_id=$(jq -r .client_id {a}) -d client_secret=$(jq -r .client_secret {a}) --data-urlencode refresh_token=$(jq -r .refresh_token {a}) | jq -r .access_token",
        a = adc.display()
    );
    let f = common::run(
        &[
            &args[..10],
            &[
                "--oauth-token-command",
                &cmd,
                "--out-dir",
                out.path().to_str().unwrap(),
            ],
        ]
        .concat(),
        &[],
    );
    assert_eq!((f.code, f.lines.len()), (0, 1), "{}", f.stderr);
    let f = common::run(
        &[
            &args[..10],
            &[
                "--oauth-token-command",
                "echo not-a-token",
                "--out-dir",
                out.path().to_str().unwrap(),
            ],
        ]
        .concat(),
        &[],
    );
    assert_eq!(f.code, 77, "{}", f.stderr);
}
