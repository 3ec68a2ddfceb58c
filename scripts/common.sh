# Shared settings for plwasm's scripts. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PG_BIN="$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
PGX_DIR="$("$PG_CONFIG" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)/pgxs"
# The local cluster the demo, tests and benchmarks use: not the system one.
PLWASM_PGDATA="${PLWASM_PGDATA:-/var/tmp/plwasm/pgdata}"
PLWASM_PGPORT="${PLWASM_PGPORT:-54329}"
PLWASM_PGHOST="${PLWASM_PGHOST:-/tmp}"
export PGHOST="$PLWASM_PGHOST" PGPORT="$PLWASM_PGPORT" PGUSER=postgres
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n==> %s\n' "$*"; }

# Run a command as the postgres OS user (PostgreSQL refuses to run as root).
as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
