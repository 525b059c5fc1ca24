#!/usr/bin/env bats
# etl-checkpoint in real shell pipelines: two-phase state, pipefail, head.

load helpers

setup() {
  common_setup
}

@test "the README example: two records out, an error naming line 3, exit 65" {
  run --separate-stderr $T etl-checkpoint filter --state s.json --key k --field id --type number \
    < <(printf '{"id":1}\n{"id":2}\nnot json\n')
  assert_equal "$status" 65
  assert_equal "$output" $'{"id":1}\n{"id":2}'
  echo "$stderr" | jq -e -s 'any(.level == "error" and (.msg | test("line 3")))' >/dev/null
}

@test "a successful pipeline followed by commit advances the watermark" {
  ndjson 1 5 > day1.ndjson
  export ETL_RUN_ID=run-1
  run pipeline 'etl-checkpoint filter --state s.json --key items --field id --type number < day1.ndjson | jq -c . > loaded.ndjson && etl-checkpoint commit --state s.json'
  assert_success
  assert_equal "$(wc -l < loaded.ndjson)" 5
  run --separate-stderr $T etl-checkpoint get --state s.json items
  assert_success
  assert_output 5
}

@test "a pipeline that fails after filter leaves the state; the next run delivers the same records" {
  ndjson 1 3 > day1.ndjson
  ETL_RUN_ID=run-1 pipeline 'etl-checkpoint filter --state s.json --key items --field id --type number < day1.ndjson > /dev/null && etl-checkpoint commit --state s.json'
  ndjson 1 6 > day2.ndjson
  cp s.json before.json

  # The loader fails: pipefail makes the pipeline fail, so commit never runs.
  export ETL_RUN_ID=run-2
  run pipeline 'etl-checkpoint filter --state s.json --key items --field id --type number < day2.ndjson | { cat > first-try.ndjson; exit 3; } && etl-checkpoint commit --state s.json'
  assert_failure 3
  assert_equal "$(jq -c .id first-try.ndjson | tr '\n' ' ')" "4 5 6 "
  run --separate-stderr $T etl-checkpoint get --state s.json items
  assert_output 3
  assert_equal "$(jq -c .committed before.json)" "$(jq -c .committed s.json)"

  # The next run gets the same three records again, and this time commits.
  export ETL_RUN_ID=run-3
  run pipeline 'etl-checkpoint filter --state s.json --key items --field id --type number < day2.ndjson > second-try.ndjson && etl-checkpoint commit --state s.json'
  assert_success
  cmp first-try.ndjson second-try.ndjson
  run --separate-stderr $T etl-checkpoint get --state s.json items
  assert_output 6
  # run-2's pending value is still there until discarded; discard removes it.
  assert_equal "$(jq -r '.pending | keys | join(",")' s.json)" "run-2"
  run $T etl-checkpoint discard --state s.json --run-id run-2
  assert_success
  assert_equal "$(jq -c .pending s.json)" "{}"
}

@test "| head -1 exits 0 without a panic or broken-pipe message" {
  ndjson 1 200000 > big.ndjson
  run --separate-stderr pipeline 'etl-checkpoint filter --state s.json --key items --field id --type number < big.ndjson | head -1'
  assert_success
  assert_output '{"id":1,"name":"item 1"}'
  refute [ -z "$stderr" ]
  [[ "$stderr" != *panicked* ]]
  [[ "$stderr" != *"Broken pipe"* ]]
  # Whatever was recorded as pending never goes past a record that was not delivered.
  if [ -f s.json ]; then
    run jq -r '[.pending[].values.items.value] | max // 0' s.json
    [ "$output" -lt 200000 ]
  fi
}

@test "stdout is data only: the output goes straight into jq, the logs are JSON lines" {
  ndjson 1 3 > in.ndjson
  run --separate-stderr $T etl-checkpoint filter --state s.json --key items --field id --type number in.ndjson
  assert_success
  assert_equal "$(echo "$output" | jq -s 'length')" 3
  # Every stderr line parses and has the contract fields.
  echo "$stderr" | jq -e -s 'length > 0 and all(.ts and .level and .cmd and .run_id and .msg)' >/dev/null
  echo "$stderr" | jq -e -s 'map(select(.msg == "summary")) | length == 1 and .[0].status == "ok" and .[0].records_in == 3 and .[0].records_out == 3' >/dev/null
}

@test "ETL_RUN_ID ties filter's pending value to commit; another run's commit does not take it" {
  ndjson 1 2 > in.ndjson
  ETL_RUN_ID=nightly-1 $T etl-checkpoint filter --state s.json --key items --field id --type number in.ndjson > /dev/null
  run $T etl-checkpoint commit --state s.json --run-id other-run
  assert_success
  run --separate-stderr $T etl-checkpoint get --state s.json items
  assert_failure 1
  ETL_RUN_ID=nightly-1 run $T etl-checkpoint commit --state s.json
  assert_success
  run --separate-stderr $T etl-checkpoint get --state s.json items
  assert_output 2
}

@test "rejects and summary files are written and parse" {
  printf '{"id":1}\n{"id":"x"}\n{"nope":1}\n{"id":4}\n' > in.ndjson
  run $T etl-checkpoint filter --state s.json --key k --field id --type number \
      --rejects rejects.ndjson --max-rejects 5 --summary summary.json in.ndjson
  assert_success
  assert_equal "$(jq -r '.line' rejects.ndjson | tr '\n' ' ')" "2 3 "
  assert_equal "$(jq -r '.stage' rejects.ndjson | sort -u)" "etl-checkpoint filter"
  assert_equal "$(jq -c '[.status, .records_in, .records_out, .records_rejected, .skipped]' summary.json)" '["ok",4,2,2,0]'
  # Nothing is lost: every input record is accounted for.
  jq -e '.records_in == .records_out + .records_rejected + .skipped' summary.json
}

@test "a corrupt state file is exit 78 and is not overwritten" {
  printf '{"version":1,"committed":{' > s.json
  run --separate-stderr $T etl-checkpoint filter --state s.json --key k --field id --type number < /dev/null
  assert_equal "$status" 78
  [[ "$stderr" == *s.json* ]]
  assert_equal "$(cat s.json)" '{"version":1,"committed":{'
}

@test "usage errors exit 64, a missing --state exits 78 naming ETL_STATE" {
  run $T etl-checkpoint filter --bogus
  assert_equal "$status" 64
  run --separate-stderr $T etl-checkpoint get k
  assert_equal "$status" 78
  [[ "$stderr" == *ETL_STATE* ]]
}
