//! etl-run end to end: the real binary running real bash pipelines, with
//! real signals, process groups, locks, a loopback HTTP receiver and a
//! notify command. Every wait is for a condition, never a fixed sleep.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etl_testkit::{Cmd, Out, Scratch};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_etl-run");

fn etl_run(s: &Scratch, args: &[&str]) -> Cmd {
    Cmd::new(BIN)
        .current_dir(s.dir.path())
        .args(args)
        .env("TMPDIR", s.dir.path())
}

fn spawn(s: &Scratch, args: &[&str]) -> Child {
    let mut c = Command::new(BIN);
    for v in [
        "ETL_LOG",
        "ETL_RUN_ID",
        "ETL_STATE",
        "ETL_RUNS_LOG",
        "ETL_NOTIFY_URL",
    ] {
        c.env_remove(v);
    }
    c.current_dir(s.dir.path())
        .args(args)
        .env("TMPDIR", s.dir.path())
        .env("ETL_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etl-run")
}

/// Waits until `cond` holds, up to 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

fn runs(s: &Scratch) -> Vec<Value> {
    s.read("runs.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a runs-log line is JSON"))
        .collect()
}

fn pid_in(s: &Scratch, name: &str) -> i32 {
    s.read(name).trim().parse().expect("a pid")
}

#[test]
fn a_timeout_stops_the_whole_process_group_even_a_child_that_ignores_sigterm() {
    let s = Scratch::new();
    // A background child, a child that ignores SIGTERM, and the script
    // waiting. The children's stdout is not the test's pipe: were they left
    // running, the run would still end and the check below would see them.
    s.write(
        "slow.sh",
        "sleep 300 > /dev/null & echo $! > bg.pid\n\
         bash -c 'trap \"\" TERM; echo $$ > stubborn.pid; while :; do sleep 0.05; done' > /dev/null &\n\
         echo started >&2\nwait\n",
    );
    let started = Instant::now();
    let out = etl_run(
        &s,
        &[
            "--timeout",
            "1s",
            "--kill-after",
            "1s",
            "--retries",
            "0",
            "--runs-log",
            "runs.ndjson",
            "--notify-command",
            "cat > alert.json",
            "--",
            "slow.sh",
        ],
    )
    .run();
    out.fails_with(75);
    // The alert says it timed out.
    let alert: Value = serde_json::from_str(&s.read("alert.json")).unwrap();
    assert_eq!(
        (alert["kind"].as_str(), alert["timed_out"].as_bool()),
        (Some("failed"), Some(true))
    );
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("slow.sh timed out (exit 75, 1 attempts)"),
        "{alert}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let (bg, stubborn) = (pid_in(&s, "bg.pid"), pid_in(&s, "stubborn.pid"));
    wait_for("the group's processes to end", || {
        !alive(bg) && !alive(stubborn)
    });
    assert!(out.log_with("timed out after 1.0s"), "{}", out.stderr);
    assert!(out.log_with("still running: SIGKILL"), "{}", out.stderr);
    let r = &runs(&s)[0];
    assert_eq!(
        (
            r["status"].as_str(),
            r["exit_code"].as_i64(),
            r["timed_out"].as_bool()
        ),
        (Some("failed"), Some(75), Some(true))
    );
}

