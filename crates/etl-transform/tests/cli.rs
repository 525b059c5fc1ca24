//! Integration tests of etl-transform through the binary: flags, spec files,
//! schema checks, masking, rejects and the summary.

mod common;

use common::Scratch;
use etl_core::Value;

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    match v {
        Value::Object(m) => m.get(k).unwrap_or_else(|| panic!("no {k} in {v:?}")),
        _ => panic!("not an object: {v:?}"),
    }
}

#[test]
fn decimals_stay_exact() {
    let s = Scratch::new();
    let out = s.run(&["--set", "total=0.1 + 0.2"], "{\"id\":1}\n");
    assert_eq!(out.stdout, "{\"id\":1,\"total\":0.3}\n", "{}", out.stderr);
    let out = s.run(
        &[
            "--cast",
            "a=decimal,b=decimal",
            "--set",
            "c=a + 0",
            "--set",
            "d=a = b",
        ],
        "{\"a\":\"12345678901234567890.01\",\"b\":12345678901234567890.01}\n",
    );
    assert_eq!(
        out.stdout,
        "{\"a\":12345678901234567890.01,\"b\":12345678901234567890.01,\"c\":12345678901234567890.01,\"d\":true}\n"
    );
    // Untouched numbers pass through textually, exponents and all.
    let line = "{\"x\":1e400,\"y\":1.0,\"z\":-0}\n";
    assert_eq!(
        s.run(&["--rename", "x=w"], line).stdout,
        "{\"w\":1e400,\"y\":1.0,\"z\":-0}\n"
    );
}

#[test]
fn money_casts_from_messy_text() {
    let s = Scratch::new();
    let input =
        "{\"a\":\"1,234.50\"}\n{\"a\":\" $ 12 \"}\n{\"a\":\"(12.50)\"}\n{\"a\":\"12.5 EUR\"}\n";
    let out = s.run(&["--cast", "a=decimal(12,2)"], input);
    assert_eq!(
        out.lines(),
        [
            "{\"a\":1234.50}",
            "{\"a\":12.00}",
            "{\"a\":-12.50}",
            "{\"a\":12.50}"
        ]
    );
    let out = s.run(
        &["--decimal-comma", "--cast", "a=decimal(12,2)"],
        "{\"a\":\"1.234,50 €\"}\n",
    );
    assert_eq!(out.stdout, "{\"a\":1234.50}\n");
}

#[test]
fn a_value_that_does_not_cast_is_a_reject_naming_field_value_and_type() {
    let s = Scratch::new();
    let input = "{\"id\":1,\"a\":\"12.345\"}\n{\"id\":2,\"a\":\"7\"}\n";
    let out = s.run(
        &[
            "--cast",
            "a=decimal(12,2)",
            "--rejects",
            "r.ndjson",
            "--max-rejects",
            "1",
        ],
        input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":2,\"a\":7.00}\n");
    let rej = Value::parse(s.read("r.ndjson").trim()).unwrap();
    let err = field(&rej, "error").as_str().unwrap().to_owned();
    assert!(
        err.contains("cast")
            && err.contains("field a")
            && err.contains("\"12.345\"")
            && err.contains("decimal(12,2)"),
        "{err}"
    );
    // The rejects file keeps the input as it came in.
    assert_eq!(
        field(&rej, "input").to_json(),
        "{\"id\":1,\"a\":\"12.345\"}"
    );
    assert_eq!(field(&rej, "line").to_json(), "1");
    assert_eq!(field(&rej, "stage").as_str(), Some("etl-transform"));

    // Default --max-rejects 0: the run fails with 65.
    let out = s.run(&["--cast", "a=decimal(12,2)"], input);
    assert_eq!(out.code, 65);
    // --on-cast-error null keeps the record.
    let out = s.run(
        &["--cast", "a=decimal(12,2)", "--on-cast-error", "null"],
        input,
    );
    assert_eq!(
        out.lines(),
        ["{\"id\":1,\"a\":null}", "{\"id\":2,\"a\":7.00}"]
    );
}

