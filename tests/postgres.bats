#!/usr/bin/env bats
# examples/postgres/load.sh against a real PostgreSQL server: a throwaway
# cluster for this file (initdb as the postgres user when run as root, a
# free loopback port, SCRAM), stopped by its own data directory at the end.
# The connection comes from libpq's variables, the password from a
# ~/.pgpass file, as the example's header says.

load helpers

setup_file() {
  local pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  export PGBIN=$pgbin
  PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/etl-bats-pg.XXXXXX")
  export PGDIR
  chmod 755 "$PGDIR"
  echo etl-bats-pw > "$PGDIR/pw"
  [ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$PGDIR"
  as_pg "$pgbin/initdb" -D "$PGDIR/data" -U etl --pwfile="$PGDIR/pw" --auth=scram-sha-256 -E UTF8 --no-sync > /dev/null
  PGPORT_FREE=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export PGPORT_FREE
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
    "$PGPORT_FREE" "$PGDIR" >> "$PGDIR/data/postgresql.conf"
  as_pg "$pgbin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start > /dev/null
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd "$PGDIR" && runuser -u postgres -- "$@"); else "$@"; fi
}

teardown_file() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop > /dev/null 2>&1 || true
  rm -rf "$PGDIR"
}

setup() {
  common_setup
  export HOME="$BATS_TEST_TMPDIR"
  printf '127.0.0.1:%s:*:etl:etl-bats-pw\n' "$PGPORT_FREE" > "$HOME/.pgpass"
  chmod 600 "$HOME/.pgpass"
  export PGHOST=127.0.0.1 PGPORT=$PGPORT_FREE PGUSER=etl PGDATABASE=postgres PGSSLMODE=disable
  unset PGPASSWORD ETL_DB
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
