#!/usr/bin/env bats
# The README's first set-up command must keep working: scripts/demo runs the
# whole job on embedded defaults (a Maildir, a DuckDB file, the Sheets
# emulator), then again to show nothing is fetched twice or duplicated.

load helpers

setup() {
  common_setup
}

@test "scripts/demo runs the whole job twice: the sheet holds every order once" {
  export ETL_DEMO_DIR="$BATS_TEST_TMPDIR/demo"
  run timeout 600 "$ETL_ROOT/scripts/demo"
  assert_success
  assert_output --partial "run 1 stored 2 attachment files; run 2 stored 0 more."
  assert_output --partial "sheet: 7 orders in demo-orders/Orders (run 2 left it as run 1 made it: yes)"
  sheet="$ETL_DEMO_DIR/run2.sheet"
  assert_equal "$(head -1 "$sheet" | jq -r '.[0]')" "order_id"
  # Every order once (A-1001 and A-1002 arrive in both e-mails), the
  # re-exported A-1003 with its new amount, the late orders from the ZIP.
  assert_equal "$(tail -n +2 "$sheet" | jq -r '.[0]' | tr '\n' ' ')" "A-1001 A-1002 A-1003 A-1004 A-1005 A-1006 A-1007 "
  col=$(head -1 "$sheet" | jq 'index("amount")')
  assert_equal "$(tail -n +2 "$sheet" | jq -r ".[$col]" | tr '\n' ' ')" "1234.5 89.9 14250 310 42.1 560 77.25 "
  col=$(head -1 "$sheet" | jq 'index("updated_at")')
  assert_equal "$(tail -n +2 "$sheet" | jq -r ".[$col]" | sed -n 3p)" "2026-11-21T07:10:12Z"
  col=$(head -1 "$sheet" | jq 'index("customer")')
  tail -n +2 "$sheet" | jq -e -s "all(.[$col] | test(\"^[0-9a-f]{64}\$\"))" >/dev/null
  # The bad row went to the rejects file, with the reason.
  run jq -r '[.input.order_id, .error] | @tsv' "$ETL_DEMO_DIR/rejects.ndjson"
  assert_output --partial 'A-1008'
  assert_output --partial 'field amount: "twelve" is not a valid decimal(12,2)'
  # Both runs committed; the runs log says so.
  assert_equal "$(jq -r '.status' "$ETL_DEMO_DIR/runs.ndjson" | tr '\n' ' ')" "ok ok "
  assert_equal "$(jq -r '.committed | keys[0]' "$ETL_DEMO_DIR/state.json")" "maildir/$ETL_DEMO_DIR/mail"
}
