#!/usr/bin/env bash
# End-to-end check of plwasm-load against the local cluster: loads a .wat and a .wasm file,
# replaces a module, and shows a server error. Prints "plwasm-load e2e: N passed, M failed".
source "$(dirname "$0")/../../scripts/common.sh"
cd "$ROOT"
cargo build -q --release -p plwasm-load
load="$ROOT/target/release/plwasm-load"
db=plwasm_loader_test
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
psql -X -q -d "$db" -c "CREATE EXTENSION plwasm"

passed=0 failed=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED $1: expected [$2], got [$3]"; fi
}

echo '(module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))' > "$work/arith.wat"
out=$(PGDATABASE=$db "$load" "$work/arith.wat")
check "wat loads" 'installed wasm module "arith" (44 bytes, sha256 4e373bf1c62ee456a7015005e2a40815ce4213aa6aacf76b6ed936ba416630c2)' "$out"
psql -X -q -d "$db" -c "CREATE FUNCTION add_one(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith'"
check "function uses it" 42 "$(psql -X -Atq -d "$db" -c 'SELECT add_one(41)')"

# A binary file, under another name, replacing the first module's code through --name.
echo '(module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 2 i64.add))' > "$work/v2.wat"
"$load" "$work/v2.wat" --name scratch --dsn "host=$PGHOST port=$PGPORT dbname=$db user=postgres" >/dev/null
psql -X -Atq -d "$db" -c "COPY (SELECT wasm FROM plwasm.module_store WHERE name = 'scratch') TO STDOUT" \
    | sed 's/^\\\\x//' | xxd -r -p > "$work/add_two.wasm"
PGDATABASE=$db "$load" --name arith "$work/add_two.wasm" >/dev/null
check "replaced module is used" 43 "$(psql -X -Atq -d "$db" -c 'SELECT add_one(41)')"

# Errors come back with the server's message, and a failing exit status.
printf 'not wasm' > "$work/junk.wasm"
status=0; err=$(PGDATABASE=$db "$load" "$work/junk.wasm" 2>&1) || status=$?
check "bad module exits non-zero" 1 "$status"
check "bad module message" 'plwasm-load: ERROR: wasm module "junk" is not a WebAssembly binary' "$(echo "$err" | head -1)"

psql -X -q -d postgres -c "DROP DATABASE $db"
echo "plwasm-load e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
