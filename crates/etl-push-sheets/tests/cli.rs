//! etl-push-sheets against etl-sheets-emulator: every mode and flag.

mod common;

use common::{ndjson, Emu, SA};
use serde_json::{json, Value};

/// Keys in this order (serde_json's `json!` would sort them).
fn orders() -> String {
    concat!(
        r#"{"order_id":"007","amount":12.5,"paid":true,"note":null}"#,
        "\n",
        r#"{"order_id":"008","amount":3,"paid":false,"note":{"gift":true}}"#,
        "\n",
        r#"{"order_id":"009","amount":12345678901234567890,"paid":true,"note":"=1+1"}"#,
        "\n",
    )
    .to_owned()
}

#[test]
fn replace_writes_exactly_the_input_raw() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let out = emu.push(&["--spreadsheet", "book", "--sheet", "Orders"], &orders());
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Stored values: text stays text (leading zeros), numbers are numbers,
    // a 20-digit number is text (no digit lost), objects are JSON text,
    // RAW never makes a formula.
    let d = emu.dump("book", "Orders");
    assert_eq!(
        d["values"],
        json!([
            ["order_id", "amount", "paid", "note"],
            ["007", 12.5, true],
            ["008", 3, false, "{\"gift\":true}"],
            ["009", "12345678901234567890", true, "=1+1"]
        ])
    );
    let s = out.summary();
    assert_eq!(
        (s["rows_written"].as_u64(), s["cells_written"].as_u64()),
        (Some(4), Some(16))
    );
    // addSheet, one values.update, the swap.
    assert_eq!(s["write_calls"], 3);
    assert_eq!(
        emu.sheets("book")
            .iter()
            .map(|p| p["title"].clone())
            .collect::<Vec<_>>(),
        vec![json!("Sheet1"), json!("Orders")]
    );
}

#[test]
fn replace_again_keeps_name_and_place_and_drops_old_rows() {
    let emu = Emu::start(|_| {});
    emu.create_with(json!({"spreadsheetId": "book", "owner": SA,
        "sheets": [{"properties": {"title": "First"}}, {"properties": {"title": "Orders"}}, {"properties": {"title": "Last"}}]}));
    assert_eq!(
        emu.push(&["--spreadsheet", "book", "--sheet", "Orders"], &orders())
            .code,
        0
    );
    let before = emu.sheets("book");
    let out = emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders"],
        "{\"order_id\":\"010\",\"amount\":1}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Orders"),
        json!([["order_id", "amount"], ["010", "1"]])
    );
    let after = emu.sheets("book");
    let titles: Vec<&str> = after.iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["First", "Orders", "Last"],
        "same place, no temporary sheet left"
    );
    assert_eq!(
        before[1]["sheetId"], after[1]["sheetId"],
        "the same sheet, not a new one (references to it stay bound)"
    );
    assert!(!after.is_empty() && after.iter().all(|p| p.get("hidden").is_none()));
    assert_eq!(
        after[1]["gridProperties"], before[1]["gridProperties"],
        "the grid never shrinks (rows others refer to stay); old values are cleared"
    );
}

#[test]
fn a_full_url_and_the_first_sheet_by_default() {
    let emu = Emu::start(|_| {});
    emu.create("1AbC-d_e");
    let out = emu.push(
        &[
            "--spreadsheet",
            "https://docs.google.com/spreadsheets/d/1AbC-d_e/edit#gid=0",
        ],
        &orders(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("1AbC-d_e", "Sheet1")[0],
        json!(["order_id", "amount", "paid", "note"])
    );
}

#[test]
fn empty_input_is_refused_unless_allowed() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    assert_eq!(emu.push(&["--spreadsheet", "book"], &orders()).code, 0);
    let out = emu.push(&["--spreadsheet", "book"], "");
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to empty sheet"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.sheet("book", "Sheet1").as_array().unwrap().len(), 4);
    let out = emu.push(&["--spreadsheet", "book", "--allow-empty"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.sheet("book", "Sheet1"), json!([]));
}

#[test]
fn columns_no_header_and_start_cell() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--columns",
            "paid,order_id",
            "--start-cell",
            "B2",
        ],
        &orders(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([
            [],
            ["", "paid", "order_id"],
            ["", "TRUE", "007"],
            ["", "FALSE", "008"],
            ["", "TRUE", "009"]
        ])
    );
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--no-header",
            "--columns",
            "order_id",
        ],
        &orders(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([["007"], ["008"], ["009"]])
    );
}

#[test]
fn on_new_column_in_replace() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let input = ndjson(&[json!({"a": 1}), json!({"a": 2, "b": 3})]);
    assert_eq!(emu.push(&["--spreadsheet", "book"], &input).code, 0);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([["a", "b"], ["1"], ["2", "3"]])
    );
    let out = emu.push(
        &["--spreadsheet", "book", "--on-new-column", "fail"],
        &input,
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr
            .contains("line 2: field \\\"b\\\" is not among the columns"),
        "{}",
        out.stderr
    );
    let writes = emu.writes();
    assert!(
        !writes.is_empty() && writes.iter().all(|w| w["status"] == 200),
        "nothing failed server-side: {writes:?}"
    );
    let out = emu.push(
        &["--spreadsheet", "book", "--on-new-column", "ignore"],
        &input,
    );
    assert_eq!(out.code, 0);
    assert_eq!(emu.sheet("book", "Sheet1"), json!([["a"], ["1"], ["2"]]));
}

