#!/usr/bin/env bats
# scripts/etl-run, the cron wrapper: lock, commit on success, retries of
# temporary failures, discard and a webhook alert on failure, the runs log.

load helpers

setup() {
  common_setup
  ETL_RUN="$ETL_ROOT/scripts/etl-run"
  unset ETL_RUN_ID
  # A pipeline whose stage records a pending watermark (t = 5), then exits $EXIT_WITH.
  cat > pipeline.sh <<'SH'
printf '{"t":5}\n' | etl-checkpoint filter --state state.json --key k --field t --type number > /dev/null
if [ -f fail-once ]; then rm fail-once; echo "upstream busy" >&2; exit 75; fi
echo "stage log line" >&2
# A careless tool in the pipeline prints secrets: etl-run must not forward them.
if [ -n "${LEAKY:-}" ]; then
  echo "connecting with password $ETL_IMAP_PASSWORD to https://etl:$ETL_IMAP_PASSWORD@db.example/w?token=tok-$ETL_IMAP_PASSWORD" >&2
  printf 'salt %s\n' "$ETL_MASK_SALT" >&2
fi
exit "${EXIT_WITH:-0}"
SH
}

@test "success: the pipeline's pending watermark is committed, one runs-log line" {
  run -0 "$ETL_RUN" --state state.json --runs-log runs.ndjson -- pipeline.sh
  run -0 --separate-stderr etl-checkpoint get --state state.json k
  assert_output 5
  run -0 jq -c '[.pipeline, .status, .exit_code, .attempts, (.duration_ms >= 0), (.run_id | length > 0)]' runs.ndjson
  assert_output '["pipeline.sh","ok",0,1,true,true]'
}

@test "a temporary failure (75) is retried with the same run id, then committed" {
  touch fail-once
  run -0 "$ETL_RUN" --state state.json --runs-log runs.ndjson --retries 2 --retry-delay 0.1 -- pipeline.sh
  assert_output --partial "retry 1 of 2"
  run -0 jq -c '[.status, .attempts]' runs.ndjson
  assert_output '["ok",2]'
  run -0 --separate-stderr etl-checkpoint get --state state.json k
  assert_output 5
}

@test "a final failure: pending discarded, the webhook alerted, the pipeline's exit code" {
  start_webhook
  export EXIT_WITH=65 ETL_IMAP_PASSWORD=supersecret-value ETL_MASK_SALT=salty-5ecret LEAKY=1
  run -65 "$ETL_RUN" --state state.json --runs-log runs.ndjson --notify-url "$HOOK_URL" -- pipeline.sh
  wait "$HOOK_PID" || true
  run -1 --separate-stderr etl-checkpoint get --state state.json k
  run -0 jq -r '.pending | length' state.json
  assert_output 0
  run -0 jq -r '[.pipeline, (.exit_code|tostring), (.attempts|tostring)] | join(" ")' hook.json
  assert_output "pipeline.sh 65 1"
  run -0 jq -r .text hook.json
  assert_output --partial "pipeline.sh failed with exit 65"
  run -0 jq -r '.log_tail | join("\n")' hook.json
  assert_output --partial "stage log line"
  run -0 jq -c '[.status, .exit_code]' runs.ndjson
  assert_output '["failed",65]'
  # Regression: the alert carried the last stderr lines unredacted. The
  # pipeline printed the secrets (the terminal still shows them); the alert
  # says where they were, never what they are.
  run -0 jq -r '.log_tail | join("\n")' hook.json
  assert_output --partial "connecting with password [redacted:ETL_IMAP_PASSWORD] to https://etl:***@db.example/w?token=***"
  assert_output --partial "salt [redacted:ETL_MASK_SALT]"
  [ -s hook.json ] && [ -s runs.ndjson ]
  for s in supersecret salty-5ecret; do
    run grep -c -F "$s" hook.json runs.ndjson
    assert_failure 1
  done
}

@test "two runs at once: the second exits 75 without running" {
  printf 'touch started; sleep 3\n' > slow.sh
  "$ETL_RUN" --lock run.lock -- slow.sh &
  first=$!
  for _ in $(seq 1 100); do [ -e started ] && break; sleep 0.05; done
  run -75 "$ETL_RUN" --lock run.lock --runs-log runs.ndjson -- pipeline.sh
  assert_output --partial "already running"
  wait "$first"
  [ ! -e runs.ndjson ]
}

@test "usage errors exit 64" {
  run -64 "$ETL_RUN" --retries x -- pipeline.sh
  run -64 "$ETL_RUN"
}
