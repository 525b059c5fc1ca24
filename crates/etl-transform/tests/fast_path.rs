//! The fast path (flat records planned per key shape, values read only when
//! a step touches them) against the general path (every line parsed into a
//! map), which `ETL_TRANSFORM_NO_FAST_PATH=1` forces: for every spec below,
//! on generated input with repeated and varying shapes, escapes, nested
//! values, repeated keys, odd whitespace and invalid lines, and on the
//! JSONTestSuite documents, both must write the same records, the same
//! rejects, the same exit code and the same per-step counts.

mod common;

use std::fmt::Write as _;

use common::{Out, Scratch};
use etl_core::Value;
use etl_testkit::Rng;

/// Raw JSON values the generator picks from.
const VALUES: &[&str] = &[
    r#""1234.50""#,
    r#""  padded  text ""#,
    r#""""#,
    r#""   ""#,
    "null",
    "true",
    "false",
    "12",
    "-0.5e3",
    "1.10",
    "12345678901234567890.01",
    r#""2026-11-22 10:00:00""#,
    r#""22/11/2026""#,
    r#""a@b.example""#,
    r#""Not An Email""#,
    r#""x\"y""#,
    r#""caf\u00e9""#,
    r#""\ud83d\ude00 tab\there""#,
    r#""x""#,
    r#""1,234.50""#,
    r#""yes""#,
    r#""Ünïcödé  Spaced""#,
    r#"{"n":1,"m":{"o":"p"}}"#,
    "[1,2,\"three\"]",
    "[]",
    "{}",
];

/// Keys the generator picks from (`x.y` exercises flatten/unflatten).
const KEYS: &[&str] = &[
    "a", "b", "c", "Order ID", "amount", "when", "email", "x.y", "note", "qty",
];

/// Lines that are not records, or that only the general path can read.
const ODD: &[&str] = &[
    r#"{"a":01}"#,
    r#"{"a":"\x"}"#,
    r#"{"a":1,}"#,
    r#"{"a" 1}"#,
    "[1,2]",
    r#""just a string""#,
    r#"{"a":"\ud800"}"#,
    r#"{"a\u0062":1,"b":2}"#,
    r#"{"a":1,"a":2,"b":3}"#,
    r#"{"a":tru}"#,
    "{\"a\":1} trailing",
    "{\"a\":\"unterminated}",
];

/// A mostly-regular stream: three fixed shapes (so plans are reused), some
/// random shapes, random whitespace, and odd lines.
fn input(seed: u64, lines: usize) -> String {
    let mut r = Rng::new(seed);
    let shapes: [&[&str]; 3] = [
        &["Order ID", "a", "amount", "when", "email", "qty"],
        &["a", "b", "c"],
        &["email", "amount", "x.y", "note", "b"],
    ];
    let mut out = String::new();
    for _ in 0..lines {
        let kind = r.below(20);
        if kind == 0 {
            out.push_str(r.pick::<&str>(ODD));
            out.push('\n');
            continue;
        }
        let owned: Vec<&str>;
        let keys: &[&str] = if kind < 15 {
            r.pick::<&[&str]>(&shapes)
        } else {
            owned = (0..r.below(6)).map(|_| *r.pick(KEYS)).collect();
            &owned
        };
        let ws = |r: &mut Rng| if r.below(7) == 0 { " " } else { "" };
        out.push_str(ws(&mut r));
        out.push('{');
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
                out.push_str(ws(&mut r));
            }
            let _ = write!(out, "\"{k}\"{}:{}", ws(&mut r), ws(&mut r));
            out.push_str(r.pick::<&str>(VALUES));
        }
        out.push_str(ws(&mut r));
        out.push('}');
        out.push_str(ws(&mut r));
        out.push('\n');
    }
    out
}

const SCHEMA: &str = r#"
[[column]]
name = "a"
type = "string"

[[column]]
name = "amount"
type = "decimal(12,2)"
"#;

