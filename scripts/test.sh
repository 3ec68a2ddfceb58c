#!/usr/bin/env bash
# The whole test suite: lints, unit and wasmtime tests of the core crate, then the extension
# built, installed and exercised through PostgreSQL's own pg_regress, the loader and the
# fuzzer, on PostgreSQL 15 and 18 (PLWASM_TEST_PG="15" for one). Installs what it needs first.
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh"

log "cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings

log "cargo test (plwasm-contract, plwasm-core, plwasm-load)"
# cargo's own exit status decides: a test binary that crashes (signal, abort) fails the run
# even though it prints no "test result" line.
set +e
cargo test --release -p plwasm-contract -p plwasm-core -p plwasm-load 2>&1 | tee /tmp/plwasm-cargo-test.log | grep -E '^(test |test result|error)'
cargo_status=${PIPESTATUS[0]}
set -e
if [ "$cargo_status" -ne 0 ]; then
    echo "cargo test failed (exit status $cargo_status)" >&2; tail -50 /tmp/plwasm-cargo-test.log >&2; exit 1
fi

log "cargo test (guest SDK and its macros, natively; guest-side libraries: downsample, timeseries)"
cargo test -q --release --manifest-path "$ROOT/udf-examples/Cargo.toml" \
    -p plwasm-guest -p plwasm-guest-macros -p downsample -p timeseries-rust

log "building the example guest modules"
"$ROOT/udf-examples/build.sh"

# The server-side suite on each PostgreSQL (one cluster each, on its own port).
for PLWASM_PG in ${PLWASM_TEST_PG:-15 18}; do
    export PLWASM_PG
    "$ROOT/scripts/install.sh"
    "$ROOT/scripts/pg.sh" restart

    log "pg_regress on PostgreSQL $PLWASM_PG"
    "$ROOT/pg_regress/run.sh"

    log "plwasm-load end to end on PostgreSQL $PLWASM_PG"
    "$ROOT/loader/tests/e2e.sh"

    log "hot standby on PostgreSQL $PLWASM_PG"
    "$ROOT/scripts/standby_test.sh"

    log "Citus coordinator and two workers on PostgreSQL $PLWASM_PG"
    "$ROOT/scripts/citus_test.sh"

    log "fuzzing: 300 random modules against PostgreSQL $PLWASM_PG"
    "$ROOT/scripts/fuzz.sh" 300

    log "fuzzing: 500 forged aggregate states against PostgreSQL $PLWASM_PG"
    "$ROOT/scripts/state_fuzz.sh" 100
done
