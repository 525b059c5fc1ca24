//! The direct path (runs of ordinary CSV records written straight from the
//! scanner's buffer to JSON lines) against the record-at-a-time path, which
//! `ETL_PARSE_NO_DIRECT=1` forces. On generated input full of what tells
//! them apart (doubled quotes, quoted line ends, quotes out of place, CR LF
//! and bare CR, blank lines, control characters, backslashes, NUL bytes,
//! invalid UTF-8, short and long rows, fields across 64-byte blocks, files
//! across the 256 KiB read buffer, a last line without a line end, an
//! unterminated quote), under flags that change what a record becomes,
//! both must write the same bytes to stdout, the same rejects file, the
//! same exit code and the same counts.

mod common;

use std::path::Path;
use std::process::Command;

use etl_testkit::Rng;

const BIN: &str = common::BIN;

/// One field's text, built from pieces; `q` is the quote character.
fn field(r: &mut Rng, delim: u8, q: u8, out: &mut Vec<u8>) {
    let text: &[&[u8]] = &[
        b"plain",
        b"12.50",
        b"",
        "São Paulo".as_bytes(),
        b"a long value that runs past sixteen and thirty-two bytes, and on",
        b"back\\slash",
        b"tab\there",
        b"x",
    ];
    match r.below(12) {
        // Quoted: with pairs, the delimiter, line ends, control characters.
        0..=3 => {
            out.push(q);
            for _ in 0..r.below(4) {
                match r.below(9) {
                    0 => out.extend_from_slice(&[q, q]),
                    1 => out.push(delim),
                    2 => out.push(b'\n'),
                    3 => out.extend_from_slice(b"\r\n"),
                    4 => out.push(b'"'),
                    5 => out.push(0x01),
                    _ => out.extend_from_slice(text[r.below(text.len())]),
                }
            }
            out.push(q);
        }
        // Rarely: what only the record-at-a-time path takes.
        4 if r.below(6) == 0 => {
            let odd: &[&[u8]] = &[b"ab\"c", b"x\0y", b"\xff\xfe", b"'q'x", b"\"q\"x"];
            out.extend_from_slice(odd[r.below(odd.len())]);
        }
        _ => out.extend_from_slice(text[r.below(text.len())]),
    }
}

/// A file: a header of `cols` columns, then `records` records.
fn input(seed: u64, records: usize, cols: usize, delim: u8, q: u8) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::new();
    for c in 0..cols {
        if c > 0 {
            out.push(delim);
        }
        out.extend_from_slice(format!("col{c}").as_bytes());
    }
    out.push(b'\n');
    for _ in 0..records {
        let n = match r.below(40) {
            0 => cols - 1,
            1 => cols + 1,
            _ => cols,
        };
        for f in 0..n {
            if f > 0 {
                out.push(delim);
            }
            field(&mut r, delim, q, &mut out);
        }
        let ends: &[&[u8]] = &[b"\n", b"\n", b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"];
        out.extend_from_slice(ends[r.below(ends.len())]);
    }
    // Sometimes the last line has no line end, or an unterminated quote.
    match r.below(4) {
        0 => out.extend_from_slice(b"last,line"),
        1 => out.extend_from_slice(b"\"open,quote\nto the end"),
        _ => {}
    }
    out
}

/// Pairs, escapes and line ends at every offset of a 64-byte block: the
/// second field starts `k` bytes into its record, for `k` from 0 to 130.
fn aligned_input() -> Vec<u8> {
    let mut out = b"pad,value,tail\n".to_vec();
    for k in 0..=130 {
        out.extend_from_slice(&b"p".repeat(k));
        out.extend_from_slice(b",\"a\"\"b\nc\"\"\"\"d\\e\"\"\",t\r\n");
        out.extend_from_slice(&b"q".repeat(k));
        out.extend_from_slice(b",\"\"\"\",\"\t\"\n");
    }
    out
}

