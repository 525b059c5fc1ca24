//! Integration tests of every etl-parse flag, through the built binary.
//! Expected outputs are written by hand from the inputs (RFC 4180, the
//! issue's rules), never copied from a run.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{corpora, run_in, Dir, Out, BIN};

fn ok(out: &Out) -> Vec<String> {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn csv_basics_quotes_newlines_line_ends_and_order() {
    let d = Dir::new();
    d.write(
        "a.csv",
        b"z,a,m\r\n1,\"x, \"\"y\"\"\",\"multi\nline\"\r3,,\"\"\n",
    );
    assert_eq!(
        ok(&d.run(&["a.csv"])),
        [
            r#"{"z":"1","a":"x, \"y\"","m":"multi\nline"}"#,
            r#"{"z":"3","a":"","m":""}"#
        ]
    );
    // A final line without newline, and stdin via `-`.
    assert_eq!(ok(&d.run_stdin(&["-"], b"h\n007")), [r#"{"h":"007"}"#]);
    assert_eq!(
        ok(&d.run_stdin(&[], b"h\n1")),
        [r#"{"h":"1"}"#],
        "stdin by default"
    );
}

#[test]
fn delimiters_sniffed_or_given() {
    let d = Dir::new();
    d.write("semi.csv", b"a;b\n1,5;2\n");
    d.write("pipe.txt", b"a|b\n1|2\n");
    d.write("t.tsv", b"a\tb\n1\t2\n");
    assert_eq!(ok(&d.run(&["semi.csv"])), [r#"{"a":"1,5","b":"2"}"#]);
    assert_eq!(ok(&d.run(&["pipe.txt"])), [r#"{"a":"1","b":"2"}"#]);
    assert_eq!(ok(&d.run(&["t.tsv"])), [r#"{"a":"1","b":"2"}"#]);
    assert_eq!(
        ok(&d.run(&["--delimiter", ",", "--ragged", "keep", "semi.csv"])),
        [r#"{"a;b":"1","_extra":["5;2"]}"#]
    );
    assert_eq!(
        ok(&d.run(&["-d", "tab", "t.tsv"])),
        [r#"{"a":"1","b":"2"}"#]
    );
    assert_eq!(d.run(&["-d", "ab", "t.tsv"]).code, 64);
    assert_eq!(d.run(&["-d", "\"", "t.tsv"]).code, 64);
}

#[test]
fn quote_escape_and_comment() {
    let d = Dir::new();
    d.write("q.csv", b"a,b\n'x,y',2\n");
    assert_eq!(
        ok(&d.run(&["--quote", "'", "q.csv"])),
        [r#"{"a":"x,y","b":"2"}"#]
    );
    // With another quote character, `"` is data: escaped in the JSON, in
    // quoted and unquoted fields alike, with `''` one quote.
    d.write("dq.csv", b"a,b,c\n'say \"hi\"',say \"hi\",'it''s \"x\"'\n");
    assert_eq!(
        ok(&d.run(&["--quote", "'", "dq.csv"])),
        [r#"{"a":"say \"hi\"","b":"say \"hi\"","c":"it's \"x\""}"#]
    );
    d.write("e.csv", b"a,b\n\"say \\\"hi\\\"\",2\n");
    assert_eq!(
        ok(&d.run(&["--escape", "\\", "e.csv"])),
        [r#"{"a":"say \"hi\"","b":"2"}"#]
    );
    // Regression: the escape character before anything but a quote or
    // itself was dropped (`c\d` read as `cd`); it is data, kept.
    d.write("e2.csv", b"a,b,c\n1,\"x\\\\y\",\"c\\d\"\n");
    assert_eq!(
        ok(&d.run(&["--escape", "\\", "e2.csv"])),
        [r#"{"a":"1","b":"x\\y","c":"c\\d"}"#]
    );
    // Regression: a closing quote followed by text (`"a"b`) was read with
    // the quotes dropped; the row is now a reject naming line and field.
    // (With the quote detected, `"` is no quote in this file and `"x"y` is
    // read as it stands; `--quote '"'` insists.)
    d.write("stray.csv", b"a,b\n\"x\"y,1\n2,3\n");
    assert_eq!(ok(&d.run(&["stray.csv"]))[0], r#"{"a":"\"x\"y","b":"1"}"#);
    let out = d.run(&[
        "--quote",
        "\"",
        "--max-rejects",
        "1",
        "--rejects",
        "r.ndjson",
        "stray.csv",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ok(&out), [r#"{"a":"2","b":"3"}"#]);
    let rej: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(d.path().join("r.ndjson"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(rej["line"], 2);
    assert_eq!(rej["input"], "\"x\"y,1", "the row as the file holds it");
    assert!(
        rej["error"]
            .as_str()
            .unwrap()
            .contains("field 1: text after the closing quote"),
        "{rej}"
    );
    assert_eq!(
        d.run(&["--quote", "\"", "stray.csv"]).code,
        65,
        "beyond --max-rejects 0"
    );
    d.write("c.csv", b"# exported 2026-11-21\na,b\n1,2\n# trailer");
    assert_eq!(
        ok(&d.run(&["--comment", "#", "c.csv"])),
        [r#"{"a":"1","b":"2"}"#]
    );
}

#[test]
fn headers_no_header_skip_rows_duplicates_empty_and_snake() {
    let d = Dir::new();
    d.write(
        "h.csv",
        b"Report for November\n\nOrder ID,Order ID,,unitPrice\n1,2,3,4\n",
    );
    assert_eq!(
        ok(&d.run(&["--skip-rows", "2", "h.csv"])),
        [r#"{"Order ID":"1","Order ID_2":"2","col_3":"3","unitPrice":"4"}"#]
    );
    assert_eq!(
        ok(&d.run(&["--skip-rows", "2", "--normalize-headers", "snake", "h.csv"])),
        [r#"{"order_id":"1","order_id_2":"2","col_3":"3","unit_price":"4"}"#]
    );
    d.write("n.csv", b"1,2\n3,4\n");
    assert_eq!(
        ok(&d.run(&["--no-header", "n.csv"])),
        [
            r#"{"col_1":"1","col_2":"2"}"#,
            r#"{"col_1":"3","col_2":"4"}"#
        ]
    );
}

#[test]
fn ragged_rows_pad_reject_or_keep() {
    let d = Dir::new();
    d.write("r.csv", b"a,b,c\n1\n1,2,3,4,5\n");
    let rejects = d.path().join("rej.ndjson");
    let out = d.run(&[
        "--rejects",
        rejects.to_str().unwrap(),
        "--max-rejects",
        "1",
        "r.csv",
    ]);
    assert_eq!(ok(&out), [r#"{"a":"1","b":"","c":""}"#]);
    let rej = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        rej.trim_end().split(",\"run_id\"").next().unwrap(),
        r#"{"line":3,"error":"row has 5 fields, the header has 3 (see --ragged keep)","stage":"etl-parse","input":["1","2","3","4","5"],"source":"r.csv""#
    );
    assert_eq!(
        d.run(&["r.csv"]).code,
        65,
        "one reject is over the default --max-rejects 0"
    );
    assert_eq!(
        ok(&d.run(&["--ragged", "keep", "r.csv"])),
        [
            r#"{"a":"1","b":"","c":""}"#,
            r#"{"a":"1","b":"2","c":"3","_extra":["4","5"]}"#
        ]
    );
}

#[test]
fn encodings_bom_utf16_legacy_detected_and_nul() {
    let d = Dir::new();
    d.write("bom.csv", b"\xEF\xBB\xBFid,name\n1,x\n");
    assert_eq!(ok(&d.run(&["bom.csv"])), [r#"{"id":"1","name":"x"}"#]);
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("a,b\n1,é\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    d.write("u16.csv", &utf16);
    assert_eq!(ok(&d.run(&["u16.csv"])), [r#"{"a":"1","b":"é"}"#]);
    d.write("w.csv", b"name\n\x93Caf\xe9\x94 \x80\n");
    assert_eq!(
        ok(&d.run(&["--encoding", "windows-1252", "w.csv"])),
        ["{\"name\":\"\u{201c}Café\u{201d} €\"}"]
    );
    let out = d.run(&["w.csv"]);
    assert_eq!(
        ok(&out),
        ["{\"name\":\"\u{201c}Café\u{201d} €\"}"],
        "detected"
    );
    assert!(
        out.logged("windows-1252") && out.logged("\"level\":\"warn\""),
        "{}",
        out.stderr
    );
    d.write("nul.csv", b"a,b\n1,x\x00y\n2,z\n");
    let out = d.run(&["--max-rejects", "1", "nul.csv"]);
    assert_eq!(ok(&out), [r#"{"a":"2","b":"z"}"#]);
    assert!(out.logged("NUL byte"));
    assert_eq!(d.run(&["--encoding", "klingon", "w.csv"]).code, 64);
}

#[test]
fn infer_and_provenance() {
    let d = Dir::new();
    d.write("i.csv", b"a,b,c,d,e,f,g\n12,-3.50,00123,1e5,TRUE,,NaN\n");
    assert_eq!(
        ok(&d.run(&["--infer", "i.csv"])),
        [r#"{"a":12,"b":-3.50,"c":"00123","d":"1e5","e":true,"f":null,"g":"NaN"}"#]
    );
    assert_eq!(
        ok(&d.run(&["--provenance", "i.csv"]))[0],
        r#"{"a":"12","b":"-3.50","c":"00123","d":"1e5","e":"TRUE","f":"","g":"NaN","_source":"i.csv","_row":1}"#
    );
}

#[test]
fn json_arrays_paths_objects_and_ndjson() {
    let d = Dir::new();
    d.write(
        "a.json",
        b"[\n {\"b\": 1.0, \"a\": [1, {\"x\": null}]},\n {\"b\": 12345678901234567890}\n]",
    );
    assert_eq!(
        ok(&d.run(&["a.json"])),
        [
            r#"{"b":1.0,"a":[1,{"x":null}]}"#,
            r#"{"b":12345678901234567890}"#
        ]
    );
    d.write(
        "p.json",
        b"{\"meta\": {\"n\": 2}, \"data\": {\"items\": [{\"id\": 1}, {\"id\": 2}]}}",
    );
    assert_eq!(
        ok(&d.run(&["--json-path", "data.items", "p.json"])),
        [r#"{"id":1}"#, r#"{"id":2}"#]
    );
    assert_eq!(d.run(&["--json-path", "nope", "p.json"]).code, 65);
    d.write("t.json", b"[[\"id\",\"name\"],[1,\"x\"],[2]]");
    assert_eq!(
        ok(&d.run(&["t.json"])),
        [r#"{"id":1,"name":"x"}"#, r#"{"id":2,"name":null}"#]
    );
    d.write("n.ndjson", b"{\"a\": 1.0}\n{\"b\":2}\n");
    assert_eq!(
        ok(&d.run(&["n.ndjson"])),
        [r#"{"a": 1.0}"#, r#"{"b":2}"#],
        "NDJSON passes through byte-exact"
    );
    assert_eq!(
        ok(&d.run(&["--provenance", "n.ndjson"]))[0],
        r#"{"a": 1.0,"_source":"n.ndjson","_row":1}"#
    );
    d.write("bad.json", b"[{\"a\":1}, 42, {\"a\":2}]");
    let out = d.run(&["--max-rejects", "1", "bad.json"]);
    assert_eq!(ok(&out), [r#"{"a":1}"#, r#"{"a":2}"#]);
    assert!(out.logged("element 2 is not an object"));
    d.write("broken.json", b"[{\"a\":1},");
    assert_eq!(d.run(&["broken.json"]).code, 65);
}

#[test]
fn compressed_and_zip_members_with_glob_and_limits() {
    let d = Dir::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"a,b\n1,2\n").unwrap();
    d.write("x.csv.gz", &gz.finish().unwrap());
    assert_eq!(ok(&d.run(&["x.csv.gz"])), [r#"{"a":"1","b":"2"}"#]);
    // A zip with a CSV, an NDJSON member in a folder, a text note and macOS metadata.
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("orders.csv", opts).unwrap();
    z.write_all(b"id\n1\n").unwrap();
    z.add_directory("sub/", opts).unwrap();
    z.start_file("sub/more.ndjson", opts).unwrap();
    z.write_all(b"{\"id\":2}\n").unwrap();
    z.start_file("__MACOSX/._orders.csv", opts).unwrap();
    z.write_all(b"\x00\x05\x16\x07junk").unwrap();
    let bytes = z.finish().unwrap().into_inner();
    d.write("r.zip", &bytes);
    assert_eq!(
        ok(&d.run(&["--provenance", "r.zip"])),
        [
            r#"{"id":"1","_source":"r.zip","_member":"orders.csv","_row":1}"#,
            r#"{"id":2,"_source":"r.zip","_member":"sub/more.ndjson","_row":1}"#
        ]
    );
    assert_eq!(
        ok(&d.run(&["--member", "*.csv", "r.zip"])),
        [r#"{"id":"1"}"#]
    );
    assert_eq!(ok(&d.run(&["--member", "sub/*", "r.zip"])), [r#"{"id":2}"#]);
    // From stdin too (spooled to a temporary file).
    assert_eq!(
        ok(&d.run_stdin(&["--member", "*.csv"], &bytes)),
        [r#"{"id":"1"}"#]
    );
    // Bomb limits: 8 MiB of zeros compress ~1000:1.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"a\n").unwrap();
    gz.write_all(&vec![b'0'; 8 << 20]).unwrap();
    d.write("bomb.csv.gz", &gz.finish().unwrap());
    let out = d.run(&["bomb.csv.gz"]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.logged("--max-ratio"), "{}", out.stderr);
    let out = d.run(&[
        "--max-ratio",
        "100000",
        "--max-decompressed-bytes",
        "1MiB",
        "bomb.csv.gz",
    ]);
    assert_eq!(out.code, 65);
    assert!(out.logged("--max-decompressed-bytes"), "{}", out.stderr);
}

/// Regression: --max-decompressed-bytes applied per member, not per input
/// as documented (three 600 KiB members passed a 1 MiB limit), and did not
/// cover the zip inside a workbook at all.
#[test]
fn decompression_limit_is_the_total_of_one_input_workbooks_included() {
    let d = Dir::new();
    let member = {
        let mut m = b"n\n".to_vec();
        m.extend(std::iter::repeat_n(b"12345678\n".as_slice(), 600 * 1024 / 9).flatten());
        m
    };
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for name in ["a.csv", "b.csv", "c.csv"] {
        z.start_file(name, opts).unwrap();
        z.write_all(&member).unwrap();
    }
    d.write("three.zip", &z.finish().unwrap().into_inner());
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("a.csv", opts).unwrap();
    z.write_all(&member).unwrap();
    d.write("one.zip", &z.finish().unwrap().into_inner());
    let limit = ["--max-ratio", "100000", "--max-decompressed-bytes", "1MiB"];
    let out = d.run(&[&limit[..], &["three.zip"]].concat());
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.logged("--max-decompressed-bytes"), "{}", out.stderr);
    // Each input has its own total: two inputs of 600 KiB each pass.
    let out = d.run(&[&limit[..], &["one.zip", "one.zip"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ok(&out).len(), 2 * (600 * 1024 / 9));
    // A workbook is a zip too: its parts count against the same limit.
    let xlsx = corpora().join("xlsx/calamine/date.xlsx");
    let xlsx = xlsx.to_str().unwrap();
    assert_eq!(d.run(&[xlsx]).code, 0);
    let out = d.run(&["--max-decompressed-bytes", "2KiB", xlsx]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.logged("--max-decompressed-bytes"), "{}", out.stderr);
}

#[test]
fn missing_input_is_66_before_any_output() {
    let d = Dir::new();
    d.write("a.csv", b"x\n1\n");
    let out = d.run(&["a.csv", "missing.csv"]);
    assert_eq!(out.code, 66);
    assert_eq!(out.stdout, "", "nothing from a.csv either");
    assert!(out.logged("missing.csv"));
    assert_eq!(d.run(&["."]).code, 66, "a directory");
}

#[test]
fn format_override() {
    let d = Dir::new();
    d.write("data.bin", b"[1]\n");
    assert_eq!(
        ok(&d.run(&["--format", "csv", "--no-header", "data.bin"])),
        [r#"{"col_1":"[1]"}"#]
    );
    d.write("x.json", b"a,b\n1,2\n");
    assert_eq!(
        ok(&d.run(&["x.json"])),
        [r#"{"a":"1","b":"2"}"#],
        "content wins over the extension"
    );
}

#[test]
fn manifest_lines_and_carry() {
    let d = Dir::new();
    d.write("one.csv", b"v\n1\n");
    d.write("two.csv", b"v\n2\n");
    let manifest = format!(
        "{{\"path\":\"{}\",\"from\":\"a@x\",\"date\":\"2026-11-20\"}}\n{{\"path\":\"two.csv\",\"from\":\"b@y\"}}\n",
        d.path().join("one.csv").display()
    );
    assert_eq!(
        ok(&d.run_stdin(&["--manifest", "--carry", "date,from"], manifest.as_bytes())),
        [
            r#"{"v":"1","_date":"2026-11-20","_from":"a@x"}"#,
            r#"{"v":"2","_date":null,"_from":"b@y"}"#
        ]
    );
    let out = d.run_stdin(&["--manifest"], b"{\"nopath\":1}\n");
    assert_eq!(out.code, 65);
    assert_eq!(
        d.run_stdin(&["--carry", "date", "one.csv"], b"").code,
        64,
        "--carry needs --manifest"
    );
}

#[test]
fn spreadsheets_sheets_listing_errors_and_password() {
    let root = corpora();
    let f = root.join("frictionless");
    let c = root.join("xlsx/calamine");
    let r = |dir: &Path, args: &[&str]| run_in(dir, args, b"");
    assert_eq!(
        ok(&r(&f, &["--list-sheets", "sheets.xlsx"])),
        [
            r#"{"name":"Sheet1","index":0,"visible":true,"rows":2,"columns":2}"#,
            r#"{"name":"Sheet2","index":1,"visible":true,"rows":2,"columns":2}"#,
            r#"{"name":"Sheet3","index":2,"visible":true,"rows":2,"columns":2}"#
        ]
    );
    assert_eq!(
        ok(&r(&f, &["--all-sheets", "sheets.xlsx"])),
        [
            r#"{"id":"1","name":"london","_sheet":"Sheet1"}"#,
            r#"{"id":"2","name":"paris","_sheet":"Sheet2"}"#,
            r#"{"id ":"3","name":"rome","_sheet":"Sheet3"}"#
        ]
    );
    assert_eq!(
        ok(&r(
            &f,
            &[
                "--sheet",
                "Sheet3",
                "--normalize-headers",
                "trim",
                "sheets.xlsx"
            ]
        )),
        [r#"{"id":"3","name":"rome"}"#]
    );
    assert_eq!(r(&f, &["--sheet", "Nope", "sheets.xlsx"]).code, 64);
    // Default: the first visible sheet (any_sheets has Visible, Hidden, VeryHidden, Chart).
    let listed = ok(&r(&c, &["--list-sheets", "any_sheets.xlsx"]));
    assert!(
        listed[1].contains(r#""name":"Hidden","index":1,"visible":false"#),
        "{listed:?}"
    );
    // Error cells: a reject naming sheet and cell, or empty.
    let out = r(&c, &["--no-header", "errors.xlsx"]);
    assert_eq!(out.code, 65);
    assert!(
        out.logged("sheet Feuil1 cell A1: #DIV/0!"),
        "{}",
        out.stderr
    );
    assert_eq!(
        ok(&r(
            &c,
            &["--no-header", "--cell-errors", "empty", "errors.xlsx"]
        ))
        .len(),
        7
    );
    // 1904 epoch and text cells that look like numbers.
    assert_eq!(
        ok(&r(&c, &["--no-header", "date_1904.xlsx"]))[0],
        r#"{"col_1":"2021-01-01","col_2":"15"}"#
    );
    assert_eq!(
        ok(&r(&c, &["--no-header", "date.xlsx"]))[0],
        r#"{"col_1":"2021-01-01","col_2":"15"}"#
    );
    assert_eq!(
        ok(&r(&c, &["string-ref.xlsx"])),
        [r#"{"col1":"-8086931554011838357"}"#]
    );
    assert_eq!(
        ok(&r(&f, &["--infer", "table.xlsx"]))[0],
        r#"{"id":1,"name":"english"}"#
    );
    let out = r(&c, &["pass_protected.xlsx"]);
    assert_eq!(out.code, 65);
    assert!(out.logged("password-protected"), "{}", out.stderr);
    assert_eq!(r(&f, &["--list-sheets", "table.csv"]).code, 64);
}

/// A loopback HTTP server answering `responses` in turn, one per connection.
fn serve(responses: Vec<(u16, &'static str)>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn urls_stream_with_retries_and_map_statuses() {
    let d = Dir::new();
    let base = serve(vec![(503, "busy"), (500, "oops"), (200, "a,b\n1,2\n")]);
    let out = d.run(&["--retries", "3", &format!("{base}/daily.csv?token=x")]);
    assert_eq!(ok(&out), [r#"{"a":"1","b":"2"}"#]);
    assert!(out.logged("retrying"), "{}", out.stderr);
    let base = serve(vec![(404, "no")]);
    assert_eq!(d.run(&[&format!("{base}/x.csv")]).code, 66);
    let base = serve(vec![(503, ""), (503, "")]);
    assert_eq!(
        d.run(&["--retries", "1", &format!("{base}/x.csv")]).code,
        69
    );
    // A server that accepts and never answers: --timeout ends the wait (69).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let t = std::time::Instant::now();
    let out = d.run(&[
        "--timeout",
        "0.5",
        "--retries",
        "0",
        &format!("http://{addr}/slow.csv"),
    ]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "the timeout was not honoured"
    );
    drop(silent);
    // Nothing listens here: connection refused, retried, then 69.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_eq!(
        d.run(&["--retries", "0", &format!("http://127.0.0.1:{port}/x.csv")])
            .code,
        69
    );
}

/// Regression: etl-parse logged whole URLs, `?token=...` included, in its
/// retry warnings, errors, `_source` and rejects.
#[test]
fn url_credentials_and_query_values_never_reach_logs_records_or_rejects() {
    let d = Dir::new();
    let base = serve(vec![(503, "busy"), (200, "a,b\n1,2\n3,4,5\n")]);
    let url = format!("{base}/daily.csv?token=tok-5ecret&sig=sig-5ecret")
        .replace("http://", "http://user:pw-5ecret@");
    let out = d.run(&[
        "--retries",
        "2",
        "--provenance",
        "--max-rejects",
        "5",
        "--rejects",
        "rejects.ndjson",
        "--summary",
        "summary.json",
        &url,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.logged("retrying"), "{}", out.stderr);
    let rejects = std::fs::read_to_string(d.path().join("rejects.ndjson")).unwrap();
    let summary = std::fs::read_to_string(d.path().join("summary.json")).unwrap();
    assert!(
        rejects.contains("line 3") || rejects.contains("\"line\":3"),
        "{rejects}"
    );
    let everything = format!("{}{}{rejects}{summary}", out.stdout, out.stderr);
    for secret in ["tok-5ecret", "sig-5ecret", "pw-5ecret"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
    assert!(
        out.stdout.contains("/daily.csv?token=***&sig=***"),
        "_source still says where the rows came from: {}",
        out.stdout
    );
    // The error of a URL that fails is masked too.
    let base = serve(vec![(403, "no")]);
    let out = d.run(&[&format!("{base}/x.csv?key=key-5ecret")]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(!out.stderr.contains("key-5ecret"), "{}", out.stderr);
    assert!(out.stderr.contains("x.csv?key=***"), "{}", out.stderr);
}

#[test]
fn closed_stdout_ends_quietly() {
    let d = Dir::new();
    let mut big = b"id,text\n".to_vec();
    for i in 0..200_000 {
        big.extend_from_slice(format!("{i},row number {i}\n").as_bytes());
    }
    d.write("big.csv", &big);
    let mut child = Command::new(BIN)
        .current_dir(d.path())
        .arg("big.csv")
        .env("ETL_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(first, "{\"id\":\"0\",\"text\":\"row number 0\"}\n");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[test]
fn a_manifest_charset_decodes_text_that_is_not_utf8() {
    let d = Dir::new();
    // 0xE9 is é in windows-1252 (what detection would guess) but щ in
    // ISO-8859-5: the e-mail's declaration decides.
    d.write("ru.csv", b"v\ncaf\xe9\n");
    d.write("utf8.csv", "v\ncafé\n".as_bytes());
    let manifest = b"{\"path\":\"ru.csv\",\"charset\":\"iso-8859-5\"}\n\
        {\"path\":\"utf8.csv\",\"charset\":\"windows-1252\"}\n\
        {\"path\":\"ru.csv\",\"charset\":null}\n\
        {\"path\":\"ru.csv\",\"charset\":\"x-klingon\"}\n";
    let out = d.run_stdin(&["--manifest"], manifest);
    assert_eq!(
        ok(&out),
        [
            r#"{"v":"cafщ"}"#,
            r#"{"v":"café"}"#,
            r#"{"v":"café"}"#,
            r#"{"v":"café"}"#
        ],
        "declared, valid UTF-8 kept despite the label, detected, detected"
    );
    for needle in [
        "decoding it as ISO-8859-5 (the charset its e-mail declared)",
        "unknown charset \\\"x-klingon\\\"",
    ] {
        assert!(out.logged(needle), "{needle}: {}", out.stderr);
    }
    // --encoding still wins over the declaration.
    let out = d.run_stdin(
        &["--manifest", "--encoding", "windows-1252"],
        b"{\"path\":\"ru.csv\",\"charset\":\"iso-8859-5\"}\n",
    );
    assert_eq!(ok(&out), [r#"{"v":"café"}"#]);
}
