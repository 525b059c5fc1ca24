#!/usr/bin/env bats
# etl-merge in real shell pipelines: CSV parsed by etl-parse lands in a real
# DuckDB file and in a real PostgreSQL server (a throwaway cluster for this
# file, a database per test); --emit output feeds jq; a failing stage
# upstream changes nothing. Each case is one function run on both backends
# ($DB is the file or the URL). Expected values are written by hand from
# the fixtures.

load helpers

setup_file() {
  pg_cluster_start
}

teardown_file() {
  pg_cluster_stop
}

setup() {
  common_setup
  command -v etl-merge >/dev/null || {
    echo "etl-merge not built (scripts/test builds it with --release)" >&2
    return 1
  }
}

on_duckdb() {
  DB=w.duckdb
}

# A database of the test's own; the password comes from ~/.pgpass.
on_postgres() {
  pg_client_env
  createdb "t$BATS_TEST_NUMBER"
  DB="postgres://etl@127.0.0.1:$PGPORT_FREE/t$BATS_TEST_NUMBER?sslmode=disable"
}

case_parse_merge_emit() {
  printf 'id,customer,amount\n2,Bob,7.25\n1,Ada,12.50\n' > orders.csv
  run --separate-stderr pipeline "etl-parse --infer orders.csv | etl-merge --db '$DB' --table orders --key id --emit table"
  assert_success
  assert_equal "$(echo "$output" | jq -c '[.id, .customer, .amount]' | tr '\n' ' ')" '[1,"Ada",12.5] [2,"Bob",7.25] '
  # The exact text of the decimal, not jq's float: 12.50 keeps its scale.
  assert_equal "$(echo "$output" | head -1)" '{"id":1,"customer":"Ada","amount":12.50}'
}

@test "DuckDB: parse | merge | emit table: exact decimals, typed columns, ordered by key" {
  on_duckdb; case_parse_merge_emit
}

@test "PostgreSQL: parse | merge | emit table: exact decimals, typed columns, ordered by key" {
  on_postgres; case_parse_merge_emit
}

case_day2() {
  printf '{"id":1,"qty":1}\n{"id":2,"qty":2}\n{"id":3,"qty":3}\n' > day1.ndjson
  printf '{"id":2,"qty":2}\n{"id":3,"qty":30}\n{"id":4,"qty":4}\n' > day2.ndjson
  run $T etl-merge --db "$DB" --table t --key id < day1.ndjson
  assert_success
  run --separate-stderr $T etl-merge --db "$DB" --table t --key id --emit changes --summary s.json < day2.ndjson
  assert_success
  assert_equal "$(echo "$output" | jq -c '[.id, ._op]' | tr '\n' ' ')" '[3,"update"] [4,"insert"] '
  assert_equal "$(jq -c '[.inserted, .updated, .unchanged]' s.json)" '[1,1,1]'
  run --separate-stderr $T etl-merge --db "$DB" --table t --key id --mode append \
    --query 'SELECT sum(qty) AS total, count(*) AS n FROM t' < /dev/null
  assert_success
  assert_output '{"total":37,"n":4}'
}

@test "DuckDB: day 2 updates one row, inserts one, leaves one; emit changes says which" {
  on_duckdb; case_day2
}

@test "PostgreSQL: day 2 updates one row, inserts one, leaves one; emit changes says which" {
  on_postgres; case_day2
}

case_checkpoint_held() {
  printf '{"id":1,"qty":1,"ts":1}\n' | $T etl-merge --db "$DB" --table t --key id
  printf '{"id":2,"qty":"two","ts":2}\n{"id":3,"qty":3,"ts":3}\n' > day2.ndjson
  export ETL_RUN_ID=run-2
  run pipeline "etl-checkpoint filter --state s.json --key t --field ts --type number < day2.ndjson | etl-merge --db '$DB' --table t --key id && etl-checkpoint commit --state s.json"
  assert_failure 65
  run $T etl-checkpoint get --state s.json t
  assert_failure 1
  # Fixed upstream, the same records come through again and land.
  printf '{"id":2,"qty":2,"ts":2}\n{"id":3,"qty":3,"ts":3}\n' > day2.ndjson
  export ETL_RUN_ID=run-3
  run pipeline "etl-checkpoint filter --state s.json --key t --field ts --type number < day2.ndjson | etl-merge --db '$DB' --table t --key id && etl-checkpoint commit --state s.json"
  assert_success
  run --separate-stderr $T etl-checkpoint get --state s.json t
  assert_output 3
  run --separate-stderr $T etl-merge --db "$DB" --table t --key id --mode append --query 'SELECT count(*) AS n, sum(qty) AS q FROM t' < /dev/null
  assert_output '{"n":3,"q":6}'
}

@test "DuckDB: merge fails: the checkpoint is not committed and the next run delivers the same records" {
  on_duckdb; case_checkpoint_held
}

@test "PostgreSQL: merge fails: the checkpoint is not committed and the next run delivers the same records" {
  on_postgres; case_checkpoint_held
}

# $1: the column type as the backend names it.
case_type_error() {
  printf '{"id":1,"qty":1}\n' | $T etl-merge --db "$DB" --table t --key id
  run --separate-stderr $T etl-merge --db "$DB" --table t --key id \
    < <(printf '{"id":1,"qty":5}\n{"id":2,"qty":"two"}\n')
  assert_failure 65
  echo "$stderr" | jq -e -s --arg ty "$1" 'any(.level == "error" and (.msg | test("line 2.*column \"qty\": \"two\" is not a valid " + $ty)))' >/dev/null
  run --separate-stderr $T etl-merge --db "$DB" --table t --key id --mode append --query 'SELECT qty FROM t' < /dev/null
  assert_output '{"qty":1}'
}

@test "DuckDB: a type error names the column, the value and the line; the table is untouched" {
  on_duckdb; case_type_error BIGINT
}

@test "PostgreSQL: a type error names the column, the value and the line; the table is untouched" {
  on_postgres; case_type_error bigint
}
