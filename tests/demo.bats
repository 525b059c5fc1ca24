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
  assert_output --partial "run 1 stored 4 attachment files; run 2 stored 0 more."
  assert_output --partial "sheet: 10 orders in demo-orders/Orders (run 2 left it as run 1 made it: yes)"
  # The French export is not UTF-8: etl-parse read it in the charset its
  # e-mail declared (the manifest's `charset`), and said so.
  assert_output --partial "commandes-2026-11-21.csv is not valid UTF-8; decoding it as windows-1252 (the charset its e-mail declared)"
  sheet="$ETL_DEMO_DIR/run2.sheet"
  assert_equal "$(head -1 "$sheet" | jq -r '.[0]')" "order_id"
  # Every order once (A-1001 and A-1002 arrive in two e-mails, A-1004 in the
  # ZIP and again in the French export), the re-exported A-1003 with its new
  # amount, the late orders from the ZIP, A-1009/A-1010 from the French
  # export, A-1011 from the workbook, which also updates A-1005.
  assert_equal "$(tail -n +2 "$sheet" | jq -r '.[0]' | tr '\n' ' ')" \
    "A-1001 A-1002 A-1003 A-1004 A-1005 A-1006 A-1007 A-1009 A-1010 A-1011 "
  # Amounts as the files wrote them: 1234.50, 89.90, 14250.00, 310.00 (and
  # 310,00), 45.6 (a number cell), 560.00, 77.25, "1 234,50" (a French
  # non-breaking-space thousands separator), 310,00, 2500.
  col=$(head -1 "$sheet" | jq 'index("amount")')
  assert_equal "$(tail -n +2 "$sheet" | jq -r ".[$col]" | tr '\n' ' ')" "1234.5 89.9 14250 310 45.6 560 77.25 1234.5 310 2500 "
  # Paris wall-clock time (UTC+1 in November) stored as UTC: the CSV's
  # 2026-11-21 08:10:12, the French 21/11/2026 15:20, the XLSX date cell
  # 2026-11-22 08:15.
  col=$(head -1 "$sheet" | jq 'index("updated_at")')
  assert_equal "$(tail -n +2 "$sheet" | jq -r ".[$col]" | sed -n '3p;8p;10p' | tr '\n' ' ')" \
    "2026-11-21T07:10:12Z 2026-11-21T14:20:00Z 2026-11-22T07:15:00Z "
  # DuckDB holds the exact decimals, each order once.
  got=$(etl-merge --db "$ETL_DEMO_DIR/warehouse.duckdb" --table orders --key order_id \
    --query "SELECT count(*) AS n, count(DISTINCT order_id) AS k, sum(amount)::VARCHAR AS total, typeof(any_value(amount)) AS t FROM orders" < /dev/null 2>/dev/null)
  assert_equal "$got" '{"n":10,"k":10,"total":"20611.75","t":"DECIMAL(12,2)"}'
  col=$(head -1 "$sheet" | jq 'index("customer")')
  tail -n +2 "$sheet" | jq -e -s "all(.[$col] | test(\"^[0-9a-f]{64}\$\"))" >/dev/null
  # The bad row went to the rejects file, with the reason.
  run jq -r '[.input.order_id, .error] | @tsv' "$ETL_DEMO_DIR/rejects.ndjson"
  assert_output --partial 'A-1008'
  assert_output --partial 'field amount: "twelve" is not a valid decimal(12,2)'
  # Both runs committed; the runs log says so.
  assert_equal "$(jq -r '.status' "$ETL_DEMO_DIR/runs.ndjson" | tr '\n' ' ')" "ok ok "
  assert_equal "$(jq -r '.committed | keys[0]' "$ETL_DEMO_DIR/state.json")" "maildir/$ETL_DEMO_DIR/mail"
  # The watermark is the newest message, the workbook of 2026-11-22.
  assert_equal "$(jq -r '.committed[].value.name' "$ETL_DEMO_DIR/state.json")" "1763796600.M5P1.client"
}
