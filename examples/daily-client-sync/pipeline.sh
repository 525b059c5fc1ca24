#!/usr/bin/env bash
# The daily client sync: new report e-mails -> files -> rows -> DuckDB ->
# Google Sheets. Run it through etl-run (lock, timeout, commit, retries,
# alerts, the runs log), which also loads the settings of .env (or
# --env-file) the way every etlkit command does: the environment wins
# (see .env.example).
#
#   etl-run --timeout 20m --runs-log runs.ndjson -- examples/daily-client-sync/pipeline.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${ETL_STATE:?set ETL_STATE (the state file)}" "${ETL_OUT_DIR:?set ETL_OUT_DIR (where attachments go)}"
: "${ETL_DB:?set ETL_DB (the DuckDB file)}" "${ETL_SPREADSHEET_ID:?set ETL_SPREADSHEET_ID}"

source_args=()
if [ -n "${ETL_MAILDIR:-}" ]; then
  source_args=(--maildir "$ETL_MAILDIR")        # local mail (fetchmail/getmail, the demo)
fi                                              # else IMAP from ETL_IMAP_HOST, ETL_IMAP_USER, ...

etl-fetch-mail "${source_args[@]}" --from "${ETL_CLIENT_FROM:-reports@client.example}" \
    --attachment '*.csv' --attachment '*.zip' --attachment '*.xlsx' \
  | etl-parse --manifest --normalize-headers snake \
  | etl-transform --spec "$here/transform.toml" --rejects "${ETL_REJECTS:-rejects.ndjson}" --max-rejects 10 \
  | etl-merge --db "$ETL_DB" --table orders --key order_id --types 'amount=DECIMAL(12,2)' --emit table --order-by order_id \
  | etl-push-sheets --sheet "${ETL_SHEET:-Orders}"
