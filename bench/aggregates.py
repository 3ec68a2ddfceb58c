#!/usr/bin/env python3
"""Wasm aggregates against built-in and native ones, in one session, interleaved rounds, with
plwasm's default limits (no plwasm.* setting is changed).

1. Per-row cost of the aggregate path: a trivial sum (hand-written WAT, guest state, rows
   handed over in batches) against the built-in sum(float8), over the same scan.
2. The time-series library over 10 million points (5 devices x 2,000,000), GROUP BY device:
   stats_agg, m4, percentile_agg and lttb against avg(value), serially and with 2 workers.
3. The first call of the time-series module in a new session, with and without the code cache.
4. LTTB: the wasm aggregate against the same Rust code as a native aggregate with the same
   data flow (bench/native-lttb: lttb_native_agg), the same code fed by array_agg, and
   PL/pgSQL (bench/lttb_plpgsql.sql).

Usage: bench/aggregates.py [--rows N] [--rounds K]
"""
import argparse
import base64
import os
import statistics
import subprocess

from scalar import preloaded_env, psql, timings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The module text without its leading comment lines (a body in WAT starts with "(module").
with open(os.path.join(ROOT, "bench", "wsum.wat")) as _wat:
    WSUM = "".join(line for line in _wat if not line.startswith(";;"))


def support(name, signature, export):
    body = f"@export {export}\n{WSUM}".replace("'", "''")
    return f"CREATE OR REPLACE FUNCTION {name}{signature} LANGUAGE wasm PARALLEL SAFE AS '{body}';"


SETUP = """
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS plwasm;
CREATE EXTENSION IF NOT EXISTS plwasm_bench_native;
DROP TABLE IF EXISTS agg_rows, agg_points;
CREATE TABLE agg_rows AS SELECT ((g % 1000) * 0.5)::float8 AS f FROM generate_series(1, {rows}) g;
CREATE TABLE agg_points AS
SELECT d AS device, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS ts,
       20 + 6 * sin(2 * pi() * i / 86400.0 + d) + (hashint4(i * 5 + d) % 1000) / 400.0 AS value
  FROM generate_series(1, 5) d, generate_series(0, 1999999) i;
VACUUM (ANALYZE, FREEZE) agg_rows, agg_points;
{support}
CREATE AGGREGATE wsum(float8) (SFUNC = wsum_acc, STYPE = plwasm.state, FINALFUNC = wsum_fin,
    COMBINEFUNC = wsum_merge, PARALLEL = SAFE);
SELECT plwasm.install_module('timeseries', decode('{timeseries}', 'base64')) IS NOT NULL;
SELECT count(*) FROM plwasm.create_functions('timeseries');
"""

SESSION = "SET jit = off;\n"


DB = "plwasm_bench_agg"


def interleaved(queries, rounds, prelude):
    """Median ms of each query, run in rounds in one session, after one warm-up round."""
    script = prelude + "\n".join(queries) + "\n\\timing on\n" + "\n".join(queries * rounds)
    times = timings(psql(script, db=DB))
    return [statistics.median(times[i::len(queries)]) for i in range(len(queries))]


