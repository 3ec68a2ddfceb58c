#!/usr/bin/env python3
"""plwasm on a Citus cluster (scripts/citus.sh): a coordinator and two workers.

A table of generated points distributed by device, and an undistributed copy of it on the
coordinator for the single-node answers. Checked:
- plwasm and the timeseries module on every node with no extra step (CREATE EXTENSION and
  CREATE FUNCTION / AGGREGATE propagate through Citus; install_module on the coordinator
  installs the module on the workers too);
- grouped by the distribution column, lttb, m4, stats_agg and the percentile sketch run on the
  workers (EXPLAIN shows them in the worker query) and equal the single-node results;
- not grouped by it (no GROUP BY, or an hourly bucket), stats_agg and the sketch run as partial
  aggregates on the workers, combined on the coordinator (worker_partial_agg and
  coord_combine_agg in EXPLAIN), equal to the single-node results;
- a scalar wasm function in WHERE and in the select list is evaluated on the workers;
- a module replaced on the coordinator is what every worker runs at its next statement.

Usage: citus_test.py COORDINATOR_DSN TIMESERIES_WASM
"""
import re
import sys

import psycopg

# add_one(i64) -> i64; the replacement adds 2.
ADD_ONE = bytes.fromhex("0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b")
ADD_TWO = ADD_ONE.replace(bytes.fromhex("42017c0b"), bytes.fromhex("42027c0b"))
# The workers' copies of a module, as (port, SHA-256 hex).
ON_WORKERS = ("SELECT array_agg(result ORDER BY nodeport) FROM run_command_on_workers("
              "(SELECT format('SELECT encode(sha256, ''hex'') FROM plwasm.module_store WHERE name = %%L', %s::text)))")

GROUPED = {
    "lttb": "SELECT device, encode(sha256(lttb(ts, value, 50)), 'hex') FROM {t} GROUP BY device ORDER BY device",
    "m4": "SELECT device, encode(sha256(m4(ts, value, 40, '2026-01-01', '2026-01-03')), 'hex') FROM {t} GROUP BY device ORDER BY device",
    "stats_agg": "SELECT device, round(stats_mean(stats_agg(value))::numeric, 9), round(stats_stddev(stats_agg(value))::numeric, 9)"
                 " FROM {t} GROUP BY device ORDER BY device",
    "percentile sketch": "SELECT device, round(approx_percentile(percentile_agg(value), 0.9)::numeric, 9) FROM {t} GROUP BY device ORDER BY device",
}
PARTIAL = {
    "stats_agg, no GROUP BY": "SELECT round(stats_mean(stats_agg(value))::numeric, 9), round(stats_variance(stats_agg(value))::numeric, 6) FROM {t}",
    "sketch, no GROUP BY": "SELECT round(approx_percentile(percentile_agg(value), 0.5)::numeric, 9), sketch_count(percentile_agg(value)) FROM {t}",
    "stats_agg by hour": "SELECT date_trunc('hour', ts) h, round(stats_mean(stats_agg(value))::numeric, 9) FROM {t} GROUP BY h ORDER BY h",
    "sketch by hour": "SELECT date_trunc('hour', ts) h, round(approx_percentile(percentile_agg(value), 0.99)::numeric, 9) FROM {t} GROUP BY h ORDER BY h",
}
SCALAR = "SELECT add_one(device) AS d, count(*) FROM {t} WHERE add_one(device) > 3 GROUP BY 1 ORDER BY 1"


def fail(message):
    print(f"citus: FAILED: {message}")
    sys.exit(1)


def plan(conn, query):
    return "\n".join(row[0] for row in conn.execute("EXPLAIN (VERBOSE, COSTS OFF) " + query))


def same(conn, name, query):
    distributed = conn.execute(query.format(t="pts")).fetchall()
    local = conn.execute(query.format(t="pts_local")).fetchall()
    if distributed != local:
        fail(f"{name}: distributed {distributed[:3]}... differs from single-node {local[:3]}...")
    return distributed


