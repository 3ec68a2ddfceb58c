#!/usr/bin/env bash
# A streaming hot standby of the private cluster (scripts/pg.sh), on loopback sockets.
#   scripts/standby.sh start | stop      (PLWASM_PG=15|18 as for pg.sh)
# start makes it afresh with pg_basebackup -R from the running primary.
source "$(dirname "$0")/common.sh"
STANDBY_DATA="/var/tmp/plwasm/standby$cluster_suffix"
STANDBY_PORT=$((PLWASM_PGPORT + 100))

stop() {
    if [ -s "$STANDBY_DATA/PG_VERSION" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$STANDBY_DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

start() {
    stop
    rm -rf "$STANDBY_DATA"
    mkdir -p "$STANDBY_DATA"; chown postgres:postgres "$STANDBY_DATA"; chmod 700 "$STANDBY_DATA"
    log "pg_basebackup of $PLWASM_PGHOST:$PLWASM_PGPORT into $STANDBY_DATA"
    as_postgres "$PG_BIN/pg_basebackup" -h "$PLWASM_PGHOST" -p "$PLWASM_PGPORT" -U postgres \
        -D "$STANDBY_DATA" -R -X stream -c fast
    rm -f "$STANDBY_DATA/server.log"
    cat >> "$STANDBY_DATA/postgresql.auto.conf" <<CONF
port = $STANDBY_PORT
hot_standby = on
CONF
    log "starting the standby on $PLWASM_PGHOST:$STANDBY_PORT"
    as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PG_BIN/pg_ctl" -D "$STANDBY_DATA" \
        -l "$STANDBY_DATA/server.log" -w start >/dev/null
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    port) echo "$STANDBY_PORT" ;;
    *) echo "usage: $0 start|stop|port" >&2; exit 2 ;;
esac
