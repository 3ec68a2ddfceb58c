#!/usr/bin/env bash
# Builds plwasm in release mode and installs it into the PostgreSQL that PLWASM_PG names
# (15 by default; see common.sh).
source "$(dirname "$0")/common.sh"
log "building and installing the extension for PostgreSQL $PLWASM_PG"
cd "$ROOT/extension"
if [ "$PLWASM_PG" = 18 ]; then
    # The PyPI build of PostgreSQL 18 was compiled by a newer gcc, whose warning flags in its
    # CFLAGS Debian 12's gcc rejects; pgrx compiles its C shim with them, so use clang.
    export CC=clang
fi
cargo pgrx install --release --pg-config "$PG_CONFIG"
