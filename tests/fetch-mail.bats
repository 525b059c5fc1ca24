#!/usr/bin/env bats
# etl-fetch-mail in shell pipelines: a Maildir of client reports through
# etl-parse --manifest, incrementally with etl-checkpoint commit.

load helpers

setup() {
  common_setup
  mkdir -p Maildir/cur Maildir/new Maildir/tmp
  printf 'order_id,amount\nA-1,12.50\nA-2,3.00\n' > day1.csv
  python3 "$ETL_ROOT/crates/etl-fetch-mail/tests/build_mail.py" --subject "Orders day 1" \
    --attach "day1.csv|orders day1.csv|text/csv" > Maildir/new/1700000001.M1P1.host
}

@test "etl-fetch-mail --maildir | etl-parse --manifest --carry: rows with their message" {
  run -0 --separate-stderr pipeline "etl-fetch-mail --maildir Maildir --out-dir staging \
    | etl-parse --manifest --carry subject,filename | jq -c '[.order_id, .amount, ._subject, ._filename]'"
  assert_output '["A-1","12.50","Orders day 1","orders day1.csv"]
["A-2","3.00","Orders day 1","orders day1.csv"]'
}

@test "a second run fetches only new mail once the first is committed" {
  export ETL_RUN_ID=run-1
  run -0 --separate-stderr pipeline "etl-fetch-mail --maildir Maildir --out-dir staging --state state.json | etl-parse --manifest | wc -l"
  assert_output 2
  run -0 etl-checkpoint commit --state state.json
  printf 'order_id,amount\nA-3,1.00\n' > day2.csv
  sleep 0.05
  python3 "$ETL_ROOT/crates/etl-fetch-mail/tests/build_mail.py" --subject "Orders day 2" \
    --attach "day2.csv|day2.csv|text/csv" > Maildir/new/1700000002.M2P1.host
  export ETL_RUN_ID=run-2
  run -0 --separate-stderr pipeline "etl-fetch-mail --maildir Maildir --out-dir staging --state state.json | etl-parse --manifest | jq -r .order_id"
  assert_output A-3
}

@test "the manifest names the stored file, its sha256 and the message" {
  run -0 --separate-stderr etl-fetch-mail --maildir Maildir --out-dir staging
  path=$(jq -r .path <<<"$output")
  assert_equal "$(sha256sum day1.csv | cut -d' ' -f1)" "$(jq -r .sha256 <<<"$output")"
  assert_equal "$(sha256sum "$path" | cut -d' ' -f1)" "$(jq -r .sha256 <<<"$output")"
  assert_equal "$(jq -r '[.filename, .content_type, .size, .subject] | @tsv' <<<"$output")" "orders day1.csv	text/csv	$(stat -c %s day1.csv)	Orders day 1"
}