#[test]
fn in_place_keeps_the_sheet_and_clears_beyond() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let wide = ndjson(
        &(0..5)
            .map(|i| json!({"a": i, "b": i, "c": i}))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        emu.push(&["--spreadsheet", "book", "--in-place"], &wide)
            .code,
        0
    );
    let id = emu.sheets("book")[0]["sheetId"].clone();
    let out = emu.push(
        &["--spreadsheet", "book", "--in-place"],
        &ndjson(&[json!({"a": "x", "b": null})]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.sheet("book", "Sheet1"), json!([["a", "b"], ["x"]]));
    assert_eq!(emu.sheets("book")[0]["sheetId"], id, "same sheet");
}

#[test]
fn append_writes_the_header_once_and_checks_it() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let day1 = ndjson(&[json!({"id": 1, "v": "a"}), json!({"id": 2, "v": "b"})]);
    let day2 = ndjson(&[json!({"v": "c", "id": 3})]);
    assert_eq!(
        emu.push(
            &[
                "--spreadsheet",
                "book",
                "--sheet",
                "Log",
                "--mode",
                "append"
            ],
            &day1
        )
        .code,
        0
    );
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Log",
            "--mode",
            "append",
        ],
        &day2,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Log"),
        json!([["id", "v"], ["1", "a"], ["2", "b"], ["3", "c"]]),
        "matched by name"
    );
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Log",
            "--mode",
            "append",
        ],
        &ndjson(&[json!({"id": 4, "w": 1})]),
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr
            .contains(r#"not in the header: \"w\"; in the header but not in the input: \"v\""#),
        "{}",
        out.stderr
    );
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Log",
            "--mode",
            "append",
            "--on-new-column",
            "add",
        ],
        &ndjson(&[json!({"id": 4, "w": 1})]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Log"),
        json!([
            ["id", "v", "w"],
            ["1", "a"],
            ["2", "b"],
            ["3", "c"],
            ["4", "", "1"]
        ])
    );
}

#[test]
fn upsert_touches_only_changed_cells_and_nothing_when_unchanged() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let v1 = concat!(
        r#"{"sku":"A","qty":1,"name":"apple"}"#,
        "\n",
        r#"{"sku":"B","qty":2,"name":"pear"}"#,
        "\n",
        r#"{"sku":"C","qty":3,"name":"plum"}"#,
        "\n",
    );
    let args = ["--spreadsheet", "book", "--mode", "upsert", "--key", "sku"];
    assert_eq!(emu.push(&args, v1).code, 0);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([
            ["sku", "qty", "name"],
            ["A", "1", "apple"],
            ["B", "2", "pear"],
            ["C", "3", "plum"]
        ])
    );
    // Unchanged input: reads only.
    emu.forget();
    let out = emu.push(&args, v1);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.writes().len(), 0, "{:?}", emu.writes());
    assert_eq!(out.summary()["unchanged_rows"], 3);
    // One changed cell, one new key, a field a record lacks stays.
    emu.forget();
    let v2 = concat!(
        r#"{"sku":"B","qty":20}"#,
        "\n",
        r#"{"sku":"D","qty":4,"name":"fig"}"#,
        "\n"
    );
    let out = emu.push(&args, v2);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([
            ["sku", "qty", "name"],
            ["A", "1", "apple"],
            ["B", "20", "pear"],
            ["C", "3", "plum"],
            ["D", "4", "fig"]
        ])
    );
    let w = emu.writes();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("values:batchUpdate"));
    assert_eq!(w[0]["cells"], 1, "only the changed cell");
    assert!(w[1]["path"].as_str().unwrap().ends_with(":append"));
    // --delete-missing with the last record of a key winning.
    let v3 = concat!(
        r#"{"sku":"A","qty":1,"name":"apple"}"#,
        "\n",
        r#"{"sku":"D","qty":5,"name":"fig"}"#,
        "\n",
        r#"{"sku":"D","qty":6,"name":"fig"}"#,
        "\n",
    );
    let out = emu.push(&[&args[..], &["--delete-missing"]].concat(), v3);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([
            ["sku", "qty", "name"],
            ["A", "1", "apple"],
            ["D", "6", "fig"]
        ])
    );
    assert_eq!(out.summary()["deleted_rows"], 2);
}

