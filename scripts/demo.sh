#!/usr/bin/env bash
# Sets everything up on a fresh machine (packages, cargo-pgrx, build, install, a local
# PostgreSQL 15 run as user postgres) and runs the demo on generated data.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install.sh"
"$ROOT/scripts/pg.sh" start
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS plwasm_demo" -c "CREATE DATABASE plwasm_demo"
psql -X -q -d plwasm_demo -c "CREATE EXTENSION plwasm"
log "demo"
psql -X -q -d plwasm_demo -f scripts/demo.sql
log "done: connect with  psql -h $PLWASM_PGHOST -p $PLWASM_PGPORT -U postgres plwasm_demo"
