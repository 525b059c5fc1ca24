#!/usr/bin/env bats
# etl-transform in real shell pipelines: spec files, exact decimals, rejects,
# schema drift, masking, and a closed stdout.

load helpers

setup() {
  common_setup
  unset ETL_MASK_SALT ETL_MASK_SALT_FILE ETL_TRANSFORM_SPEC
  SPEC="$ETL_ROOT/examples/transform/orders.toml"
  ORDERS="$ETL_ROOT/examples/orders/day1.csv"
}

@test "the example spec cleans the example orders: exact amounts, UTC times, hashed customers" {
  export ETL_MASK_SALT=test-salt ETL_RUN_ID=run-1
  run --separate-stderr pipeline "etl-parse --normalize-headers snake '$ORDERS' | etl-transform --spec '$SPEC' > out.ndjson"
  assert_success
  [[ "$stderr" != *test-salt* ]]
  assert_equal "$(wc -l < out.ndjson)" 3
  # The amount keeps its two decimals (jq would print 1234.5, so grep the text).
  grep -q '"amount":1234.50,' out.ndjson
  assert_equal "$(head -1 out.ndjson | jq -c '[.order_id, .updated_at, .amount_band, ._run_id, (.customer | length)]')" \
    '["A-1001","2026-11-20T08:15:00Z","large","run-1",64]' 
}

@test "--check validates the example spec without reading input" {
  run --separate-stderr $T etl-transform --check --spec "$SPEC" < /dev/zero
  assert_success
  assert_output ''
}

@test "--check names the line and column of a bad expression, exit 78" {
  printf '[[step]]\nrename = "a=b"\n\n[[step]]\nfilter = "amount >> 1"\n' > bad.toml
  run --separate-stderr $T etl-transform --check --spec bad.toml
  assert_equal "$status" 78
  echo "$stderr" | jq -e -s 'any(.level == "error" and (.msg | startswith("bad.toml:5:19: filter: bad expression")))' >/dev/null
}

@test "decimals stay exact through a pipeline" {
  run --separate-stderr pipeline "printf '{\"a\":\"0.1\",\"b\":\"0.2\",\"big\":\"12345678901234567890.01\"}\n' | etl-transform --cast 'a=decimal,b=decimal,big=decimal' --set 'sum=a + b' --set 'same=big + 0'"
  assert_success
  assert_output '{"a":0.1,"b":0.2,"big":12345678901234567890.01,"sum":0.3,"same":12345678901234567890.01}'
}

@test "every record is accounted for: out + filtered + rejected = in" {
  printf '{"id":1,"n":"5"}\n{"id":2,"n":"x"}\n{"id":3,"n":"1"}\nnot json\n{"id":1,"n":"9"}\n' > in.ndjson
  run --separate-stderr $T etl-transform --cast n=int --filter 'n > 2' --unique id \
      --rejects rejects.ndjson --max-rejects 5 --summary summary.json in.ndjson
  assert_success
  assert_output '{"id":1,"n":5}'
  assert_equal "$(jq -r '.line' rejects.ndjson | tr '\n' ' ')" "2 4 5 "
  jq -e '.records_in == .records_out + .records_rejected + .filtered_out' summary.json
  assert_equal "$(jq -c '[.steps[] | [.name, .records_in, .records_out, .filtered_out, .rejected]]' summary.json)" \
    '[["cast",4,3,0,1],["filter",3,2,1,0],["unique",2,1,0,1]]'
  # A reject keeps the record as it came in, and names the step and field.
  assert_equal "$(jq -c 'select(.line == 2) | [.input, (.error | test("step 1 \\(cast\\): field n"))]' rejects.ndjson)" \
    '[{"id":2,"n":"x"},true]'
}

@test "schema drift fails the pipeline with 65 and lists the differences" {
  printf '[[column]]\nname = "id"\ntype = "int"\n' > schema.toml
  run --separate-stderr pipeline "printf '{\"id\":1}\n{\"id\":2,\"surprise\":1}\n' | etl-transform --schema schema.toml | jq -c ."
  assert_equal "$status" 65
  assert_output '{"id":1}'
  echo "$stderr" | jq -e -s 'any(.level == "error" and (.msg | test("added column\\(s\\): surprise")))' >/dev/null
  run --separate-stderr pipeline "printf '{\"id\":1}\n{\"id\":2,\"surprise\":1}\n' | etl-transform --schema schema.toml --on-drift warn | wc -l"
  assert_success
  assert_output 2
}

@test "a hash mask without a salt refuses to start (78) and reads nothing" {
  run --separate-stderr $T etl-transform --mask email=hash < /dev/zero
  assert_equal "$status" 78
  echo "$stderr" | jq -e -s 'any(.msg | test("ETL_MASK_SALT"))' >/dev/null
}

@test "| head -1 exits 0 without a panic or broken-pipe message" {
  ndjson 1 200000 > big.ndjson
  run --separate-stderr pipeline 'etl-transform --rename name=label --filter "id > 0" < big.ndjson | head -1'
  assert_success
  assert_output '{"id":1,"label":"item 1"}'
  [[ "$stderr" != *panicked* ]]
  [[ "$stderr" != *"Broken pipe"* ]]
}

@test "rename and numeric filter give what jq gives" {
  ndjson 1 500 > in.ndjson
  etl-transform --rename name=label --filter 'id % 7 = 0 and id > 100' < in.ndjson > ours.ndjson
  jq -c 'select(.id % 7 == 0 and .id > 100) | {id, label: .name}' in.ndjson > theirs.ndjson
  cmp ours.ndjson theirs.ndjson
}
