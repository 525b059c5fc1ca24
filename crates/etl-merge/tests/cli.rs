//! etl-merge against a real DuckDB file and a real PostgreSQL server: every
//! mode, keys, types, schema evolution, rejects, injection-proof names,
//! replay, dry run, output. Each behaviour the backends share is one body
//! run on both (`both!`: `NAME::duckdb`, `NAME::postgres`); what only one
//! backend has (DuckDB's memory limit, threads, file lock) is tested on it
//! alone. Table contents are read back with plain SQL through DuckDB itself
//! or psql.

#[macro_use]
mod common;

use std::fmt::Write as _;

use common::Scratch;

const ORDERS: &str = r#"{"id":1,"customer":"Ada","amount":12.50,"qty":2,"paid":true}
{"id":2,"customer":"Bob","amount":7.25,"qty":1,"paid":false}
{"id":3,"customer":"Cy","amount":100,"qty":10,"paid":null}
"#;

both! {
    fn first_run_creates_the_table_with_types_from_the_stream(s) {
        let out = s.merge(&["--table", "orders", "--key", "id"], ORDERS);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, "", "--emit none prints nothing");
        assert_eq!(
            s.types("orders"),
            s.native(&[
                "id:BIGINT",
                "customer:VARCHAR",
                "amount:DECIMAL(38,2)",
                "qty:BIGINT",
                "paid:BOOLEAN"
            ])
        );
        assert_eq!(
            s.rows("SELECT id, customer, amount, qty, paid FROM orders ORDER BY id"),
            [
                "1|Ada|12.50|2|true",
                "2|Bob|7.25|1|false",
                "3|Cy|100.00|10|NULL"
            ]
        );
        let sum = out.summary();
        assert_eq!(sum["inserted"], 3);
        assert_eq!(sum["updated"], 0);
    }
}

both! {
    fn merge_updates_only_input_columns_and_counts_unchanged_rows(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        // Only id and qty: customer, amount and paid keep their values.
        let out = s.merge(
            &["--table", "orders", "--key", "id"],
            "{\"id\":1,\"qty\":5}\n{\"id\":2,\"qty\":1}\n{\"id\":4,\"qty\":7}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, customer, amount, qty, paid FROM orders ORDER BY id"),
            [
                "1|Ada|12.50|5|true",
                "2|Bob|7.25|1|false",
                "3|Cy|100.00|10|NULL",
                "4|NULL|NULL|7|NULL"
            ]
        );
        let sum = out.summary();
        assert_eq!(
            (
                sum["inserted"].as_u64(),
                sum["updated"].as_u64(),
                sum["unchanged"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
    }
}

both! {
    fn an_absent_field_keeps_its_value_and_an_explicit_null_clears_it(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let out = s.merge(
            &["--table", "orders", "--key", "id"],
            "{\"id\":1,\"customer\":null}\n{\"id\":2,\"qty\":3}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, customer, qty FROM orders WHERE id <= 2 ORDER BY id"),
            ["1|NULL|2", "2|Bob|3"]
        );
    }
}

both! {
    fn insert_new_leaves_existing_keys_untouched(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let out = s.merge(
            &["--table", "orders", "--key", "id", "--mode", "insert-new"],
            "{\"id\":1,\"customer\":\"CHANGED\"}\n{\"id\":9,\"customer\":\"New\"}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, customer FROM orders ORDER BY id"),
            ["1|Ada", "2|Bob", "3|Cy", "9|New"]
        );
    }
}

both! {
    fn append_needs_no_key_and_keeps_duplicates(s) {
        let input = "{\"event\":\"a\"}\n{\"event\":\"a\"}\n";
        assert_eq!(
            s.merge(&["--table", "log", "--mode", "append"], input).code,
            0
        );
        assert_eq!(
            s.merge(
                &["--table", "log", "--mode", "append"],
                "{\"event\":\"b\"}\n"
            )
            .code,
            0
        );
        assert_eq!(s.rows("SELECT count(*) FROM log"), ["3"]);
        // Without --key every other mode is a usage error.
        let out = s.merge(&["--table", "log"], input);
        assert_eq!(out.code, 64, "{}", out.stderr);
    }
}

both! {
    fn replace_makes_the_table_exactly_the_input_and_refuses_empty_input(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let out = s.merge(
            &["--table", "orders", "--key", "id", "--mode", "replace"],
            "{\"id\":7,\"customer\":\"Only\"}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, customer, amount FROM orders"),
            ["7|Only|NULL"]
        );
        assert_eq!(out.summary()["deleted"], 3);
        let out = s.merge(
            &["--table", "orders", "--key", "id", "--mode", "replace"],
            "",
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.log_with("--allow-empty"), "{}", out.stderr);
        assert_eq!(s.rows("SELECT count(*) FROM orders"), ["1"]);
        let out = s.merge(
            &[
                "--table",
                "orders",
                "--key",
                "id",
                "--mode",
                "replace",
                "--allow-empty",
            ],
            "",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(s.rows("SELECT count(*) FROM orders"), ["0"]);
    }
}

both! {
    fn composite_keys_and_last_duplicate_wins(s) {
        let input = "{\"order\":1,\"line\":1,\"sku\":\"A\"}\n\
                     {\"order\":1,\"line\":2,\"sku\":\"B\"}\n\
                     {\"order\":2,\"line\":1,\"sku\":\"C\"}\n\
                     {\"order\":1,\"line\":2,\"sku\":\"B2\"}\n";
        let out = s.merge(&["--table", "lines", "--key", "order,line"], input);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT \"order\", line, sku FROM lines ORDER BY 1, 2"),
            ["1|1|A", "1|2|B2", "2|1|C"]
        );
        let out = s.merge(
            &[
                "--table",
                "lines",
                "--key",
                "order,line",
                "--on-duplicate-key",
                "fail",
                "--force",
            ],
            input,
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with("duplicate key (order, line) = (1, 2) on lines 2 and 4"),
            "{}",
            out.stderr
        );
    }
}

