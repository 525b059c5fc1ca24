//! Dialect detection on files annotated by others (`tests/dialects/`, see
//! its README for where each came from): the share of files whose table,
//! with everything detected (`--header auto`), equals the table read with
//! the annotated dialect given as flags. Both sides are etl-parse, so only
//! detection is measured. The share is held as a floor: a drop fails.

mod common;

use std::path::PathBuf;

use common::run;

/// The measured share, 15 of 15 files (2026-12-05); a lower one fails.
const FLOOR: f64 = 1.0;

fn char_flag(v: &serde_json::Value) -> String {
    match v.as_str() {
        None => "none".into(),
        Some("\t") => "tab".into(),
        Some(" ") => "space".into(),
        Some(s) => s.into(),
    }
}

#[test]
fn detected_tables_equal_the_annotated_ones() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dialects");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let files = manifest["files"].as_object().unwrap();
    assert!(files.len() >= 15, "the corpus lost files");
    let mut right = 0_u32;
    let mut wrong = Vec::new();
    for (name, a) in files {
        let path = dir.join(name);
        let path = path.to_str().unwrap();
        let common = ["--ragged", "keep", "--max-rejects", "1000000"];
        let header = match a["header"].as_bool() {
            Some(true) => "yes",
            Some(false) | None => "no",
        };
        // Where upstream did not say whether there is a header, neither side has one.
        let detect_header = if a["header"].is_null() { "no" } else { "auto" };
        let skip = a["skip_rows"].as_u64().unwrap().to_string();
        let (d, q, e) = (
            char_flag(&a["delimiter"]),
            char_flag(&a["quote"]),
            char_flag(&a["escape"]),
        );
        let mut annotated = vec![
            "--delimiter",
            &d,
            "--quote",
            &q,
            "--escape",
            &e,
            "--skip-rows",
            &skip,
            "--header",
            header,
        ];
        annotated.extend(common);
        annotated.push(path);
        let mut detected = vec!["--header", detect_header];
        detected.extend(common);
        detected.push(path);
        let want = run(&annotated, b"");
        assert_eq!(
            want.code, 0,
            "{name} with its annotated dialect: {}",
            want.stderr
        );
        assert!(
            !want.stdout.is_empty(),
            "{name}: no rows with its annotated dialect"
        );
        let got = run(&detected, b"");
        if got.code == 0 && got.stdout == want.stdout {
            right += 1;
        } else {
            wrong.push(format!(
                "{name}: want {} got {}",
                want.stdout.lines().next().unwrap_or(""),
                got.stdout.lines().next().unwrap_or("")
            ));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let share = f64::from(right) / files.len() as f64;
    eprintln!(
        "dialect corpus: {right} of {} files ({:.1}%)",
        files.len(),
        share * 100.0
    );
    for w in &wrong {
        eprintln!("  wrong: {w}");
    }
    assert!(
        share >= FLOOR,
        "share {share:.3} under the floor {FLOOR}: {wrong:#?}"
    );
}