#[test]
fn a_timed_out_attempt_is_retried_like_any_temporary_failure() {
    let s = Scratch::new();
    // The first attempt hangs; the second finds the marker and succeeds.
    s.write(
        "flaky.sh",
        "if [ -e second ]; then exit 0; fi; touch second; sleep 300\n",
    );
    let out = etl_run(
        &s,
        &[
            "--timeout",
            "500ms",
            "--kill-after",
            "1s",
            "--retries",
            "1",
            "--retry-delay",
            "0",
            "--runs-log",
            "runs.ndjson",
            "--",
            "flaky.sh",
        ],
    )
    .run();
    out.succeeds();
    let r = &runs(&s)[0];
    assert_eq!(
        (r["status"].as_str(), r["attempts"].as_u64()),
        (Some("ok"), Some(2))
    );
    assert!(
        out.log_with("timed out after 500ms (temporary); retry 1 of 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_to_etl_run_reaches_the_pipeline_and_the_run_is_interrupted() {
    let s = Scratch::new();
    s.write(
        "long.sh",
        "trap 'echo term > got-term; exit 143' TERM\necho $$ > pipeline.pid\nsleep 300 & wait\n",
    );
    let mut child = spawn(
        &s,
        &[
            "--retries",
            "3",
            "--runs-log",
            "runs.ndjson",
            "--",
            "long.sh",
        ],
    );
    wait_for("the pipeline to start", || {
        s.path("pipeline.pid").exists() && !s.read("pipeline.pid").is_empty()
    });
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(s.read("got-term").trim(), "term");
    assert!(!alive(pid_in(&s, "pipeline.pid")));
    let r = &runs(&s)[0];
    assert_eq!(
        (
            r["status"].as_str(),
            r["signal"].as_str(),
            r["attempts"].as_u64()
        ),
        (Some("interrupted"), Some("SIGTERM"), Some(1)),
        "no retry after a signal"
    );
}

#[test]
fn a_held_lock_skips_the_run_and_says_so_in_the_runs_log() {
    let s = Scratch::new();
    s.write(
        "hold.sh",
        "touch holding; while [ ! -e release ]; do sleep 0.02; done\n",
    );
    let mut first = spawn(
        &s,
        &[
            "--lock",
            "job.lock",
            "--runs-log",
            "runs.ndjson",
            "--",
            "hold.sh",
        ],
    );
    wait_for("the first run to hold the lock", || {
        s.path("holding").exists()
    });
    let out = etl_run(
        &s,
        &[
            "--lock",
            "job.lock",
            "--runs-log",
            "runs.ndjson",
            "--",
            "hold.sh",
        ],
    )
    .run();
    out.fails_with(75);
    assert!(
        out.log_with("is already running (lock job.lock held)"),
        "{}",
        out.stderr
    );
    s.write("release", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
    let statuses: Vec<_> = runs(&s)
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_owned(),
                r["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("skipped".to_owned(), 0), ("ok".to_owned(), 1)]);
}

/// A loopback HTTP receiver: the body of each POST, on a channel.
fn receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook?token=hook-secret-1",
        l.local_addr().unwrap().port()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .unwrap();
            let _ = tx.send(serde_json::from_slice(&body).unwrap());
        }
    });
    (url, rx)
}

#[test]
fn a_failure_alerts_the_webhook_and_the_command_with_secrets_masked() {
    let s = Scratch::new();
    s.write(
        "fail.sh",
        "echo '{\"ts\":\"t\",\"level\":\"info\",\"cmd\":\"etl-parse\",\"run_id\":\"x\",\"msg\":\"summary\",\"status\":\"ok\",\"records_in\":3,\"records_out\":3,\"records_rejected\":1}' >&2\n\
         echo \"login with $ETL_IMAP_PASSWORD to https://u:$ETL_IMAP_PASSWORD@db.example/w?token=abc\" >&2\nexit 65\n",
    );
    let (url, rx) = receiver();
    let out = etl_run(
        &s,
        &[
            "--notify-url",
            &url,
            "--notify-command",
            "cat > alert.json",
            "--runs-log",
            "runs.ndjson",
            "--",
            "fail.sh",
        ],
    )
    .env("ETL_IMAP_PASSWORD", "pa55-word-x")
    .run();
    out.fails_with(65);
    let hook = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the webhook got the alert");
    let cmd: Value = serde_json::from_str(&s.read("alert.json")).unwrap();
    assert_eq!(hook, cmd, "the same alert both ways");
    assert_eq!(hook["kind"], "failed");
    assert_eq!(hook["pipeline"], "fail.sh");
    assert_eq!(hook["exit_code"], 65);
    assert_eq!(hook["attempts"], 1);
    assert_eq!(hook["rejects"], 1);
    assert_eq!(hook["stages"][0]["cmd"], "etl-parse");
    assert!(
        hook["text"]
            .as_str()
            .unwrap()
            .contains("fail.sh failed with exit 65"),
        "{hook}"
    );
    let tail = hook["log_tail"].as_array().unwrap();
    assert_eq!(
        tail.last().unwrap(),
        "login with [redacted:ETL_IMAP_PASSWORD] to https://u:***@db.example/w?token=***"
    );
    for text in [
        out.stderr.as_str(),
        &s.read("alert.json"),
        &s.read("runs.ndjson"),
    ] {
        assert!(
            !text.contains("pa55-word-x") && !text.contains("hook-secret-1"),
            "{text}"
        );
    }
    assert_eq!(runs(&s)[0]["alerts"], serde_json::json!(["failed"]));
}

