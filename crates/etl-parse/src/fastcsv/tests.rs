//! The scanner against the csv crate and a separate reading of RFC 4180.

use super::*;

fn all(input: &[u8], cap: usize) -> Vec<(u64, Vec<String>)> {
    all_with(input, cap, b',', b'"')
}

fn all_with(input: &[u8], cap: usize, delim: u8, quote: u8) -> Vec<(u64, Vec<String>)> {
    let mut s = Scanner::new(input, delim, quote, 1 << 20);
    s.buf = vec![0; cap];
    let mut out = Vec::new();
    while let Some(n) = s.next_record().unwrap() {
        match n {
            Next::Record(r) => out.push((
                r.line,
                r.fields
                    .iter()
                    .map(|&(a, b)| String::from_utf8_lossy(&r.bytes[a..b]).into_owned())
                    .collect(),
            )),
            Next::TooLong { line, .. } => out.push((line, vec!["<too long>".into()])),
            Next::Malformed { line, .. } => out.push((line, vec![MALFORMED.into()])),
        }
    }
    out
}

const MALFORMED: &str = "<malformed>";

/// `got` equals the csv crate's `want`, except that the records whose
/// quotes are out of place are rejects: those must be exactly the
/// records `malformed` says, judged independently of the scanner.
fn same_but_malformed(got: &[Vec<String>], want: &[Vec<String>], input: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    for (g, w) in got.iter().zip(want) {
        if g.len() == 1 && g[0] == MALFORMED {
            continue;
        }
        assert_eq!(g, w, "{what}");
    }
    let flagged = got
        .iter()
        .filter(|g| g.len() == 1 && g[0] == MALFORMED)
        .count();
    assert_eq!(flagged, malformed_count(input), "{what}: malformed records");
}

/// How many records of `input` (comma, double quote) have a quote out
/// of place: a small, separate reading of RFC 4180 for the tests.
fn malformed_count(input: &[u8]) -> usize {
    let (mut n, mut i, mut bad) = (0, 0, false);
    let mut at_field_start = true;
    while i < input.len() {
        let b = input[i];
        if at_field_start && b == b'"' {
            i += 1;
            loop {
                match input[i..].iter().position(|&c| c == b'"') {
                    None => {
                        return n + 1;
                    }
                    Some(k) => i += k + 1,
                }
                if input.get(i) == Some(&b'"') {
                    i += 1;
                    continue;
                }
                break;
            }
            if !matches!(input.get(i), None | Some(b',' | b'\n' | b'\r')) {
                bad = true;
            }
            at_field_start = false;
            continue;
        }
        match b {
            b',' => at_field_start = true,
            b'\n' | b'\r' => {
                n += usize::from(bad);
                bad = false;
                at_field_start = true;
            }
            _ => at_field_start = false,
        }
        i += 1;
    }
    n + usize::from(bad)
}

/// The csv crate, as the reference for every input.
fn reference(input: &[u8]) -> Vec<Vec<String>> {
    reference_with(input, b',', b'"')
}

fn reference_with(input: &[u8], delim: u8, quote: u8) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delim)
        .quote(quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    r.byte_records()
        .map(|rec| {
            rec.unwrap()
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect()
        })
        .collect()
}

#[test]
fn matches_the_csv_crate_on_tricky_inputs_at_every_buffer_size() {
    let inputs: [&[u8]; 20] = [
        b"a,\"x \"\"y\"\" z\",b\n",
        b"\"\"\"\",x\n",
        b"\"a\"\"\",b\n\"c\"\r\n",
        b"\"a\"\"b\"c,d\n",
        b"x,\"y\"\r\nz,\"\"\n",
        b"5\" screen,\"ok\"\n",
        b"a,b,c\n1,2,3\n",
        b"a,b\r\n1,2\r\n",
        b"a,b\r1,2\r3,4",
        b"\n\na,b\n\n\n1,2\n",
        b"a,\"b,\"\"c\"\"\nd\",e\nf,g",
        b"x\"y,z\n",
        b"\"ab\"cd,e\n",
        b"\"unterminated,x\ny,z",
        b"a,\"\"\n\"\",b\n",
        b"last,line,no,newline",
        b",\n,,\n",
        b"a\r\r\nb\n",
        b"\"q\r\nq\",1\r\n2,3\r\n",
        b"\xc3\xa9,\xe2\x82\xac\n",
    ];
    for input in inputs {
        let want = reference(input);
        for cap in [1, 2, 3, 5, 8, 64, 4096] {
            let got: Vec<Vec<String>> = all(input, cap).into_iter().map(|(_, f)| f).collect();
            let what = format!("input {:?} buffer {cap}", String::from_utf8_lossy(input));
            same_but_malformed(&got, &want, input, &what);
        }
    }
    // Written out by hand: which records are rejects.
    let m = |input: &[u8]| -> Vec<String> {
        all(input, 4096)
            .into_iter()
            .map(|(_, f)| f.join("|"))
            .collect()
    };
    assert_eq!(m(b"\"a\"\"b\"c,d\ne,f\n"), [MALFORMED, "e|f"]);
    assert_eq!(m(b"\"ab\"cd,e\n"), [MALFORMED]);
    assert_eq!(m(b"x,\"unterminated,x\ny,z"), [MALFORMED]);
    assert_eq!(
        m(b"5\" screen,\"ok\"\n"),
        ["5\" screen|ok"],
        "a quote inside an unquoted field is data"
    );
    assert_eq!(m(b"\"B\" ,c\n"), [MALFORMED]);
    assert_eq!(m(b"\"a\"\"\",b\n"), ["a\"|b"]);
}

