#!/usr/bin/env bash
# Runs the daily client sync for every client in clients/*.env, one after
# the other (so memory stays that of one pipeline), with etl-run --each:
# each client has its own settings, state (ETL_STATE in its file), lock,
# run id and runs-log line; one client's failure does not stop the others;
# the exit status is the worst.
#
#   examples/multi-client/run-all.sh [CLIENTS_DIR] [etl-run options...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
clients=${1:-$here/clients}
shift || true
exec etl-run --each "$clients/*.env" --runs-log "${ETL_RUNS_LOG:-runs.ndjson}" "$@" \
  -- "$root/examples/daily-client-sync/pipeline.sh"
