//! Random input never panics: random bytes (behind every format's magic
//! bytes, so each parser is reached) and random CSV made of the characters
//! that matter (quotes, delimiters, line ends, NUL, multi-byte UTF-8). Each
//! run must end with exit 0 (parsed) or 65 (rejected as bad data), never 70,
//! a signal, or a hang. The seed is printed so a failure can be replayed
//! with `ETL_FUZZ_SEED`.

mod common;

use std::time::{Duration, Instant};

use common::run_in;
use etl_testkit::Rng;

const PREFIXES: [&[u8]; 9] = [
    b"",
    b"PK\x03\x04",
    b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
    b"\x1f\x8b\x08\x00",
    b"BZh9",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"[{\"a\":",
    b"{\"a\":",
];

const CSV_PIECES: [&[u8]; 16] = [
    b",",
    b";",
    b"\"",
    b"\"\"",
    b"\n",
    b"\r",
    b"\r\n",
    b"a",
    b"12",
    b" ",
    b"\t",
    b"\0",
    "é".as_bytes(),
    b"\xff",
    b"#",
    b"|",
];

fn check(dir: &std::path::Path, args: &[&str], input: &[u8], seed: u64, what: &str) {
    let t = Instant::now();
    let out = run_in(dir, args, input);
    assert!(
        matches!(out.code, 0 | 65) && !out.stderr.contains("panicked"),
        "seed {seed}: {what} {input:?}: exit {} {}",
        out.code,
        out.stderr
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "seed {seed}: {what} took {:?}",
        t.elapsed()
    );
}

#[test]
fn random_bytes_and_random_csv_never_panic() {
    let seed = std::env::var("ETL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            u64::from(now.subsec_nanos()) | 1
        });
    eprintln!("fuzz seed {seed} (replay with ETL_FUZZ_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let lenient = ["--max-rejects", "1000000"];
    for i in 0..120 {
        let mut input = PREFIXES[i % PREFIXES.len()].to_vec();
        let len = rng.below(600);
        input.extend((0..len).map(|_| (rng.next() & 0xff) as u8));
        check(dir.path(), &lenient, &input, seed, "bytes");
    }
    for _ in 0..120 {
        let mut input = Vec::new();
        for _ in 0..rng.below(80) {
            input.extend_from_slice(CSV_PIECES[rng.below(CSV_PIECES.len())]);
        }
        let mut args = lenient.to_vec();
        if rng.below(2) == 0 {
            args.extend(["--ragged", "keep"]);
        }
        if rng.below(3) == 0 {
            args.push("--no-header");
        }
        if rng.below(4) == 0 {
            args.extend(["--comment", "#"]);
        }
        check(dir.path(), &args, &input, seed, "csv");
    }
}
