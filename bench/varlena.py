#!/usr/bin/env python3
"""Per-row cost of plwasm functions on text and float8[] (ABI 1) against the same logic as a
built-in or C function, in SQL and in PL/pgSQL; and the cost of the boundary alone (an echo
that copies the value in and back out).

Same method as bench/scalar.py: `SELECT sum(g(f(col)))` over one table in one session,
interleaved rounds, ns/row = (median - median of the bare `sum(g(col))`) / rows.

Usage: bench/varlena.py [--rows N] [--rounds K]   (arrays use N/5 rows of 100 elements)
"""
import argparse
import base64
import os
import statistics
import time

from scalar import psql, timings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "udf-examples", "build")

LOWER = "abcdefghijklmnopqrstuvwxyz"

SETUP = r"""
CREATE EXTENSION IF NOT EXISTS plwasm;
DROP TABLE IF EXISTS bench_text, bench_text_4k, bench_arrays;
CREATE TABLE bench_text AS SELECT md5(g::text) || md5((g + 1)::text) AS t FROM generate_series(1, {rows}) g;
-- PLAIN: 4 kB values stay in the heap, not in TOAST, so every variant reads them the same
-- way (a sequential scan, no TOAST index lookups whose caching varies). 4000 bytes, so two
-- fit a page, and few enough rows that the table stays under a quarter of shared_buffers:
-- a larger one is scanned through a small ring of buffers, re-reading every page from the
-- OS on every query, and that noise swamped the per-row differences (4096-byte values, one
-- per page, 800 MB, once gave the echo a negative cost).
CREATE TABLE bench_text_4k (t text);
ALTER TABLE bench_text_4k ALTER COLUMN t SET STORAGE PLAIN;
INSERT INTO bench_text_4k SELECT repeat(md5(g::text), 125) FROM generate_series(1, {rows_4k}) g;
CREATE TABLE bench_arrays AS
  SELECT (SELECT array_agg(((g * 31 + i) % 1000) / 100.0::float8) FROM generate_series(1, 100) i) AS a
    FROM generate_series(1, {rows_arrays}) g;
VACUUM (ANALYZE, FREEZE) bench_text, bench_text_4k, bench_arrays;
CREATE OR REPLACE FUNCTION c_ascii_upper(text) RETURNS text IMMUTABLE STRICT LANGUAGE c AS 'c_add_one', 'c_ascii_upper';
CREATE OR REPLACE FUNCTION c_echo_text(text) RETURNS text IMMUTABLE STRICT LANGUAGE c AS 'c_add_one', 'c_echo_text';
CREATE OR REPLACE FUNCTION c_l2_norm(float8[]) RETURNS float8 IMMUTABLE STRICT LANGUAGE c AS 'c_add_one', 'c_l2_norm';
CREATE OR REPLACE FUNCTION plpgsql_ascii_upper(t text) RETURNS text IMMUTABLE STRICT LANGUAGE plpgsql AS
  $f$BEGIN RETURN translate(t, '{lower}', '{upper}'); END$f$;
CREATE OR REPLACE FUNCTION sql_l2_norm(a float8[]) RETURNS float8 IMMUTABLE STRICT LANGUAGE sql AS
  'SELECT sqrt(sum(x * x)) FROM unnest(a) x';
CREATE OR REPLACE FUNCTION plpgsql_l2_norm(a float8[]) RETURNS float8 IMMUTABLE STRICT LANGUAGE plpgsql AS $f$
DECLARE s float8 := 0; x float8;
BEGIN FOREACH x IN ARRAY a LOOP s := s + x * x; END LOOP; RETURN sqrt(s); END $f$;
SELECT plwasm.install_module('text_c', decode('{text_c}', 'base64')) IS NOT NULL;
SELECT plwasm.install_module('vectors', decode('{vectors}', 'base64')) IS NOT NULL;
CREATE OR REPLACE FUNCTION wasm_ascii_upper(t text) RETURNS text IMMUTABLE STRICT LANGUAGE wasm AS 'text_c:ascii_upper';
CREATE OR REPLACE FUNCTION wasm_l2_norm(a float8[]) RETURNS float8 IMMUTABLE STRICT LANGUAGE wasm AS 'vectors:l2_norm';
"""

# A hand-written ABI 1 module whose export copies argument 0's slot to the result slot.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo.wat")) as _f:
    ECHO = _f.read()

