#!/usr/bin/env bats
# The README's first set-up command must keep working: scripts/demo runs the
# main job on embedded defaults and shows the second run passing only what
# changed.

load helpers

setup() {
  common_setup
}

@test "scripts/demo runs end to end and the second run passes only changed orders" {
  export ETL_DEMO_DIR="$BATS_TEST_TMPDIR/demo"
  run timeout 600 "$ETL_ROOT/scripts/demo"
  assert_success
  assert_output --partial "run 1 passed 3 orders, run 2 passed 3"
  assert_equal "$(jq -r .order_id "$ETL_DEMO_DIR/run2.ndjson" | tr '\n' ' ')" "A-1003 A-1004 A-1005 "
  # Leading zeros survive the whole way (values stay strings).
  assert_equal "$(jq -r 'select(.order_id == "A-1005") | .amount' "$ETL_DEMO_DIR/run2.ndjson")" "00042.10"
  assert_equal "$(jq -r '.committed.orders.value' "$ETL_DEMO_DIR/state.json")" "2026-11-21T10:00:59Z"
  # The warehouse: every order once, amounts exact, times in UTC, names hashed.
  table="$ETL_DEMO_DIR/run2.ndjson.table"
  assert_equal "$(jq -r .order_id "$table" | tr '\n' ' ')" "A-1001 A-1002 A-1003 A-1004 A-1005 "
  assert_equal "$(grep -o '"amount":[0-9.]*' "$table" | tr '\n' ' ')" '"amount":1234.50 "amount":89.90 "amount":14250.00 "amount":310.00 "amount":42.10 '
  assert_equal "$(jq -r 'select(.order_id == "A-1003") | .updated_at' "$table")" "2026-11-21T07:10:12Z"
  jq -e -s 'all(.customer | test("^[0-9a-f]{64}$"))' "$table" >/dev/null
  # The sheet holds the same table: header, then one row per order.
  sheet="$ETL_DEMO_DIR/run2.sheet"
  assert_equal "$(head -1 "$sheet" | jq -r '.[0]')" "order_id"
  assert_equal "$(tail -n +2 "$sheet" | jq -r '.[0]' | tr '\n' ' ')" "A-1001 A-1002 A-1003 A-1004 A-1005 "
  col=$(head -1 "$sheet" | jq 'index("amount")')
  assert_equal "$(tail -n +2 "$sheet" | jq -r ".[$col]" | tr '\n' ' ')" "1234.5 89.9 14250 310 42.1 "
  assert_output --partial "sheet: 5 orders in demo-orders/Orders"
}