#[test]
fn upsert_needs_its_key_column_in_the_header() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    assert_eq!(
        emu.push(&["--spreadsheet", "book"], &ndjson(&[json!({"a": 1})]))
            .code,
        0
    );
    let out = emu.push(
        &["--spreadsheet", "book", "--mode", "upsert", "--key", "id"],
        &ndjson(&[json!({"id": 1, "a": 1})]),
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr.contains("not in the header") || out.stderr.contains("key column"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_formula_guard() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let input = concat!(
        r#"{"f":"=1+1","p":"+49 30 1234","n":"12%","q":"'quoted","x":-5}"#,
        "\n"
    );
    let out = emu.push(
        &["--spreadsheet", "book", "--value-input", "user-entered"],
        input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Stays text: no formula, no number parsed out of a phone number.
    assert_eq!(
        emu.sheet("book", "Sheet1")[1],
        json!(["=1+1", "+49 30 1234", "12%", "'quoted", "-5"])
    );
    assert_eq!(
        emu.dump("book", "Sheet1")["values"][1],
        json!(["=1+1", "+49 30 1234", 0.12, "'quoted", -5])
    );
    let allowed = [
        "--spreadsheet",
        "book",
        "--value-input",
        "user-entered",
        "--allow-formulas",
    ];
    let out = emu.push(&allowed, input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1")[1][0],
        json!("2"),
        "a formula when allowed"
    );
    // The same input again is written again: a formula's computed text
    // cannot tell it from a text cell that reads the same.
    emu.forget();
    let again = emu.push(&allowed, input);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!emu.writes().is_empty(), "written again");
    let out = emu.push(&["--spreadsheet", "book", "--allow-formulas"], input);
    assert_eq!(
        out.code, 64,
        "RAW never makes formulas: --allow-formulas is a usage error"
    );
}

/// A sheet too large for a staging copy beside it (Google's 10M cells per
/// spreadsheet): an input it already holds is no error (nothing to write,
/// no copy needed); a changed one is refused before writing, pointing at
/// --in-place, which then writes it.
#[test]
fn a_sheet_with_no_room_for_a_staging_copy_is_checked_then_refused_or_written_in_place() {
    let emu = Emu::start(|_| {});
    // 499,999 x 20 = 9,999,980 cells: room for the 16 cells of the orders
    // (4 rows x 4 columns), not for 16 more beside them.
    emu.create_with(json!({"spreadsheetId": "big", "owner": SA,
        "sheets": [{"properties": {"title": "Data", "gridProperties": {"rowCount": 499_999, "columnCount": 20}}}]}));
    let args = ["--spreadsheet", "big", "--sheet", "Orders"];
    let out = emu.push(&args, &orders());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = emu.sheet("big", "Orders");
    emu.forget();
    let out = emu.push(&args, &orders());
    assert_eq!(out.code, 0, "the same input again: {}", out.stderr);
    assert_eq!(emu.writes().len(), 0, "nothing written");
    let changed = orders().replace("12.5", "13.5");
    let out = emu.push(&args, &changed);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the staging copy of sheet \\\"Orders\\\" needs 16 cells")
            && out
                .stderr
                .contains("--in-place overwrites the sheet without a staging copy"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.writes().len(), 0, "nothing written");
    assert_eq!(emu.sheet("big", "Orders"), first);
    let out = emu.push(
        &["--spreadsheet", "big", "--sheet", "Orders", "--in-place"],
        &changed,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.sheet("big", "Orders")[1][1], json!("13.5"));
}

