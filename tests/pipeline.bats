#!/usr/bin/env bats
# The daily job (examples/daily-client-sync) under etl-run, against
# the Sheets emulator, when things go wrong.

load helpers

setup() {
  common_setup
  cp -r "$ETL_ROOT/examples/mail" mail
  for f in mail/new/*; do n=$(basename "$f"); touch -d "@${n%%.*}" "$f"; done
  export ETL_MAILDIR="$PWD/mail" ETL_STATE="$PWD/state.json" ETL_OUT_DIR="$PWD/files" \
    ETL_DB="$PWD/w.duckdb" ETL_REJECTS="$PWD/rejects.ndjson" ETL_SPREADSHEET_ID=book \
    ETL_MASK_SALT=test-salt ETL_ENV_FILE=/dev/null ETL_SHEETS_MAX_RETRIES=2 ETL_SHEETS_RETRY_BASE_MS=10
  JOB="$ETL_ROOT/examples/daily-client-sync/pipeline.sh"
  # The orders of examples/mail, each once (tests/demo.bats says why).
  ORDERS="A-1001 A-1002 A-1003 A-1004 A-1005 A-1006 A-1007 A-1009 A-1010 A-1011 "
}

teardown() {
  stop_emulator
}

# sheet_orders: the order ids in the sheet, space-separated.
sheet_orders() {
  curl -sf "$URL/_emulator/spreadsheets/book/sheets/Orders" | jq -r '.formatted[1:][][0]' | tr '\n' ' '
}

@test "Google failing until retries run out: nothing committed, the next run completes without duplicates" {
  start_emulator --state emu.json --fail-rate 1 --fail-status 503
  new_spreadsheet book
  ETL_RUN_ID=run-1 run -69 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  assert_output --partial "Google Sheets answered 503 UNAVAILABLE after 2 retries"
  # The mailbox watermark was not committed (the run's pending was discarded).
  run -0 jq -c '[(.committed | length), (.pending | length)]' state.json
  assert_output '[0,0]'
  # Google recovers: the same e-mails again, upserted, published once.
  stop_emulator
  start_emulator --state emu.json
  ETL_RUN_ID=run-2 run -0 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  run -0 sheet_orders
  assert_output "$ORDERS"
  run -0 duckdb_count
  assert_output 10
  run -0 jq -r '.status' runs.ndjson
  assert_output 'failed
ok'
}

@test "a temporary Google outage is retried by etl-run and the run completes" {
  start_emulator --state emu.json --fail-rate 1 --fail-status 503
  new_spreadsheet book
  # The outage ends when the first attempt has failed, before etl-run
  # decides to retry: the attempt itself heals the emulator (a condition,
  # not a sleep racing the retry delay, as this test once did).
  cat > outage.sh <<SH
"$JOB"; rc=\$?
if [ ! -e healed.pid ]; then
  kill $EMU_PID
  # Gone (or a zombie of the bats shell): its port is free.
  while [ -e /proc/$EMU_PID ] && ! grep -q ') Z ' /proc/$EMU_PID/stat; do sleep 0.05; done
  for _ in \$(seq 1 200); do
    # Started with every descriptor above stderr closed: the pipes of
    # etl-run and bats must not stay open in a server that outlives them.
    # In a session of its own (setsid execs in place: the same pid), since
    # etl-run ends what an attempt leaves running in its process group.
    ( for fd in \$(ls /proc/\$BASHPID/fd); do [ "\$fd" -gt 2 ] && eval "exec \$fd>&-"; done
      exec setsid etl-sheets-emulator --listen "${URL#http://}" --state emu.json >/dev/null 2>healed.log ) & pid=\$!
    # Up when it answers; the old one may still hold the port for a moment.
    for _ in \$(seq 1 50); do curl -sf "$URL/_emulator/spreadsheets/book" >/dev/null && break 2; kill -0 \$pid 2>/dev/null || break; sleep 0.05; done
  done
  echo "\$pid" > healed.pid
fi
exit "\$rc"
SH
  ETL_RUN_ID=run-1 run -0 etl-run --state state.json --retries 2 --retry-delay 0.1 --runs-log runs.ndjson -- outage.sh
  EMU_PID=$(cat healed.pid)
  run -0 jq -c '[.status, .attempts]' runs.ndjson
  assert_output '["ok",2]'
  run -0 sheet_orders
  assert_output "$ORDERS"
  run -0 jq -r '.committed | length' state.json
  assert_output 1
}

@test "two clients in sequence (examples/multi-client): each its own state and sheet" {
  start_emulator
  new_spreadsheet book-a
  new_spreadsheet book-b
  mkdir clients
  for c in a b; do
    cp -rp mail "mail-$c"
    printf 'ETL_MAILDIR=%s\nETL_STATE=%s\nETL_OUT_DIR=%s\nETL_DB=%s\nETL_REJECTS=%s\nETL_SPREADSHEET_ID=book-%s\n' \
      "$PWD/mail-$c" "$PWD/state-$c.json" "$PWD/files-$c" "$PWD/w-$c.duckdb" "$PWD/rejects-$c.ndjson" "$c" > "clients/$c.env"
  done
  unset ETL_MAILDIR ETL_STATE ETL_OUT_DIR ETL_DB ETL_REJECTS ETL_SPREADSHEET_ID
  ETL_RUNS_LOG=runs.ndjson run -0 "$ETL_ROOT/examples/multi-client/run-all.sh" "$PWD/clients"
  for c in a b; do
    run -0 bash -c "curl -sf '$URL/_emulator/spreadsheets/book-$c/sheets/Orders' | jq -r '.formatted[1:][][0]' | tr '\n' ' '"
    assert_output "$ORDERS"
    run -0 jq -r '.committed | keys[0]' "state-$c.json"
    assert_output "maildir/$PWD/mail-$c"
  done
  # Regression: this ran `jq ... | all` and never looked at the answer.
  run -0 jq -s -c 'map(.run_id | endswith("-a") or endswith("-b"))' runs.ndjson
  assert_output '[true,true]'
  run -0 jq -s -r 'map(.status) | join(" ")' runs.ndjson
  assert_output "ok ok"
}

@test "etl-merge killed mid-run (SIGKILL): nothing half-written, the next run completes without duplicates" {
  start_emulator
  new_spreadsheet book
  # A report big enough for etl-merge to be caught in the act.
  python3 - <<'PY'
import os, zipfile
rows = ["Order ID;Customer;Amount;Currency;Updated At"] + [f"B-{i:06d};Client {i % 97};{i % 1000}.{i % 100:02d};EUR;2026-11-21 10:{i % 60:02d}:00" for i in range(200000)]
open("big.csv", "w").write("\r\n".join(rows) + "\r\n")
PY
  python3 "$ETL_ROOT/crates/etl-fetch-mail/tests/build_mail.py" --subject "Big export" \
    --attach "big.csv|big.csv|text/csv" > mail/new/1763800000.M9P1.client
  touch -d @1763800000 mail/new/1763800000.M9P1.client
  # etl-merge pauses after its merge, before COMMIT (ETL_MERGE_PAUSE_AT, its
  # testing hook), and is killed there, by pid: a kill that lands before
  # COMMIT by construction, and never another etl-merge on this machine.
  # (This test once killed every etl-merge on the machine, by name, when the
  # log said "staged".)
  ETL_MERGE_PAUSE_AT=merged ETL_RUN_ID=run-1 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB" 2> job.log &
  runner=$!
  for _ in $(seq 1 1200); do
    grep -q '"cmd":"etl-merge".*paused at merged' job.log && break
    kill -0 "$runner" 2>/dev/null || break
    sleep 0.05
  done
  run -0 grep -c '"cmd":"etl-merge".*paused at merged' job.log
  merge_pid=$(descendant_pids "$runner" etl-merge)
  [ -n "$merge_pid" ]
  kill -9 $merge_pid
  wait "$runner" || true
  run -0 jq -r .status runs.ndjson
  assert_output failed
  run -0 jq -c '[(.committed | length), (.pending | length)]' state.json
  assert_output '[0,0]'
  # The killed transaction left nothing: no table, or the table as it was (none).
  run duckdb_count
  refute_output --regexp '^[1-9]'
  ETL_RUN_ID=run-2 run -0 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  run -0 duckdb_count
  assert_output 200010
  run -0 bash -c "curl -sf '$URL/_emulator/spreadsheets/book/sheets/Orders' | jq '.formatted | length'"
  assert_output 200011
}

@test "an incremental second run: only the e-mail that arrived since is fetched, parsed and merged" {
  start_emulator
  new_spreadsheet book
  # The workbook of 2026-11-22 has not arrived yet.
  mv mail/new/1763796600.M5P1.client later.eml
  ETL_RUN_ID=run-1 run -0 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  run -0 sheet_orders
  assert_output "A-1001 A-1002 A-1003 A-1004 A-1005 A-1006 A-1007 A-1009 A-1010 "
  run -0 jq -r '.committed[].value.name' state.json
  assert_output 1763750100.M4P1.client
  # It arrives; the next run reads it alone.
  mv later.eml mail/new/1763796600.M5P1.client
  touch -d @1763796600 mail/new/1763796600.M5P1.client
  ETL_LOG_FORMAT=json ETL_RUN_ID=run-2 run -0 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  summary() { grep "\"cmd\":\"$1\"" <<< "$output" | jq -c "select(.msg == \"summary\") | $2"; }
  assert_equal "$(summary etl-fetch-mail '[.messages_seen, .attachments_stored]')" '[1,1]'
  assert_equal "$(summary etl-parse .records_out)" 2
  assert_equal "$(summary etl-merge '[.inserted, .updated]')" '[1,1]'
  run -0 sheet_orders
  assert_output "$ORDERS"
  run -0 duckdb_count
  assert_output 10
  run -0 jq -r '.committed[].value.name' state.json
  assert_output 1763796600.M5P1.client
}
