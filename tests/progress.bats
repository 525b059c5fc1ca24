#!/usr/bin/env bats
# The one-line progress of etl-fetch-mail and etl-push-sheets: shown on a
# terminal when a run lasts over a second (as every other command does),
# never with --quiet, never when stderr is a file. The terminal is a real
# pseudo-terminal (util-linux `script`); each run lasts over a second by
# construction (a FIFO the test writes to late, an emulator with latency),
# so no assertion depends on the machine's speed.

load helpers

setup() {
  common_setup
  unset ETL_LOG_FORMAT
  printf 'n\n1\n' > a.csv
  python3 "$ETL_ROOT/crates/etl-fetch-mail/tests/build_mail.py" --subject one --attach "a.csv|a.csv|text/csv" > one.eml
}

teardown() {
  stop_emulator
}

# on_tty CMD: runs CMD with stdin, stdout and stderr on a pseudo-terminal;
# prints what the terminal showed.
on_tty() {
  script -qfec "$1" /dev/null
}

# slow_eml: a second .eml that arrives 1.5 s after etl-fetch-mail starts
# waiting for it (a FIFO), so the run lasts over a second.
slow_eml() {
  rm -f late.eml && mkfifo late.eml
  ( sleep 1.5; cat one.eml > late.eml ) &
}

@test "etl-fetch-mail shows messages and bytes on a terminal, not with --quiet or off a terminal" {
  slow_eml
  run -0 on_tty "etl-fetch-mail --eml one.eml late.eml --out-dir out > manifest.ndjson"
  assert_output --regexp '2 messages, [0-9.]+ [KMG]?i?B, [0-9]+ messages/s'
  slow_eml
  run -0 on_tty "etl-fetch-mail --quiet --eml one.eml late.eml --out-dir out > manifest.ndjson"
  refute_output --partial 'messages/s'
  slow_eml
  run -0 on_tty "etl-fetch-mail --eml one.eml late.eml --out-dir out > manifest.ndjson 2> err.log"
  refute_output --partial 'messages/s'
  run grep -c 'messages/s' err.log
  assert_failure 1
  [ "$(wc -l < manifest.ndjson)" -eq 2 ]
}

@test "etl-push-sheets shows rows, bytes, requests and quota waits on a terminal, not with --quiet or off a terminal" {
  start_emulator --latency-ms 400
  new_spreadsheet book
  seq 1 300 | jq -c '{id: ., name: ("item " + tostring)}' > rows.ndjson
  push="etl-push-sheets --spreadsheet book --sheet S --max-request-bytes 4096 < rows.ndjson"
  run -0 on_tty "$push"
  assert_output --regexp '[0-9]+ rows, [0-9.]+ [KMG]?i?B, [0-9]+ rows/s, [0-9]+ requests, 0 quota waits'
  run -0 on_tty "$push --quiet"
  refute_output --partial 'rows/s'
  run -0 on_tty "$push 2> err.log"
  refute_output --partial 'rows/s'
  run grep -c 'rows/s' err.log
  assert_failure 1
}
