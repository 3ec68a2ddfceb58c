#!/usr/bin/env python3
"""The demo's queries on one node and on a Citus coordinator with two workers, side by side.

One Citus cluster (scripts/citus.sh) on this machine: the same points in a table distributed
by device (32 shards over the two workers) and in an ordinary table on the coordinator. Each
query runs on both in interleaved rounds in one session; medians are reported. All three nodes
share the machine's cores, so this is a correctness and scale proof, not a speed-up claim.

Usage: bench/citus.py COORDINATOR_PORT [--devices D] [--points N] [--rounds K]
"""
import argparse
import base64
import os
import statistics
import subprocess

from scalar import timings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUERIES = [
    ("LTTB, 1000 points per device", "SELECT device, series_length(lttb(ts, value, 1000)) FROM {t} GROUP BY device"),
    ("M4, 1000 columns per device", "SELECT device, series_length(m4(ts, value, 1000, '2026-01-01', '2026-01-03')) FROM {t} GROUP BY device"),
    ("stats_agg per device", "SELECT device, stats_mean(stats_agg(value)) FROM {t} GROUP BY device"),
    ("stats_agg over everything (partial aggregates)", "SELECT stats_mean(stats_agg(value)) FROM {t}"),
    ("p99 sketch by hour (partial aggregates)", "SELECT date_trunc('hour', ts), approx_percentile(percentile_agg(value), 0.99) FROM {t} GROUP BY 1"),
    ("built-in avg per device, for scale", "SELECT device, avg(value) FROM {t} GROUP BY device"),
]


def psql(port, sql):
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", os.environ.get("PGHOST", "/tmp"),
           "-p", str(port), "-U", "postgres", "-d", "postgres"]
    return subprocess.run(cmd, input=sql, capture_output=True, text=True, check=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--points", type=int, default=125_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open(os.path.join(ROOT, "udf-examples", "build", "timeseries.wasm"), "rb") as f:
        wasm = base64.b64encode(f.read()).decode()
    psql(args.port, f"""
SET client_min_messages = warning;
DROP TABLE IF EXISTS bpts, bpts_local;
DROP EXTENSION IF EXISTS plwasm CASCADE;
CREATE EXTENSION plwasm;
SELECT plwasm.install_module('timeseries', decode('{wasm}', 'base64')) IS NOT NULL;
SELECT count(*) FROM plwasm.create_functions('timeseries');
CREATE TABLE bpts (device int, ts timestamptz, value float8);
SELECT create_distributed_table('bpts', 'device');
INSERT INTO bpts SELECT d, '2026-01-01'::timestamptz + i * interval '1 second',
       20 + 6 * sin(2 * pi() * i / 86400.0 + d) + (hashint4(i * 5 + d) % 1000) / 400.0
  FROM generate_series(1, {args.devices}) d, generate_series(0, {args.points - 1}) i;
CREATE TABLE bpts_local AS SELECT * FROM bpts;
VACUUM ANALYZE bpts_local;
""")
    queries = [q.format(t=t) + ";" for _, q in QUERIES for t in ("bpts_local", "bpts")]
    script = "\n".join(queries) + "\n\\timing on\n" + "\n".join(queries * args.rounds)
    times = timings(psql(args.port, script))
    medians = [statistics.median(times[i::len(queries)]) for i in range(len(queries))]
    rows = args.devices * args.points
    print(f"### One node against Citus (coordinator + 2 workers on the same {os.cpu_count()} cores)")
    print()
    print(f"{rows:,} points ({args.devices} devices x {args.points:,}), distributed by device over 32 shards,"
          f" and the same rows in one table on the coordinator; median of {args.rounds} interleaved rounds,"
          " plwasm's limits at their defaults. `bench/citus.py`, cluster from `scripts/citus.sh`.")
    print()
    print("| query | one node (ms) | Citus (ms) | Citus / one node |")
    print("|---|---:|---:|---:|")
    for i, (label, _) in enumerate(QUERIES):
        local, distributed = medians[2 * i], medians[2 * i + 1]
        print(f"| {label} | {local:.0f} | {distributed:.0f} | {distributed / local:.2f} |")
    print()
    print("Every query returns the same answer on both (checked by `scripts/citus_test.sh`). On one"
          " machine the workers compete with the coordinator for the same two cores, and each query pays"
          " Citus' planning and connection costs, so the ratio shows overhead, not the speed-up more"
          " machines would give.")
    psql(args.port, "DROP TABLE bpts, bpts_local;")


if __name__ == "__main__":
    main()
