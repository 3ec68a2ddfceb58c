#!/usr/bin/env python3
"""Load against the local cluster: `scripts/load.sh [SECONDS] [MILLION_CALLS]`.

1. pgbench, 8 clients, for SECONDS (default 60): each transaction calls a scalar function
   from a stored module, an inline text function (ABI 1) and a wasm aggregate over 100 rows,
   and turns any wrong result into an error, so a wrong result is a failed transaction.
2. Meanwhile another session keeps replacing all of them: the stored module (install_module,
   two binaries that compute the same), the text function (CREATE OR REPLACE, alternating
   bodies) and the aggregate's support functions (both in one transaction).
3. Then one backend makes MILLION_CALLS (default 10) million calls of each kind while the
   replacing goes on, and its resident memory (VmRSS) is read after each million.

Prints a Markdown report; exits 1 on a failed transaction, a wrong result, a server restart
or RSS growth of more than 8 MB after the first million calls.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DSN = os.environ.get("PLWASM_LOAD_DSN", "dbname=plwasm_load")
PGBENCH = os.environ.get("PGBENCH", "pgbench")

ADD_ONE = [
    # (module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))
    bytes.fromhex("0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b"),
    # the same function computed as x + 2 - 1
    bytes.fromhex("0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a0c010a00200042027c42017d0b"),
]
with open(os.path.join(ROOT, "bench", "echo.wat")) as f:
    ECHO = f.read()
with open(os.path.join(ROOT, "bench", "wsum.wat")) as f:
    WSUM = f.read()

# A wrong result casts 'wrong result' to integer at run time, which fails the transaction
# (a constant 1/0 would be folded, and fail, at plan time).
SCRIPT = """\\set x random(1, 1000000000)
SELECT (CASE WHEN ld_add(:x) = :x + 1 THEN '0' ELSE 'wrong result of ld_add' END)::int;
SELECT (CASE WHEN ld_echo(md5(:x::text)) = md5(:x::text) THEN '0' ELSE 'wrong result of ld_echo' END)::int;
SELECT (CASE WHEN ld_wsum(g::float8) = 5050 THEN '0' ELSE 'wrong result of ld_wsum' END)::int FROM generate_series(1, 100) g;
"""


def echo_body(variant: int) -> str:
    # The variants differ in a comment, so the module hash (and the compiled code) changes.
    return f"@export echo\n;; variant {variant}\n{ECHO}"


def support_statements(variant: int) -> list[str]:
    wat = f";; variant {variant}\n{WSUM}"
    return [
        "CREATE OR REPLACE FUNCTION ld_wsum_acc(internal, float8) RETURNS internal LANGUAGE wasm "
        f"PARALLEL SAFE AS $w$@export wsum.accumulate\n{wat}$w$",
        "CREATE OR REPLACE FUNCTION ld_wsum_fin(internal) RETURNS float8 LANGUAGE wasm "
        f"PARALLEL SAFE AS $w$@export wsum.finalize\n{wat}$w$",
    ]


def setup(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS plwasm")
    conn.execute("SELECT plwasm.install_module('load_arith', %s)", (ADD_ONE[0],))
    conn.execute("CREATE OR REPLACE FUNCTION ld_add(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'load_arith:add_one'")
    conn.execute(f"CREATE OR REPLACE FUNCTION ld_echo(t text) RETURNS text STRICT LANGUAGE wasm AS $w${echo_body(0)}$w$")
    for statement in support_statements(0):
        conn.execute(statement)
    conn.execute("SELECT plwasm.create_aggregate('ld_wsum', 'ld_wsum_acc(internal, float8)', 'ld_wsum_fin(internal)', replace => true)")


class Replacer(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.rounds = 0
        self.errors = []

    def run(self):
        with psycopg.connect(DSN, autocommit=True) as conn:
            variant = 0
            while not self.stop.is_set():
                variant += 1
                try:
                    conn.execute("SELECT plwasm.install_module('load_arith', %s)", (ADD_ONE[variant % 2],))
                    conn.execute(
                        f"CREATE OR REPLACE FUNCTION ld_echo(t text) RETURNS text STRICT LANGUAGE wasm AS $w${echo_body(variant % 2)}$w$")
                    with conn.transaction():
                        for statement in support_statements(variant % 2):
                            conn.execute(statement)
                    self.rounds += 1
                except psycopg.Error as err:
                    self.errors.append(str(err).splitlines()[0])
                time.sleep(0.05)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    millions = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with psycopg.connect(DSN, autocommit=True) as conn:
        setup(conn)
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    replacer = Replacer()
    replacer.start()

    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(SCRIPT)
    bench = subprocess.run(
        [PGBENCH, "-n", "-c", "8", "-j", "2", "-T", str(seconds), "-f", script.name, "--failures-detailed",
         os.environ.get("PLWASM_LOAD_DB", "plwasm_load")],
        capture_output=True, text=True)
    os.unlink(script.name)
    out = bench.stdout + bench.stderr
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    failed_match = re.search(r"number of failed transactions: (\d+)", out)
    failed = int(failed_match.group(1)) if failed_match else None
    aborted = len(re.findall(r"client \d+ (?:script \d+ )?aborted", out))
    tps = re.search(r"tps = ([\d.]+)", out)

    rss = []
    with psycopg.connect(DSN, autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        queries = [
            ("scalar", "SELECT sum(ld_add(g)) = sum(g + 1) FROM generate_series(1, 1000000) g"),
            ("text", "SELECT bool_and(ld_echo(md5(g::text)) = md5(g::text)) FROM generate_series(1, 1000000) g"),
            ("aggregate", "SELECT ld_wsum(g::float8) = 500000500000 FROM generate_series(1, 1000000) g"),
        ]
        wrong = 0
        for million in range(millions):
            for _, query in queries:
                if not conn.execute(query).fetchone()[0]:
                    wrong += 1
            rss.append(rss_kb(pid))
        restarted = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] != started
    replacer.stop.set()
    replacer.join()

    growth_mb = (rss[-1] - rss[0]) / 1024
    print(f"## Load: {seconds} s of pgbench (8 clients) with functions replaced, then {millions}M calls of each kind in one backend\n")
    print(f"- pgbench: {transactions} transactions ({tps.group(1) if tps else '?'} tps), "
          f"failed transactions: {failed if failed is not None else 'not reported'}, clients aborted: {aborted}")
    print(f"- replacements while it ran: {replacer.rounds} rounds (module, text function, aggregate support "
          f"functions), {len(replacer.errors)} failed" + (f" (first: {replacer.errors[0]})" if replacer.errors else ""))
    print(f"- one backend, {millions} x (1M scalar + 1M text + 1M aggregate rows): wrong results {wrong}; "
          f"VmRSS after each million (MB): {', '.join(f'{kb / 1024:.1f}' for kb in rss)}")
    print(f"- RSS growth after the first million: {growth_mb:+.1f} MB; server restarted: {'yes' if restarted else 'no'}")
    if bench.returncode != 0:
        print("\npgbench said:\n" + out[-2000:])
    bad = (bench.returncode != 0 or (failed or 0) > 0 or aborted > 0 or wrong > 0 or restarted or growth_mb > 8
           or replacer.errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
