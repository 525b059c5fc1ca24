//! JSON conformance of the record reader against nst/JSONTestSuite
//! (`../shared/corpora/jsontestsuite`): every `y_` document must parse, every
//! `n_` document must be rejected, and no document (`i_` included) may panic,
//! hang or overflow the stack. Also pins the number text of the
//! `test_transform` cases: they must come out exactly as they went in.

use std::path::{Path, PathBuf};

use etl_core::reader::Item;
use etl_core::record::parse_record;
use etl_core::{RecordReader, Value};

fn corpus() -> PathBuf {
    etl_testkit::corpora("jsontestsuite")
}

fn files(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A whole document through the value parser (the reader's per-line parser).
fn parse_doc(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    Value::parse(text).map_err(|e| e.to_string())
}

#[test]
fn y_documents_parse_and_n_documents_are_rejected() {
    let root = corpus();
    let dir = root.join("test_parsing");
    let y = files(&dir, "y_");
    let n = files(&dir, "n_");
    assert_eq!((y.len(), n.len()), (95, 188), "corpus changed");
    for (name, bytes) in &y {
        let v = parse_doc(bytes).unwrap_or_else(|e| panic!("{name} must parse: {e}"));
        // Objects are records; any other document is "not a JSON object".
        let text = std::str::from_utf8(bytes).unwrap();
        let as_record = parse_record(text);
        assert_eq!(
            as_record.is_ok(),
            matches!(v, Value::Object(_)),
            "{name}: {as_record:?}"
        );
        if let Err(e) = as_record {
            assert!(e.0.starts_with("not a JSON object"), "{name}: {e}");
        }
    }
    for (name, bytes) in &n {
        assert!(parse_doc(bytes).is_err(), "{name} must be rejected");
    }
}

#[test]
fn no_document_panics_through_the_line_reader() {
    let root = corpus();
    for (name, bytes) in files(&root.join("test_parsing"), "") {
        let mut r = RecordReader::new(&bytes[..], 1 << 20, Some(name.clone()));
        let mut items = 0;
        while let Some(item) = r.next_item().unwrap() {
            items += 1;
            if let Item::Reject(rej) = item {
                assert!(rej.line >= 1 && !rej.error.is_empty(), "{name}");
            }
        }
        assert!(items <= bytes.len() + 1, "{name}");
    }
}

#[test]
fn numbers_round_trip_textually() {
    let root = corpus();
    // Each number document, wrapped in a record, must come out as it went in
    // (where ~30 parsers of upstream's table disagree, we keep the text).
    for (name, bytes) in files(&root.join("test_transform"), "number_") {
        let text = std::str::from_utf8(&bytes).unwrap().trim();
        let line = format!("{{\"n\":{text}}}");
        let rec = parse_record(&line).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out = Vec::new();
        etl_core::record::write_record(&mut out, &rec);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            line.replace(' ', ""),
            "{name}"
        );
    }
}

#[test]
fn escaped_nul_stays_escaped() {
    let root = corpus();
    let dir = root.join("test_parsing");
    for name in [
        "y_object_escaped_null_in_key.json",
        "y_string_null_escape.json",
    ] {
        let v = parse_doc(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        assert!(v.to_json().contains("\\u0000"), "{name}: {}", v.to_json());
    }
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    let root = corpus();
    let path = root.join("test_parsing/y_object_duplicated_key.json");
    let v = parse_doc(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v.to_json(), r#"{"a":"c"}"#);
}
