#!/usr/bin/env python3
"""Per-row cost of plwasm scalar functions against PostgreSQL's own ways to do the same work.

Every variant runs `SELECT sum(f(x)) FROM bench_rows` over the same table in one session,
in interleaved rounds; the per-row cost of f is (median time - median time of the bare
`sum(x)`) / rows. Also measured: the first call of a wasm function in a fresh connection,
and how long a cancelled endless loop takes to stop. Writes a markdown section to stdout.

Usage: bench/scalar.py [--rows N] [--rounds K]
"""
import argparse
import os
import re
import statistics
import subprocess
import time

PSQL = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "plwasm_bench"]


def preloaded_env(preload):
    """The environment for a psql whose session loads plwasm's library at start
    (session_preload_libraries), or None for the default."""
    return dict(os.environ, PGOPTIONS="-c session_preload_libraries=plwasm") if preload else None


def psql(sql, db="plwasm_bench", env=None):
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db]
    return subprocess.run(cmd, input=sql, capture_output=True, text=True, check=True, env=env).stdout


def timings(output):
    """The 'Time: N ms' lines psql prints with \\timing on, in order."""
    return [float(m) for m in re.findall(r"^Time: ([0-9.]+) ms", output, re.M)]


SETUP = r"""
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (x int8, f float8);
INSERT INTO bench_rows SELECT g, g * 0.5 FROM generate_series(1, {rows}) g;
VACUUM (ANALYZE, FREEZE) bench_rows;
CREATE EXTENSION IF NOT EXISTS plwasm;
CREATE OR REPLACE FUNCTION c_add_one(int8) RETURNS int8 IMMUTABLE STRICT LANGUAGE c AS 'c_add_one';
CREATE OR REPLACE FUNCTION c_add_one_f(float8) RETURNS float8 IMMUTABLE STRICT LANGUAGE c AS 'c_add_one', 'c_add_one_f';
CREATE OR REPLACE FUNCTION sql_inline(x int8) RETURNS int8 IMMUTABLE LANGUAGE sql AS 'SELECT x + 1';
-- LIMIT keeps the planner from inlining it: every row goes through the SQL function executor.
CREATE OR REPLACE FUNCTION sql_call(x int8) RETURNS int8 IMMUTABLE LANGUAGE sql AS 'SELECT x + 1 LIMIT 1';
CREATE OR REPLACE FUNCTION plpgsql_add_one(x int8) RETURNS int8 IMMUTABLE STRICT LANGUAGE plpgsql AS 'BEGIN RETURN x + 1; END';
CREATE OR REPLACE FUNCTION add_one(x int8) RETURNS int8 IMMUTABLE STRICT LANGUAGE wasm AS $$
  (module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))
$$;
CREATE OR REPLACE FUNCTION add_one_f(x float8) RETURNS float8 IMMUTABLE STRICT LANGUAGE wasm AS $$
  (module (func (export "add_one_f") (param f64) (result f64) local.get 0 f64.const 1 f64.add))
$$;
CREATE OR REPLACE FUNCTION spin_forever() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "spin_forever") (result i32) (loop br 0) i32.const 0))
$$;
"""

# (label, expression summed over bench_rows, what it is, column it reads)
VARIANTS = [
    ("bare `x` (baseline)", "x", "no function", "x"),
    ("built-in `x + 1`", "x + 1", "int8pl, C, via fmgr", "x"),
    ("C function", "c_add_one(x)", "V1 C function built with PGXS", "x"),
    ("SQL, inlined", "sql_inline(x)", "planner inlines it to x + 1", "x"),
    ("SQL, not inlined", "sql_call(x)", "SQL function executor per row", "x"),
    ("PL/pgSQL", "plpgsql_add_one(x)", "RETURN x + 1", "x"),
    ("plwasm `add_one` int8", "add_one(x)", "i64.add", "x"),
    ("bare `f` (baseline)", "f", "no function", "f"),
    ("built-in `f + 1`", "f + 1", "float8pl", "f"),
    ("C function float8", "c_add_one_f(f)", "V1 C function built with PGXS", "f"),
    ("plwasm `add_one_f` float8", "add_one_f(f)", "f64.add", "f"),
]
BASELINE = {"x": "bare `x` (baseline)", "f": "bare `f` (baseline)"}
BUILTIN = {"x": "built-in `x + 1`", "f": "built-in `f + 1`"}