/// Specs: each a list of arguments (rejects and run id are added).
#[allow(clippy::too_many_lines)] // a table
fn specs() -> Vec<Vec<&'static str>> {
    vec![
        // The bench's spec.
        vec![
            "--rename",
            "Order ID=order_id,amount=amt",
            "--cast",
            "amt=decimal(12,2)",
            "--cast",
            "when=datetime:%Y-%m-%d %H:%M:%S",
            "--filter",
            "amt > 1000",
            "--mask",
            "email=hash",
        ],
        // Key steps, with collisions.
        vec![
            "--rename",
            "a=b,c=d",
            "--select",
            "b,amount,d,email,missing",
            "--reorder",
            "email,d",
            "--drop",
            "d",
        ],
        vec![
            "--rename-regex",
            "^(.)(.*)$=$2_$1",
            "--normalize-keys",
            "snake",
            "--reorder",
            "missing,order_id",
        ],
        vec!["--normalize-keys", "lower", "--rename", "order id=id"],
        // Value steps on named fields and on every field.
        vec![
            "--trim",
            "*",
            "--collapse-spaces",
            "note,a",
            "--lower",
            "a",
            "--upper",
            "b,email",
            "--replace",
            "a=/(.)a/<$1>/g",
            "--null-if",
            "*=x",
        ],
        vec![
            "--default",
            "a=A",
            "--default",
            "zz=Z",
            "--coalesce",
            "c=missing,b,a",
            "--coalesce",
            "first=note,email",
            "--add",
            "source=test",
            "--add",
            "a=overwritten",
            "--add-run-id",
        ],
        // Expressions reading, creating and replacing fields.
        vec![
            "--set",
            "total=amount * 2",
            "--set",
            "a=coalesce(b, 'none') || '!'",
            "--filter",
            "a is not null and (total is null or total > 0)",
            "--set",
            "y=`x.y`",
        ],
        // Checks.
        vec!["--require", "a,amount", "--unique", "a"],
        vec!["--unique", "email,amount"],
        // Masks.
        vec![
            "--mask",
            "email=email-domain,a=redact,b=truncate:3,amount=hash,c=hash",
        ],
        // Casts of every type, failing and with --on-cast-error null.
        vec![
            "--cast",
            "amount=decimal(8,1),qty=int,a=bool,b=float,when=date:%d/%m/%Y|%Y-%m-%d %H:%M:%S",
        ],
        vec![
            "--on-cast-error",
            "null",
            "--cast",
            "amount=int,a=datetime,b=string,email=decimal",
        ],
        vec![
            "--decimal-comma",
            "--cast",
            "amount=decimal(14,2):point,a=decimal(6,2)",
        ],
        // A zone of naive datetimes, and a datetime read by its second format.
        vec![
            "--timezone",
            "Europe/Paris",
            "--cast",
            "when=datetime:%d/%m/%Y|%Y-%m-%d %H:%M:%S,b=date:%d/%m/%Y",
        ],
        // Flatten and unflatten (the latter leaves dotted keys to maps).
        vec!["--flatten", "--unflatten"],
        vec!["--unflatten=_"],
        // A schema on the fast path's records.
        vec!["--schema", "schema.toml", "--on-drift", "warn"],
        vec![
            "--select",
            "a,amount",
            "--cast",
            "amount=decimal(12,2)",
            "--schema",
            "schema.toml",
            "--on-drift",
            "ignore",
        ],
    ]
}

/// One run, with what must agree: exit code, records, rejects, counts.
fn run(s: &Scratch, args: &[&str], fast: bool, stdin: &str) -> (i32, String, String, Value) {
    let rejects = if fast { "fast.ndjson" } else { "slow.ndjson" };
    let mut all = args.to_vec();
    all.extend(["--rejects", rejects, "--max-rejects", "1000000"]);
    let mut env = vec![("ETL_RUN_ID", "run-1"), ("ETL_MASK_SALT", "pepper")];
    if !fast {
        env.push(("ETL_TRANSFORM_NO_FAST_PATH", "1"));
    }
    let out: Out = s.run_env(&all, &env, stdin);
    let summary = match out.summary() {
        Value::Object(mut m) => {
            // Timing varies between runs.
            m.retain(|k, _| !matches!(k.as_str(), "ts" | "elapsed_ms" | "duration_ms"));
            Value::Object(m)
        }
        other => other,
    };
    let rejected = std::fs::read_to_string(s.path(rejects)).unwrap_or_default();
    (out.code, out.stdout.clone(), rejected, summary)
}

fn agree(s: &Scratch, args: &[&str], stdin: &str) -> usize {
    let fast = run(s, args, true, stdin);
    let slow = run(s, args, false, stdin);
    assert_eq!(fast.0, slow.0, "exit code of {args:?}");
    assert_eq!(fast.1, slow.1, "records of {args:?}");
    assert_eq!(fast.2, slow.2, "rejects of {args:?}");
    assert_eq!(fast.3, slow.3, "summary of {args:?}");
    fast.1.lines().count()
}

#[test]
fn both_paths_write_the_same_records_rejects_and_counts() {
    let s = Scratch::new();
    s.write("schema.toml", SCHEMA);
    for (i, spec) in specs().iter().enumerate() {
        let text = input(i as u64 + 1, 600);
        let written = agree(&s, spec, &text);
        // A spec that writes nothing would compare nothing.
        assert!(written > 0, "{spec:?} wrote no records");
    }
}

#[test]
fn both_paths_agree_on_the_json_test_suite() {
    let dir = etl_testkit::corpora("jsontestsuite/test_parsing");
    let mut stdin = String::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue; // not UTF-8: the reader rejects it before any path
        };
        let one_line = text
            .trim_end_matches(['\n', '\r'])
            .replace(['\n', '\r'], " ");
        if !one_line.trim().is_empty() {
            stdin.push_str(&one_line);
            stdin.push('\n');
        }
    }
    let s = Scratch::new();
    for spec in [
        vec!["--trim", "*", "--set", "k=length(string(a))"],
        vec!["--rename", "a=b", "--null-if", "*=x", "--flatten"],
    ] {
        let n = agree(&s, &spec, &stdin);
        assert!(n >= 10, "{n} records");
    }
}
