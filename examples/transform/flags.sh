#!/bin/sh
# The same cleaning as orders.toml, written as flags (applied in command-line order).
# Usage: ETL_MASK_SALT=change-me sh examples/transform/flags.sh
set -eu
cd "$(dirname "$0")/../.."
etl-parse --normalize-headers snake examples/orders/day1.csv \
  | etl-transform \
      --trim '*' --null-if '*=N/A' --require order_id,amount,updated_at \
      --upper currency --default currency=EUR \
      --cast 'amount=decimal(12,2),updated_at=datetime:%Y-%m-%d %H:%M:%S' --timezone Europe/Paris \
      --filter 'amount > 0' \
      --set "amount_band=if(amount >= 1000, 'large', 'small')" \
      --unique order_id --mask customer=hash --add-run-id