/// A runs-log line the test writes (history for the alerts).
fn history_line(status: &str, ms: u64, rows: u64) -> String {
    format!(
        "{{\"run_id\":\"old\",\"pipeline\":\"job.sh\",\"start\":\"2026-01-01T00:00:00.000Z\",\"end\":\"2026-01-01T00:00:01.000Z\",\"duration_ms\":{ms},\"status\":\"{status}\",\"exit_code\":0,\"attempts\":1,\"rows_loaded\":{rows}}}\n"
    )
}

/// The job: loads ROWS rows (an etl-merge summary) and rejects REJECTS.
const JOB: &str = "if [ -n \"${SLOW:-}\" ]; then sleep 0.2; fi\necho \"{\\\"ts\\\":\\\"t\\\",\\\"level\\\":\\\"info\\\",\\\"cmd\\\":\\\"etl-merge\\\",\\\"run_id\\\":\\\"x\\\",\\\"msg\\\":\\\"summary\\\",\\\"status\\\":\\\"ok\\\",\\\"records_in\\\":${ROWS:-0},\\\"records_out\\\":0,\\\"records_rejected\\\":${REJECTS:-0}}\" >&2\n";

/// The kinds of the alerts one run of the job sends, as the notify command
/// and a loopback webhook both received them (they must agree).
fn alerts_of(s: &Scratch, history: &str, env: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    s.write("job.sh", JOB);
    s.write("runs.ndjson", history);
    let _ = std::fs::remove_file(s.path("alerts.ndjson"));
    let (url, rx) = receiver();
    let mut args = vec![
        "--notify-command",
        "cat >> alerts.ndjson",
        "--notify-url",
        &url,
        "--runs-log",
        "runs.ndjson",
    ];
    args.extend(extra);
    args.extend(["--", "job.sh"]);
    etl_run(s, &args).envs(env).run().succeeds();
    let text = std::fs::read_to_string(s.path("alerts.ndjson")).unwrap_or_default();
    let kind = |v: &Value| v["kind"].as_str().unwrap().to_owned();
    let by_command: Vec<String> = text
        .lines()
        .map(|l| kind(&serde_json::from_str::<Value>(l).unwrap()))
        .collect();
    let by_webhook: Vec<String> = by_command
        .iter()
        .map(|_| {
            kind(
                &rx.recv_timeout(Duration::from_secs(30))
                    .expect("the webhook got it"),
            )
        })
        .collect();
    assert_eq!(by_command, by_webhook);
    assert!(
        rx.try_recv().is_err(),
        "the webhook got more alerts than the command"
    );
    by_command
}

