#!/usr/bin/env bats
# Secrets never leave the machine through what etlkit writes about its work.
# Known secret values are set everywhere a secret can come from (the
# environment, files, commands, URL credentials and query strings, the
# service-account key, the tokens Google issues, the webhook's URL), every
# command, the demo and the cron wrapper run at ETL_LOG=debug, and every
# log, summary, rejects file, runs log, state file and alert body is
# searched for them: zero hits. (IMAP passwords against a real Dovecot:
# crates/etl-fetch-mail/tests/imap.rs, imap_secrets_never_reach_a_log.)

load helpers

setup() {
  common_setup
  export ETL_LOG=debug
  SALT=salt-5f1e9c0d IMAP_PW=imap-pw-7c3a11 URL_TOKEN=tok-3e8d2a91 URL_PW=urlpw-4b7c19 HOOK_TOKEN=hook-9d1c77aa
  export ETL_MASK_SALT=$SALT ETL_IMAP_PASSWORD=$IMAP_PW
  printf '%s\n' "$IMAP_PW" > pw.txt
  cp -r "$ETL_ROOT/examples/mail" mail
  for f in mail/new/*; do n=$(basename "$f"); touch -d "@${n%%.*}" "$f"; done
  export ETL_MAILDIR="$PWD/mail" ETL_STATE="$PWD/state.json" ETL_OUT_DIR="$PWD/files" \
    ETL_DB="$PWD/w.duckdb" ETL_REJECTS="$PWD/rejects.ndjson" ETL_SPREADSHEET_ID=book \
    ETL_ENV_FILE=/dev/null ETL_SHEETS_MAX_RETRIES=1 ETL_SHEETS_RETRY_BASE_MS=10
  JOB="$ETL_ROOT/examples/daily-client-sync/pipeline.sh"
}

teardown() {
  stop_emulator
  [ -z "${FILES_PID:-}" ] || { kill "$FILES_PID" 2>/dev/null; wait "$FILES_PID" 2>/dev/null; } || true
}

# serve_files: a loopback HTTP server answering every GET with orders.csv
# (one row bad), logging each request's path (query included) to served.log.
serve_files() {
  printf 'order_id,amount\nA-1,1.00\nA-2,2.00,extra\n' > orders.csv
  python3 - > files.port <<'PY' &
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open("served.log", "a").write(self.path + "\n")
        body = open("orders.csv", "rb").read()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
  FILES_PID=$!
  for _ in $(seq 1 100); do [ -s files.port ] && break; sleep 0.1; done
  [ -s files.port ]
  FILES_URL="http://etl:$URL_PW@127.0.0.1:$(cat files.port)"
}

@test "every command, the demo and the wrapper at debug level: no secret in any log, summary, rejects file, runs log or alert" {
  # 1. The demo, as the README runs it (its own emulator and key).
  ETL_DEMO_DIR="$PWD/demo" run -0 timeout 600 "$ETL_ROOT/scripts/demo"
  echo "$output" > demo.out
  # 2. The daily job under the cron wrapper: Google down (an alert to a
  #    webhook whose URL carries a token), then a good run.
  start_emulator --state emu.json --fail-rate 1 --fail-status 503
  new_spreadsheet book
  start_webhook "?token=$HOOK_TOKEN"
  ETL_RUN_ID=run-1 run -69 etl-run --state state.json --retries 0 \
    --runs-log runs.ndjson --notify-url "$HOOK_URL" -- "$JOB"
  echo "$output" > job.out
  wait "$HOOK_PID" || true
  [ -s hook.json ]
  stop_emulator
  start_emulator --state emu.json
  ETL_RUN_ID=run-2 run -0 etl-run --state state.json --retries 0 --runs-log runs.ndjson -- "$JOB"
  echo "$output" >> job.out
  grep -q '"level":"debug"' job.out   # the most verbose logs were on
  # 3. Each command on its own, with --summary and --rejects.
  serve_files
  run -0 --separate-stderr etl-parse --max-rejects 5 --rejects parse-rejects.ndjson --summary parse.json \
    --provenance "$FILES_URL/orders.csv?token=$URL_TOKEN&sig=$URL_TOKEN"
  echo "$output" > parse.out; echo "$stderr" > parse.err
  grep -q "token=$URL_TOKEN" served.log   # the secret did reach the server
  [ -s parse-rejects.ndjson ]
  run -0 --separate-stderr bash -c "printf '{\"id\":1,\"name\":\"x\"}\n' \
    | etl-checkpoint filter --state cp.json --key k --field id --type number --summary cp.json.summary"
  echo "$stderr" > checkpoint.err
  run --separate-stderr bash -c "set -o pipefail; etl-fetch-mail --maildir mail --out-dir files2 --state state2.json --password-file pw.txt --summary fetch.json \
      --from reports@client.example --attachment '*.csv' --attachment '*.zip' --attachment '*.xlsx' \
    | etl-parse --manifest --normalize-headers snake --summary parse2.json \
    | etl-transform --spec '$ETL_ROOT/examples/daily-client-sync/transform.toml' --max-rejects 10 --rejects t-rejects.ndjson --summary transform.json \
    | etl-merge --db w2.duckdb --table orders --key order_id --types 'amount=DECIMAL(12,2)' --summary merge.json --emit table \
    | etl-push-sheets --spreadsheet book --sheet Copy --summary push.json"
  echo "$stderr" > commands.err
  [ "$status" -eq 0 ] || { grep -E '"level":"(error|warn)"' commands.err | tail -5; return 1; }
  [ -s push.json ] && [ -s merge.json ] && [ -s fetch.json ]
  # The secrets: the ones set above, the service account's private key, and
  # the access tokens the emulator issued.
  secrets=("$SALT" "$IMAP_PW" "$URL_TOKEN" "$URL_PW" "$HOOK_TOKEN" "$(jq -r .private_key key.json | sed -n 2p)")
  stop_emulator
  mapfile -t tokens < <(jq -r '.. | objects | .tokens? // empty | keys[]' emu.json)
  [ "${#tokens[@]}" -gt 0 ]
  written=(demo.out demo/runs.ndjson demo/rejects.ndjson demo/state.json job.out runs.ndjson rejects.ndjson
    state.json hook.json parse.out parse.err parse.json parse-rejects.ndjson checkpoint.err cp.json.summary
    commands.err fetch.json state2.json parse2.json transform.json t-rejects.ndjson merge.json push.json)
  for f in "${written[@]}"; do [ -e "$f" ] || { echo "missing: $f" >&2; return 1; }; done
  for s in "${secrets[@]}" "${tokens[@]}"; do
    [ "${#s}" -ge 8 ]
    run grep -rlF -e "$s" "${written[@]}" files
    assert_failure 1
  done
  # Where the URL was named, it was named masked.
  run -0 grep -c 'orders.csv?token=\*\*\*&sig=\*\*\*' parse.err
}
