#!/usr/bin/env python3
"""Hot standby: plwasm on a streaming replica of the private cluster, with no extra step.

Checks, against the primary's own answers: a scalar wasm function, a set-returning function
and aggregates (the timeseries module) on the standby; install_module on the standby fails
with a clear error (25006); a module replaced on the primary is what an open standby session
runs at its next statement. Run by scripts/standby_test.sh (which makes the standby).

Usage: standby_test.py PRIMARY_DSN STANDBY_DSN PHASE   (PHASE: setup | check)
"""
import sys
import time

import psycopg

DB = "plwasm_standby"
# add_one(i64) -> i64 as a binary module; the variant adds 2 instead (i64.const 2).
ADD_ONE = bytes.fromhex("0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b")
ADD_TWO = ADD_ONE.replace(bytes.fromhex("42017c0b"), bytes.fromhex("42027c0b"))
QUERIES = {
    "scalar": "SELECT add_one(41)",
    "set-returning": "SELECT count(*) FROM points((SELECT lttb(ts, value, 25) FROM pts WHERE device = 1))",
    "stats_agg": "SELECT array_agg(round(stats_mean(s)::numeric, 6) ORDER BY device)"
                 " FROM (SELECT device, stats_agg(value) s FROM pts GROUP BY device) q",
    "percentile": "SELECT round(approx_percentile(percentile_agg(value), 0.9)::numeric, 3) FROM pts",
}


def fail(message):
    print(f"standby: FAILED: {message}")
    sys.exit(1)


def setup(primary_dsn, timeseries_path):
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(primary_dsn + f" dbname={DB}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION plwasm")
        conn.execute("SELECT plwasm.install_module('arith', %s)", (ADD_ONE,))
        conn.execute("CREATE FUNCTION add_one(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith'")
        with open(timeseries_path, "rb") as f:
            conn.execute("SELECT plwasm.install_module('timeseries', %s)", (f.read(),))
        conn.execute("SELECT count(*) FROM plwasm.create_functions('timeseries')")
        conn.execute("CREATE TABLE pts AS SELECT i AS device,"
                     " '2026-01-01'::timestamptz + n * interval '1 minute' AS ts,"
                     " sin(n / 10.0) * 10 + i AS value FROM generate_series(1, 3) i, generate_series(0, 1999) n")
        conn.execute("CHECKPOINT")
    print("standby: primary set up")


def wait_for_replay(primary, standby):
    lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    for _ in range(300):
        if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
            return
        time.sleep(0.1)
    fail(f"the standby did not replay {lsn} within 30 s")


def check(primary_dsn, standby_dsn):
    with psycopg.connect(primary_dsn + f" dbname={DB}", autocommit=True) as primary, \
         psycopg.connect(standby_dsn + f" dbname={DB}", autocommit=True) as standby:
        if not standby.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            fail("the standby is not in recovery")
        wait_for_replay(primary, standby)
        for name, query in QUERIES.items():
            want = primary.execute(query).fetchone()[0]
            got = standby.execute(query).fetchone()[0]
            if got != want:
                fail(f"{name}: the standby says {got!r}, the primary {want!r}")
            print(f"standby: {name} on the standby = on the primary ({got})")
        try:
            standby.execute("SELECT plwasm.install_module('other', %s)", (ADD_ONE,))
            fail("install_module worked on the standby")
        except psycopg.Error as err:
            if err.diag.sqlstate != "25006" or "hot standby" not in (err.diag.message_primary or ""):
                fail(f"install_module on the standby: {err.diag.sqlstate} {err.diag.message_primary}")
            print(f"standby: install_module refused: {err.diag.sqlstate} {err.diag.message_primary}"
                  f" (HINT: {err.diag.message_hint})")
        # The same standby session, before and after the primary replaces the module.
        before = standby.execute("SELECT add_one(41)").fetchone()[0]
        primary.execute("SELECT plwasm.install_module('arith', %s)", (ADD_TWO,))
        wait_for_replay(primary, standby)
        after = standby.execute("SELECT add_one(41)").fetchone()[0]
        if (before, after) != (42, 43):
            fail(f"add_one(41) on the standby was {before} and then {after}; expected 42, then 43")
        print("standby: a module replaced on the primary runs in an open standby session at its next statement (42, then 43)")
    print("standby: all checks passed")


if __name__ == "__main__":
    primary_dsn, standby_dsn, phase = sys.argv[1:4]
    if phase == "setup":
        setup(primary_dsn, sys.argv[4])
    else:
        check(primary_dsn, standby_dsn)
