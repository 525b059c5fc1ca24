#!/usr/bin/env bats
# etl-run, the operations command, through real bash pipelines: lock,
# commit on success, retries of temporary failures, discard and a webhook
# alert on failure, the runs log, --each, the metrics file (read by the
# Prometheus client library's own parser) and the HTML report (opened in
# headless Chromium).

load helpers

setup() {
  common_setup
  ETL_RUN=etl-run
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
  # pipeline printed the secrets; the alert, the runs log and the lines
  # etl-run passes on say where they were, never what they are.
  run -0 jq -r '.log_tail | join("\n")' hook.json
  assert_output --partial "connecting with password [redacted:ETL_IMAP_PASSWORD] to https://etl:***@db.example/w?token=***"
  assert_output --partial "salt [redacted:ETL_MASK_SALT]"
  [ -s hook.json ] && [ -s runs.ndjson ]
  echo "$output" > passed-on.log
  for s in supersecret salty-5ecret; do
    run grep -c -F "$s" hook.json runs.ndjson passed-on.log
    assert_failure 1
  done
  # The failed run's line keeps the masked tail and the alert it sent.
  run -0 jq -r '.alerts | join(",")' runs.ndjson
  assert_output failed
  run -0 jq -r '.log_tail | join("\n")' runs.ndjson
  assert_output --partial "salt [redacted:ETL_MASK_SALT]"
}

@test "two runs at once: the second exits 75 without running, a skipped line in the runs log" {
  printf 'touch started; while [ ! -e release ]; do sleep 0.02; done\n' > slow.sh
  "$ETL_RUN" --lock run.lock -- slow.sh &
  first=$!
  for _ in $(seq 1 500); do [ -e started ] && break; sleep 0.02; done
  [ -e started ]
  run -75 "$ETL_RUN" --lock run.lock --runs-log runs.ndjson -- pipeline.sh
  assert_output --partial "already running"
  touch release
  wait "$first"
  run -0 jq -c '[.pipeline, .status, .exit_code, .attempts]' runs.ndjson
  assert_output '["pipeline.sh","skipped",75,0]'
  # The pipeline did not run: no pending state was written.
  [ ! -e state.json ]
}

@test "usage errors exit 64" {
  run -64 "$ETL_RUN" --retries x -- pipeline.sh
  run -64 "$ETL_RUN"
  mkdir plain && echo 'A=1' > plain/x.env && echo 'A=2' > plain/y.env
  run -64 "$ETL_RUN" --each 'plain/*.env' --state shared.json -- pipeline.sh
  assert_output --partial "would share --state"
}

# clients: three env files; b's pipeline fails with 65.
clients() {
  mkdir -p clients
  printf 'CLIENT_NAME=Alpha\nETL_STATE=%s\n' "$PWD/state-a.json" > clients/a.env
  printf 'CLIENT_NAME=Beta\nEXIT_WITH=65\nETL_STATE=%s\n' "$PWD/state-b.json" > clients/b.env
  printf 'CLIENT_NAME=Gamma\nETL_STATE=%s\n' "$PWD/state-c.json" > clients/c.env
  cat > client.sh <<'SH'
echo "$CLIENT_NAME $ETL_RUN_ID" > "seen-$CLIENT_NAME"
if [ -n "${BARRIER:-}" ]; then
  touch "started-$CLIENT_NAME"
  # Every client waits for the others: only --parallel 3 gets past this.
  for _ in $(seq 1 1500); do [ "$(ls started-* | wc -l)" -eq 3 ] && break; sleep 0.02; done
  [ "$(ls started-* | wc -l)" -eq 3 ] || exit 70
fi
printf '{"t":5}\n' | etl-checkpoint filter --key k --field t --type number | etl-parse --format ndjson > /dev/null
exit "${EXIT_WITH:-0}"
SH
}