both! {
    fn types_flag_parses_commas_inside_parentheses(s) {
        let out = s.merge(
            &[
                "--table",
                "t",
                "--key",
                "id",
                "--types",
                "amount=DECIMAL(18,2),qty=INTEGER",
                "--types",
                "day=DATE",
            ],
            "{\"id\":1,\"amount\":\"1234.5\",\"qty\":\"3\",\"day\":\"2026-11-21\"}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.types("t"),
            s.native(&[
                "id:BIGINT",
                "amount:DECIMAL(18,2)",
                "qty:INTEGER",
                "day:DATE"
            ])
        );
        assert_eq!(
            s.rows("SELECT amount, qty, day FROM t"),
            ["1234.50|3|2026-11-21"]
        );
    }
}

both! {
    fn a_value_that_does_not_fit_is_a_reject_and_by_default_nothing_lands(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let bad = "{\"id\":1,\"qty\":6}\n{\"id\":2,\"qty\":\"many\"}\n{\"id\":3,\"amount\":1.005}\n";
        let out = s.merge(&["--table", "orders", "--key", "id"], bad);
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with(&format!(
                "column \\\"qty\\\": \\\"many\\\" is not a valid {}",
                s.ty("BIGINT")
            )),
            "{}",
            out.stderr
        );
        assert_eq!(
            s.rows("SELECT id, qty FROM orders ORDER BY id"),
            ["1|2", "2|1", "3|10"],
            "a failed run changes nothing"
        );
        // With room for rejects the rest lands; the rejects keep the exact input lines.
        let (out, rej) = s.merge_with_rejects("orders", 5, bad);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, qty, amount FROM orders ORDER BY id"),
            ["1|6|12.50", "2|1|7.25", "3|10|100.00"]
        );
        assert_eq!(rej.len(), 2);
        assert_eq!(rej[0]["line"], 2);
        assert_eq!(rej[0]["input"], serde_json::json!({"id":2,"qty":"many"}));
        assert_eq!(rej[1]["line"], 3);
        assert!(
            rej[1]["error"]
                .as_str()
                .unwrap()
                .contains(&format!("\"1.005\" is not a valid {}", s.ty("DECIMAL(38,2)"))),
            "{}",
            rej[1]
        );
    }
}

both! {
    /// Values already in their column's strict form are staged typed; every
    /// other value goes through the database's own cast and type check. Both
    /// paths must land the same values and reject the same ones. Expected
    /// values are DuckDB's TRY_CAST results for the same text, checked with
    /// the CLI, and PostgreSQL's input functions, checked with psql: they
    /// differ on one value, `1e3` for a bigint, which DuckDB takes as 1000
    /// and PostgreSQL refuses ("invalid input syntax for type bigint").
    fn typed_and_text_values_land_alike_and_misfits_are_rejects_with_their_exact_line(s) {
        let types = "n=BIGINT,i=INTEGER,d=DECIMAL(10,2),b=BOOLEAN,s=VARCHAR";
        let first = "{\"id\":0,\"n\":1,\"i\":1,\"d\":1,\"b\":true,\"s\":\"a\"}\n";
        s.create_typed(types, first);
        // Typed: lines 1, 2 (digit strings too), 5's d. Text: the rest.
        let input = concat!(
            "{\"id\":1,\"n\":5,\"i\":-7,\"d\":12.5,\"b\":false,\"s\":\"x\"}\n",
            "{\"id\":2,\"n\":\"6\",\"i\":\"8\",\"d\":\"3.25\",\"b\":\"false\",\"s\":7}\n",
            "{\"id\":3,\"n\":\" 9\",\"i\":\"007\",\"d\":\" 1.5 \",\"b\":null,\"s\":null}\n",
            "{\"id\":4,\"n\":1e3,\"d\":1.000}\n",
            "{\"id\":5,\"d\":99999999.99}\n",
            "{\"id\":6,\"d\":100000000}\n",
            "{\"id\":7,\"n\":9223372036854775808}\n",
            "{\"id\":8,\"i\":2147483648}\n",
            "{\"id\":9,  \"d\" : 0.001 }\n",
        );
        let (out, rej) = s.merge_with_rejects("t", 10, input);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut want = vec![
            "0|1|1|1.00|true|a",
            "1|5|-7|12.50|false|x",
            "2|6|8|3.25|false|7",
            "3|9|7|1.50|NULL|NULL",
            "4|1000|NULL|1.00|NULL|NULL",
            "5|NULL|NULL|99999999.99|NULL|NULL",
        ];
        if s.is_pg() {
            want.remove(4);
        }
        assert_eq!(s.rows("SELECT id, n, i, d, b, s FROM t ORDER BY id"), want);
        let summary: Vec<(u64, String)> = rej
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["error"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let (dec, big, int) = (s.ty("DECIMAL(10,2)"), s.ty("BIGINT"), s.ty("INTEGER"));
        let mut want = vec![
            (6, format!("column \"d\": \"100000000\" is not a valid {dec}")),
            (7, format!("column \"n\": \"9223372036854775808\" is not a valid {big}")),
            (8, format!("column \"i\": \"2147483648\" is not a valid {int}")),
            (9, format!("column \"d\": \"0.001\" is not a valid {dec}")),
        ];
        if s.is_pg() {
            want.insert(0, (4, format!("column \"n\": \"1e3\" is not a valid {big}")));
        }
        assert_eq!(summary, want);
        // The reject carries the record as it arrived.
        let input_of = |line: u64| &rej.iter().find(|r| r["line"] == line).unwrap()["input"];
        assert_eq!(*input_of(9), serde_json::json!({"id": 9, "d": 0.001}));
        assert_eq!(input_of(7)["n"].to_string(), "9223372036854775808");
    }
}

both! {
    fn records_without_a_key_are_rejects(s) {
        let out = s.merge(
            &["--table", "t", "--key", "id", "--max-rejects", "2"],
            "{\"id\":1}\n{\"name\":\"no id\"}\n{\"id\":null}\nnot json\n",
        );
        assert_eq!(out.code, 65, "three rejects > 2: {}", out.stderr);
        let out = s.merge(
            &["--table", "t", "--key", "id", "--max-rejects", "3"],
            "{\"id\":1}\n{\"name\":\"no id\"}\n{\"id\":null}\nnot json\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.log_with("key column \\\"id\\\" is missing"));
        assert!(out.log_with("key column \\\"id\\\" is null"));
        assert_eq!(s.rows("SELECT count(*) FROM t"), ["1"]);
    }
}

