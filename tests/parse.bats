#!/usr/bin/env bats
# etl-parse in real shell pipelines: jq, head, stdin, manifests, and feeding
# etl-checkpoint. Fixtures are built here with printf, gzip and Python's
# zipfile (independent writers), not copied from etl-parse's own output.

load helpers

setup() {
  common_setup
}

@test "CSV into jq: keys from the header, values as strings, leading zeros kept" {
  printf 'Order ID,Amount,Zip\r\nA-1,"1,234.50",00123\r\n' > orders.csv
  run --separate-stderr $T etl-parse --normalize-headers snake orders.csv
  assert_success
  assert_equal "$(echo "$output" | jq -c '[.order_id, .amount, .zip]')" '["A-1","1,234.50","00123"]'
}

@test "stdin and a compressed file parse the same" {
  printf 'a;b\n1;2\n3;4\n' > semi.csv
  gzip -k semi.csv
  run --separate-stderr $T etl-parse semi.csv.gz
  assert_success
  from_gz="$output"
  run --separate-stderr $T etl-parse - < semi.csv
  assert_success
  assert_equal "$output" "$from_gz"
  assert_equal "$(echo "$output" | jq -s 'map(.b) | join(",")')" '"2,4"'
}

@test "| head -1 exits 0 without a panic or broken-pipe message" {
  seq 1 300000 | awk 'BEGIN { print "n,sq" } { print $1 "," $1 * $1 }' > big.csv
  run --separate-stderr pipeline 'etl-parse big.csv | head -1'
  assert_success
  assert_output '{"n":"1","sq":"1"}'
  [[ "$stderr" != *panicked* ]]
  [[ "$stderr" != *"Broken pipe"* ]]
}

@test "a zip of reports: members by format, _member provenance, --member glob" {
  printf 'id\n1\n2\n' > a.csv
  printf '{"id":3}\n' > b.ndjson
  python3 -c 'import zipfile,sys; z=zipfile.ZipFile("r.zip","w",zipfile.ZIP_DEFLATED); z.write("a.csv","in/a.csv"); z.write("b.ndjson"); z.close()'
  run --separate-stderr $T etl-parse --provenance r.zip
  assert_success
  assert_equal "$(echo "$output" | jq -r '"\(._member):\(.id)"' | tr '\n' ' ')" "in/a.csv:1 in/a.csv:2 b.ndjson:3 "
  run --separate-stderr $T etl-parse --member '*.ndjson' r.zip
  assert_output '{"id":3}'
}

@test "a manifest on stdin, with carried fields" {
  printf 'v\n1\n' > one.csv
  printf 'v\n2\n' > two.csv
  printf '{"path":"one.csv","from":"a@x.example"}\n{"path":"two.csv","from":"b@y.example"}\n' > manifest.ndjson
  run --separate-stderr pipeline 'etl-parse --manifest --carry from < manifest.ndjson | jq -c "[.v, ._from]"'
  assert_success
  assert_equal "$output" $'["1","a@x.example"]\n["2","b@y.example"]'
}

@test "bad rows: rejects file names file and line; exit 65 past --max-rejects" {
  printf 'a,b\n1,2\n1,2,3\n4,5\n' > ragged.csv
  run --separate-stderr $T etl-parse --rejects rej.ndjson --max-rejects 1 ragged.csv
  assert_success
  assert_equal "$(jq -c '[.line, .source, .stage]' rej.ndjson)" '[3,"ragged.csv","etl-parse"]'
  assert_equal "$(echo "$output" | wc -l)" 2
  run $T etl-parse ragged.csv
  assert_equal "$status" 65
}

@test "a missing file exits 66 before any output" {
  printf 'a\n1\n' > ok.csv
  run --separate-stderr $T etl-parse ok.csv nope.csv
  assert_equal "$status" 66
  assert_equal "$output" ""
  [[ "$stderr" == *nope.csv* ]]
}

@test "parse, filter by watermark and commit: the second run passes only new rows" {
  printf 'id,at\n1,2026-11-20T10:00:00Z\n2,2026-11-20T11:00:00Z\n' > day1.csv
  printf 'id,at\n1,2026-11-20T10:00:00Z\n2,2026-11-20T11:00:00Z\n3,2026-11-21T09:00:00Z\n' > day2.csv
  for day in day1 day2; do
    ETL_RUN_ID="run-$day" pipeline "etl-parse $day.csv | etl-checkpoint filter --state s.json --key rows --field at --type timestamp > out-$day.ndjson && etl-checkpoint commit --state s.json"
  done
  assert_equal "$(jq -r .id out-day1.ndjson | tr '\n' ' ')" "1 2 "
  assert_equal "$(jq -r .id out-day2.ndjson | tr '\n' ' ')" "3 "
}
