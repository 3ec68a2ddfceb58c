#!/usr/bin/env bash
# Runs pg_regress/sql/*.sql against the installed extension on the local cluster and compares
# with pg_regress/expected/. Tests are listed in pg_regress/schedule; PLWASM_REGRESS_TESTS="setup
# aggregates" runs just those (setup first), for development.
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT/pg_regress"
out="${PLWASM_REGRESS_OUT:-/var/tmp/plwasm/regress$cluster_suffix}"
rm -rf "$out"; mkdir -p "$out"; chown postgres:postgres "$out"
schedule="$ROOT/pg_regress/schedule"
if [ -n "${PLWASM_REGRESS_TESTS:-}" ]; then
    schedule="$out/schedule"
    for t in $PLWASM_REGRESS_TESTS; do echo "test: $t"; done > "$schedule"
fi
started_at() { "$PG_BIN/psql" -XAtq -d postgres -c 'SELECT pg_postmaster_start_time()'; }
before=$(started_at)
log_lines_before=$(wc -l < "$PLWASM_PGDATA/server.log")
set +e
# This version's psql, and its pg_dump/pg_restore for the tests' shell commands.
as_postgres env PATH="$PG_BIN:$PATH" "$PGX_DIR/src/test/regress/pg_regress" --bindir="$PG_BIN" \
    --inputdir="$ROOT/pg_regress" --outputdir="$out" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=plwasm_regress --schedule="$schedule" | tee "$out/summary.txt"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] && [ -f "$out/regression.diffs" ]; then
    cat "$out/regression.diffs"
fi
# PostgreSQL 15 prints "test name ... ok 12 ms"; 16 and later print TAP, "ok 1 - name 12 ms"
# and "not ok 2 - name 12 ms".
passed=$(grep -cE '^(ok|test|     ) .* (\.\.\. ok|ok +[0-9]+ ms)|^ok [0-9]+ +[-+] ' "$out/summary.txt" || true)
failed=$(grep -cE 'FAILED|failed \(ignored\)|^not ok [0-9]+' "$out/summary.txt" || true)
# A backend that crashed makes the postmaster restart every session; pg_regress only notices
# if a test happened to be connected. The server's own log and start time tell for sure.
crashes=$(tail -n +"$((log_lines_before + 1))" "$PLWASM_PGDATA/server.log" | grep -cE 'terminated by signal|terminated by exception|exited with exit code ([2-9]|[1-9][0-9]+)|reinitializing' || true)
if [ "$crashes" -ne 0 ] || [ "$(started_at)" != "$before" ]; then
    echo "pg_regress: the server crashed or restarted during the run:" >&2
    tail -n +"$((log_lines_before + 1))" "$PLWASM_PGDATA/server.log" | grep -E 'terminated|exited with exit code' >&2
    failed=$((failed + 1)); status=1
fi
echo "pg_regress: $passed passed, $failed failed"
exit "$status"
