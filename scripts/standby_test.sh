#!/usr/bin/env bash
# Hot standby end to end (scripts/standby_test.py): sets up a database on the private
# cluster, makes a streaming standby of it, checks plwasm there, and removes the standby.
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/pg.sh" start
primary="host=$PLWASM_PGHOST port=$PLWASM_PGPORT user=postgres"
standby="host=$PLWASM_PGHOST port=$("$ROOT/scripts/standby.sh" port) user=postgres"
python3 "$ROOT/scripts/standby_test.py" "$primary" "$standby" setup "$ROOT/udf-examples/build/timeseries.wasm"
"$ROOT/scripts/standby.sh" start
set +e
python3 "$ROOT/scripts/standby_test.py" "$primary" "$standby" check
status=$?
set -e
"$ROOT/scripts/standby.sh" stop
"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS plwasm_standby" >/dev/null
exit $status