def main(dsn, timeseries_path):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("DROP TABLE IF EXISTS pts, pts_local")
        conn.execute("DROP EXTENSION IF EXISTS plwasm CASCADE")
        conn.execute("CREATE EXTENSION plwasm")
        versions = conn.execute("SELECT array_agg(result ORDER BY nodeport) FROM run_command_on_workers("
                                "$$SELECT extversion FROM pg_extension WHERE extname = 'plwasm'$$)").fetchone()[0]
        print(f"citus: plwasm on the workers: {versions}")
        with open(timeseries_path, "rb") as f:
            conn.execute("SELECT plwasm.install_module('timeseries', %s)", (f.read(),))
        conn.execute("SELECT plwasm.install_module('arith', %s)", (ADD_ONE,))
        for module in ("timeseries", "arith"):
            mine = conn.execute("SELECT encode(sha256, 'hex') FROM plwasm.module_store WHERE name = %s", (module,)).fetchone()[0]
            theirs = conn.execute(ON_WORKERS, (module,)).fetchone()[0]
            if theirs != [mine, mine]:
                fail(f"{module} on the workers: {theirs}, on the coordinator: {mine}")
        print("citus: install_module on the coordinator installed both modules on the workers")
        conn.execute("SELECT count(*) FROM plwasm.create_functions('timeseries')")
        conn.execute("CREATE FUNCTION add_one(x int8) RETURNS int8 STRICT IMMUTABLE PARALLEL SAFE LANGUAGE wasm AS 'arith'")
        counts = conn.execute("SELECT array_agg(result ORDER BY nodeport) FROM run_command_on_workers("
                              "$$SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE l.lanname = 'wasm'$$)").fetchone()[0]
        print(f"citus: wasm functions on the workers: {counts}")

        conn.execute("CREATE TABLE pts (device int, ts timestamptz, value float8)")
        conn.execute("SELECT create_distributed_table('pts', 'device')")
        conn.execute("INSERT INTO pts SELECT d, '2026-01-01'::timestamptz + n * interval '1 minute',"
                     " 20 + 6 * sin(n / 50.0 + d) + (hashint4(n * 7 + d) % 1000) / 400.0"
                     " FROM generate_series(1, 12) d, generate_series(0, 2879) n")
        conn.execute("CREATE TABLE pts_local AS SELECT * FROM pts")
        shards = conn.execute("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'pts'::regclass").fetchone()[0]
        print(f"citus: {conn.execute('SELECT count(*) FROM pts').fetchone()[0]} points in {shards} shards")

        for name, query in GROUPED.items():
            rows = same(conn, name, query)
            text = plan(conn, query.format(t="pts"))
            function = name.split()[0].replace("percentile", "percentile_agg")
            if "Task Count" not in text or f"{function}(" not in text.split("Query:")[1]:
                fail(f"{name}: the aggregate is not in the worker query:\n{text}")
            print(f"citus: {name} grouped by device runs on the workers, {len(rows)} groups equal to one node")

        for name, query in PARTIAL.items():
            rows = same(conn, name, query)
            text = plan(conn, query.format(t="pts"))
            # Citus 13: worker_partial_agg / coord_combine_agg (states as text); Citus 14:
            # worker_binary_partial_agg / coord_binary_combine_agg (states as binary).
            if not re.search(r"worker_(binary_)?partial_agg", text) or not re.search(r"coord_(binary_)?combine_agg", text):
                fail(f"{name}: not split into partial aggregates:\n{text}")
            print(f"citus: {name}: partial aggregates on the workers, combined on the coordinator, {len(rows)} rows equal to one node")

        rows = same(conn, "scalar", SCALAR)
        text = plan(conn, SCALAR.format(t="pts"))
        worker_query = text.split("Query:")[1].split("\n")[0]
        if worker_query.count("add_one(") < 2:
            fail(f"the scalar function is not evaluated on the workers: {worker_query}")
        print(f"citus: add_one in WHERE and the select list runs on the workers ({rows[0]})")

        conn.execute("SELECT plwasm.install_module('arith', %s)", (ADD_TWO,))
        # add_one now adds 2: devices 2..12 pass the WHERE, each shown as device + 2, on the
        # workers (pts) as on the coordinator (pts_local).
        after = same(conn, "scalar after the replacement", SCALAR)
        if after != [(device + 2, 2880) for device in range(2, 13)]:
            fail(f"after the replacement the workers did not run the new module: {after}")
        print(f"citus: after replacing arith, every worker runs the new module at its next statement ({after[0]} .. {after[-1]})")
        # A worker that refuses (there, another role owns a module of that name) fails the
        # coordinator's install, which is rolled back.
        worker_port = conn.execute("SELECT min(nodeport) FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0").fetchone()[0]
        conn.execute("DROP ROLE IF EXISTS regress_citus_user")
        conn.execute("CREATE ROLE regress_citus_user LOGIN")
        host = conn.info.host
        with psycopg.connect(f"host={host} port={worker_port} user=postgres dbname=postgres", autocommit=True) as worker:
            worker.execute("SELECT plwasm.install_module('taken', %s)", (ADD_ONE,))
        with psycopg.connect(f"host={host} port={conn.info.port} user=regress_citus_user dbname=postgres", autocommit=True) as user:
            try:
                user.execute("SELECT plwasm.install_module('taken', %s)", (ADD_ONE,))
                fail("the coordinator installed a module a worker refused")
            except psycopg.Error as err:
                if err.diag.sqlstate != "55000" or str(worker_port) not in (err.diag.message_detail or ""):
                    fail(f"a refusing worker: {err.diag.sqlstate} {err.diag.message_primary} / {err.diag.message_detail}")
                print(f"citus: a worker's refusal fails the coordinator's install: {err.diag.message_primary}"
                      f" ({err.diag.message_detail.split(':')[0]}:{worker_port}: ...)")
        if conn.execute("SELECT count(*) FROM plwasm.module_store WHERE name = 'taken'").fetchone()[0] != 0:
            fail("the coordinator kept the module a worker refused")
        # Grants follow too: USAGE is checked where a function runs, on the workers.
        grants = ("SELECT array_agg(result ORDER BY nodeport) FROM run_command_on_workers("
                  "$$SELECT count(*) FROM plwasm.module_grants WHERE module = 'arith'$$)")
        conn.execute("SELECT plwasm.grant_module('arith', 'regress_citus_user')")
        granted = conn.execute(grants).fetchone()[0]
        conn.execute("SELECT plwasm.revoke_module('arith', 'regress_citus_user')")
        revoked = conn.execute(grants).fetchone()[0]
        if (granted, revoked) != (["1", "1"], ["0", "0"]):
            fail(f"grants on the workers: {granted} after grant_module, {revoked} after revoke_module")
        print("citus: grant_module and revoke_module on the coordinator change the workers' grants too")
        conn.execute("DROP TABLE pts, pts_local")
    print("citus: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
