#!/usr/bin/env bash
# plwasm on a Citus cluster end to end (scripts/citus_test.py): builds and installs Citus if
# needed, starts a coordinator and two workers (scripts/citus.sh), checks, stops them.
source "$(dirname "$0")/common.sh"
libdir="$("$PG_CONFIG" --pkglibdir)"
if [ ! -f "$libdir/citus.so" ] && ! ls "${PLWASM_CITUS_VENDOR:-$(cd "$ROOT/.." && pwd)/shared/vendor}"/citus-*.tar.gz >/dev/null 2>&1; then
    # Citus is not packaged here; without its release tarball there is nothing to build.
    echo "citus: SKIPPED: Citus is not installed for PostgreSQL $PLWASM_PG and no tarball is in ../shared/vendor (set PLWASM_CITUS_VENDOR)"
    exit 0
fi
"$ROOT/scripts/citus.sh" start
read -r coordinator _ <<<"$("$ROOT/scripts/citus.sh" ports)"
set +e
python3 "$ROOT/scripts/citus_test.py" "host=$PLWASM_PGHOST port=$coordinator user=postgres dbname=postgres" \
    "$ROOT/udf-examples/build/timeseries.wasm"
status=$?
set -e
# A backend that crashed on any node fails the run too.
for log in /var/tmp/plwasm/citus$cluster_suffix/node*/server.log; do
    if grep -E "terminated by signal|server process .* exited with exit code [^0]" "$log"; then
        echo "citus: a server process crashed ($log)" >&2
        status=1
    fi
done
"$ROOT/scripts/citus.sh" stop
exit $status