#[test]
fn the_cell_limit_is_checked_before_writing() {
    let emu = Emu::start(|_| {});
    // 384,615 x 26 = 9,999,990 cells already.
    emu.create_with(json!({"spreadsheetId": "big", "owner": SA,
        "sheets": [{"properties": {"title": "Data", "gridProperties": {"rowCount": 384_615, "columnCount": 26}}}]}));
    emu.forget();
    let out = emu.push(&["--spreadsheet", "big", "--sheet", "New"], &orders());
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("needs 16 cells (4 rows x 4 columns) besides the 9999990 cells"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("more than Google's 10000000"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.writes().len(), 0);
}

#[test]
fn an_over_long_value_is_a_reject() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let input = ndjson(&[
        json!({"id": 1, "t": "ok"}),
        json!({"id": 2, "t": "x".repeat(50_001)}),
    ]);
    let out = emu.push(
        &["--spreadsheet", "book", "--rejects", "rejects.ndjson"],
        &input,
    );
    assert_eq!(out.code, 65);
    assert_eq!(emu.writes().len(), 0, "nothing written");
    let rejects = std::fs::read_to_string(emu.path("rejects.ndjson")).unwrap();
    let r: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(r["line"], 2);
    assert_eq!(
        r["error"],
        "field \"t\": 50001 characters, more than Google's 50000 per cell"
    );
    let out = emu.push(&["--spreadsheet", "book", "--max-rejects", "1"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        emu.sheet("book", "Sheet1"),
        json!([["id", "t"], ["1", "ok"]])
    );
}

/// Records shaped like the one before are checked from their raw fields
/// (see spool.rs); every doubt still gets the record's own check, so each
/// problem below is the reject it always was, line and reason, whatever
/// record came before it.
#[test]
fn records_shaped_like_the_last_are_checked_as_strictly_as_the_first() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let long = "x".repeat(50_001);
    let lines = [
        r#"{"id":"a","t":"ok"}"#.to_owned(),
        format!(r#"{{"id":"b","t":"{long}"}}"#),
        r#"{"id":null,"t":"ok"}"#.to_owned(),
        r#"{"id":"","t":"ok"}"#.to_owned(),
        r#"{"id":"e","t":"\ud800"}"#.to_owned(),
        r#"{"id":"f","t":[1,2]}"#.to_owned(),
        r#"{"id":"g","t":"tab\there"}"#.to_owned(),
        r#"{"id":"h","id":null}"#.to_owned(),
        r#"{"id":"i","t":"ok"}"#.to_owned(),
        r#"{"id":"a","t":1e400}"#.to_owned(),
    ];
    let input = lines.join("\n") + "\n";
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--mode",
            "upsert",
            "--key",
            "id",
            "--rejects",
            "rejects.ndjson",
            "--max-rejects",
            "10",
        ],
        &input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rejects: Vec<(u64, String)> = std::fs::read_to_string(emu.path("rejects.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let surrogate = rejects
        .iter()
        .find(|(l, _)| *l == 5)
        .expect("line 5 is a reject");
    assert!(surrogate.1.starts_with("invalid JSON: "), "{surrogate:?}");
    let want = [
        (
            2,
            "field \"t\": 50001 characters, more than Google's 50000 per cell",
        ),
        (3, "key field \"id\" is null"),
        (4, "key field \"id\" is empty"),
        (5, surrogate.1.as_str()),
        (8, "key field \"id\" is null"),
    ];
    assert_eq!(
        rejects,
        want.iter()
            .map(|(l, e)| (*l, (*e).to_owned()))
            .collect::<Vec<_>>()
    );
    // The last record for a key wins (a's number, beyond a double, goes as
    // text); a nested value as its JSON text; an escape unescaped.
    let sheet = emu.sheet("book", "Sheet1");
    let mut rows: Vec<Value> = sheet.as_array().unwrap()[1..].to_vec();
    rows.sort_by_key(|r| r[0].as_str().unwrap().to_owned());
    assert_eq!(sheet[0], json!(["id", "t"]));
    assert_eq!(
        rows,
        [
            json!(["a", "1e400"]),
            json!(["f", "[1,2]"]),
            json!(["g", "tab\there"]),
            json!(["i", "ok"])
        ]
    );
    assert!(
        out.stderr
            .contains("1 records hold numbers with more than 15 significant digits"),
        "the number counted: {}",
        out.stderr
    );
}

#[test]
fn requests_stay_under_the_payload_cap() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let rows: Vec<Value> = (0..300)
        .map(|i| json!({"id": i, "text": format!("row number {i} with some text")}))
        .collect();
    let out = emu.push(
        &["--spreadsheet", "book", "--max-request-bytes", "4KiB"],
        &ndjson(&rows),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let updates: Vec<Value> = emu
        .writes()
        .into_iter()
        .filter(|w| w["method"] == "PUT")
        .collect();
    assert!(updates.len() >= 4, "{}", updates.len());
    assert!(
        updates.iter().all(|u| u["bytes"].as_u64().unwrap() <= 4096),
        "{updates:?}"
    );
    let sheet = emu.sheet("book", "Sheet1");
    assert_eq!(sheet.as_array().unwrap().len(), 301);
    assert_eq!(sheet[300], json!(["299", "row number 299 with some text"]));
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    emu.forget();
    let out = emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders", "--dry-run"],
        &orders(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = out.records();
    let kinds: Vec<&str> = plan
        .iter()
        .map(|p| p["request"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "spreadsheets.batchUpdate",
            "values.update",
            "spreadsheets.batchUpdate"
        ]
    );
    assert_eq!(
        (plan[1]["rows"].as_u64(), plan[1]["cells"].as_u64()),
        (Some(4), Some(16))
    );
    assert!(plan[1]["bytes"].as_u64().unwrap() > 50);
    assert_eq!(emu.writes().len(), 0);
    assert_eq!(emu.sheets("book").len(), 1);
}

#[test]
fn retries_after_429_and_503_end_in_the_same_sheet() {
    let clean = Emu::start(|_| {});
    clean.create("book");
    let rows: Vec<Value> = (0..1000).map(|i| json!({"id": i, "v": i * 2})).collect();
    let input = ndjson(&rows);
    let args = ["--spreadsheet", "book", "--max-request-bytes", "1KiB"];
    assert_eq!(clean.push(&args, &input).code, 0);
    let expected = clean.sheet("book", "Sheet1");
    for status in [429, 503] {
        let emu = Emu::start(|c| {
            c.fail_rate = 0.3;
            c.fail_status = status;
            c.seed = Some(42);
        });
        emu.create("book");
        let out = emu.push(&args, &input);
        assert_eq!(out.code, 0, "{status}: {}", out.stderr);
        assert_eq!(emu.sheet("book", "Sheet1"), expected, "{status}");
        let log: Vec<Value> = emu
            .requests()
            .into_iter()
            .filter(|r| r["kind"] == "write" || r["kind"] == "read")
            .collect();
        let faults = log.iter().filter(|r| r["fault"] == true).count();
        assert!(faults >= 3, "{status}: {faults} faults");
        assert_eq!(out.summary()["retries"].as_u64().unwrap(), faults as u64);
        // Every fault was followed by a retry of the same request, after a pause.
        for (i, r) in log.iter().enumerate().filter(|(_, r)| r["fault"] == true) {
            let next = &log[i + 1];
            assert_eq!(
                (&next["method"], &next["path"]),
                (&r["method"], &r["path"]),
                "{status}: retry of the same call"
            );
        }
        assert!(
            out.stderr.contains(&format!("HTTP {status}; retry 1 in")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn retries_run_out() {
    for (status, code) in [(429, 75), (503, 69)] {
        let emu = Emu::start(|c| {
            c.fail_rate = 1.0;
            c.fail_status = status;
        });
        emu.create("book");
        let out = emu.push(&["--spreadsheet", "book", "--max-retries", "2"], &orders());
        assert_eq!(out.code, code, "{status}: {}", out.stderr);
        assert!(out.stderr.contains("after 2 retries"), "{}", out.stderr);
        assert_eq!(
            emu.requests()
                .iter()
                .filter(|r| r["kind"] == "read")
                .count(),
            3,
            "1 + 2 retries"
        );
    }
}

#[test]
fn retry_after_is_honoured() {
    let emu = Emu::start(|c| {
        c.fail_rate = 0.5;
        c.fail_status = 503;
        c.retry_after = Some(1);
        c.seed = Some(3);
    });
    emu.create("book");
    let out = emu.push(&["--spreadsheet", "book"], &orders());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let retries: Vec<Value> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "HTTP 503")
        .collect();
    assert!(!retries.is_empty());
    assert!(
        retries
            .iter()
            .all(|r| r["delay_ms"].as_u64().unwrap() >= 1000),
        "{retries:?}"
    );
}

#[test]
fn permission_and_credential_errors_exit_77() {
    let emu = Emu::start(|_| {});
    emu.create_with(json!({"spreadsheetId": "theirs", "owner": "someone@example.com"}));
    let out = emu.push(&["--spreadsheet", "theirs"], &orders());
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.stderr.contains("403 PERMISSION_DENIED"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("share the spreadsheet with {SA}")),
        "{}",
        out.stderr
    );
    // A key the emulator does not know: no token.
    let mut key: Value =
        serde_json::from_str(&std::fs::read_to_string(emu.path("key.json")).unwrap()).unwrap();
    key["client_email"] = json!("stranger@etlkit-emulator.iam.gserviceaccount.com");
    std::fs::write(emu.path("stranger.json"), key.to_string()).unwrap();
    emu.create("mine");
    let out = emu.push_with(
        &["--spreadsheet", "mine"],
        &orders(),
        &emu.path("stranger.json"),
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.stderr.contains("account not found") || out.stderr.contains("invalid_grant"),
        "{}",
        out.stderr
    );
    // No credentials at all: exit 78 naming the flag and the variable.
    let out = emu.push_with(
        &["--spreadsheet", "mine"],
        &orders(),
        &emu.path("missing.json"),
    );
    assert_eq!(out.code, 78, "{}", out.stderr);
}

#[test]
fn impersonation_and_authorized_user_credentials() {
    let emu = Emu::start(|_| {});
    etl_sheets_emulator::keygen::service_account(
        &emu.path("dwd.json"),
        &emu.url,
        "dwd@etlkit-emulator.iam.gserviceaccount.com",
        true,
    )
    .unwrap();
    emu.create_with(json!({"spreadsheetId": "boss", "owner": "boss@example.com"}));
    let out = emu.push_with(
        &["--spreadsheet", "boss", "--impersonate", "boss@example.com"],
        &orders(),
        &emu.path("dwd.json"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let writes = emu.writes();
    assert!(
        !writes.is_empty() && writes.iter().all(|w| w["account"] == "boss@example.com"),
        "{writes:?}"
    );
    // The plain key may not impersonate.
    let out = emu.push(
        &["--spreadsheet", "boss", "--impersonate", "boss@example.com"],
        &orders(),
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    // gcloud-style user credentials, refreshed at the file's token_uri.
    etl_sheets_emulator::keygen::authorized_user(&emu.path("adc.json"), &emu.url, "me@example.com")
        .unwrap();
    emu.create_with(json!({"spreadsheetId": "mine", "owner": "me@example.com"}));
    let out = emu.push_with(&["--spreadsheet", "mine"], &orders(), &emu.path("adc.json"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.sheet("mine", "Sheet1").as_array().unwrap().len(), 4);
}

#[test]
fn usage_errors() {
    let emu = Emu::start(|_| {});
    for (args, needle) in [
        (
            vec!["--spreadsheet", "b", "--mode", "upsert"],
            "needs --key",
        ),
        (
            vec!["--spreadsheet", "b", "--key", "id"],
            "are for --mode upsert",
        ),
        (
            vec!["--spreadsheet", "b", "--mode", "append", "--in-place"],
            "--in-place is for --mode replace",
        ),
        (
            vec!["--spreadsheet", "https://example.com/x"],
            "expected a spreadsheet id",
        ),
        (
            vec!["--spreadsheet", "b", "--start-cell", "A1:B2"],
            "expected one cell",
        ),
    ] {
        let out = emu.push(&args, "");
        assert_eq!(out.code, 64, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    let out = emu.push(&[], "");
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains("ETL_SPREADSHEET_ID"), "{}", out.stderr);
}

/// A reader polling the sheet while it is replaced sees the old content or
/// the new content, never a mix or a partial sheet.
#[test]
fn replace_is_atomic_for_readers() {
    let emu = Emu::start(|c| {
        c.latency = std::time::Duration::from_millis(20);
        c.read_quota = 0;
        c.write_quota = 0;
    });
    emu.create("book");
    let old: Vec<Value> = (0..3000).map(|i| json!({"id": i, "gen": "old"})).collect();
    let new: Vec<Value> = (0..2500).map(|i| json!({"id": i, "gen": "new"})).collect();
    assert_eq!(emu.push(&["--spreadsheet", "book"], &ndjson(&old)).code, 0);
    let expect_old = emu.sheet("book", "Sheet1");
    // A reader with its own token, polling through the Sheets API.
    let token = emu.user_token("book", "reader@example.com", false);
    let url = format!("{}/v4/spreadsheets/book/values/Sheet1", emu.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let http = emu.http.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let text = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .unwrap()
                    .text()
                    .unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                seen.push(v["values"].clone());
            }
            seen
        })
    };
    let out = emu.push(
        &["--spreadsheet", "book", "--max-request-bytes", "4KiB"],
        &ndjson(&new),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let expect_new = emu.sheet("book", "Sheet1");
    assert!(
        out.summary()["write_calls"].as_u64().unwrap() > 5,
        "several writes"
    );
    assert!(
        seen.len() > 5,
        "the reader polled during the replace ({} reads)",
        seen.len()
    );
    for s in &seen {
        assert!(
            *s == expect_old || *s == expect_new,
            "a reader saw a partial sheet: {} rows",
            s.as_array().map_or(0, Vec::len)
        );
    }
    assert!(seen.contains(&expect_old) && seen.contains(&expect_new));
}

/// Writes are paced to stay inside the per-minute quota: with 2 writes a
/// minute allowed (and the emulator refusing a third), the third write of a
/// replace waits for the window instead of drawing a 429.
#[test]
fn writes_are_paced_within_the_quota() {
    let emu = Emu::start(|c| c.write_quota = 2);
    emu.create("book");
    let out = emu.push(
        &["--spreadsheet", "book", "--max-writes-per-minute", "2"],
        &orders(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let writes = emu.writes();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(
        writes.iter().all(|w| w["status"] == 200),
        "no 429: {writes:?}"
    );
    let ts = |w: &Value| {
        w["ts"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let gap = ts(&writes[2]) - ts(&writes[0]);
    assert!(
        gap.get_seconds() >= 59,
        "the third write waited for the window: {gap:?}"
    );
    assert!(out.stderr.contains("pacing writes"), "{}", out.stderr);
}

/// A token Google does not accept (here: issued by another token endpoint)
/// is a 401 from the API: exit 77 with Google's message.
#[test]
fn an_unaccepted_token_exits_77() {
    let api = Emu::start(|_| {});
    api.create("book");
    let other = Emu::start(|_| {});
    let out = api.push_with(
        &["--spreadsheet", "book"],
        &orders(),
        &other.path("key.json"),
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("401 UNAUTHENTICATED"), "{}", out.stderr);
}

/// Any other 4xx is a data error (65) naming the call and Google's message.
#[test]
fn other_client_errors_exit_65() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let long = "x".repeat(101);
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            &long,
            "--mode",
            "append",
        ],
        &orders(),
    );
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "spreadsheets.batchUpdate addSheet: Google Sheets answered 400 INVALID_ARGUMENT"
        ),
        "{}",
        out.stderr
    );
}

/// The values writes (sent as encoded bytes, not through the generated
/// calls) map Google's answers the same way: a body over the server's limit
/// is a 400 naming the call, the range and Google's message, for
/// values.update (replace) and values.append alike; the run writes nothing
/// after it.
#[test]
fn a_refused_values_write_names_the_call_and_googles_message() {
    let emu = Emu::start(|c| c.max_body_bytes = 2048);
    let rows: Vec<Value> = (0..200)
        .map(|i| json!({"id": i, "text": "x".repeat(40)}))
        .collect();
    for (mode, call) in [
        ("replace", "values.update 'etl-push-sheets staging"),
        ("append", "values.append Sheet1!A1"),
    ] {
        let book = format!("book-{mode}");
        emu.create(&book);
        let out = emu.push(
            &[
                "--spreadsheet",
                &book,
                "--mode",
                mode,
                "--max-request-bytes",
                "8KiB",
            ],
            &ndjson(&rows),
        );
        assert_eq!(out.code, 65, "{mode}: {}", out.stderr);
        assert!(
            out.stderr.contains(call)
                && out.stderr.contains(
                    "Google Sheets answered 400 INVALID_ARGUMENT: Request payload size exceeds the limit: 2048 bytes."
                ),
            "{mode}: {}",
            out.stderr
        );
        let writes: Vec<Value> = emu
            .requests()
            .into_iter()
            .filter(|r| r["kind"] == "api" && r["status"] == 400)
            .collect();
        assert!(!writes.is_empty(), "{mode}: the refused request is logged");
    }
}

#[test]
fn the_column_limit_is_checked_before_writing() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let mut rec = serde_json::Map::new();
    for i in 0..18_279 {
        rec.insert(format!("c{i:05}"), json!(i));
    }
    emu.forget();
    let out = emu.push(
        &["--spreadsheet", "book"],
        &format!("{}\n", Value::Object(rec)),
    );
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("needs 18279 columns; Google allows 18278"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.writes().len(), 0);
}

/// With user-entered values, what Sheets made of the typed text counts as
/// unchanged: a second upsert of the same input writes nothing.
#[test]
fn upsert_user_entered_is_stable() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let input = concat!(
        r#"{"id":"a","amount":"1,234.50","share":"12%","when":"2024-01-15","n":3}"#,
        "\n",
        r#"{"id":"b","amount":"7","share":"50%","when":"2024-02-01","n":4}"#,
        "\n",
    );
    let args = [
        "--spreadsheet",
        "book",
        "--mode",
        "upsert",
        "--key",
        "id",
        "--value-input",
        "user-entered",
    ];
    assert_eq!(emu.push(&args, input).code, 0);
    emu.forget();
    let out = emu.push(&args, input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(emu.writes().len(), 0, "{:?}", emu.writes());
    assert_eq!(out.summary()["unchanged_rows"], 2);
}

/// `{"amount":10,"id":1}` ... `{"amount":n*10,"id":n}` (columns: amount, id).
fn numbered(n: i64) -> String {
    ndjson(
        &(1..=n)
            .map(|i| json!({"id": i, "amount": i * 10}))
            .collect::<Vec<_>>(),
    )
}

/// The dashboard's formulas: a sum and a count of columns of the published
/// tab, one of its cells, and a sum through a named range on it.
const DASHBOARD: [&str; 4] = [
    "=SUM(Orders!A2:A)",
    "=COUNTA(Orders!B2:B)",
    "='Orders'!A2",
    "=SUM(Amounts)",
];

/// A spreadsheet with the published tab "Orders" (5 rows) and a
/// "Dashboard" whose formulas read it, written by another user through the
/// Sheets API; that user's token.
fn dashboard(emu: &Emu) -> String {
    emu.create_with(json!({"spreadsheetId": "book", "owner": SA,
        "sheets": [{"properties": {"title": "Orders"}}, {"properties": {"title": "Dashboard"}}]}));
    let out = emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders"],
        &numbered(5),
    );
    out.succeeds();
    let token = emu.user_token("book", "analyst@example.com", true);
    let orders = sheet_id(emu, "Orders");
    emu.batch(&token, json!([{"addNamedRange": {"namedRange": {"name": "Amounts",
            "range": {"sheetId": orders, "startRowIndex": 1, "startColumnIndex": 0, "endColumnIndex": 1}}}}]));
    let (s, v) = emu.api(
        &token,
        "PUT",
        "book/values/Dashboard!A1:D1?valueInputOption=USER_ENTERED",
        Some(json!({"values": [DASHBOARD]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        emu.sheet("book", "Dashboard")[0],
        json!(["150", "5", "10", "150"])
    );
    token
}

/// The titles of spreadsheet "book"'s sheets, in order.
fn titles(emu: &Emu) -> Vec<Value> {
    emu.sheets("book")
        .iter()
        .map(|p| p["title"].clone())
        .collect()
}

fn sheet_id(emu: &Emu, title: &str) -> Value {
    emu.sheets("book")
        .into_iter()
        .find(|p| p["title"] == title)
        .map_or_else(|| panic!("no sheet {title}"), |p| p["sheetId"].clone())
}

#[test]
fn replace_keeps_the_sheet_others_build_on() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    let id = sheet_id(&emu, "Orders");
    // A number format set by hand on the published tab's amounts.
    emu.batch(&token, json!([{"repeatCell": {
            "range": {"sheetId": id, "startRowIndex": 1, "startColumnIndex": 0, "endColumnIndex": 1},
            "cell": {"userEnteredFormat": {"numberFormat": {"type": "NUMBER", "pattern": "#,##0.0"}}},
            "fields": "userEnteredFormat.numberFormat"}}]));
    // Growing, shrinking, equal: the dashboard follows, never #REF!.
    for (n, sum) in [(8, 360), (3, 60), (3, 60)] {
        emu.push(
            &["--spreadsheet", "book", "--sheet", "Orders"],
            &numbered(n),
        )
        .succeeds();
        assert_eq!(
            emu.sheet("book", "Dashboard")[0],
            json!([sum.to_string(), n.to_string(), "10", sum.to_string()]),
            "after a replace with {n} rows"
        );
        assert_eq!(
            emu.dump("book", "Dashboard")["values"][0],
            json!(DASHBOARD),
            "the formulas are untouched"
        );
        assert_eq!(sheet_id(&emu, "Orders"), id, "the same sheet");
        assert_eq!(
            emu.sheet("book", "Orders")[1],
            json!(["10.0", "1"]),
            "its format kept"
        );
        let titles = titles(&emu);
        assert_eq!(
            titles,
            [json!("Orders"), json!("Dashboard")],
            "no staging sheet left"
        );
    }
    assert_eq!(emu.sheet("book", "Orders").as_array().unwrap().len(), 4);
}

/// The replace etl-push-sheets did before (a new sheet, the old one
/// deleted, the new one renamed), sent by hand: the emulator binds
/// references to sheets as Google does, so the dashboard breaks.
#[test]
fn the_old_delete_and_rename_replace_breaks_the_dashboard() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    let old = sheet_id(&emu, "Orders");
    let v = emu.batch(
        &token,
        json!([{"addSheet": {"properties": {"title": "Orders (new)", "hidden": true}}}]),
    );
    let new = v["replies"][0]["addSheet"]["properties"]["sheetId"].clone();
    let (s, v) = emu.api(
        &token,
        "PUT",
        "book/values/'Orders (new)'!A1:B2?valueInputOption=RAW",
        Some(json!({"values": [["id", "amount"], [1, 10]]})),
    );
    assert_eq!(s, 200, "{v}");
    emu.batch(&token, json!([
            {"updateSheetProperties": {"properties": {"sheetId": new, "hidden": false}, "fields": "hidden"}},
            {"deleteSheet": {"sheetId": old}},
            {"updateSheetProperties": {"properties": {"sheetId": new, "title": "Orders", "index": 0}, "fields": "title,index"}}]));
    assert_eq!(
        emu.dump("book", "Dashboard")["values"][0],
        json!(["=SUM(#REF!)", "=COUNTA(#REF!)", "=#REF!", "=SUM(Amounts)"])
    );
    assert_eq!(
        emu.sheet("book", "Dashboard")[0],
        json!(["#REF!", "#REF!", "#REF!", "#REF!"])
    );
    assert_ne!(sheet_id(&emu, "Orders"), old, "and the sheet's id changed");
}

#[test]
fn a_staging_sheet_left_by_a_killed_run_is_removed() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    let id = sheet_id(&emu, "Orders");
    let left = format!("etl-push-sheets staging {id} 0192-killed-run");
    emu.batch(
        &token,
        json!([{"addSheet": {"properties": {"title": left, "hidden": true}}}]),
    );
    let out = emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders"],
        &numbered(2),
    );
    out.succeeds();
    assert!(out.log_with("left by an earlier run"), "{}", out.stderr);
    let titles = titles(&emu);
    assert_eq!(titles, [json!("Orders"), json!("Dashboard")]);
    assert_eq!(
        emu.sheet("book", "Dashboard")[0],
        json!(["30", "2", "10", "30"])
    );
}

#[test]
fn an_unchanged_replace_writes_nothing() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    for args in [
        &["--spreadsheet", "book", "--sheet", "Orders"][..],
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Orders",
            "--value-input",
            "user-entered",
        ][..],
    ] {
        emu.push(args, &numbered(5)).succeeds();
        emu.forget();
        let out = emu.push(args, &numbered(5));
        out.succeeds();
        assert!(out.log_with("nothing to write"), "{}", out.stderr);
        assert_eq!(
            emu.writes(),
            Vec::<Value>::new(),
            "{args:?}: no write request"
        );
        assert!(!emu.requests().is_empty(), "the run did read the sheet");
    }
    // One cell differs, or one row more: a replace again.
    let (s, v) = emu.api(
        &token,
        "PUT",
        "book/values/Orders!A7?valueInputOption=RAW",
        Some(json!({"values": [["stray"]]})),
    );
    assert_eq!(s, 200, "{v}");
    emu.forget();
    emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders"],
        &numbered(5),
    )
    .succeeds();
    assert!(
        !emu.writes().is_empty(),
        "a stray value below the table is cleared"
    );
    assert_eq!(emu.sheet("book", "Orders").as_array().unwrap().len(), 6);
}

#[test]
fn number_formats_set_by_flag_or_by_hand_are_kept() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    let id = sheet_id(&emu, "Orders");
    // A format set by hand on column B (id), and a width.
    emu.batch(&token, json!([
            {"repeatCell": {"range": {"sheetId": id, "startRowIndex": 1, "startColumnIndex": 1, "endColumnIndex": 2},
                "cell": {"userEnteredFormat": {"numberFormat": {"type": "NUMBER", "pattern": "000"}, "textFormat": {"bold": true}}},
                "fields": "userEnteredFormat(numberFormat,textFormat)"}},
            {"updateDimensionProperties": {"range": {"sheetId": id, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 1},
                "properties": {"pixelSize": 180}, "fields": "pixelSize"}}]));
    let out = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Orders",
            "--number-format",
            "amount=#,##0.00",
        ],
        &ndjson(&[
            json!({"id": 1, "amount": 1234.5}),
            json!({"id": 2, "amount": 20}),
        ]),
    );
    out.succeeds();
    assert_eq!(
        emu.sheet("book", "Orders"),
        json!([["amount", "id"], ["1,234.50", "001"], ["20.00", "002"]])
    );
    // The next replace without the flag keeps both formats (values pasted as values).
    emu.push(
        &["--spreadsheet", "book", "--sheet", "Orders"],
        &numbered(1),
    )
    .succeeds();
    assert_eq!(
        emu.sheet("book", "Orders"),
        json!([["amount", "id"], ["10.00", "001"]])
    );
    assert_eq!(
        emu.sheet("book", "Dashboard")[0],
        json!(["10", "1", "10", "10"])
    );
    let bad = emu.push(
        &[
            "--spreadsheet",
            "book",
            "--sheet",
            "Orders",
            "--number-format",
            "total=0.00",
        ],
        &numbered(1),
    );
    bad.fails_with(65);
    assert!(
        bad.stderr.contains("no column \\\"total\\\""),
        "{}",
        bad.stderr
    );
    emu.push(
        &["--spreadsheet", "book", "--number-format", "amount"],
        &numbered(1),
    )
    .fails_with(64);
}

