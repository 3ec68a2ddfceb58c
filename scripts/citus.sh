#!/usr/bin/env bash
# A Citus cluster on this machine for plwasm's distributed tests: a coordinator and two
# workers on loopback sockets, each with its own data directory and
# shared_preload_libraries = 'citus'.
#   scripts/citus.sh install [TARBALL]   build and install Citus unless it is installed
#   scripts/citus.sh start | stop        (start installs first; PLWASM_PG=15|18 as for pg.sh)
#   scripts/citus.sh ports               the coordinator's and workers' ports
# Citus is built from its release tarball (default: ../shared/vendor/, next to the
# repository): 13.2.2 for PostgreSQL 15 (with the one-line patch for 15.20), 14.0.1 for 18
# (with clang, as that PostgreSQL's CFLAGS need). It is never copied into the repository.
source "$(dirname "$0")/common.sh"
VENDOR="${PLWASM_CITUS_VENDOR:-$(cd "$ROOT/.." && pwd)/shared/vendor}"
BASE="/var/tmp/plwasm/citus$cluster_suffix"
COORDINATOR_PORT=$((PLWASM_PGPORT + 200))
# Even offsets, so the clusters of PostgreSQL 15 (54329) and 18 (54330) never share a port.
WORKER_PORTS=($((PLWASM_PGPORT + 202)) $((PLWASM_PGPORT + 204)))

install_citus() {
    local libdir
    libdir="$("$PG_CONFIG" --pkglibdir)"
    if [ -f "$libdir/citus.so" ]; then
        return 0
    fi
    local version tarball
    if [ "$PLWASM_PG" = 15 ]; then version=13.2.2; else version=14.0.1; fi
    tarball="${1:-$VENDOR/citus-$version.tar.gz}"
    [ -f "$tarball" ] || { echo "citus.sh: no Citus tarball at $tarball" >&2; exit 1; }
    log "building Citus $version for PostgreSQL $PLWASM_PG from $tarball"
    if ! dpkg -s libkrb5-dev liblz4-dev libzstd-dev >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libkrb5-dev liblz4-dev libzstd-dev >/dev/null
    fi
    local build="/var/tmp/plwasm/citus-build-$version-pg$PLWASM_PG"
    rm -rf "$build"; mkdir -p "$build"
    tar xzf "$tarball" -C "$build"
    cd "$build"/citus-*
    local cc=()
    if [ "$PLWASM_PG" = 15 ]; then
        patch -s -p1 < "$(dirname "$tarball")/citus-13.2.2-pg15.20.patch"
    else
        cc=(CC=clang)
    fi
    env "${cc[@]}" ./configure -q --without-libcurl PG_CONFIG="$PG_CONFIG" >/dev/null
    make -s -j"$(nproc)" "${cc[@]}" >/dev/null 2>&1 || make -j"$(nproc)" "${cc[@]}"
    make -s "${cc[@]}" install >/dev/null
    cd "$ROOT"
    rm -rf "$build"
}

node_data() { echo "$BASE/node$1"; }
node_port() { if [ "$1" = 0 ]; then echo "$COORDINATOR_PORT"; else echo "${WORKER_PORTS[$(($1 - 1))]}"; fi; }

stop() {
    for n in 0 1 2; do
        if [ -s "$(node_data $n)/PG_VERSION" ]; then
            as_postgres "$PG_BIN/pg_ctl" -D "$(node_data $n)" -m fast -w stop >/dev/null 2>&1 || true
        fi
    done
}

start() {
    install_citus
    stop
    rm -rf "$BASE"; mkdir -p "$BASE"; chown postgres:postgres "$BASE"
    for n in 0 1 2; do
        local data port
        data="$(node_data $n)"; port="$(node_port $n)"
        as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$PLWASM_PGHOST'
listen_addresses = ''
shared_preload_libraries = 'citus'
max_connections = 60
shared_buffers = 128MB
max_worker_processes = 16
jit = off
CONF
        as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PG_BIN/pg_ctl" -D "$data" \
            -l "$data/server.log" -w start >/dev/null
        "$PG_BIN/psql" -X -q -p "$port" -d postgres -c "CREATE EXTENSION citus" >/dev/null
    done
    local psql_c=("$PG_BIN/psql" -X -q -p "$COORDINATOR_PORT" -d postgres)
    "${psql_c[@]}" -c "SELECT citus_set_coordinator_host('$PLWASM_PGHOST', $COORDINATOR_PORT)" >/dev/null
    for port in "${WORKER_PORTS[@]}"; do
        "${psql_c[@]}" -c "SELECT citus_add_node('$PLWASM_PGHOST', $port)" >/dev/null
    done
    log "Citus coordinator on $PLWASM_PGHOST:$COORDINATOR_PORT, workers on ${WORKER_PORTS[*]}"
}

case "${1:-start}" in
    install) shift; install_citus "$@" ;;
    start) start ;;
    stop) stop ;;
    ports) echo "$COORDINATOR_PORT ${WORKER_PORTS[*]}" ;;
    *) echo "usage: $0 install [tarball] | start | stop | ports" >&2; exit 2 ;;
esac
