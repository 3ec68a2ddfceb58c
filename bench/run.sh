#!/usr/bin/env bash
# Runs plwasm's benchmarks and writes BENCHMARKS.md (machine, date, tables).
#   bench/run.sh [--rows N] [--rounds K]     (defaults: 5,000,000 rows, 7 rounds)
source "$(dirname "$0")/../scripts/common.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install.sh" >/dev/null
log "building the example modules"
"$ROOT/udf-examples/build.sh" >/dev/null
log "building the C comparison function and the native Rust LTTB extension"
make -s -C bench/c_add_one PG_CONFIG="$PG_CONFIG" install >/dev/null
(cd bench/native-lttb && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
"$ROOT/scripts/pg.sh" start

out="$ROOT/BENCHMARKS.md"
tmp="$(mktemp)"
{
    echo "# plwasm benchmarks"
    echo
    echo "Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(nproc) cores"\
         "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB;"\
         "$("$PG_BIN/postgres" --version); $(rustc --version | cut -d' ' -f1-2); wasmtime 48."
    commit="$(git rev-parse --short HEAD)"
    git diff --quiet HEAD -- . ':!BENCHMARKS.md' || commit="$commit plus uncommitted changes"
    echo "Commit: $commit. Numbers from one run on a shared 2-core machine: differences under ~5 ns/row are noise."
    echo
    echo 'Server settings that differ from PostgreSQL defaults (`scripts/pg.sh`):'\
         "$("$PG_BIN/psql" -X -At -d postgres -c "SELECT string_agg(format('%s = %s', name, current_setting(name)), ', ' ORDER BY name) FROM pg_settings WHERE source NOT IN ('default', 'override', 'client') AND name NOT IN ('port', 'unix_socket_directories', 'listen_addresses', 'lc_messages', 'lc_monetary', 'lc_numeric', 'lc_time', 'default_text_search_config', 'log_timezone', 'TimeZone', 'DateStyle', 'dynamic_shared_memory_type', 'max_wal_size', 'min_wal_size')")."\
         "plwasm's settings are all at their defaults; each section names the session settings it uses."
    echo
    log "scalar functions" >&2
    python3 bench/scalar.py "$@"
    echo
    log "text and array functions" >&2
    python3 bench/varlena.py
    echo
    log "aggregates" >&2
    python3 bench/aggregates.py
    echo
    log "one node against a Citus coordinator and two workers" >&2
    "$ROOT/scripts/citus.sh" start >&2
    python3 bench/citus.py "$(cut -d' ' -f1 <<<"$("$ROOT/scripts/citus.sh" ports)")"
    "$ROOT/scripts/citus.sh" stop >&2
    echo
    echo "### Metering: wasmtime call cost with and without fuel and epoch interruption"
    echo
    echo "\`cargo run --release -p plwasm-core --example call_overhead\`: the same module in one process,"\
         "no PostgreSQL; best of 5 runs of 10,000,000 calls."
    echo
    log "metering" >&2
    cargo run -q --release -p plwasm-core --example call_overhead
    echo
    echo "### Metering on the time-series kernels"
    echo
    echo '`cargo run --release -p plwasm-core --example kernel_metering`: each aggregate of the time-series module'\
         "given one group of 2,000,000 points as the extension hands them over, then finalized, with plwasm's engine"\
         "and with its fuel and epoch checks compiled out; no PostgreSQL, no fuel cap, the default 64MB memory cap."
    echo
    log "kernel metering" >&2
    cargo run -q --release -p plwasm-core --example kernel_metering "$ROOT/udf-examples/build/timeseries.wasm"
    echo
    echo "### An aggregate's row queue outside PostgreSQL"
    echo
    echo "\`cargo run --release -p plwasm-core --example row_queue_cost\`: the trivial sum's rows queued by the"\
         "per-row path and handed to the same WAT guest in batches, no PostgreSQL; best of 3 runs."
    echo
    log "row queue" >&2
    cargo run -q --release -p plwasm-core --example row_queue_cost
    echo
    echo "### Loading a module from the code cache, step by step"
    echo
    echo "\`cargo run --release -p plwasm-core --example module_load\`: the time-series module compiled, written"\
         "to a cache directory, then loaded back the ways plwasm can, in one process, no PostgreSQL; median of 200."\
         "A new backend meets colder caches: these are lower bounds."
    echo
    log "module load" >&2
    cargo run -q --release -p plwasm-core --example module_load "$ROOT/udf-examples/build/timeseries.wasm"
} > "$tmp"
mv "$tmp" "$out"
log "wrote $out"