both! {
    fn new_columns_fail_by_default_or_are_added_or_ignored(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let input = "{\"id\":1,\"note\":\"hi\",\"score\":1.5}\n";
        let out = s.merge(&["--table", "orders", "--key", "id"], input);
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with(&format!(
                "input columns not in {}.orders: note, score",
                s.schema()
            )),
            "{}",
            out.stderr
        );
        let out = s.merge(
            &[
                "--table",
                "orders",
                "--key",
                "id",
                "--on-new-column",
                "ignore",
            ],
            input,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(s.types("orders").len(), 5);
        // The same input again: --force, or replay detection would skip it.
        let out = s.merge(
            &[
                "--table",
                "orders",
                "--key",
                "id",
                "--on-new-column",
                "add",
                "--force",
            ],
            input,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            s.types("orders")[5..],
            s.native(&["note:VARCHAR", "score:DECIMAL(38,1)"])
        );
        assert_eq!(
            s.rows("SELECT note, score FROM orders WHERE id = 1"),
            ["hi|1.5"]
        );
    }
}

both! {
    fn names_and_values_cannot_inject_sql(s) {
        let evil = "a\"; DROP TABLE t; --";
        let input = serde_json::json!({
            "id": "x'); DROP TABLE t; --",
            evil: "v\"; DELETE FROM t; --",
            "select": 1,
            "naïve col": "ü",
        })
        .to_string()
            + "\n";
        for _ in 0..2 {
            let out = s.merge(
                &["--table", evil, "--schema", "my. schema", "--key", "id"],
                &input,
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        let sql = "SELECT \"id\", \"a\"\"; DROP TABLE t; --\", \"select\", \"naïve col\" \
                   FROM \"my. schema\".\"a\"\"; DROP TABLE t; --\"";
        assert_eq!(
            s.rows(sql),
            ["x'); DROP TABLE t; --|v\"; DELETE FROM t; --|1|ü"]
        );
    }
}

both! {
    fn replaying_the_same_input_is_skipped_unless_forced(s) {
        let args = ["--table", "orders", "--key", "id"];
        assert_eq!(s.merge(&args, ORDERS).code, 0);
        // Someone edits the table; replaying yesterday's file must not undo it.
        s.exec("UPDATE orders SET qty = 99 WHERE id = 1");
        let out = s.merge(&args, ORDERS);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.log_with("already applied"), "{}", out.stderr);
        assert_eq!(s.rows("SELECT qty FROM orders WHERE id = 1"), ["99"]);
        let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
        assert_eq!(s.merge(&forced, ORDERS).code, 0);
        assert_eq!(s.rows("SELECT qty FROM orders WHERE id = 1"), ["2"]);
        assert_eq!(
            s.rows("SELECT status, rows_in, inserted, updated, unchanged, \"table\", mode, \"key\", length(input_sha256) FROM _etl_runs ORDER BY finished_at"),
            [
                "ok|3|3|0|0|{}.orders|merge|id|64",
                "skipped|3|0|0|0|{}.orders|merge|id|64",
                "ok|3|0|1|2|{}.orders|merge|id|64"
            ]
            .map(|r| r.replace("{}", s.schema()))
        );
    }
}

both! {
    fn dry_run_reports_changes_and_changes_nothing(s) {
        assert_eq!(
            s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
            0
        );
        let out = s.merge(
            &[
                "--table",
                "orders",
                "--key",
                "id",
                "--dry-run",
                "--emit",
                "changes",
            ],
            "{\"id\":1,\"qty\":5}\n{\"id\":2,\"qty\":1}\n{\"id\":8,\"qty\":1}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.records(),
            [
                serde_json::json!({"id":1,"qty":5,"_op":"update"}),
                serde_json::json!({"id":8,"qty":1,"_op":"insert"})
            ]
        );
        assert_eq!(s.rows("SELECT count(*), sum(qty) FROM orders"), ["3|13"]);
        assert_eq!(s.rows("SELECT count(*) FROM _etl_runs"), ["1"]);
    }
}

both! {
    fn emit_table_and_changes_keep_types(s) {
        let out = s.merge(
            &[
                "--table",
                "t",
                "--key",
                "id",
                "--types",
                "day=DATE,at=TIMESTAMP",
                "--emit",
                "table",
                "--order-by",
                "name",
            ],
            "{\"id\":2,\"name\":\"b\",\"amount\":0.10,\"big\":12345678901234567890,\"ok\":true,\"tags\":[\"x\",1],\"day\":\"2026-11-21\",\"at\":\"2026-11-21 08:30:00\"}\n\
             {\"id\":1,\"name\":\"a\",\"amount\":12345678901234567890.01,\"big\":1,\"ok\":false,\"tags\":{\"k\":null},\"day\":null,\"at\":null}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"id":1,"name":"a","amount":12345678901234567890.01,"big":1,"ok":false,"tags":{"k":null},"day":null,"at":null}"#,
                r#"{"id":2,"name":"b","amount":0.10,"big":12345678901234567890,"ok":true,"tags":["x",1],"day":"2026-11-21","at":"2026-11-21 08:30:00"}"#
            ]
        );
        let out = s.merge(
            &["--table", "t", "--key", "id", "--emit", "changes"],
            "{\"id\":2,\"name\":\"b\"}\n{\"id\":3,\"name\":\"c\"}\n{\"id\":1,\"name\":\"A\"}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.stdout,
            "{\"id\":3,\"name\":\"c\",\"_op\":\"insert\"}\n{\"id\":1,\"name\":\"A\",\"_op\":\"update\"}\n"
        );
    }
}

