#!/usr/bin/env bash
# An incremental load with two-phase checkpoints: parse a client's export,
# pass only the orders updated since the last successful run, and move the
# watermark only when the whole pipeline succeeded. Replace `jq -c .` with
# your loader (etl-merge once it exists).
set -euo pipefail
export ETL_RUN_ID="${ETL_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
state="${ETL_STATE:-state.json}"
export="${1:?usage: incremental.sh EXPORT.csv}"

etl-parse --normalize-headers snake "$export" \
  | etl-checkpoint filter --state "$state" --key orders --field updated_at \
      --type timestamp --timezone "${ETL_TIMEZONE:-UTC}" --overlap 10m \
  | jq -c . >> loaded.ndjson \
  && etl-checkpoint commit --state "$state"