@test "--each: three clients, one failing: each its own env, run id, state and runs-log line; the worst exit" {
  clients
  ETL_RUN_ID=nightly run -65 "$ETL_RUN" --each 'clients/*.env' --runs-log runs.ndjson --metrics-file metrics.prom -- client.sh
  run -0 cat seen-Alpha seen-Beta seen-Gamma
  assert_output "Alpha nightly-a
Beta nightly-b
Gamma nightly-c"
  run -0 jq -c '[.client, .status, .exit_code, .run_id, .rows_loaded]' runs.ndjson
  assert_output '["a","ok",0,"nightly-a",1]
["b","failed",65,"nightly-b",1]
["c","ok",0,"nightly-c",1]'
  # a and c committed their watermark; b's pending value was discarded.
  run -0 jq -c '[(.committed | length), (.pending | length)]' state-a.json state-b.json state-c.json
  assert_output '[1,0]
[0,0]
[1,0]'
  # The metrics file, read by the Prometheus client library's text parser.
  run -0 python3 - <<'PY'
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open("metrics.prom").read())}
ok = {s.labels["client"]: s.value for s in fams["etl_run_last_ok"].samples}
assert ok == {"a": 1, "b": 0, "c": 1}, ok
code = {s.labels["client"]: s.value for s in fams["etl_run_last_exit_code"].samples}
assert code == {"a": 0, "b": 65, "c": 0}, code
assert fams["etl_run_runs"].type == "counter", fams["etl_run_runs"].type
runs = {(s.labels["client"], s.labels["status"]): s.value for s in fams["etl_run_runs"].samples}
assert runs == {("a", "ok"): 1, ("b", "failed"): 1, ("c", "ok"): 1}, runs
assert {s.labels["client"] for s in fams["etl_run_last_success_timestamp_seconds"].samples} == {"a", "c"}
stages = {(s.labels["client"], s.labels["stage"], s.labels["direction"]): s.value
          for s in fams["etl_run_last_stage_records"].samples}
assert stages[("b", "etl-parse", "in")] == 1 and stages[("a", "etl-checkpoint", "out")] == 1, stages
rows = {s.labels["client"]: s.value for s in fams["etl_run_last_rows_loaded"].samples}
assert rows == {"a": 1, "b": 1, "c": 1}, rows
print("ok", len(fams))
PY
  assert_output --partial "ok "
}

@test "--each --parallel 3: the three clients run at once" {
  clients
  BARRIER=1 run -65 "$ETL_RUN" --each 'clients/*.env' --parallel 3 --runs-log runs.ndjson -- client.sh
  run -0 jq -s -c 'map([.client, .status]) | sort' runs.ndjson
  assert_output '[["a","ok"],["b","failed"],["c","ok"]]'
}

