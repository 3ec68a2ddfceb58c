#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for plwasm's demo, tests and benchmarks.
#   scripts/pg.sh start | stop | restart | psql [args]
source "$(dirname "$0")/common.sh"

start() {
    if [ ! -s "$PLWASM_PGDATA/PG_VERSION" ]; then
        log "initdb $PLWASM_PGDATA"
        mkdir -p "$PLWASM_PGDATA"
        chown -R postgres:postgres "$(dirname "$PLWASM_PGDATA")"
        as_postgres "$PG_BIN/initdb" -D "$PLWASM_PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$PLWASM_PGDATA/postgresql.conf" <<CONF
port = $PLWASM_PGPORT
unix_socket_directories = '$PLWASM_PGHOST'
listen_addresses = ''
max_connections = 40
shared_buffers = 512MB
work_mem = 64MB
max_parallel_workers_per_gather = 2
jit = off
CONF
    fi
    if as_postgres "$PG_BIN/pg_ctl" -D "$PLWASM_PGDATA" status >/dev/null 2>&1; then
        return 0
    fi
    log "starting PostgreSQL on $PLWASM_PGHOST:$PLWASM_PGPORT"
    # RUST_BACKTRACE would make pgrx append Rust backtraces to the DETAIL of errors.
    as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PG_BIN/pg_ctl" -D "$PLWASM_PGDATA" -l "$PLWASM_PGDATA/server.log" -w start >/dev/null
}

stop() {
    as_postgres "$PG_BIN/pg_ctl" -D "$PLWASM_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    psql) shift; exec "$PG_BIN/psql" "$@" ;;
    *) echo "usage: $0 start|stop|restart|psql" >&2; exit 2 ;;
esac
