#!/usr/bin/env bash
# Load a client's CSV exports into PostgreSQL instead of a DuckDB file: the
# same pipeline, `--db` a postgres:// URL. The password is not in the URL:
# libpq's PGPASSWORD or ~/.pgpass (chmod 0600) provide it, and the server's
# certificate is checked against its CA (sslmode=verify-full).
#
#   PGHOST=db.internal PGUSER=etl PGDATABASE=warehouse \
#   PGSSLMODE=verify-full PGSSLROOTCERT=ca.pem \
#     examples/postgres/load.sh examples/orders/day1.csv examples/orders/day2.csv.gz
#
# Several hosts may run this against one warehouse at once: writers of one
# table take turns from the end of staging to COMMIT, each key ends up once,
# and a run killed at any instant changes nothing (run it again).
set -euo pipefail
export ETL_RUN_ID="${ETL_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
db="${ETL_DB:-postgres://}"
[ "$#" -gt 0 ] || { echo "usage: load.sh EXPORT.csv..." >&2; exit 64; }

for export in "$@"; do
  etl-parse --normalize-headers snake "$export" \
    | etl-merge --db "$db" --schema "${ETL_SCHEMA:-sales}" --table orders --key order_id \
        --types 'amount=numeric(12,2),updated_at=timestamp' --on-new-column add \
        --rejects "rejects-$(basename "$export").ndjson"
done
# What landed, as NDJSON (a read-only transaction).
etl-merge --db "$db" --schema "${ETL_SCHEMA:-sales}" --table orders --key order_id \
  --query 'SELECT count(*) AS orders, sum(amount) AS total FROM sales.orders' < /dev/null