@test "the report: every pipeline and failure of the runs log is on the page, as headless Chromium renders it" {
  clients
  # Real runs: three clients twice, a lone pipeline ok then failing.
  for i in 1 2; do
    ETL_RUN_ID="night-$i" run -65 "$ETL_RUN" --each 'clients/*.env' --runs-log runs.ndjson -- client.sh
  done
  ETL_RUN_ID=solo-1 run -0 "$ETL_RUN" --state state.json --runs-log runs.ndjson -- pipeline.sh
  EXIT_WITH=78 ETL_RUN_ID=solo-2 run -78 "$ETL_RUN" --state state.json --runs-log runs.ndjson -- pipeline.sh
  run -0 "$ETL_RUN" report --runs-log runs.ndjson --out report.html
  [ -s report.html ]
  # The page asks for nothing from the network.
  run grep -cE '(src|href)="(https?:)?//' report.html
  assert_failure 1
  chrome=(chromium --headless --no-sandbox --disable-gpu --user-data-dir="$PWD/chrome" --window-size=1200,1600)
  run -0 $T "${chrome[@]}" --screenshot="$PWD/report.png" "file://$PWD/report.html"
  run -0 --separate-stderr $T "${chrome[@]}" --dump-dom "file://$PWD/report.html"
  echo "$output" > dom.html
  run -0 python3 - <<'PY'
import json, struct, zlib
from html.parser import HTMLParser
runs = [json.loads(l) for l in open("runs.ndjson")]
labels = {r["pipeline"] + ("/" + r["client"] if r.get("client") else "") for r in runs}
failed = {r["run_id"] for r in runs if r["status"] == "failed"}
class P(HTMLParser):
    sections, rows, marks, articles = set(), set(), set(), set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "pipeline" in (a.get("class") or ""):
            self.sections.add(a["data-pipeline"])
        if tag == "tr" and "data-pipeline" in a:
            self.rows.add(a["data-pipeline"])
        if tag == "circle" and a.get("class") == "fail":
            self.marks.add(a["data-run-id"])
        if tag == "article" and a.get("class") == "failure":
            self.articles.add(a["data-run-id"])
p = P(); p.feed(open("dom.html").read())
assert len(labels) == 4 and len(failed) == 3, (labels, failed)
assert p.sections == labels, (p.sections, labels)
assert p.rows == labels, (p.rows, labels)
assert p.marks == failed, (p.marks, failed)
assert p.articles == failed, (p.articles, failed)
# The screenshot: a PNG of the window's size that is not blank.
png = open("report.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", png[16:24])
assert (w, h) == (1200, 1600), (w, h)
idat, i = b"", 8
while i < len(png):
    n, kind = struct.unpack(">I4s", png[i:i + 8])
    if kind == b"IDAT":
        idat += png[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
dark = sum(1 for b in raw[::7] if b < 128)
assert dark > 500, dark   # text and charts drawn, not an empty page
print("ok", len(labels), len(failed), w, h)
PY
  assert_output "ok 4 3 1200 1600" || { echo "$output"; return 1; }
}

@test "on a terminal the stages' logs show as text; the runs log still gets their summaries" {
  unset ETL_LOG_FORMAT
  printf 'a,b\n1,2\n3,4\n' > in.csv
  printf 'etl-parse in.csv > /dev/null\n' > parse.sh
  # A real pseudo-terminal (util-linux script) for etl-run's stderr.
  run -0 script -qfec "etl-run --runs-log runs.ndjson -- parse.sh" /dev/null
  assert_output --partial "etl-parse: info: summary status=ok"
  assert_output --partial "etl-run: info: parse.sh ok: 2 rows loaded"
  refute_output --partial '"cmd":"etl-parse"'
  run -0 jq -c '.stages | map([.cmd, .records_out])' runs.ndjson
  assert_output '[["etl-parse",2]]'
}

@test "SIGTERM to etl-run: the pipeline hears it, its pending state is discarded, the runs log says interrupted" {
  cat > long.sh <<'SH'
printf '{"t":7}\n' | etl-checkpoint filter --state state.json --key k --field t --type number > /dev/null
trap 'echo stopped > got-term; exit 143' TERM
touch started
while :; do sleep 0.02; done
SH
  ETL_RUN_ID=run-t "$ETL_RUN" --state state.json --runs-log runs.ndjson -- long.sh 2> run.log &
  runner=$!
  for _ in $(seq 1 1500); do [ -e started ] && break; sleep 0.02; done
  [ -e started ]
  run -0 jq -r '.pending | keys[]' state.json
  assert_output run-t
  kill -TERM "$runner"
  # Not under `run`: only this shell, etl-run's parent, can wait for it.
  status=0
  wait "$runner" || status=$?
  [ "$status" -eq 143 ] || { echo "etl-run exited $status:"; cat run.log; return 1; }
  run -0 cat got-term
  assert_output stopped
  run -0 jq -c '[(.committed | length), (.pending | length)]' state.json
  assert_output '[0,0]'
  run -0 jq -c '[.status, .signal, .exit_code, .attempts]' runs.ndjson
  assert_output '["interrupted","SIGTERM",143,1]'
}