#[test]
fn step_flags_apply_in_command_line_order() {
    let s = Scratch::new();
    let input = "{\"a\":\"1\"}\n{\"a\":\"5\"}\n";
    // rename, then filter on the new name, then rename again.
    let out = s.run(
        &["--rename", "a=b", "--filter", "b > 2", "--rename", "b=c"],
        input,
    );
    assert_eq!(out.stdout, "{\"c\":\"5\"}\n", "{}", out.stderr);
    // The same flags in another order mean something else: c does not exist yet.
    let out = s.run(
        &["--filter", "c > 2", "--rename", "a=b", "--rename", "b=c"],
        input,
    );
    assert_eq!(out.stdout, "");
    let names: Vec<String> = match field(&out.summary(), "steps") {
        Value::Array(a) => a.iter().map(|st| field(st, "name").to_raw_text()).collect(),
        _ => panic!(),
    };
    assert_eq!(names, ["filter", "rename", "rename"]);
}

#[test]
fn key_order_is_kept_and_new_fields_go_last_unless_reordered() {
    let s = Scratch::new();
    let input = "{\"z\":1,\"a\":2,\"m\":3}\n";
    let out = s.run(
        &["--add", "src=x", "--set", "a=a * 10", "--rename", "z=y"],
        input,
    );
    assert_eq!(out.stdout, "{\"y\":1,\"a\":20,\"m\":3,\"src\":\"x\"}\n");
    let out = s.run(&["--add", "src=x", "--reorder", "src,m"], input);
    assert_eq!(out.stdout, "{\"src\":\"x\",\"m\":3,\"z\":1,\"a\":2}\n");
}

#[test]
fn summary_counts_per_step() {
    let s = Scratch::new();
    let input = "{\"id\":1,\"n\":5}\n{\"id\":1,\"n\":7}\n{\"id\":2,\"n\":1}\n{\"id\":3,\"n\":\"x\"}\nnot json\n";
    let out = s.run(
        &[
            "--filter",
            "n > 2",
            "--unique",
            "id",
            "--max-rejects",
            "10",
            "--summary",
            "sum.json",
        ],
        input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"n\":5}\n");
    let sum = Value::parse(&s.read("sum.json")).unwrap();
    assert_eq!(field(&sum, "records_in").to_json(), "5");
    assert_eq!(field(&sum, "records_out").to_json(), "1");
    assert_eq!(field(&sum, "records_rejected").to_json(), "3");
    assert_eq!(field(&sum, "filtered_out").to_json(), "1");
    assert_eq!(
        field(&sum, "steps").to_json(),
        "[{\"step\":1,\"name\":\"filter\",\"arg\":\"n > 2\",\"records_in\":4,\"records_out\":2,\"filtered_out\":1,\"rejected\":1},\
{\"step\":2,\"name\":\"unique\",\"arg\":\"id\",\"records_in\":2,\"records_out\":1,\"filtered_out\":0,\"rejected\":1}]"
    );
}

#[test]
fn an_expression_that_fails_on_a_record_makes_it_a_reject() {
    let s = Scratch::new();
    let out = s.run(
        &[
            "--set",
            "r=a / b",
            "--rejects",
            "r.ndjson",
            "--max-rejects",
            "5",
        ],
        "{\"a\":1,\"b\":0}\n{\"a\":1,\"b\":4}\n",
    );
    assert_eq!(out.stdout, "{\"a\":1,\"b\":4,\"r\":0.25}\n");
    let rej = s.read("r.ndjson");
    assert!(
        rej.contains("step 1 (set): field r") && rej.contains("division by zero"),
        "{rej}"
    );
}

#[test]
fn a_bad_expression_on_the_command_line_is_a_usage_error() {
    let s = Scratch::new();
    let out = s.run(&["--filter", "amount >"], "");
    assert_eq!(out.code, 64);
    assert!(out.error().contains("--filter"), "{}", out.stderr);
    let out = s.run(&["--set", "x=matches(a, '(')"], "");
    assert_eq!(out.code, 64);
    assert!(out.error().contains("bad regex"), "{}", out.stderr);
    assert_eq!(s.run(&["--cast", "a=money"], "").code, 64);
    assert_eq!(s.run(&["--no-such-flag"], "").code, 64);
}

const SPEC: &str = r#"
timezone = "Europe/Paris"

[[step]]
rename = ["Order ID=order_id", "Amount=amount"]

[[step]]
cast = "amount=decimal(12,2),at=datetime:%d/%m/%Y %H:%M"

[[step]]
filter = "amount > 100"

[[step]]
drop = "tmp"
"#;

