#!/usr/bin/env bats
# etl-push-sheets in shell pipelines, against etl-sheets-emulator.

load helpers

setup() {
  common_setup
  start_emulator --request-log requests.ndjson
  new_spreadsheet book
}

teardown() {
  stop_emulator
}

@test "etl-parse | etl-push-sheets: a CSV lands in the sheet as the file says" {
  printf 'sku,qty,price\n007,3,1.50\n008,10,0.25\n' > stock.csv
  run -0 pipeline "etl-parse stock.csv | etl-push-sheets --spreadsheet book --sheet Stock"
  run -0 sheet_values book Stock
  assert_output '["sku","qty","price"]
["007","3","1.50"]
["008","10","0.25"]'
}

@test "etl-parse --infer | etl-push-sheets --value-input user-entered: numbers as numbers, formulas kept as text" {
  printf 'item,amount,comment\nA,1.5,=HYPERLINK("http://evil")\nB,2,ok\n' > in.csv
  run -0 pipeline "etl-parse --infer in.csv | etl-push-sheets --spreadsheet book --value-input user-entered"
  run -0 jq -c '.values' <(curl -sf "$URL/_emulator/spreadsheets/book/sheets/Sheet1")
  assert_output '[["item","amount","comment"],["A",1.5,"=HYPERLINK(\"http://evil\")"],["B",2,"ok"]]'
}

@test "an upsert of the same input twice writes nothing the second time" {
  printf '{"id":1,"v":"a"}\n{"id":2,"v":"b"}\n' > in.ndjson
  run -0 pipeline "etl-push-sheets --spreadsheet book --mode upsert --key id < in.ndjson"
  : > requests.ndjson
  run -0 pipeline "etl-push-sheets --spreadsheet book --mode upsert --key id --summary sum.json < in.ndjson"
  run -0 jq -s '[.[] | select(.kind == "write")] | length' requests.ndjson
  assert_output 0
  run -0 jq -c '[.unchanged_rows, .write_calls]' sum.json
  assert_output '[2,0]'
}

@test "--dry-run | jq: the plan, and the sheet untouched" {
  printf '{"a":1}\n' > in.ndjson
  run -0 --separate-stderr pipeline "etl-push-sheets --spreadsheet book --sheet New --dry-run < in.ndjson | jq -r .request"
  assert_output 'spreadsheets.batchUpdate
values.update
spreadsheets.batchUpdate'
  run -0 curl -sf "$URL/_emulator/spreadsheets/book"
  assert_equal "$(jq '.sheets | length' <<<"$output")" 1
}

@test "a spreadsheet not shared with the account: exit 77 and Google's message" {
  curl -sf "$URL/_emulator/spreadsheets" -d '{"spreadsheetId":"theirs","owner":"boss@example.com"}' >/dev/null
  printf '{"a":1}\n' > in.ndjson
  run -77 pipeline "etl-push-sheets --spreadsheet theirs < in.ndjson"
  assert_output --partial 'The caller does not have permission'
  assert_output --partial "share the spreadsheet with $SA"
}
