#!/usr/bin/env bash
# Runs the daily client sync for every client in clients/*.env, one after
# the other (so memory stays that of one pipeline), each with its own
# state, lock, run id and runs-log line, through scripts/etl-run. One
# client's failure does not stop the others; the exit status is the worst.
#
#   examples/multi-client/run-all.sh [CLIENTS_DIR]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
clients=${1:-$here/clients}
worst=0
for env in "$clients"/*.env; do
  name=$(basename "$env" .env)
  state=$(grep -E '^ETL_STATE=' "$env" | cut -d= -f2-)
  echo "== $name" >&2
  ETL_ENV_FILE="$env" ETL_RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$name" \
    "$root/scripts/etl-run" --state "$state" --lock "${TMPDIR:-/tmp}/etl-run.$name.lock" \
      --runs-log "${ETL_RUNS_LOG:-runs.ndjson}" ${ETL_NOTIFY_URL:+--notify-url "$ETL_NOTIFY_URL"} \
      -- "$root/examples/daily-client-sync/pipeline.sh"
  code=$?
  [ "$code" -gt "$worst" ] && worst=$code
done
exit "$worst"