/// Random rows over the characters that matter, long enough to cross
/// 64-byte blocks: the block scanner must agree with the csv crate on
/// fields and with the state machine on line numbers.
#[test]
fn block_scanner_agrees_on_random_input() {
    let alphabet: [&[u8]; 9] = [
        b"a",
        b"bc",
        b",",
        b",",
        b"\"",
        b"\n",
        b"\r",
        b"\\",
        "\u{e9}".as_bytes(),
    ];
    let mut rng = etl_testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next();
    for _ in 0..2000 {
        let len = usize::try_from(next() % 400).unwrap();
        let mut input = Vec::new();
        // Mostly well-formed quoting, so the block scanner is taken.
        while input.len() < len {
            if next() % 4 == 0 {
                input.push(b'"');
                for _ in 0..next() % 6 {
                    let piece = alphabet[usize::try_from(next() % 9).unwrap()];
                    input.extend_from_slice(if piece == b"\"" { b"\"\"" } else { piece });
                }
                input.push(b'"');
            } else {
                input.extend_from_slice(alphabet[usize::try_from(next() % 9).unwrap()]);
            }
        }
        // The same row shapes in three dialects.
        for (d, q) in [(b',', b'"'), (b';', b'\''), (b'\t', b'"')] {
            let input: Vec<u8> = input
                .iter()
                .map(|&b| match b {
                    b',' => d,
                    b'"' => q,
                    x => x,
                })
                .collect();
            let shown = String::from_utf8_lossy(&input);
            let want = reference_with(&input, d, q);
            let comma_quote: Vec<u8> = input
                .iter()
                .map(|&b| match b {
                    b if b == d => b',',
                    b if b == q => b'"',
                    b',' | b'"' => b'x',
                    x => x,
                })
                .collect();
            for cap in [7, 64, 4096] {
                let got: Vec<Vec<String>> = all_with(&input, cap, d, q)
                    .into_iter()
                    .map(|(_, f)| f)
                    .collect();
                let what = format!("input {shown:?} buffer {cap}");
                same_but_malformed(&got, &want, &comma_quote, &what);
            }
            let lines = |blocks: bool| {
                let mut s = Scanner::new(&input[..], d, q, 1 << 20);
                s.use_blocks = blocks;
                let mut out = Vec::new();
                while let Some(n) = s.next_record().unwrap() {
                    out.push(match n {
                        Next::Record(r) => r.line,
                        Next::TooLong { line, .. } | Next::Malformed { line, .. } => line,
                    });
                }
                out
            };
            assert_eq!(lines(true), lines(false), "{shown:?}");
        }
    }
}

#[test]
fn line_numbers_count_quoted_newlines() {
    let got = all(b"h\n\"a\nb\"\nc\n\nd\n", 4096);
    let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [1, 2, 4, 6]);
}

#[test]
fn over_long_records_are_reported_and_skipped() {
    let mut input = b"a,b\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"\n1,2\n");
    let mut s = Scanner::new(&input[..], b',', b'"', 100);
    s.buf = vec![0; 64];
    let mut seen = Vec::new();
    while let Some(n) = s.next_record().unwrap() {
        seen.push(match n {
            Next::Record(r) => format!("{}:{}", r.line, String::from_utf8_lossy(r.bytes)),
            Next::TooLong { line, preview } => format!("{line}:too long {}", preview.len()),
            Next::Malformed { line, .. } => format!("{line}:malformed"),
        });
    }
    assert_eq!(seen[0], "1:a,b");
    assert!(seen[1].starts_with("2:too long"), "{seen:?}");
    assert_eq!(seen[2], "3:1,2");
    assert!(s.buf.len() <= 100 + CHUNK, "the buffer stayed bounded");
}

#[test]
fn clean_detects_what_needs_escaping() {
    assert!(is_clean(b"plain text, 123"));
    assert!(!is_clean(b"tab\there"));
    assert!(!is_clean(b"back\\slash"));
    assert!(!is_clean(b"q\"uote"));
}
