#!/usr/bin/env bash
# Builds plwasm in release mode and installs it into the system PostgreSQL 15.
source "$(dirname "$0")/common.sh"
log "building and installing the extension"
cd "$ROOT/extension"
cargo pgrx install --release --pg-config "$PG_CONFIG"
