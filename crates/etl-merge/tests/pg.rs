//! etl-merge against a real PostgreSQL server (a throwaway cluster started
//! by each test: initdb on a free loopback port, SCRAM, TLS from a CA made
//! with openssl): what is PostgreSQL's own (the primary key, tuples left
//! alone, binary staging, type checks by PostgreSQL's input functions, TLS
//! and exit codes, concurrent writers, faults). The behaviours both backends
//! share, every mode, `--emit`, `--query` and `--dry-run` among them, are
//! `tests/cli.rs`'s, run on PostgreSQL too. Every result is read back with
//! psql, not with etl-merge's code.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{run_cmd, Out, Scratch};
use etl_testkit::pg::{PASSWORD, USER};

const ORDERS: &str = r#"{"id":1,"customer":"Ada","amount":12.50,"qty":2,"paid":true}
{"id":2,"customer":"Bob","amount":7.25,"qty":1,"paid":false}
{"id":3,"customer":"Cy","amount":100,"qty":10,"paid":null}
"#;

/// The helpers only these tests use, on a PostgreSQL [`Scratch`].
trait PgExt {
    /// psql's unaligned output of `q`.
    fn sql(&self, q: &str) -> String;
    /// Row count and an md5 of every row of `table`, in key order.
    fn checksum(&self, table: &str) -> String;
    /// `name:type,...` of `table`.
    fn type_list(&self, table: &str) -> String;
}

impl PgExt for Scratch {
    fn sql(&self, q: &str) -> String {
        self.cluster().psql("postgres", q)
    }

    fn checksum(&self, table: &str) -> String {
        self.sql(&format!(
            "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM {table} t"
        ))
    }

    fn type_list(&self, table: &str) -> String {
        self.types(table).join(",")
    }
}