#[test]
fn the_unchanged_check_reads_the_sheet_a_window_at_a_time() {
    let emu = Emu::start(|_| {});
    let token = dashboard(&emu);
    let args = [
        "--spreadsheet",
        "book",
        "--sheet",
        "Orders",
        "--max-request-bytes",
        "1KiB",
    ];
    emu.push(&args, &numbered(250)).succeeds();
    emu.forget();
    emu.push(&args, &numbered(250)).succeeds();
    assert_eq!(emu.writes(), Vec::<Value>::new(), "unchanged: no write");
    let reads = emu
        .requests()
        .into_iter()
        .filter(|r| {
            r["kind"] == "read" && r["path"].as_str().is_some_and(|p| p.contains("/values/"))
        })
        .count();
    assert!(reads >= 3, "251 rows in windows of 100: {reads} reads");
    // A difference in the last window, or far below the table, is seen.
    let mut changed: Vec<Value> = (1..=250)
        .map(|i| json!({"id": i, "amount": i * 10}))
        .collect();
    changed[249]["amount"] = json!(1);
    emu.forget();
    emu.push(&args, &ndjson(&changed)).succeeds();
    assert!(!emu.writes().is_empty(), "the last row changed");
    emu.batch(&token, json!([{"appendDimension": {"sheetId": sheet_id(&emu, "Orders"), "dimension": "ROWS", "length": 700}}]));
    let (s, v) = emu.api(
        &token,
        "PUT",
        "book/values/Orders!C900?valueInputOption=RAW",
        Some(json!({"values": [["stray"]]})),
    );
    assert_eq!(s, 200, "{v}");
    emu.forget();
    emu.push(&args, &ndjson(&changed)).succeeds();
    assert!(
        !emu.writes().is_empty(),
        "a value far below the table is cleared"
    );
    assert_eq!(emu.sheet("book", "Orders").as_array().unwrap().len(), 251);
}

