//! The messy files clients send, through the built binary: dialects
//! detected together, preambles and footers, `--header auto`, `--sniff`,
//! encodings decided over the sample and switched after it, fixed-width
//! text. Every input is written by hand here and every expected output is
//! read off the input by hand.

mod common;

use common::{Dir, Out};

fn ok(out: &Out) -> Vec<String> {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out.stdout.lines().map(str::to_owned).collect()
}

/// A rejects file, one value a line.
fn rejects(d: &Dir, name: &str) -> Vec<serde_json::Value> {
    d.read(name)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(out: &Out) -> serde_json::Value {
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(r#""msg":"summary""#))
        .unwrap_or_else(|| panic!("no summary: {}", out.stderr));
    serde_json::from_str(line).unwrap()
}

#[test]
fn delimiter_quote_and_escape_are_detected_together() {
    let d = Dir::new();
    d.write(
        "semi.csv",
        "Datum;Betrag;Notiz\n01.02.2024;12,50;\"a; b\"\n02.02.2024;7,25;c\n".as_bytes(),
    );
    assert_eq!(
        ok(&d.run(&["semi.csv"])),
        [
            r#"{"Datum":"01.02.2024","Betrag":"12,50","Notiz":"a; b"}"#,
            r#"{"Datum":"02.02.2024","Betrag":"7,25","Notiz":"c"}"#
        ]
    );
    d.write("single.csv", b"'id','name'\n1,'Smith, J'\n2,'Doe, A'\n");
    assert_eq!(
        ok(&d.run(&["single.csv"])),
        [
            r#"{"id":"1","name":"Smith, J"}"#,
            r#"{"id":"2","name":"Doe, A"}"#
        ]
    );
    d.write(
        "bs.csv",
        b"id,quote\n1,\"say \\\"hi, you\\\"\"\n2,\"plain\"\n",
    );
    assert_eq!(
        ok(&d.run(&["bs.csv"])),
        [
            r#"{"id":"1","quote":"say \"hi, you\""}"#,
            r#"{"id":"2","quote":"plain"}"#
        ]
    );
    d.write("space.txt", b"id name qty\n1 apple 3\n2 pear 4\n");
    assert_eq!(
        ok(&d.run(&["space.txt"])),
        [
            r#"{"id":"1","name":"apple","qty":"3"}"#,
            r#"{"id":"2","name":"pear","qty":"4"}"#
        ]
    );
    d.write("tilde.dat", b"id~name\n1~apple\n2~pear\n");
    assert_eq!(ok(&d.run(&["tilde.dat"]))[1], r#"{"id":"2","name":"pear"}"#);
    // One column whose values hold spaces and colons: never split.
    d.write("one.csv", b"name\nJohn Smith\nJane Doe\n");
    assert_eq!(
        ok(&d.run(&["one.csv"])),
        [r#"{"name":"John Smith"}"#, r#"{"name":"Jane Doe"}"#]
    );
    d.write("times.csv", b"time\n12:30\n13:45\n14:00\n");
    assert_eq!(ok(&d.run(&["times.csv"]))[0], r#"{"time":"12:30"}"#);
    // Explicit flags win: `--quote none` keeps the quotes as data.
    d.write("q.csv", b"a,b\n\"x\",1\n");
    assert_eq!(
        ok(&d.run(&["--quote", "none", "q.csv"])),
        [r#"{"a":"\"x\"","b":"1"}"#]
    );
    assert_eq!(
        ok(&d.run(&["--delimiter", "space", "space.txt"]))[0],
        r#"{"id":"1","name":"apple","qty":"3"}"#
    );
}

#[test]
fn the_decision_is_logged_and_in_the_summary() {
    let d = Dir::new();
    d.write("p.csv", b"id|name\n1|a\n");
    let out = d.run(&["--log-format", "json", "p.csv"]);
    assert!(
        out.logged(r#""delimiter":"|","quote":"\"","escape":"none","encoding":"UTF-8","header":true,"skip_rows":0"#),
        "{}",
        out.stderr
    );
    let s = summary(&out);
    assert_eq!(s["dialects"]["p.csv"]["delimiter"], "|");
    assert_eq!(s["dialects"]["p.csv"]["columns"], 2);
    assert_eq!(s["dialects"]["p.csv"]["encoding"], "UTF-8");
}

#[test]
fn a_preamble_is_skipped_and_said() {
    let d = Dir::new();
    d.write(
        "r.csv",
        b"Sales report\nGenerated on 2024-03-01\n\nid;name;amount\n1;apple;3,50\n2;pear;4,25\n",
    );
    let out = d.run(&["--log-format", "json", "r.csv"]);
    assert_eq!(
        ok(&out),
        [
            r#"{"id":"1","name":"apple","amount":"3,50"}"#,
            r#"{"id":"2","name":"pear","amount":"4,25"}"#
        ]
    );
    assert!(
        out.logged("skipping 3 lines of preamble: 2 title lines of one value and 1 blank line"),
        "{}",
        out.stderr
    );
    assert_eq!(summary(&out)["dialects"]["r.csv"]["skip_rows"], 3);
    // An Excel title padded with delimiters.
    d.write("x.csv", b"Quarterly report,,\n,,\nid,name,amount\n1,a,2\n");
    assert_eq!(
        ok(&d.run(&["x.csv"])),
        [r#"{"id":"1","name":"a","amount":"2"}"#]
    );
    // Rejects name the file's own line numbers, past the preamble.
    d.write("rj.csv", b"Title\nid,name\n1,a\n2,b,c\n");
    let out = d.run(&["--max-rejects", "1", "--rejects", "rej.ndjson", "rj.csv"]);
    assert_eq!(ok(&out), [r#"{"id":"1","name":"a"}"#]);
    assert!(
        d.read("rej.ndjson").starts_with(r#"{"line":4,"#),
        "{}",
        d.read("rej.ndjson")
    );
    // --skip-rows forces it (and turns detection of a preamble off).
    assert_eq!(
        ok(&d.run(&["--skip-rows", "1", "rj.csv", "--max-rejects", "1"])),
        [r#"{"id":"1","name":"a"}"#]
    );
    assert_eq!(
        ok(&d.run(&["--skip-rows", "0", "--ragged", "keep", "rj.csv"]))[0],
        r#"{"Title":"id","_extra":["name"]}"#
    );
}

#[test]
fn footers_are_rejects_unless_skipped() {
    let d = Dir::new();
    d.write(
        "f.csv",
        b"id;amount\n1;2,50\n2;3,50\nTotal: 6,00\nEnd of report\n",
    );
    let out = d.run(&["--max-rejects", "2", "--rejects", "rej.ndjson", "f.csv"]);
    assert_eq!(
        ok(&out),
        [
            r#"{"id":"1","amount":"2,50"}"#,
            r#"{"id":"2","amount":"3,50"}"#
        ]
    );
    let rej = rejects(&d, "rej.ndjson");
    assert_eq!(rej.len(), 2);
    assert_eq!(rej[0]["line"], 4);
    assert_eq!(rej[0]["input"], serde_json::json!(["Total: 6,00"]));
    assert!(rej[0]["error"].as_str().unwrap().contains("footer"));
    assert_eq!(rej[1]["line"], 5);
    // The default --max-rejects 0: a footer fails the run, nothing is lost silently.
    assert_eq!(d.run(&["f.csv"]).code, 65);
    assert_eq!(
        ok(&d.run(&["--skip-footer", "2", "f.csv"])),
        [
            r#"{"id":"1","amount":"2,50"}"#,
            r#"{"id":"2","amount":"3,50"}"#
        ]
    );
    // A short row of one value with full rows after it is a row, padded.
    d.write("mid.csv", b"a,b\nx\n1,2\n");
    assert_eq!(
        ok(&d.run(&["mid.csv"])),
        [r#"{"a":"x","b":""}"#, r#"{"a":"1","b":"2"}"#]
    );
}

#[test]
fn header_auto_yes_and_no() {
    let d = Dir::new();
    d.write("data.csv", b"1,2.5\n2,3.5\n");
    d.write("named.csv", b"id,amount\n1,2.5\n");
    assert_eq!(
        ok(&d.run(&["--header", "auto", "data.csv"])),
        [
            r#"{"col_1":"1","col_2":"2.5"}"#,
            r#"{"col_1":"2","col_2":"3.5"}"#
        ]
    );
    assert_eq!(
        ok(&d.run(&["--header", "auto", "named.csv"])),
        [r#"{"id":"1","amount":"2.5"}"#]
    );
    assert_eq!(
        ok(&d.run(&["data.csv"])),
        [r#"{"1":"2","2.5":"3.5"}"#],
        "yes is the default"
    );
    assert_eq!(
        ok(&d.run(&["--header", "no", "named.csv"]))[0],
        r#"{"col_1":"id","col_2":"amount"}"#
    );
    assert_eq!(d.run(&["--header", "maybe", "data.csv"]).code, 64);
}

#[test]
fn sniff_prints_one_object_per_input() {
    let d = Dir::new();
    d.write("a.csv", b"Report\n\nid;name\n1;x\n2;y\n");
    d.write("b.json", b"[{\"a\":1}]");
    let out = d.run(&["--sniff", "a.csv", "b.json"]);
    let lines = ok(&out);
    assert_eq!(lines.len(), 2);
    let a: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        a,
        serde_json::json!({"file":"a.csv","format":"csv","delimiter":";","quote":"\"","escape":"none",
            "encoding":"UTF-8","header":true,"skip_rows":2,"preamble":2,"columns":2})
    );
    assert_eq!(
        lines[1],
        r#"{"file":"b.json","format":"json","encoding":"UTF-8"}"#
    );
}

#[test]
fn utf16_without_a_bom_and_a_legacy_byte_after_the_sample() {
    let d = Dir::new();
    let le: Vec<u8> = "id,name\n1,Zoë\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    d.write("le.csv", &le);
    assert_eq!(ok(&d.run(&["le.csv"])), [r#"{"id":"1","name":"Zoë"}"#]);
    let be: Vec<u8> = "id,name\n1,Zoë\n"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    d.write("be.csv", &be);
    assert_eq!(ok(&d.run(&["be.csv"])), [r#"{"id":"1","name":"Zoë"}"#]);
    // 100 KiB of ASCII rows, then windows-1252 on line 5002.
    let mut bytes = b"id,city\n".to_vec();
    for i in 1..=5000 {
        bytes.extend_from_slice(format!("{i},Paris-{i:010}\n").as_bytes());
    }
    assert!(bytes.len() > 65_536);
    bytes.extend_from_slice(b"5001,Besan\xE7on\n5002,Z\xFCrich\n");
    d.write("late.csv", &bytes);
    let out = d.run(&["late.csv"]);
    let lines = ok(&out);
    assert_eq!(lines.len(), 5002);
    assert_eq!(lines[5000], r#"{"id":"5001","city":"Besançon"}"#);
    assert_eq!(lines[5001], r#"{"id":"5002","city":"Zürich"}"#);
    assert!(out.logged("line 5002 is not valid UTF-8"), "{}", out.stderr);
    assert_eq!(
        summary(&out)["dialects"]["late.csv"]["encoding"],
        "UTF-8, windows-1252 from line 5002"
    );
    // --encoding utf-8 insists: the rows are rejects.
    let out = d.run(&["--encoding", "utf-8", "--max-rejects", "5", "late.csv"]);
    assert_eq!(ok(&out).len(), 5000);
}

#[test]
fn fixed_width_text() {
    let d = Dir::new();
    let report = "ID      NAME                AMOUNT\n\
                  1       José Smith           12.50\n\
                  22      Ann                   3.00\n\
                  \n\
                  333     Bob                 100.00   extra\n\
                  4\n";
    d.write("r.txt", report.as_bytes());
    let out = d.run(&[
        "--format",
        "fixed",
        "--widths",
        "8,20,10",
        "--max-rejects",
        "2",
        "--rejects",
        "rej.ndjson",
        "r.txt",
    ]);
    assert_eq!(
        ok(&out),
        [
            r#"{"ID":"1","NAME":"José Smith","AMOUNT":"12.50"}"#,
            r#"{"ID":"22","NAME":"Ann","AMOUNT":"3.00"}"#
        ]
    );
    let rej = rejects(&d, "rej.ndjson");
    assert_eq!(rej[0]["line"], 5);
    assert!(rej[0]["error"].as_str().unwrap().contains("would be lost"));
    assert_eq!(rej[1]["line"], 6);
    assert!(rej[1]["error"].as_str().unwrap().contains("starts at 29"));
    // Named columns (1-based inclusive), no trimming; the header line is skipped.
    assert_eq!(
        ok(&d.run(&[
            "--format",
            "fixed",
            "--columns",
            "id:1-8,name:9-28,amount:29-38",
            "--no-trim",
            "--max-rejects",
            "2",
            "r.txt"
        ]))[1],
        r#"{"id":"22      ","name":"Ann                 ","amount":"  3.00"}"#
    );
    d.write(
        "layout.txt",
        b"# the 1998 ledger\nid:1-8\nname:9-28\namount:29-38\n",
    );
    assert_eq!(
        ok(&d.run(&[
            "--format",
            "fixed",
            "--columns-file",
            "layout.txt",
            "--no-header",
            "--max-rejects",
            "2",
            "r.txt"
        ]))[0],
        r#"{"id":"ID","name":"NAME","amount":"AMOUNT"}"#
    );
    assert_eq!(d.run(&["--format", "fixed", "r.txt"]).code, 64, "no layout");
    assert_eq!(
        d.run(&["--widths", "8,20", "r.txt"]).code,
        64,
        "a layout without --format fixed"
    );
    assert_eq!(
        d.run(&["--format", "fixed", "--columns", "a:1-8,b:5-9", "r.txt"])
            .code,
        64,
        "overlapping columns"
    );
}

#[test]
fn aligned_columns_are_read_as_fixed_width_only_when_certain() {
    let d = Dir::new();
    d.write(
        "ledger.txt",
        "ID      NAME            AMOUNT\n\
         1       José Smith       12.50\n\
         22      Ann               3.00\n\
         333     Bob Lee         100.00\n\
         4       Zoe               7.25\n"
            .as_bytes(),
    );
    let out = d.run(&["--log-format", "json", "ledger.txt"]);
    assert_eq!(
        ok(&out),
        [
            r#"{"ID":"1","NAME":"José Smith","AMOUNT":"12.50"}"#,
            r#"{"ID":"22","NAME":"Ann","AMOUNT":"3.00"}"#,
            r#"{"ID":"333","NAME":"Bob Lee","AMOUNT":"100.00"}"#,
            r#"{"ID":"4","NAME":"Zoe","AMOUNT":"7.25"}"#
        ]
    );
    assert!(
        out.logged("reading it as fixed-width text, --columns 'col_1:1-8,col_2:9-24,col_3:25-30'"),
        "{}",
        out.stderr
    );
    assert_eq!(summary(&out)["dialects"]["ledger.txt"]["format"], "fixed");
    let sniffed = ok(&d.run(&["--sniff", "ledger.txt"]));
    let sniffed: serde_json::Value = serde_json::from_str(&sniffed[0]).unwrap();
    assert_eq!(sniffed["format"], "fixed");
    assert_eq!(sniffed["layout"], "col_1:1-8,col_2:9-24,col_3:25-30");
    // Refused by giving a delimiter: one column of whole lines.
    assert_eq!(
        ok(&d.run(&["--delimiter", ",", "ledger.txt"]))[0],
        r#"{"ID      NAME            AMOUNT":"1       José Smith       12.50"}"#
    );
    // Prose (single spaces) and short files stay one column.
    d.write(
        "notes.txt",
        b"note\nthe quick brown fox\njumps over the dog\nand runs away fast\nover the hills now\n",
    );
    assert_eq!(
        ok(&d.run(&["notes.txt"]))[0],
        r#"{"note":"the quick brown fox"}"#
    );
}

#[test]
fn a_fixed_width_line_over_max_line_bytes_is_a_reject() {
    let d = Dir::new();
    // A reject naming the line; the next line is read.
    d.write(
        "long.txt",
        format!("ab12\n{}\ncd34\n", "x".repeat(100)).as_bytes(),
    );
    let out = d.run(&[
        "--format",
        "fixed",
        "--columns",
        "a:1-2,n:3-4",
        "--no-header",
        "--max-line-bytes",
        "50",
        "--max-rejects",
        "1",
        "--rejects",
        "long.ndjson",
        "long.txt",
    ]);
    assert_eq!(
        ok(&out),
        [r#"{"a":"ab","n":"12"}"#, r#"{"a":"cd","n":"34"}"#]
    );
    let rej = rejects(&d, "long.ndjson");
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["line"], 2);
    assert!(rej[0]["error"]
        .as_str()
        .unwrap()
        .contains("--max-line-bytes"));
}