#[test]
fn recovered_slow_empty_and_rejects_alerts_from_the_runs_log() {
    let s = Scratch::new();
    let ok = |ms| history_line("ok", ms, 5);
    // Recovered: the first success after failures; not the next one.
    let h = format!(
        "{}{}{}",
        ok(100_000),
        history_line("failed", 10, 0),
        history_line("failed", 10, 0)
    );
    assert_eq!(alerts_of(&s, &h, &[("ROWS", "3")], &[]), ["recovered"]);
    let h = format!("{h}{}", ok(100_000));
    assert!(alerts_of(&s, &h, &[("ROWS", "3")], &[]).is_empty());
    // Slow: three earlier successes of 1 ms; this run takes 200 ms or more.
    let h = format!("{}{}{}", ok(1), ok(1), ok(1));
    assert_eq!(
        alerts_of(&s, &h, &[("ROWS", "3"), ("SLOW", "1")], &[]),
        ["slow"]
    );
    assert!(alerts_of(
        &s,
        &h,
        &[("ROWS", "3"), ("SLOW", "1")],
        &["--slow-factor", "1000000"]
    )
    .is_empty());
    // Fewer than three earlier successes: no median to compare with.
    let h = format!("{}{}", ok(1), ok(1));
    assert!(alerts_of(&s, &h, &[("ROWS", "3"), ("SLOW", "1")], &[]).is_empty());
    // Empty: the third successful run in a row without rows.
    let quiet = |n| {
        (0..n)
            .map(|_| history_line("ok", 100_000, 0))
            .collect::<String>()
    };
    assert_eq!(
        alerts_of(&s, &quiet(2), &[], &["--alert-empty-after", "3"]),
        ["empty"]
    );
    assert!(alerts_of(&s, &quiet(1), &[], &["--alert-empty-after", "3"]).is_empty());
    assert!(alerts_of(
        &s,
        &quiet(2),
        &[("ROWS", "1")],
        &["--alert-empty-after", "3"]
    )
    .is_empty());
    // Rejects: only when asked.
    let h = ok(100_000);
    assert_eq!(
        alerts_of(
            &s,
            &h,
            &[("ROWS", "3"), ("REJECTS", "2")],
            &["--alert-on-rejects"]
        ),
        ["rejects"]
    );
    assert!(alerts_of(&s, &h, &[("ROWS", "3"), ("REJECTS", "2")], &[]).is_empty());
    // The alert's fields.
    let line = s.read("runs.ndjson").lines().last().unwrap().to_owned();
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (r["rows_loaded"].as_u64(), r["rejects"].as_u64()),
        (Some(3), Some(2))
    );
}

#[test]
fn the_env_file_reaches_the_pipeline_without_overriding_the_environment() {
    let s = Scratch::new();
    s.write(".env", "FROM_FILE=file-value\nBOTH=file-value\n");
    s.write("show.sh", "echo \"$FROM_FILE $BOTH\" > seen\n");
    etl_run(&s, &["--", "show.sh"])
        .env("BOTH", "env-value")
        .run()
        .succeeds();
    assert_eq!(s.read("seen").trim(), "file-value env-value");
    s.write("other.env", "FROM_FILE=other\n");
    etl_run(&s, &["--env-file", "other.env", "--", "show.sh"])
        .run()
        .succeeds();
    assert_eq!(s.read("seen").trim(), "other");
}

