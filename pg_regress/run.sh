#!/usr/bin/env bash
# Runs pg_regress/sql/*.sql against the installed extension on the local cluster and compares
# with pg_regress/expected/. Tests are listed in pg_regress/schedule.
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT/pg_regress"
out="${PLWASM_REGRESS_OUT:-/var/tmp/plwasm/regress}"
rm -rf "$out"; mkdir -p "$out"; chown postgres:postgres "$out"
set +e
as_postgres "$PGX_DIR/src/test/regress/pg_regress" \
    --inputdir="$ROOT/pg_regress" --outputdir="$out" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=plwasm_regress --schedule="$ROOT/pg_regress/schedule" | tee "$out/summary.txt"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] && [ -f "$out/regression.diffs" ]; then
    cat "$out/regression.diffs"
fi
passed=$(grep -cE '^(ok|test|     ) .* (\.\.\. ok|ok +[0-9]+ ms)' "$out/summary.txt" || true)
failed=$(grep -cE 'FAILED|failed \(ignored\)' "$out/summary.txt" || true)
echo "pg_regress: $passed passed, $failed failed"
exit "$status"
