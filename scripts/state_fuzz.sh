#!/usr/bin/env bash
# Forged aggregate states against the local cluster (scripts/state_fuzz.py):
#   scripts/state_fuzz.sh [N per aggregate, default 100] [seed]
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/pg.sh" start
exec python3 "$ROOT/scripts/state_fuzz.py" "host=$PLWASM_PGHOST port=$PLWASM_PGPORT user=postgres" \
    "$ROOT/udf-examples/build/timeseries.wasm" "${1:-100}" ${2:+"$2"}