# (label, expression, what, table, baseline label, reference label)
VARIANTS = [
    ("text: bare `octet_length(t)`", "octet_length(t)", "baseline, 64-byte text", "bench_text", None, None),
    ("text: built-in `upper(t)`", "octet_length(upper(t))", "locale-aware, C", "bench_text", "text: bare `octet_length(t)`", None),
    ("text: C `c_ascii_upper`", "octet_length(c_ascii_upper(t))", "a-z loop, PGXS", "bench_text", "text: bare `octet_length(t)`", None),
    ("text: PL/pgSQL `translate`", "octet_length(plpgsql_ascii_upper(t))", "RETURN translate(...)", "bench_text", "text: bare `octet_length(t)`", "text: C `c_ascii_upper`"),
    ("text: plwasm `ascii_upper` (C guest)", "octet_length(wasm_ascii_upper(t))", "same a-z loop, ABI 1", "bench_text", "text: bare `octet_length(t)`", "text: C `c_ascii_upper`"),
    ("text: C echo", "octet_length(c_echo_text(t))", "copy into a new varlena, PGXS: any echo's floor", "bench_text", "text: bare `octet_length(t)`", None),
    ("text: plwasm echo", "octet_length(wasm_echo_text(t))", "boundary only: copy in, copy out", "bench_text", "text: bare `octet_length(t)`", "text: C echo"),
    ("4 kB text: bare `octet_length(t)`", "octet_length(t)", "baseline, 4000-byte text, stored in the heap (PLAIN)", "bench_text_4k", None, None),
    ("4 kB text: C `c_ascii_upper`", "octet_length(c_ascii_upper(t))", "a-z loop, PGXS", "bench_text_4k", "4 kB text: bare `octet_length(t)`", None),
    ("4 kB text: plwasm `ascii_upper` (C guest)", "octet_length(wasm_ascii_upper(t))", "ABI 1", "bench_text_4k", "4 kB text: bare `octet_length(t)`", "4 kB text: C `c_ascii_upper`"),
    ("4 kB text: plwasm echo", "octet_length(wasm_echo_text(t))", "boundary only", "bench_text_4k", "4 kB text: bare `octet_length(t)`", None),
    ("float8[100]: bare `cardinality(a)`", "cardinality(a)", "baseline, 100 elements", "bench_arrays", None, None),
    ("float8[100]: C `c_l2_norm`", "c_l2_norm(a)", "loop over ARR_DATA_PTR, PGXS", "bench_arrays", "float8[100]: bare `cardinality(a)`", None),
    ("float8[100]: SQL `unnest`", "sql_l2_norm(a)", "sqrt(sum(x*x)) FROM unnest(a)", "bench_arrays", "float8[100]: bare `cardinality(a)`", "float8[100]: C `c_l2_norm`"),
    ("float8[100]: PL/pgSQL `FOREACH`", "plpgsql_l2_norm(a)", "loop in PL/pgSQL", "bench_arrays", "float8[100]: bare `cardinality(a)`", "float8[100]: C `c_l2_norm`"),
    ("float8[100]: plwasm `l2_norm` (Rust SDK)", "wasm_l2_norm(a)", "`fn l2_norm(a: &[f64]) -> f64`", "bench_arrays", "float8[100]: bare `cardinality(a)`", "float8[100]: C `c_l2_norm`"),
    ("float8[100]: plwasm echo", "cardinality(wasm_echo_array(a))", "boundary only: copy in, copy out", "bench_arrays", "float8[100]: bare `cardinality(a)`", None),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = {"bench_text": args.rows, "bench_text_4k": args.rows // 80, "bench_arrays": args.rows // 5}

    def module(name):
        with open(os.path.join(BUILD, name), "rb") as f:
            return base64.b64encode(f.read()).decode()

    exists = psql("SELECT 1 FROM pg_database WHERE datname = 'plwasm_bench'", db="postgres")
    if "1" not in exists:
        psql("CREATE DATABASE plwasm_bench", db="postgres")
    psql(SETUP.format(rows=rows["bench_text"], rows_4k=rows["bench_text_4k"], rows_arrays=rows["bench_arrays"],
                      lower=LOWER, upper=LOWER.upper(), text_c=module("text_c.wasm"), vectors=module("vectors.wasm")))
    body = "@export echo\n" + ECHO
    psql(f"CREATE OR REPLACE FUNCTION wasm_echo_text(t text) RETURNS text IMMUTABLE STRICT LANGUAGE wasm AS $w${body}$w$;\n"
         f"CREATE OR REPLACE FUNCTION wasm_echo_array(a float8[]) RETURNS float8[] IMMUTABLE STRICT LANGUAGE wasm AS $w${body}$w$;\n")

    started = time.time()
    prelude = "SET max_parallel_workers_per_gather = 0;\nSET jit = off;\n\\timing on\n"
    script = prelude + "".join(f"SELECT sum({expr}) FROM {table};\n" for _, expr, _, table, _, _ in VARIANTS)
    psql(script)  # warm-up
    samples = {v[0]: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant, ms in zip(VARIANTS, timings(psql(script))):
            samples[variant[0]].append(ms)
    median = {label: statistics.median(values) for label, values in samples.items()}

    print(f"### Text and float8[] functions (ABI 1): per-row cost\n")
    print(f"`SELECT sum(g(f(col)))` with g = `octet_length`/`cardinality` where f returns a value (both read only the value's header: `length` would count the characters of every text, costing more than most f and adding its noise); serial plan, JIT off; "
          f"median of {args.rounds} interleaved rounds. Rows: {rows['bench_text']:,} 64-byte texts, "
          f"{rows['bench_text_4k']:,} 4 kB texts, {rows['bench_arrays']:,} arrays of 100 float8. "
          "ns/row = (query time - time of the bare column) / rows.\n")
    print("| variant | what | median query ms | ns/row | × the C function's ns/row |")
    print("|---|---|---:|---:|---:|")
    per_row = {}
    for label, _, what, table, baseline, reference in VARIANTS:
        if baseline is None:
            print(f"| {label} | {what} | {median[label]:.0f} | – | – |")
            continue
        per_row[label] = (median[label] - median[baseline]) * 1e6 / rows[table]
        ratio = f"{per_row[label] / per_row[reference]:.2f}" if reference and per_row[reference] > 0 else "–"
        print(f"| {label} | {what} | {median[label]:.0f} | {per_row[label]:.1f} | {ratio} |")
    print(f"\n_Run took {time.time() - started:.0f} s._")


if __name__ == "__main__":
    main()
