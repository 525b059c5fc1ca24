//! Integration tests of every etl-checkpoint subcommand, through the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::Scratch;

const NUMS: [&str; 3] = ["--key", "k", "--field"];

fn num_args() -> Vec<&'static str> {
    let mut v = NUMS.to_vec();
    v.extend(["id", "--type", "number"]);
    v
}

#[test]
fn done_when_example_prints_two_records_names_line_3_and_exits_65() {
    let s = Scratch::new();
    let out = s.filter("r1", &num_args(), "{\"id\":1}\n{\"id\":2}\nnot json\n");
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1}\n{\"id\":2}\n");
    let errors: Vec<_> = out
        .logs()
        .into_iter()
        .filter(|l| l.to_string().contains("\"level\":\"error\""))
        .collect();
    assert!(
        errors.iter().any(|e| e.to_string().contains("line 3")),
        "{}",
        out.stderr
    );
    // A failed run records nothing.
    assert!(!s.state().exists());
}

#[test]
fn second_run_passes_only_new_records_after_commit() {
    let s = Scratch::new();
    let day1 = "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n";
    assert_eq!(s.filter("r1", &num_args(), day1).stdout, day1);
    // Not committed yet: the same records come again.
    assert_eq!(s.filter("r1b", &num_args(), day1).stdout, day1);
    assert_eq!(s.commit("r1").code, 0);
    assert_eq!(s.get("k").stdout, "2\n");
    let day2 = format!("{day1}{{\"id\":3,\"v\":\"c\"}}\n");
    let out = s.filter("r2", &num_args(), &day2);
    assert_eq!(out.stdout, "{\"id\":3,\"v\":\"c\"}\n");
    // r1b's pending value is still there, untouched by r1's commit.
    assert!(s.state_json().to_json().contains("\"pending\":{\"r1b\":"));
}

#[test]
fn records_pass_through_byte_exact() {
    let s = Scratch::new();
    let line = "{\"z\": 1.0, \"a\":1e400,\"id\":\"7\", \"big\":12345678901234567890}\n";
    assert_eq!(s.filter("r", &num_args(), line).stdout, line);
}

#[test]
fn numbers_compare_exactly_past_f64_precision() {
    let s = Scratch::new();
    s.filter("r1", &num_args(), "{\"id\":12345678901234567890}\n");
    s.commit("r1");
    // Equal as f64, different as decimals.
    let out = s.filter(
        "r2",
        &num_args(),
        "{\"id\":12345678901234567890}\n{\"id\":12345678901234567891}\n",
    );
    assert_eq!(out.stdout, "{\"id\":12345678901234567891}\n");
    s.commit("r2");
    assert_eq!(s.get("k").stdout, "12345678901234567891\n");
    assert!(std::fs::read_to_string(s.state())
        .unwrap()
        .contains("12345678901234567891"));
}

#[test]
fn timestamps_by_instant_with_timezone_and_overlap() {
    let s = Scratch::new();
    let ts = ["--key", "t", "--field", "at", "--type", "timestamp"];
    let input = "{\"at\":\"2026-11-21T08:00:00+02:00\"}\n{\"at\":\"2026-11-21T05:30:00Z\"}\n";
    s.filter("r1", &ts, input);
    s.commit("r1");
    assert_eq!(s.get("t").stdout, "2026-11-21T06:00:00Z\n", "stored as UTC");
    let later = "{\"at\":\"2026-11-21T05:59:00Z\"}\n{\"at\":\"2026-11-21T07:00:01+01:00\"}\n";
    assert_eq!(
        s.filter("r2", &ts, later).stdout,
        "{\"at\":\"2026-11-21T07:00:01+01:00\"}\n"
    );
    let mut with_overlap = ts.to_vec();
    with_overlap.extend(["--overlap", "10m"]);
    let out = s.filter("r3", &with_overlap, later);
    assert_eq!(out.stdout, later, "--overlap 10m re-includes 05:59");
    // Naive timestamps: a reject without --timezone, compared in the zone with it.
    let naive = "{\"at\":\"2026-11-21 07:30:00\"}\n";
    let out = s.filter("r4", &ts, naive);
    assert_eq!(out.code, 65);
    assert!(out.log_with("--timezone"), "{}", out.stderr);
    let mut paris = ts.to_vec();
    paris.extend(["--timezone", "Europe/Paris"]);
    // Committed is 06:00Z; Paris is UTC+1 in November: 07:30 is 06:30Z, 06:45 is 05:45Z.
    let two = "{\"at\":\"2026-11-21 06:45:00\"}\n{\"at\":\"2026-11-21 07:30:00\"}\n";
    assert_eq!(s.filter("r5", &paris, two).stdout, naive);
}

