#!/usr/bin/env bats
# examples/postgres/load.sh against a real PostgreSQL server: a throwaway
# cluster for this file (initdb as the postgres user when run as root, a
# free loopback port, SCRAM), stopped by its own data directory at the end.
# The connection comes from libpq's variables, the password from a
# ~/.pgpass file, as the example's header says.

load helpers

setup_file() {
  pg_cluster_start
}

teardown_file() {
  pg_cluster_stop
}

setup() {
  common_setup
  pg_client_env
}

@test "examples/postgres/load.sh: two exports into PostgreSQL, each order once, exact amounts" {
  run --separate-stderr $T "$ETL_ROOT/examples/postgres/load.sh" \
    "$ETL_ROOT/examples/orders/day1.csv" "$ETL_ROOT/examples/orders/day2.csv.gz"
  assert_success
  # day1 has A-1001..A-1003, day2 A-1001..A-1005 (A-1003 changed): 5 orders,
  # 1234.50 + 89.90 + 14250.00 + 310.00 + 42.10.
  assert_output '{"orders":5,"total":15926.50}'
  run psql -X -A -t -c "SELECT order_id, amount, updated_at FROM sales.orders WHERE order_id IN ('A-1003', 'A-1005') ORDER BY 1"
  assert_success
  assert_output $'A-1003|14250.00|2026-11-21 08:10:12\nA-1005|42.10|2026-11-21 11:00:59'
  run psql -X -A -t -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sales.orders'::regclass AND attname IN ('amount', 'updated_at') ORDER BY attnum"
  assert_output $'numeric(12,2)\ntimestamp without time zone'
  # The password came from ~/.pgpass and is in no log line.
  refute_output --partial etl-bats-pw
  # Run again: both inputs are replays, nothing changes.
  run --separate-stderr $T "$ETL_ROOT/examples/postgres/load.sh" \
    "$ETL_ROOT/examples/orders/day1.csv" "$ETL_ROOT/examples/orders/day2.csv.gz"
  assert_success
  assert_output '{"orders":5,"total":15926.50}'
  [[ "$stderr" == *"already applied"* ]]
  [[ "$stderr" != *etl-bats-pw* ]]
}