#[test]
fn usage_errors_and_missing_pipelines() {
    let s = Scratch::new();
    s.write("ok.sh", "true\n");
    etl_run(&s, &[]).run().fails_with(64);
    etl_run(&s, &["--parallel", "2", "--", "ok.sh"])
        .run()
        .fails_with(64);
    etl_run(&s, &["--alert-empty-after", "3", "--", "ok.sh"])
        .run()
        .fails_with(64);
    etl_run(&s, &["--timeout", "soon", "--", "ok.sh"])
        .run()
        .fails_with(64);
    etl_run(&s, &["--", "missing.sh"]).run().fails_with(66);
    etl_run(&s, &["--", "./dir/missing.sh"])
        .run()
        .fails_with(66);
    etl_run(&s, &["--each", "clients/*.env", "--", "ok.sh"])
        .run()
        .fails_with(66);
    etl_run(&s, &["status", "--runs-log", "none.ndjson"])
        .run()
        .fails_with(66);
    // An unwritable runs log or metrics directory fails before anything runs.
    s.write("touch.sh", "touch ran\n");
    etl_run(
        &s,
        &["--runs-log", "no/such/dir/runs.ndjson", "--", "touch.sh"],
    )
    .run()
    .fails_with(73);
    etl_run(
        &s,
        &["--metrics-file", "no/such/dir/etl.prom", "--", "touch.sh"],
    )
    .run()
    .fails_with(73);
    assert!(!s.path("ran").exists(), "the pipeline ran");
    // A program on PATH runs as it is, with its arguments.
    etl_run(&s, &["--", "sh", "-c", "exit 3"])
        .run()
        .fails_with(3);
}

fn assert_no_secret(out: &Out, secret: &str) {
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
}

#[test]
fn what_etl_run_passes_on_from_the_pipeline_is_masked_too() {
    let s = Scratch::new();
    s.write("leak.sh", "echo \"token is $API_TOKEN\" >&2\n");
    let out = etl_run(&s, &["--", "leak.sh"])
        .env("API_TOKEN", "tok-123456")
        .run();
    out.succeeds();
    assert_no_secret(&out, "tok-123456");
    assert!(
        out.stderr.contains("token is [redacted:API_TOKEN]"),
        "{}",
        out.stderr
    );
}

#[test]
fn status_reports_each_pipeline_and_max_age_is_a_health_check() {
    let s = Scratch::new();
    let now = jiff::Timestamp::now();
    let old = now
        .checked_sub(jiff::SignedDuration::from_hours(30))
        .unwrap();
    let line = |p: &str, status: &str, t: jiff::Timestamp| {
        format!("{{\"run_id\":\"r\",\"pipeline\":\"{p}\",\"start\":\"{t:.3}\",\"end\":\"{t:.3}\",\"duration_ms\":1500,\"status\":\"{status}\",\"exit_code\":0,\"attempts\":1,\"rows_loaded\":7}}\n")
    };
    s.write(
        "runs.ndjson",
        format!(
            "{}{}{}",
            line("fresh.sh", "ok", now),
            line("stale.sh", "ok", old),
            line("stale.sh", "failed", now)
        ),
    );
    let out = etl_run(&s, &["status", "--runs-log", "runs.ndjson"]).run();
    out.succeeds();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("PIPELINE"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("fresh.sh") && lines[1].contains(" ok "),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("stale.sh")
            && lines[2].contains("failed")
            && lines[2].contains("1d 6h ago"),
        "{}",
        out.stdout
    );
    let out = etl_run(
        &s,
        &[
            "status",
            "--runs-log",
            "runs.ndjson",
            "--max-age",
            "26h",
            "--json",
        ],
    )
    .run();
    out.fails_with(1);
    let recs = out.records();
    assert_eq!(
        recs.iter()
            .map(|r| (
                r["pipeline"].as_str().unwrap(),
                r["stale"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("fresh.sh", false), ("stale.sh", true)]
    );
    assert!(
        out.log_with("stale.sh: last success 1d 6h ago"),
        "{}",
        out.stderr
    );
    etl_run(
        &s,
        &["status", "--runs-log", "runs.ndjson", "--max-age", "31h"],
    )
    .run()
    .succeeds();
}

#[test]
fn a_stray_background_process_does_not_outlive_the_run() {
    let s = Scratch::new();
    s.write("stray.sh", "sleep 300 & echo $! > stray.pid\nexit 0\n");
    // Not through a pipe the stray process would inherit and hold open:
    // etl-run's own exit is what is waited for.
    let mut child = spawn(&s, &["--kill-after", "2s", "--", "stray.sh"]);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let pid = pid_in(&s, "stray.pid");
    wait_for("the stray process to end", || !alive(pid));
}