#[test]
fn initial_applies_only_without_a_committed_value() {
    let s = Scratch::new();
    let mut a = num_args();
    a.extend(["--initial", "5"]);
    let input = "{\"id\":4}\n{\"id\":5}\n{\"id\":6}\n";
    assert_eq!(s.filter("r1", &a, input).stdout, "{\"id\":6}\n");
    s.run(
        &[
            "set",
            "--state",
            s.state().to_str().unwrap(),
            "k",
            "3",
            "--type",
            "number",
        ],
        "",
    );
    assert_eq!(s.filter("r2", &a, input).stdout, input);
}

#[test]
fn rejects_file_missing_field_and_max_rejects() {
    let s = Scratch::new();
    let rejects = s.path("rejects.ndjson");
    let mut a = num_args();
    a.extend(["--rejects", rejects.to_str().unwrap(), "--max-rejects", "2"]);
    let input = "{\"id\":1}\n{\"other\":2}\n{\"id\":\"x1\"}\n{\"id\":3}\n";
    let out = s.filter("r1", &a, input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1}\n{\"id\":3}\n");
    let text = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<_> = text
        .lines()
        .map(|l| etl_core::Value::parse(l).unwrap().to_json())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with(r#"{"line":2,"error":"field id: missing","stage":"etl-checkpoint filter","input":{"other":2}"#), "{}", lines[0]);
    assert!(
        lines[1].starts_with(r#"{"line":3,"error":"field id: \"x1\" is not a number""#),
        "{}",
        lines[1]
    );
    // --missing pass lets the record through without moving the watermark.
    let mut p = num_args();
    p.extend(["--missing", "pass"]);
    assert_eq!(
        s.filter("r2", &p, "{\"other\":2}\n{\"id\":null}\n").stdout,
        "{\"other\":2}\n{\"id\":null}\n"
    );
    // One more reject than allowed: exit 65, rejects so far are flushed.
    let out = s.filter("r3", &a, "{\"a\":1}\n{\"b\":1}\n{\"c\":1}\n");
    assert_eq!(out.code, 65);
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap().lines().count(),
        5
    );
}

#[test]
fn invalid_utf8_reject_keeps_the_bytes() {
    let s = Scratch::new();
    let rejects = s.path("r.ndjson");
    let mut c = s.cmd(&[
        "filter",
        "--state",
        s.state().to_str().unwrap(),
        "--key",
        "k",
        "--field",
        "id",
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    let mut child = c
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"{\"id\":\"\xff\"}\n").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(65));
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        text.contains("\"input_base64\":\"eyJpZCI6Iv8ifQ==\""),
        "{text}"
    );
}

#[test]
fn stored_type_mismatch_is_a_config_error() {
    let s = Scratch::new();
    s.filter("r1", &num_args(), "{\"id\":1}\n");
    s.commit("r1");
    let out = s.filter(
        "r2",
        &["--key", "k", "--field", "id", "--type", "timestamp"],
        "{\"id\":\"2026-01-01T00:00:00Z\"}\n",
    );
    assert_eq!(out.code, 78);
    assert!(out.log_with("recorded as number"), "{}", out.stderr);
}

#[test]
fn corrupt_state_is_exit_78_and_left_untouched() {
    let s = Scratch::new();
    std::fs::write(s.state(), "{\"version\":1,\"committed\":").unwrap();
    let out = s.filter("r1", &num_args(), "{\"id\":1}\n");
    assert_eq!(out.code, 78);
    assert!(out.log_with("state.json"), "{}", out.stderr);
    assert_eq!(s.commit("r1").code, 78);
    assert_eq!(
        std::fs::read_to_string(s.state()).unwrap(),
        "{\"version\":1,\"committed\":"
    );
}