/// What only PostgreSQL shows: the key becomes the primary key, and a row
/// the merge leaves alone keeps its tuple (no new version, no dead tuple).
/// The behaviours both backends share (absent columns, replay detection,
/// every mode) are `tests/cli.rs`'s, run on PostgreSQL too.
#[test]
fn creates_the_primary_key_and_leaves_equal_rows_unwritten() {
    let p = Scratch::pg();
    let out = p.merge(&["--table", "orders", "--key", "id"], ORDERS);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        p.type_list("orders"),
        "id:bigint,customer:text,amount:numeric(38,2),qty:bigint,paid:boolean"
    );
    assert_eq!(
        p.sql("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
               AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'orders'::regclass AND i.indisprimary"),
        "id"
    );
    assert_eq!(
        p.sql("SELECT id, customer, amount, qty, paid FROM orders ORDER BY id"),
        "1|Ada|12.50|2|t\n2|Bob|7.25|1|f\n3|Cy|100.00|10|"
    );
    let ctid_before = p.sql("SELECT ctid FROM orders WHERE id IN (2, 3) ORDER BY id");

    // Only id and qty: the other columns keep their values; id 2 is equal.
    let out = p.merge(
        &["--table", "orders", "--key", "id"],
        "{\"id\":1,\"qty\":5}\n{\"id\":2,\"qty\":1}\n{\"id\":4,\"qty\":7}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sum = out.summary();
    assert_eq!(
        (&sum["inserted"], &sum["updated"], &sum["unchanged"]),
        (&1.into(), &1.into(), &1.into()),
        "{sum}"
    );
    assert_eq!(
        p.sql("SELECT id, customer, amount, qty, paid FROM orders ORDER BY id"),
        "1|Ada|12.50|5|t\n2|Bob|7.25|1|f\n3|Cy|100.00|10|\n4|||7|"
    );
    // Rows left alone were not rewritten (same tuple, no dead version).
    assert_eq!(
        p.sql("SELECT ctid FROM orders WHERE id IN (2, 3) ORDER BY id"),
        ctid_before
    );
}

/// Values the Rust side stages in binary (typed slots for the table's own
/// column types) land exactly as PostgreSQL's own text input makes them:
/// the same values typed by hand into a twin table, through psql, are
/// compared row by row. Unsure values (spaces, exponents, `yes`) go
/// through the server's input functions in the same columns.
#[test]
fn binary_staged_values_equal_postgresqls_own_text_input() {
    let p = Scratch::pg();
    let ddl = "(id int PRIMARY KEY, s smallint, i integer, b bigint, n numeric(12,2), u numeric, \
               r real, d double precision, f boolean, t text, v varchar(5))";
    p.sql(&format!(
        "CREATE TABLE typed {ddl}; CREATE TABLE expect {ddl}; \
         INSERT INTO typed (id, s, n, t) VALUES (1, 1, 1, 'old'), (2, 2, 2, 'old'), (3, 3, 3, 'old')"
    ));
    // Each row once as JSON for etl-merge, once as SQL text literals.
    let rows: [(&str, &str); 6] = [
        (
            r#"{"id":1,"s":-32768,"i":2147483647,"b":-9223372036854775808,"n":12.5,"u":123456789012345678901234567890.123456789,"r":1.5e-7,"d":1e300,"f":true,"t":"Ada","v":"abcde"}"#,
            "(1, '-32768', '2147483647', '-9223372036854775808', '12.5', '123456789012345678901234567890.123456789', '1.5e-7', '1e300', 'true', 'Ada', 'abcde')",
        ),
        (
            r#"{"id":2,"s":"7","i":"-0","b":"42","n":"-0.00","u":"0.00001","r":"3.4028235e38","d":"-2.5e-300","f":"false","t":"x","v":"ab"}"#,
            "(2, '7', '-0', '42', '-0.00', '0.00001', '3.4028235e38', '-2.5e-300', 'false', 'x', 'ab')",
        ),
        (
            r#"{"id":3,"s":0,"i":10000,"b":100000000,"n":9999999999.99,"u":10000,"r":0.1,"d":0.1,"f":false,"t":"","v":""}"#,
            "(3, '0', '10000', '100000000', '9999999999.99', '10000', '0.1', '0.1', 'false', '', '')",
        ),
        (
            r#"{"id":4,"s":"+5","i":" 12 ","b":"0042","n":"1e2","u":"-1.000","r":"-0","d":"Infinity","f":"yes","t":"ü","v":"éé"}"#,
            "(4, '+5', ' 12 ', '0042', '1e2', '-1.000', '-0', 'Infinity', 'yes', 'ü', 'éé')",
        ),
        (
            r#"{"id":5,"s":null,"i":null,"b":null,"n":null,"u":null,"r":null,"d":null,"f":null,"t":null,"v":null}"#,
            "(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        ),
        (
            r#"{"id":6,"s":1,"i":2,"b":3,"n":1.230,"u":0.5,"r":16777217,"d":9007199254740993,"f":true,"t":"1.50","v":"12345"}"#,
            "(6, '1', '2', '3', '1.230', '0.5', '16777217', '9007199254740993', 'true', '1.50', '12345')",
        ),
    ];
    let input: String = rows.iter().flat_map(|(j, _)| [*j, "\n"]).collect();
    let literals: Vec<&str> = rows.iter().map(|(_, l)| *l).collect();
    p.sql(&format!(
        "INSERT INTO expect VALUES {}",
        literals.join(", ")
    ));
    let out = p.merge(&["--table", "typed", "--key", "id"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sum = out.summary();
    assert_eq!(
        (&sum["inserted"], &sum["updated"]),
        (&3.into(), &3.into()),
        "{sum}"
    );
    let all = "SELECT id, s, i, b, n, u, r, d, f, t, v FROM";
    let got = p.sql(&format!("{all} typed ORDER BY id"));
    assert_eq!(got, p.sql(&format!("{all} expect ORDER BY id")));
    assert_eq!(p.checksum("typed"), p.checksum("expect"));
    // Not vacuous: the rows hold the values, not NULLs.
    assert!(got.starts_with("1|-32768|2147483647|-9223372036854775808|12.50|123456789012345678901234567890.123456789|"), "{got}");
    // Merged again, the same values are equal: nothing is rewritten.
    let out = p.merge(&["--table", "typed", "--key", "id", "--force"], &input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["unchanged"], 6, "{}", out.summary());
}

/// The merge leaves equal rows alone by comparing old and new values; a
/// `json` column has no equality operator (the comparison failed), and a
/// `box`'s `=` compares areas (a moved box of the same area looked
/// unchanged): both are compared by value.
#[test]
fn columns_without_a_true_equality_are_compared_by_value() {
    let p = Scratch::pg();
    p.sql("CREATE TABLE docs (id int PRIMARY KEY, doc json, shape box)");
    let args = ["--table", "docs", "--key", "id"];
    let day1 = "{\"id\":1,\"doc\":{\"a\":1},\"shape\":\"(1,1),(0,0)\"}\n\
                {\"id\":2,\"doc\":[1,2],\"shape\":\"(2,2),(0,0)\"}\n";
    let out = p.merge(&args, day1);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["inserted"], 2);
    // Id 1 is as it was; id 2's box moved (the same area, 4).
    let day2 = "{\"id\":1,\"doc\":{\"a\":1},\"shape\":\"(1,1),(0,0)\"}\n\
                {\"id\":2,\"doc\":[1,2],\"shape\":\"(4,1),(0,0)\"}\n";
    let out = p.merge(&args, day2);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sum = out.summary();
    assert_eq!(
        (&sum["updated"], &sum["unchanged"]),
        (&1.into(), &1.into()),
        "{sum}"
    );
    assert_eq!(
        p.sql("SELECT id, doc, shape FROM docs ORDER BY id"),
        "1|{\"a\":1}|(1,1),(0,0)\n2|[1,2]|(4,1),(0,0)"
    );
}

#[test]
fn values_postgresql_refuses_are_rejects_naming_line_column_and_value() {
    let p = Scratch::pg();
    let rejects = p.dir.path().join("rejects.ndjson");
    let input = "{\"id\":1,\"amount\":\"12.50\",\"day\":\"2024-01-05\"}\n\
                 {\"id\":2,\"amount\":\"abc\",\"day\":\"2024-01-05\"}\n\
                 {\"id\":3,\"amount\":1.234,\"day\":\"2024-01-05\"}\n\
                 {\"id\":4,\"amount\":1,\"day\":\"2023-02-30\"}\n\
                 {\"id\":5,\"amount\":\" 7.5 \",\"day\":\"20240106\"}\n";
    let out = p.merge(
        &[
            "--table",
            "t",
            "--key",
            "id",
            "--types",
            "amount=numeric(12,2),day=date",
            "--max-rejects",
            "10",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // PostgreSQL's own input functions decided: " 7.5 " and 20240106 are fine.
    assert_eq!(
        p.sql("SELECT id, amount, day FROM t ORDER BY id"),
        "1|12.50|2024-01-05\n5|7.50|2024-01-06"
    );
    let rej: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rej.len(), 3, "{rej:?}");
    let text = serde_json::to_string(&rej).unwrap();
    for want in [
        r#"column \"amount\": \"abc\" is not a valid numeric(12,2)"#,
        r#"column \"amount\": \"1.234\" is not a valid numeric(12,2)"#,
        r#"column \"day\": \"2023-02-30\" is not a valid date"#,
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    let lines: Vec<i64> = rej
        .iter()
        .map(|r| r["line"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(lines, [2, 3, 4], "{text}");
    // With no room for rejects, nothing lands.
    let out = p.merge(
        &[
            "--table",
            "t2",
            "--key",
            "id",
            "--types",
            "amount=numeric(12,2)",
        ],
        input,
    );
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_class WHERE relname = 't2'"),
        "0"
    );
}

#[test]
fn connection_settings_tls_and_exit_codes() {
    let p = Scratch::pg();
    let port = p.cluster().port;
    let ok = |out: &Out| assert_eq!(out.code, 0, "{}", out.stderr);
    // verify-full with the test CA; the password is in no log line.
    let mut c = p.cmd(&["--table", "a", "--key", "id"]);
    c.env("ETL_LOG", "debug");
    let out = run_cmd(c, b"{\"id\":1}\n");
    assert!(out.stderr.contains("\"level\":\"debug\""), "{}", out.stderr);
    ok(&out);
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
    // Plain text to a loopback address is allowed.
    let plain = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=disable");
    ok(&run_cmd(
        p.cmd_at(&plain, &["--table", "a", "--key", "id"]),
        b"{\"id\":2}\n",
    ));
    // ... and refused anywhere else, before any connection.
    let out = run_cmd(
        p.cmd_at(
            "postgres://u:pw@db.example.com/x?sslmode=disable",
            &["--table", "a", "--key", "id"],
        ),
        b"{\"id\":2}\n",
    );
    assert_eq!(out.code, 64, "{}", out.stderr);
    // A CA that did not sign the server's certificate: refused (77).
    let wrong_ca = p.cluster().dir().join("server.crt");
    let url = format!(
        "postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        wrong_ca.display()
    );
    let out = run_cmd(
        p.cmd_at(&url, &["--table", "a", "--key", "id"]),
        b"{\"id\":3}\n",
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    // A wrong password: 77, and the password is not repeated.
    let url = format!(
        "postgres://{USER}:not-the-password@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        p.cluster().ca().display()
    );
    let out = run_cmd(
        p.cmd_at(&url, &["--table", "a", "--key", "id"]),
        b"{\"id\":3}\n",
    );
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(!out.stderr.contains("not-the-password"), "{}", out.stderr);
    // A database that does not exist: 78.
    let out = run_cmd(
        p.cmd_at(
            &p.cluster().url("nosuchdb", "verify-full"),
            &["--table", "a", "--key", "id"],
        ),
        b"{\"id\":3}\n",
    );
    assert_eq!(out.code, 78, "{}", out.stderr);
    // Nothing listening: retried, then 69.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{closed}/postgres?sslmode=disable");
    let out = run_cmd(
        p.cmd_at(&url, &["--table", "a", "--key", "id"]),
        b"{\"id\":3}\n",
    );
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    // DuckDB's flags are refused on PostgreSQL.
    let out = p.merge(
        &["--table", "a", "--key", "id", "--memory-limit", "1GB"],
        "{\"id\":3}\n",
    );
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("--memory-limit"), "{}", out.stderr);
    // libpq's environment and a .pgpass file, with `postgres://` alone.
    let pgpass = p.dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:postgres:{USER}:{PASSWORD}\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut c = p.cmd_at("postgres://", &["--table", "a", "--key", "id"]);
    c.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", USER)
        .env("PGDATABASE", "postgres")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", p.cluster().ca())
        .env("PGPASSFILE", &pgpass);
    ok(&run_cmd(c, b"{\"id\":4}\n"));
    assert_eq!(
        p.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM a"),
        "1,2,4"
    );
}

/// Writer `n` of four: ids `n*500 .. n*500+1000` (each overlaps the next),
/// every value tagged with the writer.
fn writer_input(n: u64) -> String {
    let mut s = String::new();
    for id in n * 500..n * 500 + 1000 {
        let _ = writeln!(s, "{{\"id\":{id},\"who\":\"w{n}\",\"amount\":{id}.5}}");
    }
    s
}

#[test]
fn four_writers_on_overlapping_keys_leave_each_key_once_with_the_last_writers_values() {
    let p = Scratch::pg();
    // All four start before the table exists: creation is raced too.
    let children: Vec<(u64, Child)> = (0..4)
        .map(|n| {
            let mut c = p.cmd(&["--table", "shared", "--key", "id"]);
            c.env("ETL_RUN_ID", format!("w{n}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            (n, c.spawn().unwrap())
        })
        .collect();
    let mut done = Vec::new();
    for (n, mut child) in children {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(writer_input(n).as_bytes())
            .unwrap();
        done.push((n, child));
    }
    for (n, child) in done {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        p.sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM shared"),
        "2500|2500|0|2499"
    );
    // Commit order, as _etl_runs recorded it under the table's lock.
    let order: Vec<u64> = p
        .sql("SELECT run_id FROM _etl_runs WHERE status = 'ok' ORDER BY finished_at")
        .lines()
        .map(|w| w.trim_start_matches('w').parse().unwrap())
        .collect();
    assert_eq!(order.len(), 4);
    let mut wrong = 0;
    // Per key, the writer that committed last among those that had it.
    let got = p.sql("SELECT id, who FROM shared ORDER BY id");
    for line in got.lines() {
        let (id, who) = line.split_once('|').unwrap();
        let id: u64 = id.parse().unwrap();
        let last = order
            .iter()
            .rev()
            .find(|&&n| (n * 500..n * 500 + 1000).contains(&id))
            .unwrap();
        if who != format!("w{last}") {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 0, "keys not holding the last writer's values");
}

/// Spawns a merge whose stdin the test writes, and stderr it reads.
fn spawn(p: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = p.cmd(args);
    c.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Waits (up to a minute) for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows(from: u64, n: u64, v: u64) -> String {
    let mut s = String::new();
    for id in from..from + n {
        let _ = writeln!(s, "{{\"id\":{id},\"v\":{v},\"name\":\"n{id}\"}}");
    }
    s
}

#[test]
fn kills_lost_connections_and_a_stopped_server_leave_the_table_as_it_was() {
    let p = Scratch::pg();
    let args = ["--table", "t", "--key", "id"];
    assert_eq!(p.merge(&args, &rows(0, 1000, 1)).code, 0);
    let before = p.checksum("t");
    let next = rows(500, 1000, 2);

    // SIGKILL where the run pauses (ETL_MERGE_PAUSE_AT), before COMMIT.
    for point in ["staged", "merged"] {
        let mut child = spawn(&p, &args, &[("ETL_MERGE_PAUSE_AT", point)]);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(next.as_bytes())
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "no pause at {point}");
            if line.contains("paused at") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(p.checksum("t"), before, "killed at {point}");
    }

    // The connection killed by pg_terminate_backend mid-COPY: exit 75.
    let mut child = spawn(&p, &args, &[]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(rows(500, 500, 2).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let copying = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'etl-merge' \
                   AND query LIKE 'COPY%'";
    wait_for("the COPY", || p.sql(copying) == "1");
    p.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'etl-merge'");
    let _ = stdin.write_all(rows(1000, 100_000, 2).as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.checksum("t"), before, "terminated backend");

    // The server stopped mid-COPY: exit 75, nothing changed once it is back.
    let mut child = spawn(&p, &args, &[]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(rows(500, 500, 2).as_bytes()).unwrap();
    stdin.flush().unwrap();
    wait_for("the COPY", || p.sql(copying) == "1");
    p.cluster().stop();
    let _ = stdin.write_all(rows(1000, 100_000, 2).as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.cluster().restart();
    assert_eq!(p.checksum("t"), before, "stopped server");

    // SIGKILL at arbitrary instants: the table is the before or the after state.
    p.sql("CREATE DATABASE ref");
    let ref_url = p.cluster().url("ref", "verify-full");
    for input in [rows(0, 1000, 1), next.clone()] {
        assert_eq!(run_cmd(p.cmd_at(&ref_url, &args), input.as_bytes()).code, 0);
    }
    let after = p.cluster().psql(
        "ref",
        "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM t t",
    );
    assert_ne!(before, after);
    let mut seen_after = false;
    for i in 0..6_u64 {
        let mut child = spawn(&p, &args, &[]);
        let _ = child.stdin.take().unwrap().write_all(next.as_bytes());
        std::thread::sleep(Duration::from_millis(40 * i));
        let _ = child.kill();
        child.wait().unwrap();
        let now = p.checksum("t");
        assert!(now == before || now == after, "kill {i}: {now}");
        seen_after |= now == after;
        if seen_after {
            break;
        }
    }
    // The rerun lands everything exactly once.
    let out = p.merge(&args, &next);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(p.checksum("t"), after);
}

#[test]
fn new_columns_composite_keys_key_rejects_and_hostile_names() {
    let p = Scratch::pg();
    let k = ["--table", "lines", "--key", "order_id,line_no"];
    let base = "{\"order_id\":\"A\",\"line_no\":1,\"qty\":2}\n{\"order_id\":\"A\",\"line_no\":2,\"qty\":3}\n";
    assert_eq!(p.merge(&k, base).code, 0);
    // A column the table lacks: fail (65, nothing changes), ignore, add.
    let wider = "{\"order_id\":\"A\",\"line_no\":1,\"qty\":5,\"note\":\"rush\"}\n";
    let out = p.merge(&k, wider);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.stderr.contains("note"), "{}", out.stderr);
    assert_eq!(p.sql("SELECT qty FROM lines WHERE line_no = 1"), "2");
    let mut args = k.to_vec();
    args.extend(["--on-new-column", "ignore"]);
    assert_eq!(p.merge(&args, wider).code, 0);
    assert_eq!(
        p.type_list("lines"),
        "order_id:text,line_no:bigint,qty:bigint"
    );
    let mut args = k.to_vec();
    args.extend(["--on-new-column", "add", "--force"]);
    assert_eq!(p.merge(&args, wider).code, 0);
    assert_eq!(
        p.type_list("lines"),
        "order_id:text,line_no:bigint,qty:bigint,note:text"
    );
    assert_eq!(
        p.sql("SELECT order_id, line_no, qty, coalesce(note, '-') FROM lines ORDER BY 1, 2"),
        "A|1|5|rush\nA|2|3|-"
    );
    // Names match case-insensitively; an explicit null clears a value.
    let out = p.merge(
        &["--table", "LINES", "--key", "ORDER_ID,Line_No"],
        "{\"ORDER_ID\":\"A\",\"Line_No\":2,\"NOTE\":\"x\",\"QTY\":null}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        p.sql("SELECT coalesce(qty::text, 'NULL'), note FROM lines WHERE line_no = 2"),
        "NULL|x"
    );
    // A record without its key, or with a null key, is a reject; the rest lands.
    let rejects = p.dir.path().join("rej.ndjson");
    let mut args = k.to_vec();
    args.extend(["--max-rejects", "5", "--rejects", rejects.to_str().unwrap()]);
    let out = p.merge(
        &args,
        "{\"order_id\":\"B\",\"qty\":1}\n{\"order_id\":null,\"line_no\":1}\n{\"order_id\":\"B\",\"line_no\":1,\"qty\":9}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rej = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(rej.lines().count(), 2, "{rej}");
    assert!(
        rej.contains("\"line_no\\\" is missing") && rej.contains("\"order_id\\\" is null"),
        "{rej}"
    );
    assert_eq!(p.sql("SELECT qty FROM lines WHERE order_id = 'B'"), "9");
    // Hostile names are just names.
    let evil = "a\"; DROP TABLE lines; --";
    let rec = format!(
        "{{\"id\":1,{}:\"v\"}}\n",
        serde_json::to_string(evil).unwrap()
    );
    let out = p.merge(
        &["--table", "x\"; DROP TABLE lines; --", "--key", "id"],
        &rec,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(p.sql("SELECT count(*) FROM lines"), "3");
    assert_eq!(
        p.sql("SELECT attname FROM pg_attribute WHERE attrelid = '\"x\"\"; DROP TABLE lines; --\"'::regclass AND attnum = 2"),
        evil
    );
}
