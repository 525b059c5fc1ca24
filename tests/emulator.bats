#!/usr/bin/env bats
# etl-sheets-emulator as a shell user runs it: in the background, the
# address read from its first stdout line, a key from keygen, the admin
# endpoints and the Sheets API through curl, SIGTERM at the end.

load helpers

SA=etl-pipeline@etlkit-emulator.iam.gserviceaccount.com

setup() {
  common_setup
  mkfifo addr.fifo
  etl-sheets-emulator --listen 127.0.0.1:0 --state state.json --request-log req.ndjson \
    >addr.fifo 2>emu.log &
  EMU_PID=$!
  read -r -t 20 URL <addr.fifo
  [[ "$URL" == http://127.0.0.1:* ]]
}

teardown() {
  kill "$EMU_PID" 2>/dev/null || true
  wait "$EMU_PID" 2>/dev/null || true
}

# token: an access token for the authorized-user credentials in $1.
token() {
  curl -sf "$URL/token" \
    --data-urlencode grant_type=refresh_token \
    --data-urlencode "client_id=$(jq -r .client_id "$1")" \
    --data-urlencode "client_secret=$(jq -r .client_secret "$1")" \
    --data-urlencode "refresh_token=$(jq -r .refresh_token "$1")" | jq -r .access_token
}

@test "keygen writes Google's key format, mode 0600, token_uri at the emulator" {
  run -0 etl-sheets-emulator keygen --out key.json --endpoint "$URL"
  run -0 jq -r '[.type, .client_email, .token_uri, (.private_key | startswith("-----BEGIN PRIVATE KEY-----"))] | @tsv' key.json
  assert_output "service_account	$SA	$URL/token	true"
  run -0 stat -c %a key.json
  assert_output 600
}

@test "a curl session: create, write, read back, the request log records it" {
  etl-sheets-emulator keygen --out me.json --endpoint "$URL" --authorized-user --email me@example.com
  curl -sf "$URL/_emulator/spreadsheets" -d '{"spreadsheetId":"books","owner":"me@example.com"}' >/dev/null
  tok=$(token me.json)
  run -0 curl -sf -X PUT -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    "$URL/v4/spreadsheets/books/values/Sheet1!A1:B2?valueInputOption=USER_ENTERED" \
    -d '{"values":[["sku","qty"],["007","=2*21"]]}'
  assert_equal "$(jq -c '[.updatedRange, .updatedCells]' <<<"$output")" '["Sheet1!A1:B2",4]'
  run -0 curl -sf -H "Authorization: Bearer $tok" "$URL/v4/spreadsheets/books/values/Sheet1?valueRenderOption=UNFORMATTED_VALUE"
  assert_equal "$(jq -c .values <<<"$output")" '[["sku","qty"],[7,42]]'
  run -0 curl -sf -H "Authorization: Bearer $tok" "$URL/v4/spreadsheets/books/values/Sheet1!B2?valueRenderOption=FORMULA"
  assert_equal "$(jq -c .values <<<"$output")" '[["=2*21"]]'
  run -0 jq -sc '[.[] | select(.kind == "write" or .kind == "read") | [.method, .status, .cells]]' req.ndjson
  assert_output '[["PUT",200,4],["GET",200,4],["GET",200,1]]'
}

@test "no token: 401 with Google's body; SIGTERM exits 0 and keeps the state file" {
  curl -sf "$URL/_emulator/spreadsheets" -d '{"spreadsheetId":"s","owner":"me@example.com"}' >/dev/null
  run -0 curl -s -o body.json -w '%{http_code}' "$URL/v4/spreadsheets/s"
  assert_output 401
  run -0 jq -r .error.status body.json
  assert_output UNAUTHENTICATED
  kill -TERM "$EMU_PID"
  st=0
  wait "$EMU_PID" || st=$?
  assert_equal "$st" 0
  run -0 jq -r '.spreadsheets | keys[]' state.json
  assert_output s
}