/// Exit code, stdout, rejects file, and the summary's counts.
fn run(dir: &Path, args: &[&str], direct: bool) -> (i32, Vec<u8>, Vec<u8>, String) {
    let rejects = dir.join(if direct { "rej-direct" } else { "rej-record" });
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .arg("--rejects")
        .arg(&rejects)
        .arg("--max-rejects")
        .arg("1000000")
        .arg("in.csv")
        .env("ETL_LOG_FORMAT", "json")
        .env_remove("ETL_LOG");
    if !direct {
        cmd.env("ETL_PARSE_NO_DIRECT", "1");
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr
        .lines()
        .find(|l| l.contains("\"msg\":\"summary\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {} {} {}",
                v["status"], v["records_in"], v["records_out"], v["records_rejected"]
            )
        })
        .unwrap_or_default();
    let rej = std::fs::read(&rejects).unwrap_or_default();
    // Rejects carry a timestamp and run id: compare them without.
    let rej = rej
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_slice(l).unwrap();
            if let Some(m) = v.as_object_mut() {
                m.retain(|k, _| !matches!(k.as_str(), "ts" | "run_id" | "at"));
            }
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        rej.into_bytes(),
        summary,
    )
}

/// One generated file and the flags it is parsed with.
type Case = (u64, usize, usize, u8, u8, &'static [&'static str]);

#[test]
fn both_paths_write_the_same_records_rejects_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let flag_sets: &[&[&str]] = &[
        &[],
        &["--provenance"],
        &["--no-header"],
        &["--ragged", "keep"],
        &["--max-line-bytes", "120"],
        &["--skip-rows", "2"],
    ];
    let mut compared = 0;
    let mut direct_records = 0;
    // Small files under every flag set; big ones (past the read buffer)
    // once; other dialects.
    let mut cases: Vec<Case> = Vec::new();
    for seed in 1..=24u64 {
        let flags = flag_sets[usize::try_from(seed).unwrap() % flag_sets.len()];
        cases.push((
            seed,
            40,
            1 + usize::try_from(seed % 5).unwrap(),
            b',',
            b'"',
            flags,
        ));
    }
    for seed in [101u64, 102, 103] {
        cases.push((seed, 9000, 6, b',', b'"', &[]));
    }
    cases.push((0, 0, 0, b',', b'"', &[]));
    cases.push((201, 3000, 4, b';', b'"', &[]));
    cases.push((202, 3000, 4, b'\t', b'"', &["--format", "tsv"]));
    cases.push((203, 3000, 4, b',', b'\'', &["--quote", "'"]));
    cases.push((
        204,
        3000,
        4,
        b'|',
        b'"',
        &["--delimiter", "|", "--provenance"],
    ));
    for (seed, records, cols, delim, q, flags) in cases {
        let data = if seed == 0 {
            aligned_input()
        } else {
            input(seed, records, cols, delim, q)
        };
        std::fs::write(dir.path().join("in.csv"), &data).unwrap();
        let direct = run(dir.path(), flags, true);
        let record = run(dir.path(), flags, false);
        let what = format!("seed {seed}, flags {flags:?}");
        assert_eq!(direct.0, record.0, "{what}: exit codes");
        assert_eq!(direct.3, record.3, "{what}: summaries");
        assert_eq!(direct.2, record.2, "{what}: rejects");
        if direct.1 != record.1 {
            let (d, r) = (
                String::from_utf8_lossy(&direct.1),
                String::from_utf8_lossy(&record.1),
            );
            let first = d.lines().zip(r.lines()).position(|(a, b)| a != b);
            panic!(
                "{what}: stdout differs at line {first:?}: {:?} against {:?}",
                first.and_then(|i| d.lines().nth(i)),
                first.and_then(|i| r.lines().nth(i))
            );
        }
        compared += 1;
        direct_records += memchr::memchr_iter(b'\n', &direct.1).count();
    }
    assert_eq!(compared, 32);
    assert!(
        direct_records > 20_000,
        "too few records compared: {direct_records}"
    );
}