#[test]
fn a_spec_file_runs_its_steps_in_order_then_the_flags() {
    let s = Scratch::new();
    s.write("spec.toml", SPEC);
    let input =
        "{\"Order ID\":\"A-1\",\"Amount\":\"1,234.50\",\"at\":\"20/11/2026 09:15\",\"tmp\":1}\n\
                 {\"Order ID\":\"A-2\",\"Amount\":\"99\",\"at\":\"20/11/2026 09:15\",\"tmp\":1}\n";
    let out = s.run(&["--spec", "spec.toml", "--add", "src=mail"], input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\"order_id\":\"A-1\",\"amount\":1234.50,\"at\":\"2026-11-20T08:15:00Z\",\"src\":\"mail\"}\n"
    );
    // A flag overrides a spec setting.
    let out = s.run(&["--spec", "spec.toml", "--timezone", "UTC"], input);
    assert!(
        out.stdout.contains("2026-11-20T09:15:00Z"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_validates_a_spec_without_reading_input() {
    let s = Scratch::new();
    s.write("ok.toml", SPEC);
    // Input that would be rejected is never read.
    let out = s.run(&["--check", "--spec", "ok.toml"], "not json\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(field(&out.summary(), "records_in").to_json(), "0");

    let cases = [
        // A bad expression points into the string, at the character at fault.
        ("[[step]]\nfilter = \"amount >\"\n", "bad.toml:2:19:"),
        ("[[step]]\nset = 'x=lower(a'\n", "bad.toml:2:17:"),
        (
            "[[step]]\nfrobnicate = \"x\"\n",
            "bad.toml:2:1: unknown step",
        ),
        (
            "[[step]]\ncast = [\"a=int\", \"b=money\"]\n",
            "bad.toml:2:19: cast: b: unknown type",
        ),
        ("[[step]\nselect = \"a\"\n", "bad.toml:1:"),
        ("on_drift = \"sometimes\"\n", "bad.toml:1:13: on_drift"),
        (
            "[[step]]\nselect = \"a\"\ndrop = \"b\"\n",
            "bad.toml:3:1: each [[step]]",
        ),
    ];
    for (text, want) in cases {
        s.write("bad.toml", text);
        let out = s.run(&["--check", "--spec", "bad.toml"], "");
        assert_eq!(out.code, 78, "{text}: {}", out.stderr);
        assert!(
            out.error().starts_with(want),
            "{text}: want {want}, got {}",
            out.error()
        );
    }
    let out = s.run(&["--check", "--spec", "missing.toml"], "");
    assert_eq!(out.code, 66);
}

const SCHEMA: &str = r#"
[[column]]
name = "id"
type = "int"
required = true

[[column]]
name = "amount"
type = "decimal(12,2)"
"#;

#[test]
fn schema_types_are_checked_and_drift_fails_the_run() {
    let s = Scratch::new();
    s.write("schema.toml", SCHEMA);
    let ok = "{\"id\":\"1\",\"amount\":\"5\"}\n";
    let args = [
        "--cast",
        "id=int,amount=decimal(12,2)",
        "--schema",
        "schema.toml",
    ];
    let out = s.run(&args, ok);
    assert_eq!(out.stdout, "{\"id\":1,\"amount\":5.00}\n", "{}", out.stderr);

    // A value of the wrong type is a reject.
    let out = s.run(
        &["--schema", "schema.toml", "--max-rejects", "1"],
        "{\"id\":1,\"amount\":\"5\"}\n",
    );
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "");
    assert!(out.log_with("expected decimal(12,2)"), "{}", out.stderr);
    assert_eq!(field(&out.summary(), "schema_rejected").to_json(), "1");

    // Drift: a column added and one missing fails with 65 and lists both.
    let drift = "{\"id\":1,\"amount\":5.00}\n{\"id\":2,\"extra\":true}\n";
    let out = s.run(&["--schema", "schema.toml"], drift);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"amount\":5.00}\n");
    let e = out.error();
    assert!(
        e.contains("added column(s): extra") && e.contains("missing column(s): amount"),
        "{e}"
    );

    // warn: one warning per distinct drift, records pass.
    let many = drift.repeat(3);
    let out = s.run(&["--schema", "schema.toml", "--on-drift", "warn"], &many);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines().len(), 6);
    assert_eq!(
        out.stderr.matches("schema drift").count(),
        1,
        "{}",
        out.stderr
    );
    let out = s.run(&["--schema", "schema.toml", "--on-drift", "ignore"], &many);
    assert_eq!(out.code, 0);
    assert!(!out.log_with("schema drift"));
}

#[test]
fn hash_masks_need_a_salt_and_never_log_it() {
    let s = Scratch::new();
    let input = "{\"email\":\"ann@example.com\",\"card\":\"4111111111111111\"}\n";
    let args = ["--mask", "email=hash,card=truncate:4"];
    let out = s.run(&args, input);
    assert_eq!(out.code, 78);
    assert!(out.error().contains("ETL_MASK_SALT"), "{}", out.stderr);
    assert_eq!(field(&out.summary(), "records_in").to_json(), "0");

    let salt = "s3cret-salt-value";
    let a = s.run_env(&args, &[("ETL_MASK_SALT", salt)], input);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let rec = Value::parse(a.stdout.trim()).unwrap();
    let hash = field(&rec, "email").as_str().unwrap().to_owned();
    // SHA-256 of salt, NUL, value (by Python's hashlib).
    assert_eq!(
        hash,
        "8172804704bb8a8168bfc7b5058a1b46a031e12da8b18a2c5fcbfbd824a12c7f"
    );
    assert_eq!(field(&rec, "card").as_str(), Some("4111"));
    assert!(!a.stderr.contains(salt));
    // Deterministic for one salt, different for another; a salt file works too.
    let b = s.run_env(&args, &[("ETL_MASK_SALT", salt)], input);
    assert_eq!(a.stdout, b.stdout);
    s.write("salt", "other\n");
    let c = s.run(&["--mask-salt-file", "salt", "--mask", "email=hash"], input);
    assert_ne!(a.stdout, c.stdout);
    assert!(!c.stderr.contains("other"));
}

#[test]
fn run_id_and_loaded_at_on_request() {
    let s = Scratch::new();
    let out = s.run_env(
        &["--add-run-id", "--add-loaded-at"],
        &[("ETL_RUN_ID", "nightly-7")],
        "{\"a\":1}\n{\"a\":2}\n",
    );
    let recs: Vec<Value> = out
        .lines()
        .iter()
        .map(|l| Value::parse(l).unwrap())
        .collect();
    assert_eq!(field(&recs[0], "_run_id").as_str(), Some("nightly-7"));
    let at = field(&recs[0], "_loaded_at").as_str().unwrap();
    assert!(
        at.ends_with('Z') && at.parse::<jiff::Timestamp>().is_ok(),
        "{at}"
    );
    assert_eq!(field(&recs[1], "_loaded_at").as_str(), Some(at));
}

#[test]
fn files_as_arguments_name_their_source_in_rejects() {
    let s = Scratch::new();
    s.write("a.ndjson", "{\"n\":1}\n");
    s.write("b.ndjson", "{\"n\":\"x\"}\n");
    let out = s.run(
        &[
            "--cast",
            "n=int",
            "--rejects",
            "r.ndjson",
            "--max-rejects",
            "1",
            "a.ndjson",
            "b.ndjson",
        ],
        "",
    );
    assert_eq!(out.stdout, "{\"n\":1}\n");
    assert!(s.read("r.ndjson").contains("\"source\":\"b.ndjson\""));
    assert_eq!(s.run(&["nope.ndjson"], "").code, 66);
}

#[test]
fn dates_and_timezones() {
    let s = Scratch::new();
    let input = "{\"d\":\"21/11/2026\",\"t\":\"2026-11-21 07:30\",\"x\":45000}\n";
    let out = s.run(
        &[
            "--cast",
            "d=date:%d/%m/%Y|%Y-%m-%d,t=datetime:%Y-%m-%d %H:%M,x=date",
            "--timezone",
            "Europe/Paris",
            "--set",
            "later=date_add(d, 10, 'day')",
            "--set",
            "h=hour(t)",
        ],
        input,
    );
    assert_eq!(
        out.stdout,
        "{\"d\":\"2026-11-21\",\"t\":\"2026-11-21T06:30:00Z\",\"x\":\"2023-03-15\",\"later\":\"2026-12-01\",\"h\":6}\n",
        "{}",
        out.stderr
    );
    assert_eq!(s.run(&["--timezone", "Mars/Base"], "").code, 64);
}

#[test]
fn help_documents_every_step_with_an_example() {
    let s = Scratch::new();
    let out = s.run(&["--help"], "");
    assert_eq!(out.code, 0);
    for k in etl_transform::steps::Kind::ALL {
        let flag = format!("--{}", k.name());
        assert!(
            out.stdout.matches(flag.as_str()).count() >= 2,
            "{flag} needs a flag and an example in --help"
        );
    }
    assert!(out.stdout.contains("memory grows"));
    assert!(out.stdout.contains("Exit status"));
}