both! {
    fn query_prints_one_read_only_select_after_the_merge(s) {
        let out = s.merge(
            &[
                "--table",
                "orders",
                "--key",
                "id",
                "--query",
                "SELECT customer, amount * qty AS total FROM orders WHERE paid IS NOT NULL ORDER BY 1;",
            ],
            ORDERS,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.stdout,
            "{\"customer\":\"Ada\",\"total\":25.00}\n{\"customer\":\"Bob\",\"total\":7.25}\n"
        );
        for bad in [
            "DROP TABLE orders",
            "SELECT 1; DROP TABLE orders",
            "DELETE FROM orders",
        ] {
            let out = s.merge(
                &["--table", "orders", "--key", "id", "--query", bad],
                ORDERS,
            );
            assert_eq!(out.code, 64, "{bad}: {}", out.stderr);
        }
        assert_eq!(s.rows("SELECT count(*) FROM orders"), ["3"]);
    }
}

#[test]
fn a_database_held_by_another_process_is_a_temporary_failure() {
    let s = Scratch::new();
    assert_eq!(
        s.merge(&["--table", "orders", "--key", "id"], ORDERS).code,
        0
    );
    let _held = s.conn();
    let out = s.merge(&["--table", "orders", "--key", "id", "--force"], ORDERS);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.log_with("in use by another process"), "{}", out.stderr);
}

#[test]
fn bad_flags_are_usage_errors() {
    let s = Scratch::new();
    for args in [
        &[
            "--table",
            "t",
            "--key",
            "id",
            "--types",
            "a=INTEGER); DROP TABLE x; --",
        ][..],
        &["--table", "t", "--key", "id", "--types", "a=NOSUCHTYPE"],
        &["--table", "t", "--key", "id", "--memory-limit", "lots"],
        &["--table", "t", "--key", "id", "--threads", "0"],
        &["--table", "t", "--key", ""],
    ] {
        let out = s.merge(args, "{\"id\":1,\"a\":1}\n");
        assert_eq!(out.code, 64, "{args:?}: {}", out.stderr);
    }
    let out = common::run_cmd(
        {
            let mut c = std::process::Command::new(common::BIN);
            c.args(["--table", "t", "--key", "id"]).env_remove("ETL_DB");
            c
        },
        b"{\"id\":1}\n",
    );
    assert_eq!(out.code, 78, "missing --db: {}", out.stderr);
}

#[test]
fn large_updates_under_a_memory_limit_replace_rows_whole_and_keep_other_columns() {
    // 100k updated rows of 2 columns under a 20MB limit: past a quarter of
    // the limit, so updated rows are deleted and inserted again (the path
    // that spills). Columns the input lacks, and absent fields, must survive.
    let s = Scratch::new();
    let mut day1 = String::new();
    for i in 0..100_000 {
        let _ = writeln!(
            day1,
            "{{\"id\":{i},\"a\":{i},\"b\":\"b{i}\",\"c\":\"keep{i}\"}}"
        );
    }
    assert_eq!(s.merge(&["--table", "t", "--key", "id"], &day1).code, 0);
    let mut day2 = String::new();
    for i in 0..100_000 {
        if i % 2 == 0 {
            let _ = writeln!(day2, "{{\"id\":{i},\"a\":{},\"b\":\"B{i}\"}}", i + 1);
        } else {
            // b absent: keeps its value.
            let _ = writeln!(day2, "{{\"id\":{i},\"a\":{}}}", i + 1);
        }
    }
    day2.push_str("{\"id\":100000,\"a\":0,\"b\":\"new\"}\n");
    let out = s.merge_logged(
        &["--table", "t", "--key", "id", "--memory-limit", "20MB"],
        &day2,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.log_with("writing updated rows"),
        "the replacing path ran: {}",
        out.stderr
    );
    assert_eq!(
        s.rows("SELECT count(*), sum(a), count(DISTINCT id) FROM t"),
        ["100001|5000050000|100001"]
    );
    assert_eq!(
        s.rows("SELECT id, a, b, c FROM t WHERE id IN (0, 1, 100000) ORDER BY id"),
        ["0|1|B0|keep0", "1|2|b1|keep1", "100000|0|new|NULL"]
    );
    let sum = out.summary();
    assert_eq!(
        (sum["inserted"].as_u64(), sum["updated"].as_u64()),
        (Some(1), Some(100_000))
    );
}

