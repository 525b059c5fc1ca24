# Shared set-up for the bats suites: the built binaries first on PATH, a
# scratch working directory per test, and bats-assert.
#
# Binaries come from $ETL_BIN_DIR (scripts/test sets it from
# CARGO_TARGET_DIR), else target/debug of this checkout; etl-merge from
# $ETL_RELEASE_DIR (target/release).

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

ETL_ROOT="$(cd "$(dirname "${BATS_TEST_FILENAME}")/.." && pwd)"
ETL_BIN_DIR="${ETL_BIN_DIR:-${CARGO_TARGET_DIR:-$ETL_ROOT/target}/debug}"
# etl-merge (DuckDB) is built in release only; see scripts/test.
ETL_RELEASE_DIR="${ETL_RELEASE_DIR:-${CARGO_TARGET_DIR:-$ETL_ROOT/target}/release}"
export PATH="$ETL_BIN_DIR:$ETL_RELEASE_DIR:$PATH"
# Every call is bounded: a hung pipeline fails its test instead of CI.
T="timeout 60"

common_setup() {
  [ -x "$ETL_BIN_DIR/etl-checkpoint" ] || {
    echo "etl-checkpoint not built in $ETL_BIN_DIR (run cargo build or scripts/test)" >&2
    return 1
  }
  cd "$BATS_TEST_TMPDIR" || return 1
  unset ETL_RUN_ID ETL_STATE ETL_LOG ETL_TIMEZONE GOOGLE_APPLICATION_CREDENTIALS ETL_SHEETS_API_URL ETL_SPREADSHEET_ID
  export ETL_LOG_FORMAT=json
}

# pipeline 'shell text': runs it under bash with pipefail, bounded in time.
pipeline() {
  $T bash -c "set -o pipefail; $1"
}

# ndjson N M: records {"id":N}..{"id":M} with a payload, one per line.
ndjson() {
  seq "$1" "$2" | jq -c '{id: ., name: ("item " + tostring)}'
}

# start_emulator [ARGS...]: etl-sheets-emulator in the background on a free
# port ($URL, $EMU_PID), with a service-account key in key.json (account
# $SA) and GOOGLE_APPLICATION_CREDENTIALS/ETL_SHEETS_API_URL pointing at it.
SA=etl-pipeline@etlkit-emulator.iam.gserviceaccount.com
start_emulator() {
  rm -f emu-addr.fifo && mkfifo emu-addr.fifo
  etl-sheets-emulator --listen 127.0.0.1:0 "$@" >emu-addr.fifo 2>emu.log &
  EMU_PID=$!
  read -r -t 20 URL <emu-addr.fifo || return 1
  etl-sheets-emulator keygen --out key.json --endpoint "$URL" 2>/dev/null || return 1
  export GOOGLE_APPLICATION_CREDENTIALS="$PWD/key.json" ETL_SHEETS_API_URL="$URL"
}

stop_emulator() {
  [ -n "${EMU_PID:-}" ] || return 0
  kill "$EMU_PID" 2>/dev/null || true
  wait "$EMU_PID" 2>/dev/null || true
}

# new_spreadsheet ID: a spreadsheet owned by $SA.
new_spreadsheet() {
  curl -sf "$URL/_emulator/spreadsheets" -d "{\"spreadsheetId\":\"$1\",\"owner\":\"$SA\"}" >/dev/null
}

# sheet_values ID TITLE: the sheet as a user sees it, one JSON array per row.
sheet_values() {
  curl -sf "$URL/_emulator/spreadsheets/$1/sheets/$2" | jq -c '.formatted[]'
}

# duckdb_count: rows of table orders in $ETL_DB, read back by etl-merge's
# own --query (a read-only SELECT), not by the pipeline.
duckdb_count() {
  etl-merge --db "$ETL_DB" --table orders --key order_id --query 'SELECT count(*) AS n FROM orders' < /dev/null 2>/dev/null | jq -r .n
}

# descendant_pids PID NAME: the pids of the processes called NAME among the
# descendants of PID (from ps), so a test ends only processes it started,
# never every process of that name on the machine.
descendant_pids() {
  ps -e -o pid=,ppid=,comm= | awk -v root="$1" -v name="$2" '
    { pid[NR] = $1; ppid[NR] = $2; comm[NR] = $3 }
    END {
      inside[root] = 1
      do {
        changed = 0
        for (i = 1; i <= NR; i++)
          if ((ppid[i] in inside) && !(pid[i] in inside)) { inside[pid[i]] = 1; changed = 1 }
      } while (changed)
      for (i = 1; i <= NR; i++) if ((pid[i] in inside) && pid[i] != root && comm[i] == name) print pid[i]
    }'
}

# start_webhook [SUFFIX]: a loopback HTTP listener saving the first POST body
# to hook.json ($HOOK_URL, with SUFFIX appended, e.g. a query; $HOOK_PID);
# it ends after that one request.
start_webhook() {
  python3 - > hook.port <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open("hook.json", "wb").write(body)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.handle_request()
PY
  HOOK_PID=$!
  for _ in $(seq 1 100); do [ -s hook.port ] && break; sleep 0.1; done
  [ -s hook.port ] || { echo "the webhook listener did not start" >&2; return 1; }
  HOOK_URL="http://127.0.0.1:$(cat hook.port)/alert${1:-}"
}


# pg_cluster_start: a throwaway PostgreSQL cluster for one bats file (call it
# from setup_file): initdb in a temporary directory (as the postgres user
# when run as root), SCRAM with the password etl-bats-pw, a free loopback
# port. Exports PGBIN, PGDIR and PGPORT_FREE. pg_cluster_stop (from
# teardown_file) stops that cluster by its data directory and removes it.
pg_cluster_start() {
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  export PGBIN
  PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/etl-bats-pg.XXXXXX")
  export PGDIR
  chmod 755 "$PGDIR"
  echo etl-bats-pw > "$PGDIR/pw"
  [ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$PGDIR"
  pg_as_owner "$PGBIN/initdb" -D "$PGDIR/data" -U etl --pwfile="$PGDIR/pw" --auth=scram-sha-256 -E UTF8 --no-sync > /dev/null
  PGPORT_FREE=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export PGPORT_FREE
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nfsync = off\n" \
    "$PGPORT_FREE" "$PGDIR" >> "$PGDIR/data/postgresql.conf"
  pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start > /dev/null
}

pg_cluster_stop() {
  pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop > /dev/null 2>&1 || true
  rm -rf "$PGDIR"
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd "$PGDIR" && runuser -u postgres -- "$@"); else "$@"; fi
}

# pg_client_env: libpq's variables for the cluster, the password in a
# ~/.pgpass of the test's own (never in a variable or a URL).
pg_client_env() {
  export HOME="$BATS_TEST_TMPDIR"
  printf '127.0.0.1:%s:*:etl:etl-bats-pw\n' "$PGPORT_FREE" > "$HOME/.pgpass"
  chmod 600 "$HOME/.pgpass"
  export PGHOST=127.0.0.1 PGPORT=$PGPORT_FREE PGUSER=etl PGDATABASE=postgres PGSSLMODE=disable
  unset PGPASSWORD ETL_DB
}
