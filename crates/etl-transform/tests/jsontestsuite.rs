//! nst/JSONTestSuite (`../shared/corpora/jsontestsuite`) fed through the
//! binary, one document per line, with steps in the way: every `n_`
//! document is a reject, every `y_` object comes out, and nothing panics.

mod common;

use std::path::{Path, PathBuf};

use common::Scratch;
use etl_core::Value;

fn corpus() -> PathBuf {
    etl_testkit::corpora("jsontestsuite/test_parsing")
}

/// The documents with `prefix`, each made one line (line breaks are JSON
/// whitespace outside strings), without those that are only whitespace
/// (the reader skips blank lines).
fn lines(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| {
            let mut b = std::fs::read(&p).unwrap();
            while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                b.pop();
            }
            for c in &mut b {
                if *c == b'\n' || *c == b'\r' {
                    *c = b' ';
                }
            }
            (p.file_name().unwrap().to_string_lossy().into_owned(), b)
        })
        .filter(|(_, b)| !b.iter().all(u8::is_ascii_whitespace))
        .collect();
    v.sort();
    v
}

const STEPS: [&str; 8] = [
    "--trim",
    "*",
    "--flatten",
    "--set",
    "k=length(string(a))",
    "--null-if",
    "*=x",
    "--unflatten",
];

fn stream(docs: &[(String, Vec<u8>)]) -> Vec<u8> {
    // A first line, so that no document sits on line 1 (where a BOM is skipped).
    let mut input = b"{\"first\":true}\n".to_vec();
    for (_, d) in docs {
        input.extend_from_slice(d);
        input.push(b'\n');
    }
    input
}

fn rejected_lines(s: &Scratch) -> Vec<u64> {
    let text = std::fs::read_to_string(s.path("r.ndjson")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v = Value::parse(l).unwrap();
            match v {
                Value::Object(m) => m["line"].to_json().parse().unwrap(),
                _ => panic!(),
            }
        })
        .collect()
}

#[test]
fn every_n_document_is_a_reject() {
    let dir = corpus();
    let docs = lines(&dir, "n_");
    assert!(docs.len() > 150, "corpus changed");
    let s = Scratch::new();
    let mut args = STEPS.to_vec();
    args.extend(["--rejects", "r.ndjson", "--max-rejects", "100000"]);
    let out = s.run_bytes(&args, &[], &stream(&docs));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines().len(),
        1,
        "only the first line passes: {}",
        out.stdout
    );
    let rejected = rejected_lines(&s);
    for (i, (name, _)) in docs.iter().enumerate() {
        assert!(
            rejected.contains(&(i as u64 + 2)),
            "{name} was not rejected"
        );
    }
}

#[test]
fn every_y_object_is_accepted_and_other_y_documents_are_rejects() {
    let dir = corpus();
    let docs = lines(&dir, "y_");
    let s = Scratch::new();
    let mut args = STEPS.to_vec();
    args.extend(["--rejects", "r.ndjson", "--max-rejects", "100000"]);
    let out = s.run_bytes(&args, &[], &stream(&docs));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rejected = rejected_lines(&s);
    let mut objects = 1;
    for (i, (name, d)) in docs.iter().enumerate() {
        let text = String::from_utf8_lossy(d);
        let is_object = text.trim_start().starts_with('{');
        let line = i as u64 + 2;
        if is_object {
            objects += 1;
            assert!(!rejected.contains(&line), "{name} was rejected");
        } else {
            assert!(
                rejected.contains(&line),
                "{name} is not an object but passed"
            );
        }
    }
    assert_eq!(out.lines().len(), objects);
    for l in out.lines() {
        assert!(matches!(Value::parse(l), Ok(Value::Object(_))), "{l}");
    }
}

#[test]
fn no_document_panics() {
    let dir = corpus();
    let docs = lines(&dir, "");
    let s = Scratch::new();
    let mut args = STEPS.to_vec();
    args.extend([
        "--cast",
        "a=decimal(12,2),b=int,c=datetime,d=bool",
        "--filter",
        "a > 1 or a is null",
        "--max-rejects",
        "100000",
    ]);
    // run_bytes asserts: no exit 70, no "panicked".
    let out = s.run_bytes(&args, &[], &stream(&docs));
    assert_eq!(out.code, 0, "{}", out.stderr);
}