#[test]
fn upsert_reads_the_sheet_a_window_at_a_time() {
    let emu = Emu::start(|_| {});
    emu.create("book");
    let small = ["--max-request-bytes", "1KiB"];
    let upsert = [
        "--spreadsheet",
        "book",
        "--mode",
        "upsert",
        "--key",
        "id",
        "--max-request-bytes",
        "1KiB",
    ];
    emu.push(
        &[&["--spreadsheet", "book"][..], &small[..]].concat(),
        &numbered(250),
    )
    .succeeds();
    emu.forget();
    emu.push(&upsert, &numbered(250)).succeeds();
    assert_eq!(emu.writes(), Vec::<Value>::new(), "unchanged: no write");
    // Row 250 (in the third window) changes; 251 is new.
    let mut next: Vec<Value> = (1..=251)
        .map(|i| json!({"id": i, "amount": i * 10}))
        .collect();
    next[249]["amount"] = json!(7);
    let out = emu.push(&upsert, &ndjson(&next));
    out.succeeds();
    assert_eq!(out.summary()["updated_rows"], 1, "{}", out.stderr);
    let sheet = emu.sheet("book", "Sheet1");
    assert_eq!(sheet[250], json!(["7", "250"]));
    assert_eq!(sheet[251], json!(["2510", "251"]));
    assert_eq!(sheet.as_array().unwrap().len(), 252);
}