#[test]
fn get_set_reset_show() {
    let s = Scratch::new();
    let st = s.state();
    let st = st.to_str().unwrap();
    assert_eq!(s.get("k").code, 1, "unknown key is exit 1, like grep");
    assert_eq!(s.get("k").stdout, "");
    let out = s.run(
        &[
            "set",
            "--state",
            st,
            "k",
            "2026-11-01 00:00:00",
            "--type",
            "timestamp",
            "--timezone",
            "UTC",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.log_with("\"level\":\"warn\"") && out.log_with("set manually"),
        "{}",
        out.stderr
    );
    assert_eq!(s.get("k").stdout, "2026-11-01T00:00:00Z\n");
    assert_eq!(
        s.run(&["get", "--state", st, "k", "--json"], "").stdout,
        "\"2026-11-01T00:00:00Z\"\n"
    );
    assert_eq!(s.run(&["set", "--state", st, "n", "007"], "").code, 0);
    assert_eq!(
        s.run(&["get", "--state", st, "n", "--json"], "").stdout,
        "\"007\"\n",
        "not valid JSON: kept as a string"
    );
    assert_eq!(s.run(&["set", "--state", st, "n", "1.50"], "").code, 0);
    assert_eq!(
        s.run(&["get", "--state", st, "n", "--json"], "").stdout,
        "1.50\n"
    );
    assert_eq!(
        s.run(
            &["set", "--state", st, "bad", "soon", "--type", "timestamp"],
            ""
        )
        .code,
        64
    );
    let show = s.run(&["show", "--state", st], "");
    assert_eq!(
        show.stdout.lines().count(),
        1,
        "one JSON object on one line"
    );
    let v = etl_core::Value::parse(&show.stdout).unwrap().to_json();
    assert!(v.starts_with("{\"version\":1,\"committed\":{\"k\":{\"value\":\"2026-11-01T00:00:00Z\",\"type\":\"timestamp\""), "{v}");
    assert_eq!(s.run(&["reset", "--state", st, "k"], "").code, 0);
    assert_eq!(s.get("k").code, 1);
    assert_eq!(
        s.run(&["reset", "--state", st, "k"], "").code,
        0,
        "reset is idempotent"
    );
}

#[test]
fn show_of_a_missing_state_is_the_empty_state() {
    let s = Scratch::new();
    let out = s.run(&["show", "--state", s.state().to_str().unwrap()], "");
    assert_eq!(
        out.stdout,
        "{\"version\":1,\"committed\":{},\"pending\":{}}\n"
    );
}

#[test]
fn commit_is_idempotent_and_discard_leaves_other_runs() {
    let s = Scratch::new();
    let st = s.state();
    let st = st.to_str().unwrap();
    s.filter("a", &num_args(), "{\"id\":1}\n");
    s.filter("b", &num_args(), "{\"id\":2}\n");
    assert_eq!(s.commit("a").code, 0);
    let before = std::fs::read_to_string(s.state()).unwrap();
    let again = s.commit("a");
    assert_eq!(again.code, 0);
    assert!(again.log_with("nothing pending for run a"));
    assert_eq!(
        std::fs::read_to_string(s.state()).unwrap(),
        before,
        "a no-op commit does not rewrite"
    );
    assert_eq!(
        s.run(&["discard", "--state", st, "--run-id", "b"], "").code,
        0
    );
    assert_eq!(s.commit("b").code, 0);
    assert_eq!(s.get("k").stdout, "1\n", "b was discarded, never committed");
    s.filter("c", &num_args(), "{\"id\":5}\n");
    s.filter(
        "d",
        &["--key", "other", "--field", "id", "--type", "number"],
        "{\"id\":5}\n",
    );
    assert_eq!(s.run(&["discard", "--state", st, "--all"], "").code, 0);
    assert!(s.state_json().to_json().contains("\"pending\":{}"));
}

#[test]
fn commit_takes_the_run_id_from_the_environment() {
    let s = Scratch::new();
    let st = s.state();
    let st = st.to_str().unwrap();
    s.filter("env-run", &num_args(), "{\"id\":9}\n");
    let out = s.run_env(&["commit", "--state", st], &[("ETL_RUN_ID", "env-run")], "");
    assert_eq!(out.code, 0);
    assert_eq!(s.get("k").stdout, "9\n");
    let out = s.run(&["commit", "--state", st], "");
    assert_eq!(out.code, 78);
    assert!(
        out.log_with("--run-id") && out.log_with("ETL_RUN_ID"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_state_setting_is_78_and_env_and_dotenv_supply_it() {
    let s = Scratch::new();
    let out = s.run(&["show"], "");
    assert_eq!(out.code, 78);
    assert!(
        out.log_with("--state") && out.log_with("ETL_STATE"),
        "{}",
        out.stderr
    );
    s.run(&["set", "--state", "from-flag.json", "k", "1"], "");
    let out = s.run_env(&["get", "k"], &[("ETL_STATE", "from-flag.json")], "");
    assert_eq!(out.stdout, "1\n");
    std::fs::write(s.path(".env"), "ETL_STATE=from-flag.json\n").unwrap();
    assert_eq!(
        s.run(&["get", "k"], "").stdout,
        "1\n",
        ".env in the working directory"
    );
    std::fs::write(s.path("other.env"), "ETL_STATE=nope.json\n").unwrap();
    assert_eq!(s.run(&["get", "k", "--env-file", "other.env"], "").code, 1);
    assert_eq!(
        s.run_env(
            &["get", "k", "--env-file", "other.env"],
            &[("ETL_STATE", "from-flag.json")],
            ""
        )
        .stdout,
        "1\n",
        "the environment wins over the file"
    );
    assert_eq!(
        s.run(&["get", "k", "--env-file", "missing.env"], "").code,
        66
    );
}

#[test]
fn usage_errors_are_64() {
    let s = Scratch::new();
    assert_eq!(s.run(&["filter", "--state", "s.json"], "").code, 64);
    assert_eq!(s.run(&["frobnicate"], "").code, 64);
    assert_eq!(
        s.run(
            &[
                "filter",
                "--state",
                "s.json",
                "--key",
                "k",
                "--field",
                "f",
                "--type",
                "string",
                "--overlap",
                "1"
            ],
            ""
        )
        .code,
        64
    );
    assert_eq!(
        s.run(
            &[
                "filter",
                "--state",
                "s.json",
                "--key",
                "k",
                "--field",
                "f",
                "--timezone",
                "Mars/Olympus"
            ],
            ""
        )
        .code,
        64
    );
    assert_eq!(s.run(&[], "").code, 64);
    let help = s.run(&["--help"], "");
    assert_eq!(help.code, 0);
    for sub in [
        "show",
        "get",
        "set",
        "reset",
        "filter",
        "commit",
        "discard",
        "Exit status",
        "Examples",
    ] {
        assert!(help.stdout.contains(sub), "--help lacks {sub}");
    }
}

#[test]
fn input_files_and_missing_ones() {
    let s = Scratch::new();
    std::fs::write(s.path("a.ndjson"), "{\"id\":1}\n").unwrap();
    std::fs::write(s.path("b.ndjson"), "{\"id\":2}\nbad\n").unwrap();
    let mut a = num_args();
    a.extend(["a.ndjson", "b.ndjson"]);
    let out = s.filter("r", &a, "");
    assert_eq!(out.code, 65);
    assert!(out.log_with("b.ndjson: line 2"), "{}", out.stderr);
    let mut m = num_args();
    m.push("missing.ndjson");
    assert_eq!(s.filter("r", &m, "").code, 66);
}

#[test]
fn unwritable_state_directory_is_73() {
    let s = Scratch::new();
    let out = s.run_env(
        &[
            "filter",
            "--state",
            "no/such/dir/state.json",
            "--key",
            "k",
            "--field",
            "id",
            "--type",
            "number",
        ],
        &[("ETL_RUN_ID", "r")],
        "{\"id\":1}\n",
    );
    assert_eq!(out.code, 73, "{}", out.stderr);
}

#[test]
fn summary_file_and_counts() {
    let s = Scratch::new();
    let sum = s.path("sum.json");
    let mut a = num_args();
    a.extend(["--summary", sum.to_str().unwrap()]);
    s.filter("r", &a, "{\"id\":1}\n{\"id\":2}\n");
    let v = etl_core::Value::parse(&std::fs::read_to_string(&sum).unwrap())
        .unwrap()
        .to_json();
    assert!(
        v.starts_with(
            "{\"cmd\":\"etl-checkpoint\",\"run_id\":\"r\",\"status\":\"ok\",\"duration_ms\":"
        ),
        "{v}"
    );
    assert!(
        v.ends_with("\"records_in\":2,\"records_out\":2,\"records_rejected\":0,\"skipped\":0,\"pending\":2}"),
        "{v}"
    );
}

/// Regression guard for `| head -1`: a closed stdout ends quietly with 0, and
/// the pending watermark covers only what was delivered.
#[test]
fn closed_stdout_exits_0_quietly_and_pending_covers_only_delivered() {
    let s = Scratch::new();
    let input = (1..=200_000).fold(String::new(), |mut acc, i| {
        use std::fmt::Write as _;
        let _ = writeln!(acc, "{{\"id\":{i}}}");
        acc
    });
    let mut c = s.cmd(&[
        "filter",
        "--state",
        s.state().to_str().unwrap(),
        "--key",
        "k",
        "--field",
        "id",
        "--type",
        "number",
    ]);
    let mut child = c
        .command()
        .env("ETL_RUN_ID", "r")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // stdout is dropped here: the pipe is closed like `head -1` does.
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(first, "{\"id\":1}\n");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert!(stderr.contains("stdout closed early"), "{stderr}");
    let state = std::fs::read_to_string(s.state()).unwrap_or_default();
    if let Some(v) = etl_core::Value::parse(&state).ok().map(|v| v.to_json()) {
        // Whatever was recorded is below the last record: nothing undelivered counts.
        assert!(!v.contains("200000"), "{v}");
    }
}

#[test]
fn version_and_help_go_to_stdout() {
    let s = Scratch::new();
    let v = s.run(&["--version"], "");
    assert_eq!(v.code, 0);
    assert!(v.stdout.starts_with("etl-checkpoint "));
    assert_eq!(v.stderr, "");
}

/// Regression: committing an older run's pending value after a newer run's
/// moved the watermark back (9 became 5), so the next run re-delivered
/// records the warehouse already had.
#[test]
fn commit_never_moves_a_watermark_back() {
    let s = Scratch::new();
    let st = s.state();
    let st = st.to_str().unwrap();
    s.filter("newer", &num_args(), "{\"id\":9}\n");
    s.filter("older", &num_args(), "{\"id\":5}\n");
    assert_eq!(s.commit("newer").code, 0);
    let late = s.commit("older");
    assert_eq!(late.code, 0, "{}", late.stderr);
    assert_eq!(s.get("k").stdout, "9\n", "{}", late.stderr);
    assert!(
        late.log_with("not moved back from 9 to 5"),
        "a warning says so: {}",
        late.stderr
    );
    assert!(
        !s.state_json().to_json().contains("\"older\":"),
        "the late run's pending values are gone"
    );
    // A greater value still moves it forward, and `set` moves it back on purpose.
    s.filter("next", &num_args(), "{\"id\":12}\n");
    assert_eq!(s.commit("next").code, 0);
    assert_eq!(s.get("k").stdout, "12\n");
    assert_eq!(s.run(&["set", "--state", st, "k", "5"], "").code, 0);
    assert_eq!(s.get("k").stdout, "5\n");
}

/// The same for timestamps, compared by instant whatever their offset.
#[test]
fn commit_compares_timestamps_by_instant() {
    let s = Scratch::new();
    let ts = ["--key", "t", "--field", "at", "--type", "timestamp"];
    s.filter("newer", &ts, "{\"at\":\"2026-11-21T06:00:00Z\"}\n");
    s.filter("older", &ts, "{\"at\":\"2026-11-21T07:30:00+02:00\"}\n");
    assert_eq!(s.commit("newer").code, 0);
    assert_eq!(s.commit("older").code, 0);
    assert_eq!(s.get("t").stdout, "2026-11-21T06:00:00Z\n");
}
