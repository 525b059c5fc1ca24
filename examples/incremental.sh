#!/usr/bin/env bash
# An incremental load with two-phase checkpoints: only orders updated since
# the last successful run go downstream, and the watermark moves only when
# the whole pipeline succeeded. Replace `jq -c .` with your loader.
set -euo pipefail
export ETL_RUN_ID="${ETL_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
state="${ETL_STATE:-state.json}"
input="${1:?usage: incremental.sh EXPORT.ndjson}"

etl-checkpoint filter --state "$state" --key orders --field updated_at \
    --type timestamp --timezone "${ETL_TIMEZONE:-UTC}" --overlap 10m < "$input" \
  | jq -c . >> loaded.ndjson \
  && etl-checkpoint commit --state "$state"
