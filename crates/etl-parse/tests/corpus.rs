//! etl-parse against the public corpora in `../shared/corpora/` (PapaParse,
//! frictionless, csvkit/csv-parser/csvlint, calamine, zip2), compared with
//! the expected results those projects wrote. Deliberate differences live in
//! `tests/corpus-allowlist.txt`, one line of reason each; a case that fails
//! and is not listed fails the test, and so does a listed case that passes
//! (a stale entry).

// A table-driven harness: long test functions and index casts are its nature.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::case_sensitive_file_extension_comparisons,
    clippy::default_trait_access
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::{corpora, run, run_in, Out};
use serde_json::Value as J;

/// The allowlist: case id -> reason.
fn allowlist() -> HashMap<String, String> {
    let text = include_str!("corpus-allowlist.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once("  ").unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "allowlist entry without a reason: {l}"
            );
            (id.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// Collects outcomes and judges them against the allowlist at the end.
struct Judge {
    allow: HashMap<String, String>,
    prefix: &'static str,
    passed: usize,
    allowed: usize,
    failures: Vec<String>,
    stale: Vec<String>,
}

impl Judge {
    fn new(prefix: &'static str) -> Self {
        Self {
            allow: allowlist(),
            prefix,
            passed: 0,
            allowed: 0,
            failures: vec![],
            stale: vec![],
        }
    }
    fn case(&mut self, id: &str, outcome: Result<(), String>) {
        let listed = self.allow.contains_key(id);
        match (outcome, listed) {
            (Ok(()), false) => self.passed += 1,
            (Ok(()), true) => self.stale.push(id.to_owned()),
            (Err(_), true) => self.allowed += 1,
            (Err(why), false) => self.failures.push(format!("{id}: {why}")),
        }
    }
    fn finish(self) {
        eprintln!(
            "{}: {} passed, {} allowlisted, {} failed, {} stale allowlist entries",
            self.prefix,
            self.passed,
            self.allowed,
            self.failures.len(),
            self.stale.len()
        );
        assert!(
            self.failures.is_empty(),
            "{} unexpected failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(
            self.stale.is_empty(),
            "allowlisted cases that now pass (remove them): {:?}",
            self.stale
        );
        assert!(self.passed > 0, "{}: nothing passed", self.prefix);
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

fn texts(row: &[J]) -> Vec<String> {
    row.iter()
        .map(|v| match v {
            J::String(s) => s.clone(),
            J::Null => String::new(),
            other => other.to_string(),
        })
        .collect()
}

fn pad(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let n = rows.first().map_or(0, Vec::len);
    rows.into_iter()
        .map(|mut r| {
            while r.len() < n {
                r.push(String::new());
            }
            r
        })
        .collect()
}

// ---------------------------------------------------------------- papaparse

const BASIC: [&str; 8] = [
    "delimiter",
    "header",
    "quoteChar",
    "escapeChar",
    "comments",
    "newline",
    "skipEmptyLines",
    "fastMode",
];

fn papaparse_case(case: &J) -> Option<Result<(), String>> {
    let config = case["config"].as_object().cloned().unwrap_or_default();
    if case["config_has_function"].as_bool() == Some(true)
        || config.keys().any(|k| !BASIC.contains(&k.as_str()))
    {
        return None;
    }
    // Options etl-parse does not have are skips, not allowed failures:
    // multi-character delimiters and comment prefixes, a newline delimiter.
    let multi = |k: &str| {
        config
            .get(k)
            .and_then(J::as_str)
            .is_some_and(|v| v.chars().count() > 1 || v == "\n" || v == "\r")
    };
    if multi("delimiter") || multi("comments") {
        return None;
    }
    let core = case["suite"] == "CORE_PARSER_TESTS";
    let header = config.get("header").and_then(J::as_bool) == Some(true);
    let mut args: Vec<String> = vec![
        "--format".into(),
        "csv".into(),
        "--max-rejects".into(),
        "1000000".into(),
    ];
    match config.get("delimiter").and_then(J::as_str) {
        Some(d) => args.extend(["--delimiter".into(), d.into()]),
        None if core => args.extend(["--delimiter".into(), ",".into()]),
        None => {}
    }
    // PapaParse does not detect the quote or the escape: `"`, doubled,
    // unless the case says otherwise.
    let quote = config.get("quoteChar").and_then(J::as_str).unwrap_or("\"");
    args.extend(["--quote".into(), quote.into()]);
    let escape = config
        .get("escapeChar")
        .and_then(J::as_str)
        .filter(|e| *e != quote);
    args.extend(["--escape".into(), escape.unwrap_or("none").into()]);
    match config.get("comments") {
        Some(J::Bool(true)) => args.extend(["--comment".into(), "#".into()]),
        Some(J::String(c)) => args.extend(["--comment".into(), c.clone()]),
        _ => {}
    }
    if !header || core {
        args.extend(["--no-header".into(), "--ragged".into(), "keep".into()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&argv, case["input"].as_str().unwrap_or_default().as_bytes());
    if out.code != 0 {
        return Some(Err(format!(
            "exit {}: {}",
            out.code,
            out.stderr.lines().last().unwrap_or("")
        )));
    }
    let expected = case["expected_data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Some(if header && !core {
        // Objects: short rows are padded with "" by etl-parse; rows with
        // extra fields are rejects, not records.
        let want: Vec<BTreeMap<String, String>> = expected
            .iter()
            .filter(|r| r.get("__parsed_extra").is_none())
            .map(|r| {
                r.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), texts(std::slice::from_ref(v)).remove(0)))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let got: Vec<BTreeMap<String, String>> = out
            .records()
            .into_iter()
            .map(|r| match r {
                etl_core::Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, v)| v.as_str() != Some(""))
                    .map(|(k, v)| (k, v.to_raw_text()))
                    .collect(),
                _ => BTreeMap::new(),
            })
            .collect();
        let want: Vec<BTreeMap<String, String>> = want
            .into_iter()
            .map(|m| m.into_iter().filter(|(_, v)| !v.is_empty()).collect())
            .collect();
        expect_eq(&got, &want)
    } else {
        // Raw rows. Blank lines are not records in etl-parse (as in Python's
        // csv.DictReader), so PapaParse's [""] rows are dropped before comparing.
        let mut rows: Vec<Vec<String>> = expected
            .iter()
            .filter_map(J::as_array)
            .map(|r| texts(r))
            .filter(|r| !(r.len() == 1 && r[0].is_empty()))
            .collect();
        if core && header && !rows.is_empty() {
            rows.remove(0); // compare data rows: header naming is checked elsewhere
            let got: Vec<Vec<String>> = out.rows().into_iter().skip(1).collect();
            return Some(expect_eq(&pad(got), &pad(rows)));
        }
        expect_eq(&out.rows(), &pad(rows))
    })
}

#[test]
fn papaparse() {
    let root = corpora();
    let text = std::fs::read_to_string(root.join("papaparse/papaparse_cases.jsonl")).unwrap();
    let mut judge = Judge::new("papaparse");
    let mut skipped = 0;
    for line in text.lines() {
        let case: J = serde_json::from_str(line).unwrap();
        let id = format!(
            "papaparse:{}#{}",
            case["suite"].as_str().unwrap_or("?"),
            case["index"]
        );
        match papaparse_case(&case) {
            Some(outcome) => judge.case(&id, outcome),
            None => skipped += 1,
        }
    }
    eprintln!("papaparse: {skipped} cases skipped (JavaScript functions, dynamicTyping, preview, skipFirstNLines, transforms, multi-character delimiters and comments)");
    judge.finish();
}

/// The PapaParse cases with quotes out of place are allowlisted because
/// PapaParse keeps or swallows text etl-parse rejects. Hold the allowlist
/// to its reason: no byte is dropped, the row is a reject naming its line
/// and what is wrong, with the row as the file holds it.
#[test]
fn papaparse_stray_quotes_are_rejects_not_dropped_bytes() {
    let root = corpora();
    let text = std::fs::read_to_string(root.join("papaparse/papaparse_cases.jsonl")).unwrap();
    let wanted = [
        "CORE_PARSER_TESTS#19",
        "CORE_PARSER_TESTS#20",
        "CORE_PARSER_TESTS#21",
        "CORE_PARSER_TESTS#22",
        "CORE_PARSER_TESTS#23",
        "PARSE_TESTS#5",
        "PARSE_TESTS#6",
        "PARSE_TESTS#7",
        "PARSE_TESTS#90",
        "PARSE_TESTS#91",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let case: J = serde_json::from_str(line).unwrap();
        let id = format!(
            "{}#{}",
            case["suite"].as_str().unwrap_or("?"),
            case["index"]
        );
        if !wanted.contains(&id.as_str()) {
            continue;
        }
        seen += 1;
        let input = case["input"].as_str().unwrap();
        let rejects = dir.path().join(format!("{seen}.ndjson"));
        let mut args = vec![
            "--format",
            "csv",
            "--no-header",
            "--ragged",
            "keep",
            "--max-rejects",
            "100",
            "--quote",
            "\"",
        ];
        if let Some(d) = case["config"]["delimiter"].as_str() {
            args.extend(["--delimiter", d]);
        }
        let r = rejects.to_str().unwrap();
        args.extend(["--rejects", r]);
        let out = run(&args, input.as_bytes());
        assert_eq!(out.code, 0, "{id}: {}", out.stderr);
        let rejects: Vec<J> = std::fs::read_to_string(&rejects)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            !rejects.is_empty(),
            "{id}: {input:?} gave no reject: {}",
            out.stdout
        );
        for rej in &rejects {
            let raw = rej["input"].as_str().unwrap();
            assert!(
                input.contains(raw),
                "{id}: reject input {raw:?} is not the file's text"
            );
            assert!(rej["line"].as_u64().unwrap() >= 1, "{id}: {rej}");
            let error = rej["error"].as_str().unwrap();
            assert!(
                error.contains("closing quote") || error.contains("not closed"),
                "{id}: {error}"
            );
        }
    }
    assert_eq!(seen, wanted.len(), "the corpus holds every case named");
}

// -------------------------------------------------------------- frictionless

const T: [&str; 2] = [
    r#"{"id":"1","name":"english"}"#,
    r#"{"id":"2","name":"中国人"}"#,
];

fn lines(out: &Out) -> Result<Vec<String>, String> {
    if out.code == 0 {
        Ok(out.json_lines())
    } else {
        Err(format!(
            "exit {}: {}",
            out.code,
            out.stderr.lines().last().unwrap_or("")
        ))
    }
}

fn want_lines(out: &Out, want: &[&str]) -> Result<(), String> {
    expect_eq(
        &lines(out)?,
        &want.iter().map(|s| (*s).to_owned()).collect(),
    )
}

#[test]
fn frictionless() {
    let root = corpora();
    let dir = root.join("frictionless");
    let mut j = Judge::new("frictionless");
    let r = |args: &[&str]| run_in(&dir, args, b"");
    for f in [
        "table.csv",
        "table.xls",
        "table.xlsx",
        "table.ods",
        "table.json",
        "table.keyed.json",
        "table.csv.zip",
        "table.csv.gz",
        "table.csv.bz2",
        "table.csv.xz",
        "bom.csv",
        "delimiter.csv",
        "table-delimiter.csv",
    ] {
        j.case(&format!("frictionless:{f}"), want_lines(&r(&[f]), &T));
    }
    // JSON numbers keep their type in JSON inputs.
    for f in ["table.jsonl", "table.ndjson"] {
        j.case(
            &format!("frictionless:{f}"),
            want_lines(
                &r(&[f]),
                &[
                    r#"{"id":1,"name":"english"}"#,
                    r#"{"id":2,"name":"中国人"}"#,
                ],
            ),
        );
    }
    j.case(
        "frictionless:table.tsv",
        want_lines(
            &r(&["table.tsv"]),
            &[T[0], T[1], r#"{"id":"3","name":"\\N"}"#],
        ),
    );
    j.case(
        "frictionless:table-multiple-files.zip",
        want_lines(
            &r(&["table-multiple-files.zip"]),
            &[
                r#"{"id":"1","name":"中国人"}"#,
                r#"{"id":"2","name":"english"}"#,
                T[0],
                T[1],
            ],
        ),
    );
    for f in ["sheet2.xls", "sheet2.xlsx"] {
        j.case(
            &format!("frictionless:{f}"),
            want_lines(&r(&["--sheet", "Sheet2", f]), &T),
        );
        j.case(
            &format!("frictionless:{f}#index"),
            want_lines(&r(&["--sheet", "1", f]), &T),
        );
    }
    j.case(
        "frictionless:table-with-two-sheets.ods",
        want_lines(
            &r(&["--sheet", "Tabelle2", "table-with-two-sheets.ods"]),
            &[r#"{"a":"1","b":"2","c":"3"}"#],
        ),
    );
    j.case(
        "frictionless:latin1.csv",
        want_lines(
            &r(&["--encoding", "latin1", "latin1.csv"]),
            &[T[0], r#"{"id":"2","name":"©"}"#],
        ),
    );
    let detected = r(&["latin1.csv"]);
    j.case(
        "frictionless:latin1.csv#detected",
        want_lines(&detected, &[T[0], r#"{"id":"2","name":"©"}"#]).and_then(|()| {
            if detected.logged("not valid UTF-8") {
                Ok(())
            } else {
                Err("no warning naming the charset".into())
            }
        }),
    );
    j.case(
        "frictionless:table-infer-iso-8859-7.csv",
        lines(&r(&[
            "--encoding",
            "iso-8859-7",
            "table-infer-iso-8859-7.csv",
        ]))
        .and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"id":"1","age":"39","name":"Λεωνιδας"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "frictionless:escaping.csv",
        want_lines(
            &r(&["escaping.csv"]),
            &[r#"{"ID":"1","Test":"Test line 1"}"#],
        ),
    );
    // Python's csv module reads doublequote.csv as a header and 5 rows of
    // 17 fields. Regression: this only checked "every row is 17 wide",
    // which holds on no output at all.
    for f in ["doublequote.csv", "doublequote.csv.zip"] {
        let rows = r(&[f]).rows();
        j.case(
            &format!("frictionless:{f}"),
            (rows.len() == 5 && rows.iter().all(|row| row.len() == 17))
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "want 5 rows of 17 fields, got {:?}",
                        rows.iter().map(Vec::len).collect::<Vec<_>>()
                    )
                }),
        );
    }
    for f in ["table-with-booleans.xls", "table-with-booleans.ods"] {
        j.case(
            &format!("frictionless:{f}"),
            want_lines(
                &r(&[f]),
                &[
                    r#"{"id":"1","boolean":"true"}"#,
                    r#"{"id":"2","boolean":"false"}"#,
                ],
            ),
        );
    }
    j.case(
        "frictionless:table-with-ints-floats-dates.ods",
        want_lines(
            &r(&["table-with-ints-floats-dates.ods"]),
            &[
                r#"{"Int":"2013","Float":"3.3","Date":"2009-08-16","Datetime":"2009-08-16T05:43:21"}"#,
                r#"{"Int":"1997","Float":"5.6","Date":"2009-09-20","Datetime":"2009-09-20T15:30:00"}"#,
                r#"{"Int":"1969","Float":"11.7","Date":"2012-08-23","Datetime":"2012-08-23T20:40:59"}"#,
            ],
        ),
    );
    j.case(
        "frictionless:merged-cells.xlsx",
        want_lines(
            &r(&["--no-header", "merged-cells.xlsx"]),
            &[r#"{"col_1":"data","col_2":""}"#],
        ),
    );
    j.case(
        "frictionless:adjust-floating-point-error.xlsx",
        lines(&r(&["adjust-floating-point-error.xlsx"])).and_then(|l| {
            if l[0].contains(r#""actual PO4 (formula)":"242.26""#)
                && l[1].contains(r#""actual PO4 (formula)":"274.66""#)
            {
                Ok(())
            } else {
                Err(format!("{l:?}"))
            }
        }),
    );
    j.case(
        "frictionless:preserve-formatting-percentage.xlsx",
        want_lines(
            &r(&["preserve-formatting-percentage.xlsx"]),
            &[r#"{"col1":"123","col2":"52.00%"}"#],
        ),
    );
    j.case(
        "frictionless:leading-zeros.csv",
        want_lines(
            &r(&["leading-zeros.csv"]),
            &[
                r#"{"value":"01"}"#,
                r#"{"value":"002"}"#,
                r#"{"value":"00003"}"#,
            ],
        ),
    );
    j.case(
        "frictionless:duplicate-headers.csv",
        lines(&r(&["duplicate-headers.csv"])).and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"id":"1101","name":"John","id_2":"0","age":"30","id_3":"001101"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "frictionless:blank-headers.csv",
        lines(&r(&["blank-headers.csv"])).and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"id":"1101","col_2":"John","age":"30"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "frictionless:empty.csv",
        want_lines(&r(&["empty.csv"]), &[]),
    );
    j.case(
        "frictionless:without-rows.csv",
        want_lines(&r(&["without-rows.csv"]), &[]),
    );
    j.case(
        "frictionless:without-rows.csv.zip",
        want_lines(&r(&["without-rows.csv.zip"]), &[]),
    );
    j.case(
        "frictionless:skip-rows.csv",
        want_lines(&r(&["--comment", "#", "skip-rows.csv"]), &T),
    );
    j.case(
        "frictionless:chunk2.csv.zip",
        want_lines(&r(&["chunk2.csv.zip"]), &[T[1]]),
    );
    j.case(
        "frictionless:accent.csv",
        lines(&r(&["accent.csv"])).and_then(|l| expect_eq(&l.len(), &2)),
    );
    // defective-rows.csv: the short row is padded, the long row is a reject.
    let d = r(&["--max-rejects", "1", "defective-rows.csv"]);
    j.case(
        "frictionless:defective-rows.csv",
        want_lines(&d, &[r#"{"id":"1101","name":"John","age":""}"#])
            .and_then(|()| expect_eq(&d.logged("row has 4 fields, the header has 3"), &true)),
    );
    let inv = r(&["--max-rejects", "1", "invalid.csv"]);
    j.case(
        "frictionless:invalid.csv",
        lines(&inv).and_then(|l| expect_eq(&l.len(), &2)),
    );
    j.finish();
}

// ---------------------------------------------------------------- calamine

fn calamine_cell(c: &J) -> String {
    match c {
        J::Null => String::new(),
        J::Object(m) => {
            if let Some(f) = m.get("f").and_then(J::as_f64) {
                format!("{f}")
            } else if let Some(s) = m.get("s").and_then(J::as_str) {
                s.to_owned()
            } else if let Some(b) = m.get("b").and_then(J::as_bool) {
                b.to_string()
            } else if m.contains_key("e") {
                String::new() // read with --cell-errors empty
            } else if let Some(means) = m.get("means").and_then(J::as_str) {
                means.trim_end_matches(" duration").to_owned()
            } else if let Some(s) = m.get("iso").or_else(|| m.get("dur")).and_then(J::as_str) {
                s.to_owned()
            } else {
                format!("{c}")
            }
        }
        other => other.to_string(),
    }
}

#[test]
fn calamine() {
    let root = corpora();
    let dir = root.join("xlsx/calamine");
    let cases: J =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut j = Judge::new("calamine");
    for (n, case) in cases["cases"].as_array().unwrap().iter().enumerate() {
        for file in case["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(J::as_str)
        {
            let id = format!("calamine:{n}:{file}");
            let sheet = case["sheet"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| case["sheet_index"].as_u64().map(|i| i.to_string()));
            if let Some(why) = case["expect_error"].as_str() {
                let out = run_in(
                    &dir,
                    &[
                        "--format",
                        if file.ends_with(".xls") {
                            "xls"
                        } else {
                            "xlsx"
                        },
                        file,
                    ],
                    b"",
                );
                let ok = out.code == 65 && !out.stderr.contains("panicked");
                j.case(
                    &id,
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("{why}: exit {} {}", out.code, out.stderr))
                    },
                );
                continue;
            }
            if let Some(sheets) = case["sheets"]
                .as_array()
                .or_else(|| case["sheet_names_in_order"].as_array())
            {
                let out = run_in(&dir, &["--list-sheets", file], b"");
                let got: Vec<(String, bool)> = out
                    .records()
                    .iter()
                    .map(|r| {
                        let r = match r {
                            etl_core::Value::Object(m) => m.clone(),
                            _ => Default::default(),
                        };
                        (r["name"].to_raw_text(), r["visible"].to_json() == "true")
                    })
                    .collect();
                let want: Vec<(String, bool)> = sheets
                    .iter()
                    .map(|s| match s {
                        J::Array(a) => (a[0].as_str().unwrap_or("").to_owned(), a[2] == "Visible"),
                        other => (other.as_str().unwrap_or("").to_owned(), true),
                    })
                    .collect();
                let got = if case["sheets"].is_null() {
                    got.into_iter().map(|(n, _)| (n, true)).collect()
                } else {
                    got
                };
                j.case(&id, expect_eq(&got, &want));
                continue;
            }
            let mut args = vec!["--no-header", "--cell-errors", "empty"];
            if let Some(s) = &sheet {
                args.extend(["--sheet", s.as_str()]);
            }
            if case["all_sheets"].is_string() {
                let out = run_in(&dir, &["--all-sheets", file], b"");
                j.case(
                    &id,
                    expect_eq(&(out.code, out.stdout.is_empty()), &(0, true)),
                );
                continue;
            }
            args.push(file);
            let out = run_in(&dir, &args, b"");
            if out.code != 0 {
                j.case(
                    &id,
                    Err(format!(
                        "exit {}: {}",
                        out.code,
                        out.stderr.lines().last().unwrap_or("")
                    )),
                );
                continue;
            }
            let got = out.rows();
            if let Some(range) = case["range"]
                .as_array()
                .or_else(|| case["range_from_row0"].as_array())
            {
                let want: Vec<Vec<String>> = range
                    .iter()
                    .filter_map(J::as_array)
                    .filter(|r| !r.iter().all(J::is_null))
                    .map(|r| r.iter().map(calamine_cell).collect())
                    .collect();
                j.case(&id, expect_eq(&got, &pad(want)));
            } else if let Some(cells) = case["cells"].as_array() {
                let mismatch = cells.iter().filter_map(J::as_array).find_map(|c| {
                    let (row, col) = (
                        c[0].as_u64().unwrap_or(0) as usize,
                        c[1].as_u64().unwrap_or(0) as usize,
                    );
                    let want = calamine_cell(&c[2]);
                    let have = got
                        .get(row)
                        .and_then(|r| r.get(col))
                        .cloned()
                        .unwrap_or_default();
                    (have != want).then(|| format!("[{row},{col}] got {have:?} want {want:?}"))
                });
                j.case(&id, mismatch.map_or(Ok(()), Err));
            } else if let Some(first) = case["first_row"].as_array() {
                j.case(
                    &id,
                    expect_eq(&got[0], &first.iter().map(calamine_cell).collect()),
                );
            }
        }
    }
    j.finish();
}

// ---------------------------------------------------------------- zip2

#[test]
fn zip2_archives_fail_cleanly_or_parse() {
    let root = corpora();
    let dir = root.join("zip/zip2");
    let manifest: J =
        serde_json::from_str(&std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let must_fail = [
        "extended_timestamp_bad.zip",
        "invalid_offset.zip",
        "invalid_offset2.zip",
        "invalid_cde_number_of_files_allocation_greater_offset.zip",
        "deflate64_issue_25.zip",
        "aes_archive.zip",
        "ppmd.zip",
    ];
    let mut j = Judge::new("zip2");
    let mut names: Vec<String> = vec![];
    for case in manifest["cases"].as_array().unwrap() {
        let z = case["zip"].as_str().unwrap();
        if z.contains("...") {
            names.extend((1..=5).map(|i| format!("zip64_magic_in_filename_{i}.zip")));
        } else {
            names.push(z.to_owned());
        }
    }
    for z in &names {
        // Default --max-rejects (0): an archive read as text with rows of
        // rejects must not pass as "parsed" (this harness once allowed a
        // million rejects, which hid a zip that was never opened as one).
        let out = run_in(&dir, &["--provenance", z], b"");
        let clean = out.code != 70 && !out.stderr.contains("panicked");
        let outcome = if !clean {
            Err(format!("exit {}: {}", out.code, out.stderr))
        } else if must_fail.contains(&z.as_str()) {
            // As an archive (65 naming it), not as rows of rejected text.
            if out.code == 65 && !out.stderr.contains("rejected line") {
                Ok(())
            } else {
                Err(format!(
                    "must fail with 65 as an archive, got {}: {}",
                    out.code, out.stderr
                ))
            }
        } else {
            Ok(())
        };
        j.case(&format!("zip2:{z}"), outcome);
    }
    // Member names come from the Unicode Path extra field / UTF-8 flag.
    for (z, member) in [
        ("windows-7zip.zip", "你好.txt"),
        ("linux-7z.zip", "你好.txt"),
    ] {
        let out = run_in(&dir, &["--provenance", "--no-header", z], b"");
        j.case(
            &format!("zip2:{z}#name"),
            expect_eq(&out.stderr.contains(member), &true),
        );
    }
    let out = run_in(
        &dir,
        &["--provenance", "--no-header", "files_and_dirs.zip"],
        b"",
    );
    j.case("zip2:files_and_dirs.zip#records", want_lines(&out, &[r#"{"col_1":"File at the root.","_source":"files_and_dirs.zip","_member":"file0.txt","_row":1}"#]));
    j.finish();
}

// ---------------------------------------------------------------- messy CSV

#[test]
fn messy_csv() {
    let root = corpora();
    let k = root.join("messy-csv/csvkit");
    let p = root.join("messy-csv/csv-parser/fixtures");
    let l = root.join("messy-csv/csvlint");
    let mut j = Judge::new("messy-csv");
    let r = |dir: &Path, args: &[&str]| run_in(dir, args, b"");
    let bad = r(&k, &["--max-rejects", "1", "bad.csv"]);
    j.case(
        "csvkit:bad.csv",
        want_lines(
            &bad,
            &[
                r#"{"column_a":"","column_b":"I'm too short!","column_c":""}"#,
                r#"{"column_a":"0","column_b":"mixed types.... uh oh","column_c":"17"}"#,
            ],
        ),
    );
    j.case(
        "csvkit:bad.csv#exit",
        expect_eq(&r(&k, &["bad.csv"]).code, &65),
    );
    j.case(
        "csvkit:mac_newlines.csv",
        want_lines(
            &r(&k, &["mac_newlines.csv"]),
            &[
                r#"{"a":"1","b":"2","c":"3"}"#,
                r#"{"a":"Once upon\ra time","b":"5","c":"6"}"#,
            ],
        ),
    );
    let utf = [
        r#"{"a":"1","b":"2","c":"3"}"#,
        r#"{"a":"4","b":"5","c":"ʤ"}"#,
    ];
    j.case(
        "csvkit:test_utf16_big.csv",
        want_lines(&r(&k, &["test_utf16_big.csv"]), &utf),
    );
    j.case(
        "csvkit:test_utf16_little.csv",
        want_lines(&r(&k, &["test_utf16_little.csv"]), &utf),
    );
    j.case(
        "csvkit:test_utf8_bom.csv",
        lines(&r(&k, &["test_utf8_bom.csv"]))
            .and_then(|l| expect_eq(&l[0].starts_with(r#"{"foo":"1""#), &true)),
    );
    let nul = r(&k, &["null_byte.csv"]);
    j.case(
        "csvkit:null_byte.csv",
        expect_eq(&(nul.code, nul.logged("NUL byte")), &(65, true)),
    );
    j.case(
        "csvkit:test_latin1.csv",
        lines(&r(&k, &["--encoding", "latin1", "test_latin1.csv"]))
            .and_then(|l| expect_eq(&l[1], &r#"{"a":"4","b":"5","c":"©"}"#.to_owned())),
    );
    j.case(
        "csvkit:optional_quote_characters.csv",
        want_lines(
            &r(&k, &["optional_quote_characters.csv"]),
            &[r#"{"a":"1","b":"2","c":"3"}"#],
        ),
    );
    j.case(
        "csvkit:test_empty_columns_short_row.csv",
        want_lines(
            &r(&k, &["test_empty_columns_short_row.csv"]),
            &[r#"{"a":"","b":"","c":""}"#],
        ),
    );
    j.case(
        "csvkit:test_extra_header.csv",
        want_lines(
            &r(&k, &["test_extra_header.csv"]),
            &[r#"{"a":"1","b":"2","c":"3","d":""}"#],
        ),
    );
    j.case(
        "csvkit:test_skip_lines.csv",
        want_lines(
            &r(&k, &["test_skip_lines.csv"]),
            &[r#"{"a":"1","b":"2","c":"3"}"#],
        ),
    );
    j.case(
        "csvkit:no_header_row.csv",
        want_lines(
            &r(&k, &["--no-header", "no_header_row.csv"]),
            &[r#"{"col_1":"1","col_2":"2","col_3":"3"}"#],
        ),
    );
    j.case(
        "csvkit:dummy.tsv",
        want_lines(&r(&k, &["dummy.tsv"]), &[r#"{"a":"1","b":"2","c":"3"}"#]),
    );
    j.case(
        "csvkit:test_no_leading_zeroes.csv",
        lines(&r(&k, &["--infer", "test_no_leading_zeroes.csv"]))
            .and_then(|l| expect_eq(&l[0].contains(r#""01""#), &true)),
    );
    j.case(
        "csv-parser:newlines.csv",
        lines(&r(&p, &["newlines.csv"])).and_then(|l| {
            expect_eq(
                &l[1],
                &r#"{"a":"Once upon \na time","b":"5","c":"6"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "csv-parser:escape-quotes.csv",
        lines(&r(&p, &["escape-quotes.csv"])).and_then(|l| {
            expect_eq(
                &l[..2].to_vec(),
                &vec![
                    r#"{"a":"1","b":"ha \"ha\" ha"}"#.to_owned(),
                    r#"{"a":"2","b":"\"\""}"#.to_owned(),
                ],
            )
        }),
    );
    j.case(
        "csv-parser:comma-in-quote.csv",
        want_lines(&r(&p, &["comma-in-quote.csv"]), &[r#"{"first":"John","last":"Doe","address":"120 any st.","city":"Anytown, WW","zip":"08123"}"#]),
    );
    j.case(
        "csv-parser:option-escape.csv",
        lines(&r(&p, &["--escape", "\\", "option-escape.csv"])).and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"a":"1","b":"some \"escaped\" value","c":"2"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "csv-parser:option-quote-many.csv",
        lines(&r(&p, &["--quote", "'", "option-quote-many.csv"])).and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"a":"1","b":"some 'escaped' value","c":"2"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "csv-parser:comment.csv",
        want_lines(
            &r(&p, &["--comment", "#", "comment.csv"]),
            &[r#"{"a":"1","b":"2","c":"3"}"#],
        ),
    );
    j.case(
        "csv-parser:strict+skipLines.csv",
        lines(&r(&p, &["--skip-rows", "1", "strict+skipLines.csv"]))
            .and_then(|l| expect_eq(&l[0], &r#"{"h1":"1","h2":"2","h3":"3"}"#.to_owned())),
    );
    j.case(
        "csv-parser:backtick.csv",
        lines(&r(&p, &["--delimiter", "`", "backtick.csv"])).and_then(|l| {
            expect_eq(
                &l[0],
                &r#"{"pokemon_id":"1","p_desc":"Bulbasaur can be seen napping"}"#.to_owned(),
            )
        }),
    );
    j.case(
        "csvlint:cr-line-endings.csv",
        want_lines(
            &r(&l, &["cr-line-endings.csv"]),
            &[
                r#"{"Foo":"Biff","Bar":"Baff","Baz":"Boff"}"#,
                r#"{"Foo":"Qux","Bar":"Teaspoon","Baz":"Doge"}"#,
            ],
        ),
    );
    j.case(
        "csvlint:inconsistent-line-endings-unquoted.csv",
        lines(&r(&l, &["inconsistent-line-endings-unquoted.csv"]))
            .and_then(|l| expect_eq(&l[0].contains("\"Baz\":"), &true)),
    );
    j.case(
        "csvlint:white space in filename.csv",
        lines(&r(&l, &["white space in filename.csv"])).and_then(|l| expect_eq(&l.len(), &2)),
    );
    j.case(
        "csvlint:spreadsheet.xls",
        expect_eq(&r(&l, &["spreadsheet.xls"]).code, &0),
    );
    j.case(
        "csvlint:spreadsheet.xlsx",
        expect_eq(&r(&l, &["spreadsheet.xlsx"]).code, &0),
    );
    let inv = r(&l, &["invalid-byte-sequence.csv"]);
    j.case(
        "csvlint:invalid-byte-sequence.csv",
        lines(&inv).and_then(|l| expect_eq(&l[0].contains("Histórico"), &true)),
    );
    let many = r(&l, &["--max-rejects", "100", "invalid_many_rows.csv"]);
    j.case(
        "csvlint:invalid_many_rows.csv",
        expect_eq(
            &(many.code != 70 && !many.stderr.contains("panicked")),
            &true,
        ),
    );
    j.finish();
}