#[test]
fn wide_decimals_land_exactly_whether_they_fit_18_digits_or_not() {
    // A DECIMAL(38,2) column stages values of up to 18 digits typed in 18
    // digits (half the memory) and longer ones as text through DuckDB's
    // cast: both land exactly, compare exactly against the table's 38-digit
    // values, and a value too long for the column is a reject.
    let s = Scratch::new();
    let types = "amount=DECIMAL(38,2)";
    let first = "{\"id\":0,\"amount\":0}\n";
    s.create_typed(types, first);
    let input = concat!(
        "{\"id\":1,\"amount\":12.5}\n",
        "{\"id\":2,\"amount\":9999999999999999.99}\n",
        "{\"id\":3,\"amount\":12345678901234567890.12}\n",
        "{\"id\":4,\"amount\":-999999999999999999999999999999999999.99}\n",
        "{\"id\":5,\"amount\":1234567890123456789012345678901234567.5}\n",
    );
    let (out, rej) = s.merge_with_rejects("t", 1, input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s.rows("SELECT id, amount FROM t ORDER BY id"),
        [
            "0|0.00",
            "1|12.50",
            "2|9999999999999999.99",
            "3|12345678901234567890.12",
            "4|-999999999999999999999999999999999999.99",
        ]
    );
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["line"], 5);
    assert_eq!(
        rej[0]["error"],
        "column \"amount\": \"1234567890123456789012345678901234567.5\" is not a valid DECIMAL(38,2)"
    );
    // The same long value again is unchanged; one cent less is an update.
    let again = concat!(
        "{\"id\":3,\"amount\":12345678901234567890.12}\n",
        "{\"id\":2,\"amount\":9999999999999999.98}\n",
        "{\"id\":1,\"amount\":12.50}\n",
    );
    let out = s.merge(&["--table", "t", "--key", "id"], again);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sum = out.summary();
    assert_eq!(
        (sum["updated"].as_u64(), sum["unchanged"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        s.rows("SELECT amount FROM t WHERE id = 2"),
        ["9999999999999999.98"]
    );
}

#[test]
fn a_typed_column_gains_its_text_column_only_when_a_value_needs_it() {
    // Numbers in their strict form are staged typed, with no text column
    // beside them; the first value that is not (" 3500", line 3500, after
    // three written batches) adds one, and every value lands: the text one
    // through DuckDB's cast, a misfit ("x", line 4200) as a reject.
    let s = Scratch::new();
    let types = "n=BIGINT,d=DECIMAL(10,2)";
    let first = "{\"id\":0,\"n\":0,\"d\":0}\n";
    s.create_typed(types, first);
    let mut input = String::new();
    for i in 1..=5000_u64 {
        let n = match i {
            3500 => "\" 3500\"".to_owned(),
            4200 => "\"x\"".to_owned(),
            _ => i.to_string(),
        };
        let _ = writeln!(
            input,
            "{{\"id\":{i},\"n\":{n},\"d\":{}.{:02}}}",
            i / 100,
            i % 100
        );
    }
    let rejects = s.path("rejects.ndjson");
    let out = s.merge_logged(
        &[
            "--table",
            "t",
            "--key",
            "id",
            "--batch-size",
            "1000",
            "--max-rejects",
            "1",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // 1 + ... + 5000 without 4200; d is the same sum in hundredths.
    assert_eq!(
        s.rows("SELECT count(*), sum(n), sum(d), max(n) FILTER (WHERE id = 3500) FROM t"),
        ["5000|12498300|124983.00|3500"]
    );
    let rej = std::fs::read_to_string(&rejects).unwrap();
    let rej: Vec<serde_json::Value> = rej
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["line"], 4200);
    assert_eq!(rej[0]["error"], "column \"n\": \"x\" is not a valid BIGINT");
    // The staging table: n's text column added once, after three batches
    // (lines 1-3000, 3001-3499 written before it); d's and id's never.
    let log: Vec<&str> = out.stderr.lines().collect();
    let widened: Vec<usize> = (0..log.len())
        .filter(|&i| log[i].contains("ADD COLUMN c1 VARCHAR"))
        .collect();
    assert_eq!(widened.len(), 1, "{}", out.stderr);
    let batches_before = log[..widened[0]]
        .iter()
        .filter(|l| l.contains("staging a batch"))
        .count();
    assert_eq!(batches_before, 4, "{}", out.stderr);
    assert!(
        !out.stderr.contains("ADD COLUMN c2 ") && !out.stderr.contains("ADD COLUMN c0 "),
        "{}",
        out.stderr
    );
}

/// A merge into `t` keyed by `id` under 20MB of DuckDB memory, one thread.
const UNDER_20MB: &[&str] = &[
    "--table",
    "t",
    "--key",
    "id",
    "--memory-limit",
    "20MB",
    "--threads",
    "1",
];

/// What table `t` (`id`, `a`, `b`, `c`) should hold, by id, computed
/// apart from etl-merge.
#[derive(Default)]
struct Model(std::collections::BTreeMap<u64, (i64, String, Option<String>)>);

impl Model {
    /// Applies `lines` (records, rejects: `a` a string) in order, the last
    /// record per id winning whole, an absent `c` keeping the row's value;
    /// returns (inserted, updated, unchanged).
    fn apply(&mut self, lines: &[String]) -> (u64, u64, u64) {
        let mut last = std::collections::BTreeMap::new();
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if !v["a"].is_string() {
                last.insert(v["id"].as_u64().unwrap(), v);
            }
        }
        let mut ops = (0, 0, 0);
        for (id, v) in last {
            let old = self.0.get(&id).cloned();
            let new = (
                v["a"].as_i64().unwrap(),
                v["b"].as_str().unwrap().to_owned(),
                // Absent: the table's value, or NULL in a new row.
                v.get("c").map_or_else(
                    || old.as_ref().and_then(|o| o.2.clone()),
                    |c| Some(c.as_str().unwrap().to_owned()),
                ),
            );
            match old {
                None => ops.0 += 1,
                Some(o) if o != new => ops.1 += 1,
                Some(_) => ops.2 += 1,
            }
            self.0.insert(id, new);
        }
        ops
    }

    /// The rows as `Scratch::rows("SELECT id, a, b, c FROM t ORDER BY id")`
    /// prints them.
    fn rows(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(id, (a, b, c))| format!("{id}|{a}|{b}|{}", c.as_deref().unwrap_or("NULL")))
            .collect()
    }
}

/// One day's input: ids `0..m` in a shuffled order, `record` giving each
/// id's record (None: not sent); every thousandth id is sent again at the
/// end, changed, and every 5003rd line is followed by a reject. The lines
/// and the number of rejects.
fn shuffled_day(m: u64, record: &dyn Fn(u64) -> Option<String>) -> (Vec<String>, u64) {
    let (mut lines, mut again, mut rejects) = (Vec::new(), Vec::new(), 0);
    for j in 0..m {
        // 7919 is prime and divides no m used here: a permutation.
        let id = j * 7919 % m;
        lines.extend(record(id));
        if id % 1000 == 7 {
            again.push(format!(
                "{{\"id\":{id},\"a\":-{id},\"b\":\"again\",\"c\":\"x\"}}"
            ));
        }
        if j % 5003 == 0 {
            lines.push(format!("{{\"id\":{id},\"a\":\"not a number\"}}"));
            rejects += 1;
        }
    }
    lines.append(&mut again);
    (lines, rejects)
}