def measure_rows(rows, rounds):
    prelude = "SET max_parallel_workers_per_gather = 0;\nSET jit = off;\n\\timing on\n"
    # One warm-up pass: caches, compiled modules, instances.
    warm = prelude + "".join(f"SELECT sum({expr}) FROM bench_rows;\n" for _, expr, _, _ in VARIANTS)
    psql(warm)
    samples = {label: [] for label, _, _, _ in VARIANTS}
    for _ in range(rounds):
        script = prelude + "".join(f"SELECT sum({expr}) FROM bench_rows;\n" for _, expr, _, _ in VARIANTS)
        for (label, _, _, _), ms in zip(VARIANTS, timings(psql(script))):
            samples[label].append(ms)
    return {label: statistics.median(values) for label, values in samples.items()}


def measure_first_call(tries, function="add_one", preload=False):
    """First call of `function` in a new connection vs the next call; with `preload`, the
    connection loads plwasm's library at start (session_preload_libraries)."""
    firsts, seconds = [], []
    for _ in range(tries):
        out = psql(f"\\timing on\nSELECT {function}(1);\nSELECT {function}(1);\n", env=preloaded_env(preload))
        first, second = timings(out)
        firsts.append(first)
        seconds.append(second)
    return statistics.median(firsts), statistics.median(seconds)


def measure_cancel(tries, timeout_ms=200):
    """How long after statement_timeout fires an endless wasm loop is stopped."""
    lags = []
    for _ in range(tries):
        script = (f"SET plwasm.fuel_limit = 0;\nSET statement_timeout = {timeout_ms};\n"
                  "\\timing on\nSELECT spin_forever();\n")
        out = subprocess.run(PSQL, input=script, capture_output=True, text=True).stdout
        lags.append(timings(out)[0] - timeout_ms)
    return statistics.median(lags), max(lags)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS plwasm_bench"], check=True)
    subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "CREATE DATABASE plwasm_bench"], check=True)
    psql(SETUP.format(rows=args.rows))

    started = time.time()
    medians = measure_rows(args.rows, args.rounds)
    per_row = {label: (medians[label] - medians[BASELINE[col]]) * 1e6 / args.rows for label, _, _, col in VARIANTS}

    print(f"### Scalar functions: per-row cost over {args.rows:,} rows\n")
    print(f"`SELECT sum(f(x)) FROM bench_rows`, serial plan, JIT off; median of {args.rounds} interleaved rounds; "
          "ns/row = (query time - time of the bare column's `sum`) / rows.\n")
    print("| variant | what | median query ms | query time × built-in | ns/row | ns/row over built-in |")
    print("|---|---|---:|---:|---:|---:|")
    for label, _, what, col in VARIANTS:
        if label == BASELINE[col]:
            print(f"| {label} | {what} | {medians[label]:.0f} | – | – | – |")
            continue
        ns, builtin = per_row[label], per_row[BUILTIN[col]]
        ratio = medians[label] / medians[BUILTIN[col]]
        print(f"| {label} | {what} | {medians[label]:.0f} | {ratio:.2f} | {ns:.1f} | {ns - builtin:+.1f} |")

    first, second = measure_first_call(7)
    preloaded, _ = measure_first_call(7, preload=True)
    plpgsql_first, plpgsql_second = measure_first_call(7, "plpgsql_add_one")
    print("\n**First call in a fresh connection** (psql `\\timing`, median of 7 connections; the module is in"
          " the code cache):\n")
    print("| function | first call ms | next call ms |")
    print("|---|---:|---:|")
    print(f"| plwasm `add_one` (loads the library, makes the engine, loads the module, instantiates) | {first:.2f} | {second:.2f} |")
    print(f"| plwasm `add_one`, library preloaded (`session_preload_libraries = plwasm`) | {preloaded:.2f} | – |")
    print(f"| PL/pgSQL `RETURN x + 1` (loads plpgsql, compiles the function) | {plpgsql_first:.2f} | {plpgsql_second:.2f} |")
    print()
    lag_median, lag_max = measure_cancel(5)
    print(f"**Cancel latency**: an endless wasm loop under `statement_timeout = 200ms` ended a median "
          f"{lag_median:.1f} ms (max {lag_max:.1f} ms) after the timeout fired (5 tries).\n")
    print(f"_Run took {time.time() - started:.0f} s._")


if __name__ == "__main__":
    main()