def first_call(code_cache_size, sessions=5, preload=False):
    """Median ms of the first stats_agg call in new sessions with the given code cache size;
    with `preload`, the session loads plwasm's library at start (session_preload_libraries)."""
    script = (f"SET plwasm.code_cache_size = '{code_cache_size}';\n\\timing on\n"
              "SELECT stats_count(stats_agg(1.0::float8));\n")
    return statistics.median(timings(psql(script, db=DB, env=preloaded_env(preload)))[0] for _ in range(sessions))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with open(os.path.join(ROOT, "udf-examples", "build", "timeseries.wasm"), "rb") as f:
        timeseries = base64.b64encode(f.read()).decode()
    supports = "\n".join([support("wsum_acc", "(plwasm.state, float8) RETURNS plwasm.state", "wsum.accumulate"),
                          support("wsum_fin", "(plwasm.state) RETURNS float8", "wsum.finalize"),
                          support("wsum_merge", "(plwasm.state, plwasm.state) RETURNS plwasm.state", "wsum.merge")])
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql(SETUP.format(rows=args.rows, support=supports, timeseries=timeseries), db=DB)
    serial = SESSION + "SET max_parallel_workers_per_gather = 0;\n"
    parallel = SESSION + "SET max_parallel_workers_per_gather = 2;\n"
    # The trivial sum's parallel plan, whatever the planner's costs make of a cheap scan.
    parallel_plan = parallel + ("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
                                " SET min_parallel_table_scan_size = 0;\n")

    rows = args.rows
    base, builtin, wasm = interleaved(
        ["SELECT count(*) FROM agg_rows;", "SELECT sum(f) FROM agg_rows;", "SELECT wsum(f) FROM agg_rows;"],
        args.rounds, serial)
    print(f"### Aggregate per-row cost: a trivial sum over {rows:,} float8 rows")
    print()
    print(f"JIT off, median of {args.rounds} interleaved rounds; serial plan, then a parallel plan with 2 workers"
          " (parallel_setup_cost and parallel_tuple_cost 0, min_parallel_table_scan_size 0). `wsum` is a"
          " hand-written WAT aggregate (state in the guest, rows handed over 1024 at a time).")
    print()
    print("| query | ms | ns/row over `count(*)` |")
    print("|---|---:|---:|")
    for label, ms in [("`count(*)` (the scan)", base), ("built-in `sum(f)`", builtin), ("plwasm `wsum(f)`", wasm)]:
        print(f"| {label} | {ms:.0f} | {(ms - base) * 1e6 / rows:.1f} |")
    p_base, p_builtin_sum, p_wasm_sum = interleaved(
        ["SELECT count(*) FROM agg_rows;", "SELECT sum(f) FROM agg_rows;", "SELECT wsum(f) FROM agg_rows;"],
        args.rounds, parallel_plan)
    for label, ms in [("2 workers: `count(*)`", p_base), ("2 workers: built-in `sum(f)`", p_builtin_sum),
                      ("2 workers: plwasm `wsum(f)` (partial states flattened to the leader)", p_wasm_sum)]:
        print(f"| {label} | {ms:.0f} | {(ms - p_base) * 1e6 / rows:.1f} (elapsed) |")
    print()
    print(f"**plwasm adds {(wasm - builtin) * 1e6 / rows:.1f} ns/row over the built-in `sum(float8)` serially**"
          f" ({wasm / builtin:.2f}x the query time), **and {(p_wasm_sum - p_builtin_sum) * 1e6 / rows:.1f} ns/row"
          f" of elapsed time with 2 workers** ({p_wasm_sum / p_builtin_sum:.2f}x). The state is a `plwasm.state`"
          " (an expanded object updated in place; flattened only when a worker hands its partial state"
          " to the leader). Outside PostgreSQL the same queue and guest cost"
          " `cargo run --release -p plwasm-core --example row_queue_cost` (below).")
    print()

    series_queries = [
        ("built-in `avg(value)`", "avg(value)"),
        ("`stats_agg`", "stats_mean(stats_agg(value))"),
        ("`m4`, 1000 columns", "series_length(m4(ts, value, 1000, '2026-01-01 00:00:00+00', '2026-01-24 03:33:20+00'))"),
        ("`percentile_agg`", "approx_percentile(percentile_agg(value), 0.99)"),
        ("`lttb`, 1000 points", "length(lttb(ts, value, 1000)) / 16"),
    ]
    sql = [f"SELECT device, {expr} FROM agg_points GROUP BY device;" for _, expr in series_queries]
    serial_ms = interleaved(sql, args.rounds, serial)
    # With 2 workers a query that fails (an error, not a crash) is reported as such.
    failures = [first_error(parallel + query) for query in sql]
    runs = iter(interleaved([q for q, f in zip(sql, failures) if f is None], args.rounds, parallel))
    parallel_ms = [failure or next(runs) for failure in failures]
    points = 10_000_000
    print("### The time-series library over 10,000,000 points, default limits")
    print()
    print("5 devices x 2,000,000 points (one a second, in time order), `SELECT device, f(...) FROM agg_points"
          f" GROUP BY device`; median of {args.rounds} interleaved rounds; plwasm's limits at their defaults"
          " (64MB per instance, 10⁹ fuel per call). Ratios are to `avg(value)` in the same plan.")
    print()
    print("| aggregate | serial ms | × avg | 2 workers ms | × avg |")
    print("|---|---:|---:|---:|---:|")
    for (label, _), s_ms, p_ms in zip(series_queries, serial_ms, parallel_ms):
        p_cells = (f"{p_ms:.0f} | {p_ms / parallel_ms[0]:.2f}" if isinstance(p_ms, float)
                   else f"fails: {p_ms} | –")
        print(f"| {label} | {s_ms:.0f} | {s_ms / serial_ms[0]:.2f} | {p_cells} |")
    print()
    print(f"`percentile_agg` serially: {points / serial_ms[3] / 1e3:.2f} M rows/s on one core"
          f" (`avg`: {points / serial_ms[0] / 1e3:.2f} M rows/s).")
    print()

    print("Each parallel worker is a new process that meets the module for the first time. With the code"
          " cache (`plwasm.code_cache_size`, on in the runs above) it loads the compiled module instead of"
          " compiling it:")
    print()
    off, on, preloaded = first_call("0"), first_call("256MB"), first_call("256MB", preload=True)
    size_kb = os.path.getsize(os.path.join(ROOT, "udf-examples", "build", "timeseries.wasm")) / 1000
    print("| first `stats_agg` call in a new session (5 sessions, median) | ms |")
    print("|---|---:|")
    print(f"| code cache off: compile the {size_kb:.0f} kB module | {off:.1f} |")
    print(f"| code cache on: load the compiled module | {on:.1f} |")
    print(f"| code cache on, library preloaded (`session_preload_libraries = plwasm`) | {preloaded:.1f} |")
    print()

    lttb_queries = [
        "SELECT device, length(lttb(ts, value, 1000)) / 16 FROM agg_points GROUP BY device;",
        "SELECT device, length(lttb_native_agg(ts, value, 1000)) / 16 FROM agg_points GROUP BY device;",
        "SELECT device, cardinality(lttb_native(array_agg(date_part('epoch', ts) ORDER BY ts),"
        " array_agg(value ORDER BY ts), 1000)) FROM agg_points GROUP BY device;",
    ]
    l_wasm, l_native, l_arrays = interleaved(lttb_queries, 3, serial)
    plpgsql_query = ("SELECT device, (SELECT count(*) FROM lttb_plpgsql(array_agg(ts ORDER BY ts),"
                     " array_agg(value ORDER BY ts), 1000)) FROM agg_points GROUP BY device;")
    with open(os.path.join(ROOT, "bench", "lttb_plpgsql.sql")) as f:
        plpgsql_setup = f.read()
    (l_plpgsql,) = interleaved([plpgsql_query], 1, serial + plpgsql_setup)
    print("### LTTB over 10,000,000 rows (5 devices x 2,000,000 points, 1000 points each)")
    print()
    print("End to end: one `GROUP BY device` query over the same table, serial plan, default limits. The"
          " native aggregate `lttb_native_agg` (`bench/native-lttb`) is the same Rust code with the same data"
          " flow as the wasm `lttb`: each row pushed into a `downsample::PointLog`, `downsample::lttb_points`"
          " at the end, the same encoding; only wasm against native differs. The array form runs the same"
          " LTTB on `array_agg(... ORDER BY ts)`. Median of 3 rounds (PL/pgSQL: 1).")
    print()
    print("| implementation | ms | × native aggregate |")
    print("|---|---:|---:|")
    print(f"| native Rust aggregate (pgrx), same data flow | {l_native:.0f} | 1.00 |")
    print(f"| plwasm `lttb` aggregate | {l_wasm:.0f} | {l_wasm / l_native:.2f} |")
    print(f"| native Rust function over `array_agg(... ORDER BY ts)` | {l_arrays:.0f} | {l_arrays / l_native:.2f} |")
    print(f"| PL/pgSQL | {l_plpgsql:.0f} | {l_plpgsql / l_native:.2f} |")


def first_error(script):
    """The first ERROR line of running `script` (without stopping on it), or None."""
    out = subprocess.run(["psql", "-X", "-q", "-d", DB], input=script, capture_output=True, text=True)
    for line in out.stderr.splitlines():
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()
    return None


if __name__ == "__main__":
    main()
