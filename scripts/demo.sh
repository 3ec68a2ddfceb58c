#!/usr/bin/env bash
# Sets everything up on a fresh machine (packages, cargo-pgrx, build, install, a local
# PostgreSQL 15 run as user postgres), then runs the demo: 10 million generated points
# downsampled (LTTB, M4) and summarised by wasm aggregates, and a PNG chart of one device.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install.sh"
log "building the timeseries guest module"
cargo build -q --release --target wasm32-unknown-unknown -p timeseries-rust --manifest-path udf-examples/Cargo.toml
mkdir -p udf-examples/build /var/tmp/plwasm
cp udf-examples/target/wasm32-unknown-unknown/release/timeseries_rust.wasm udf-examples/build/timeseries.wasm
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
"$ROOT/scripts/pg.sh" start
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS plwasm_demo" -c "CREATE DATABASE plwasm_demo"
psql -X -q -d plwasm_demo -c "CREATE EXTENSION plwasm"
log "demo"
chmod 777 /var/tmp/plwasm
psql -X -q -d plwasm_demo -f scripts/demo.sql
python3 scripts/demo_chart.py /var/tmp/plwasm "$ROOT/docs/demo.png"
log "done: chart in docs/demo.png; connect with  psql -h $PLWASM_PGHOST -p $PLWASM_PGPORT -U postgres plwasm_demo"
