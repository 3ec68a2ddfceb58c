#!/usr/bin/env python3
"""Forged aggregate states: a flat plwasm.state is untrusted input to the guest's deserialize.

For each aggregate of the timeseries module, a real state is made and flattened, then N
states with plwasm's valid header (the module's SHA-256 and the aggregate's name) and a random,
mutated or cut payload are given to the aggregate as its INITCOND and run. Each must end in a
result or an ERROR; the session and the server must survive (the postmaster start time is
compared). Prints the SQLSTATEs seen.

Usage: state_fuzz.py DSN TIMESERIES_WASM [N per aggregate, default 100] [seed]
"""
import hashlib
import random
import sys

import psycopg

AGGREGATES = {
    "stats_agg": ("float8", "x::float8"),
    "percentile_agg": ("float8", "x::float8"),
    "running_mean": ("float8", "x::float8"),
    "lttb": ("timestamptz, float8, int4", "'2026-01-01'::timestamptz + x * interval '1s', x::float8, 3"),
    "m4": ("timestamptz, float8, int4, timestamptz, timestamptz",
           "'2026-01-01'::timestamptz + x * interval '1s', x::float8, 4, '2026-01-01', '2026-01-02'"),
}


def main():
    dsn, wasm_path = sys.argv[1], sys.argv[2]
    per_aggregate = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else random.randrange(1 << 30)
    rng = random.Random(seed)
    with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as admin:
        started = admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        admin.execute("DROP DATABASE IF EXISTS plwasm_state_fuzz")
        admin.execute("CREATE DATABASE plwasm_state_fuzz")
    wasm = open(wasm_path, "rb").read()
    module_hash = hashlib.sha256(wasm).digest()
    seen = {}
    with psycopg.connect(dsn + " dbname=plwasm_state_fuzz", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION plwasm")
        conn.execute("SELECT plwasm.install_module('timeseries', %s)", (wasm,))
        conn.execute("SELECT count(*) FROM plwasm.create_functions('timeseries')")
        for name, (types, args) in AGGREGATES.items():
            conn.execute(f"CREATE AGGREGATE {name}_state({types}) (SFUNC = {name}_accumulate, STYPE = plwasm.state)")
            real = conn.execute(f"SELECT {name}_state({args})::text FROM generate_series(1, 50) x").fetchone()[0]
            payload = bytes.fromhex(real[2:])[4 + 32 + 1 + len(name):]
            for _ in range(per_aggregate):
                choice = rng.random()
                if choice < 0.3:
                    forged = rng.randbytes(rng.randrange(0, 64))
                elif choice < 0.7:
                    forged = bytearray(payload)
                    for _ in range(rng.randrange(1, 6)):
                        if forged:
                            forged[rng.randrange(len(forged))] = rng.randrange(256)
                    forged = bytes(forged)
                else:
                    forged = payload[:rng.randrange(0, len(payload) + 1)] + rng.randbytes(rng.randrange(0, 9))
                flat = b"PWS\x01" + module_hash + bytes([len(name)]) + name.encode() + forged
                try:
                    conn.execute(f"CREATE OR REPLACE AGGREGATE {name}_forged({types}) (SFUNC = {name}_accumulate,"
                                 f" STYPE = plwasm.state, FINALFUNC = {name}_finalize, INITCOND = '\\x{flat.hex()}')")
                    conn.execute(f"SELECT {name}_forged({args}) FROM generate_series(1, 20) x").fetchone()
                    seen["result"] = seen.get("result", 0) + 1
                except psycopg.Error as err:
                    if conn.closed or conn.broken:
                        print(f"state fuzz: FAILED: the session died on {name} with \\x{flat.hex()}: {err}")
                        sys.exit(1)
                    seen[err.diag.sqlstate] = seen.get(err.diag.sqlstate, 0) + 1
    with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as admin:
        if admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0] != started:
            print("state fuzz: FAILED: the server restarted")
            sys.exit(1)
        admin.execute("DROP DATABASE plwasm_state_fuzz")
    total = per_aggregate * len(AGGREGATES)
    print(f"state fuzz: seed {seed}, {total} forged states into {len(AGGREGATES)} aggregates: "
          + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())) + "; the server survived")


if __name__ == "__main__":
    main()