#[test]
fn a_compare_too_big_for_the_memory_limit_runs_in_parts_and_misses_no_row() {
    // Under 20MB the compare of 200k-odd records cannot hold them all in
    // one join: it runs in parts by line range. Keys arrive shuffled, some
    // twice (the later line wins), some records are rejects (gaps in the
    // staged lines), and on day 3 some lack a field (the table's value is
    // kept: the wide compare). Every row must land as the model says, and
    // the counts must add up.
    let s = Scratch::new();
    let mut model = Model::default();
    let day1: Vec<String> = (0..200_000)
        .map(|i| format!("{{\"id\":{i},\"a\":{i},\"b\":\"b{i}\",\"c\":\"c{i}\"}}"))
        .collect();
    assert_eq!(model.apply(&day1), (200_000, 0, 0));
    let out = s.merge(&["--table", "t", "--key", "id"], &(day1.join("\n") + "\n"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rejects = s.path("rejects.ndjson");
    let run = |model: &mut Model, (lines, rejected): (Vec<String>, u64)| {
        let ops = model.apply(&lines);
        let out = s.merge_logged(
            &[
                UNDER_20MB,
                &[
                    "--max-rejects",
                    "1000",
                    "--rejects",
                    rejects.to_str().unwrap(),
                ],
            ]
            .concat(),
            &(lines.join("\n") + "\n"),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let parts = out
            .stderr
            .lines()
            .filter(|l| l.contains("comparing with the table, part "))
            .count();
        assert!(parts >= 3, "{parts} parts: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("part {parts} of {parts}")),
            "{}",
            out.stderr
        );
        let sum = out.summary();
        assert_eq!(
            [
                &sum["inserted"],
                &sum["updated"],
                &sum["unchanged"],
                &sum["records_rejected"]
            ],
            [ops.0, ops.1, ops.2, rejected],
            "{}",
            out.stderr
        );
        let (got, want) = (
            s.rows("SELECT id, a, b, c FROM t ORDER BY id"),
            model.rows(),
        );
        let diff: Vec<_> = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| g != w)
            .take(5)
            .collect();
        assert_eq!(
            (got.len(), diff),
            (want.len(), vec![]),
            "rows of t against the model (first differences: got, want)"
        );
        ops
    };
    // Day 2: 210k ids; a tenth changed, 10k new, every 13th not sent.
    let ops = run(
        &mut model,
        shuffled_day(210_001, &|id| {
            (id % 13 != 0).then(|| {
                let a = if id % 10 == 3 { id + 1 } else { id };
                format!("{{\"id\":{id},\"a\":{a},\"b\":\"b{id}\",\"c\":\"c{id}\"}}")
            })
        }),
    );
    assert!(
        ops.0 > 9_000 && ops.1 > 10_000 && ops.2 > 150_000,
        "{ops:?}"
    );
    // Day 3: every third record lacks c (kept from the table); b changes on
    // every seventh.
    let ops = run(
        &mut model,
        shuffled_day(210_001, &|id| {
            let b = if id % 7 == 0 {
                format!("B{id}")
            } else {
                format!("b{id}")
            };
            Some(if id % 3 == 0 {
                format!("{{\"id\":{id},\"a\":{id},\"b\":\"{b}\"}}")
            } else {
                format!("{{\"id\":{id},\"a\":{id},\"b\":\"{b}\",\"c\":\"c{id}\"}}")
            })
        }),
    );
    assert!(ops.1 > 30_000 && ops.2 > 100_000, "{ops:?}");
}

#[test]
fn whole_records_written_from_the_source_land_exactly_whichever_rows_are_skipped() {
    // Every column in every record and no other table columns: the compare
    // keeps only each row's op, and the written rows come from the staged
    // source, skipping the unchanged ones by an anti-join (fewer skipped
    // than written), a semi-join (more), or no join (none skipped). Under
    // 20MB the updates take the delete-and-insert path.
    let s = Scratch::new();
    let day = |rows: &mut dyn Iterator<Item = (u64, u64, String)>| {
        let mut text = String::new();
        for (id, a, b) in rows {
            let _ = writeln!(text, "{{\"id\":{id},\"a\":{a},\"b\":\"{b}\"}}");
        }
        text
    };
    let merge = |input: &str, counts: (u64, u64, u64), sql: &str| {
        let out = s.merge_logged(UNDER_20MB, input);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let written = out
            .stderr
            .lines()
            .find(|l| l.contains("writing updated and new rows"))
            .unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(written.contains(sql), "{sql} in {written}");
        let sum = out.summary();
        assert_eq!(
            (
                sum["inserted"].as_u64(),
                sum["updated"].as_u64(),
                sum["unchanged"].as_u64()
            ),
            (Some(counts.0), Some(counts.1), Some(counts.2))
        );
    };
    let day1 = day(&mut (0..200_000).map(|i| (i, i, format!("b{i}"))));
    assert_eq!(s.merge(&["--table", "t", "--key", "id"], &day1).code, 0);
    // 100k changed, 40k unchanged, 10k new (rows 140k-200k not sent).
    let day2 = day(&mut (0..210_000)
        .filter(|i| !(140_000..200_000).contains(i))
        .map(|i| match i {
            0..100_000 => (i, i + 1, format!("B{i}")),
            200_000.. => (i, 0, "new".to_owned()),
            _ => (i, i, format!("b{i}")),
        }));
    merge(&day2, (10_000, 100_000, 40_000), "ANTI JOIN");
    // 60k changed again, 150k unchanged, 1k new.
    let day3 = day(&mut (0..211_000).map(|i| match i {
        0..60_000 => (i, i + 2, format!("C{i}")),
        60_000..100_000 => (i, i + 1, format!("B{i}")),
        100_000..200_000 => (i, i, format!("b{i}")),
        _ => (i, 0, "new".to_owned()),
    }));
    merge(&day3, (1_000, 60_000, 150_000), "SEMI JOIN");
    // Only changed and new rows: 100k and 1k.
    let day4 = day(&mut (0..100_000).chain(211_000..212_000).map(|i| {
        if i < 100_000 {
            (i, i + 5, format!("D{i}"))
        } else {
            (i, 7, "newer".to_owned())
        }
    }));
    merge(&day4, (1_000, 100_000, 0), "FROM (SELECT");
    // Sums: 0..200k is 19,999,900,000; +5 on each of the first 100k rows.
    assert_eq!(
        s.rows(
            "SELECT count(*), count(DISTINCT id), sum(a), count(*) FILTER (WHERE b LIKE 'D%'), \
             count(*) FILTER (WHERE b = 'b' || id), count(*) FILTER (WHERE b LIKE 'new%') FROM t"
        ),
        ["212000|212000|20000407000|100000|100000|12000"]
    );
    assert_eq!(
        s.rows("SELECT id, a, b FROM t WHERE id IN (0, 99999, 100000, 199999, 200000, 210000, 211999) ORDER BY id"),
        [
            "0|5|D0",
            "99999|100004|D99999",
            "100000|100000|b100000",
            "199999|199999|b199999",
            "200000|0|new",
            "210000|0|new",
            "211999|7|newer"
        ]
    );
}

both! {
    fn a_table_with_a_primary_key_made_by_hand_is_updated_in_place(s) {
        s.exec(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, a BIGINT); INSERT INTO t VALUES (1, 1), (2, 2)",
        );
        let out = s.merge_logged(
            &["--table", "t", "--key", "id"],
            "{\"id\":2,\"a\":20}\n{\"id\":3,\"a\":3}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        // DuckDB updates such a table in place (its own log line says so).
        assert!(s.is_pg() || out.log_with("updating rows"), "{}", out.stderr);
        assert_eq!(
            s.rows("SELECT id, a FROM t ORDER BY id"),
            ["1|1", "2|20", "3|3"]
        );
    }
}

both! {
    fn keys_equal_after_the_cast_are_duplicates_even_when_written_differently(s) {
        // "007" and 7 are one BIGINT key: the last record wins; with increasing
        // integer keys (1, 2, 3) no de-duplication pass is needed at all.
        let out = s.merge(
            &["--table", "t", "--key", "id", "--types", "id=BIGINT"],
            "{\"id\":5,\"a\":0}\n{\"id\":\"007\",\"a\":1}\n{\"id\":7,\"a\":2}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(s.rows("SELECT id, a FROM t ORDER BY id"), ["5|0", "7|2"]);
        let out = s.merge(
            &[
                "--table",
                "t",
                "--key",
                "id",
                "--on-duplicate-key",
                "fail",
                "--force",
            ],
            "{\"id\":1,\"a\":1}\n{\"id\":2,\"a\":1}\n{\"id\":2,\"a\":3}\n",
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with("duplicate key (id) = (2) on lines 2 and 3"),
            "{}",
            out.stderr
        );
    }
}

both! {
    fn increasing_text_keys_skip_the_duplicate_pass_and_equal_keys_are_still_found(s) {
        // Plain string keys in increasing byte order into a VARCHAR key
        // cannot repeat: no de-duplication pass (DuckDB's log says so).
        let out = s.merge_logged(
            &["--table", "t", "--key", "id"],
            "{\"id\":\"O-1\",\"a\":1}\n{\"id\":\"O-2\",\"a\":2}\n{\"id\":\"P\",\"a\":3}\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            s.is_pg() || out.log_with("no duplicate-key check"),
            "{}",
            out.stderr
        );
        assert_eq!(s.rows("SELECT count(DISTINCT id) FROM t"), ["3"]);
        let fail = ["--table", "t", "--key", "id", "--on-duplicate-key", "fail"];
        // Increasing bytes, one value: "\u0041" is "A".
        let out = s.merge(
            &fail,
            "{\"id\":\"A\",\"a\":1}\n{\"id\":\"\\u0041\",\"a\":2}\n",
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with("duplicate key (id) = (A) on lines 1 and 2"),
            "{}",
            out.stderr
        );
        // Increasing as text, one INTEGER: "07" and "7" are both 7.
        let out = s.merge(
            &["--table", "n", "--key", "id", "--types", "id=INTEGER", "--on-duplicate-key", "fail"],
            "{\"id\":\"07\",\"a\":1}\n{\"id\":\"7\",\"a\":2}\n",
        );
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(
            out.log_with("duplicate key (id) = (7) on lines 1 and 2"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn duckdb_memory_is_bounded_by_default_and_by_the_flag() {
    // DuckDB reports sizes in MiB: 256 MB is 256e6 / 2^20 = 244.1 MiB, 1 GB
    // is 953.6 MiB. Its own default would be 80% of this machine's memory.
    let s = Scratch::new();
    let q = "SELECT current_setting('memory_limit') AS m";
    let out = s.merge(
        &["--table", "t", "--key", "id", "--query", q],
        "{\"id\":1}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"m\":\"244.1 MiB\"}\n");
    let out = s.merge(
        &[
            "--table",
            "t",
            "--key",
            "id",
            "--memory-limit",
            "1GB",
            "--query",
            q,
        ],
        "{\"id\":2}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"m\":\"953.6 MiB\"}\n");
}

both! {
    /// Regression: with more than one DuckDB row group of output (122,880 rows)
    /// and two threads, `--emit table --order-by`, `--emit changes` and an
    /// ordered `--query` came out rotated (the second row group's rows first):
    /// the connection runs with preserve_insertion_order off for the merge's
    /// memory, which also let DuckDB's result collector reorder sorted output.
    fn large_outputs_keep_their_order_on_several_threads(s) {
        let n = 300_000;
        let mut input = String::with_capacity(n * 40);
        // Keys arrive in reverse, so no output order is the input's by luck.
        for i in (0..n).rev() {
            let _ = writeln!(input, "{{\"order_id\":\"O-{i:07}\",\"amount\":{i}}}");
        }
        let ids = |out: &common::Out| -> Vec<String> {
            out.stdout
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["order_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        let ascending: Vec<String> = (0..n).map(|i| format!("O-{i:07}")).collect();
        // Two threads on DuckDB; PostgreSQL has no such flag.
        let args: &[&str] = if s.is_pg() {
            &["--table", "orders", "--key", "order_id"]
        } else {
            &["--table", "orders", "--key", "order_id", "--threads", "2"]
        };
        let out = s.merge(&[args, &["--emit", "changes"]].concat(), &input);
        out.succeeds();
        let mut descending = ascending.clone();
        descending.reverse();
        assert!(
            ids(&out) == descending,
            "--emit changes is not in input order"
        );
        let out = s.merge(
            &[args, &["--emit", "table", "--order-by", "order_id"]].concat(),
            "",
        );
        out.succeeds();
        assert!(
            ids(&out) == ascending,
            "--emit table --order-by is not sorted"
        );
        let out = s.merge(
            &[
                args,
                &[
                    "--query",
                    "SELECT order_id FROM orders ORDER BY order_id DESC",
                ],
            ]
            .concat(),
            "",
        );
        out.succeeds();
        assert!(
            ids(&out) == descending,
            "--query ... ORDER BY is not sorted"
        );
    }
}

/// Strings reach DuckDB's staging table in place (`scan.rs` hands DuckDB
/// pointers into the Arrow batch): every value must land byte for byte,
/// inlined (up to 12 bytes) or not, with nulls where the input had them,
/// across DuckDB's 2048-row chunks and etl-merge's batches (3000 rows
/// here), beside typed columns; and the same records merged again must
/// compare equal to what landed. A null written as a value (its validity
/// bit left set) made this run crash. The expected rows are built here from
/// the same generator, not read back from a run.
#[test]
fn staged_strings_land_byte_for_byte_across_chunks_and_batches() {
    // Lengths 0..=29 in bytes over one-, two-, three- and four-byte
    // characters, so 12 and 13 bytes (the inline limit) both occur.
    let text = |i: usize| -> Option<String> {
        if i.is_multiple_of(7) {
            return None;
        }
        let alphabet = ['a', 'é', '€', '🦀', 'Z', ' ', '"', '\\'];
        let mut s = String::new();
        let mut k = i;
        while s.len() < i % 30 {
            s.push(alphabet[k % alphabet.len()]);
            k /= 3;
            k += i % 5;
        }
        Some(s)
    };
    let n = 5000;
    let s = Scratch::new();
    let first = "{\"id\":-1,\"s\":\"x\",\"n\":1,\"d\":1.5,\"b\":true}\n";
    let types = "n=BIGINT,d=DECIMAL(10,2),b=BOOLEAN";
    s.create_typed(types, first);
    let mut input = String::new();
    let mut want = vec!["-1|x|1|1.50|true".to_owned()];
    for i in 0..n {
        let sv = text(i);
        let nv = (i % 5 != 0).then_some(i * 3);
        let bv = (i % 13 != 0).then_some(i % 2 == 0);
        let mut rec = serde_json::json!({ "id": i, "d": format!("{i}.25") });
        // Absent (every 11th) lands as NULL too, on an insert.
        if i % 11 != 0 {
            rec["s"] = sv.clone().map_or(serde_json::Value::Null, Into::into);
        }
        rec["n"] = nv.map_or(serde_json::Value::Null, Into::into);
        rec["b"] = bv.map_or(serde_json::Value::Null, Into::into);
        let _ = writeln!(input, "{rec}");
        let shown = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
        want.push(format!(
            "{i}|{}|{}|{i}.25|{}",
            shown(if i % 11 == 0 { None } else { sv }),
            shown(nv.map(|v| v.to_string())),
            shown(bv.map(|v| v.to_string())),
        ));
    }
    let args = ["--table", "t", "--key", "id", "--batch-size", "3000"];
    let out = s.merge(&args, &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = s.rows("SELECT id, s, n, d, b FROM t ORDER BY id");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    let check = s.rows(
        "SELECT count(*), sum(strlen(s)), count(s) FILTER (WHERE strlen(s) > 12) FROM t WHERE id >= 0",
    );
    let lens: Vec<usize> = (0..n)
        .filter(|i| i % 11 != 0)
        .filter_map(text)
        .map(|t| t.len())
        .collect();
    assert_eq!(
        check,
        [format!(
            "{n}|{}|{}",
            lens.iter().sum::<usize>(),
            lens.iter().filter(|&&l| l > 12).count()
        )]
    );
    let out = s.merge(&[&args[..], &["--force"]].concat(), &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sum = out.summary();
    assert_eq!(
        (
            sum["inserted"].as_u64(),
            sum["updated"].as_u64(),
            sum["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(n as u64))
    );
}

/// A staging batch is written once its values reach 16 MiB, whatever
/// `--batch-size` says (65,536 records by default): 200 records of 50
/// 4,000-byte values (200 KB each, 40 MB in all) go in three batches of at
/// most 16 MiB plus one record, not in one of 40 MB.
#[test]
fn wide_records_are_staged_in_batches_of_bounded_bytes() {
    let s = Scratch::new();
    let value = "v".repeat(4000);
    let mut input = String::new();
    for i in 0..200 {
        let _ = write!(input, "{{\"id\":{i}");
        for c in 0..50 {
            let _ = write!(input, ",\"c{c}\":\"{value}\"");
        }
        input.push_str("}\n");
    }
    let out = s.merge_logged(&["--table", "t", "--key", "id"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let batches: Vec<(u64, u64)> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("staging a batch"))
        })
        .map(|v| (v["records"].as_u64().unwrap(), v["bytes"].as_u64().unwrap()))
        .collect();
    let record = 50 * 4000 + 3;
    let cap = 16 << 20;
    assert!(batches.len() >= 3, "{batches:?}");
    assert_eq!(batches.iter().map(|b| b.0).sum::<u64>(), 200, "{batches:?}");
    assert!(
        batches.iter().all(|&(_, bytes)| bytes < cap + record),
        "{batches:?}"
    );
    assert_eq!(
        s.rows("SELECT count(*), sum(strlen(c0) + strlen(c49)) FROM t"),
        ["200|1600000"]
    );
}
