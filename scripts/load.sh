#!/usr/bin/env bash
# Load test against the local cluster: scripts/load.sh [SECONDS, default 60] [MILLION_CALLS, default 10].
# Needs the extension installed (scripts/install.sh) and psycopg from PyPI (scripts/setup.sh).
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/pg.sh" start
"$PG_BIN/psql" -XAtq -d postgres -c "DROP DATABASE IF EXISTS plwasm_load" -c "CREATE DATABASE plwasm_load"
PLWASM_LOAD_DSN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=plwasm_load" PGBENCH="$PG_BIN/pgbench" \
    exec python3 "$ROOT/scripts/load.py" "${1:-60}" "${2:-10}"
