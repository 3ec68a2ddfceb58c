#!/usr/bin/env bash
# Builds the example guest modules into udf-examples/build/:
#   numeric_rust.wasm, numeric_c.wasm, numeric_as.wasm, numeric_zig.wasm
#     the same four numeric functions (clamp, lerp, gcd, collatz_steps) in four languages (ABI 0);
#   text_utils.wasm, checksums.wasm, vectors.wasm, json_tools.wasm, timeseries.wasm
#     Rust modules on the plwasm-guest SDK (ABI 1);
#   text_c.wasm, text_as.wasm, text_zig.wasm
#     a small ABI 1 text module in C, AssemblyScript and Zig.
# Toolchains come from scripts/setup.sh: rustup's wasm32-unknown-unknown target, Debian's
# clang + lld, AssemblyScript from npm (pinned in numeric-as/package-lock.json), Zig from PyPI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/build"
mkdir -p "$out"

echo "udf-examples: rust"
cargo build -q --release --target wasm32-unknown-unknown --manifest-path "$here/Cargo.toml" --workspace
rust_out="$here/target/wasm32-unknown-unknown/release"
cp "$rust_out/numeric_rust.wasm" "$out/numeric_rust.wasm"
cp "$rust_out/text_rust.wasm" "$out/text_utils.wasm"
cp "$rust_out/bytes_rust.wasm" "$out/checksums.wasm"
cp "$rust_out/vector_rust.wasm" "$out/vectors.wasm"
cp "$rust_out/json_rust.wasm" "$out/json_tools.wasm"
cp "$rust_out/timeseries_rust.wasm" "$out/timeseries.wasm"

echo "udf-examples: c"
clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o "$out/numeric_c.wasm" "$here/numeric-c/numeric.c"
clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o "$out/text_c.wasm" "$here/text-c/text.c"

echo "udf-examples: assemblyscript"
(cd "$here/numeric-as" && { [ -x node_modules/.bin/asc ] || npm ci --silent --no-audit --no-fund; } && npm run -s build)
cp "$here/numeric-as/build/numeric_as.wasm" "$out/"
(cd "$here/text-as" && ../numeric-as/node_modules/.bin/asc assembly/index.ts -O3 --runtime stub --use abort= \
    -o "$out/text_as.wasm")

echo "udf-examples: zig"
(cd "$here/numeric-zig" && python3 -m ziglang build-exe numeric.zig -target wasm32-freestanding -fno-entry -rdynamic \
    -O ReleaseSmall -femit-bin="$out/numeric_zig.wasm")
(cd "$here/text-zig" && python3 -m ziglang build-exe text.zig -target wasm32-freestanding -fno-entry -rdynamic \
    -O ReleaseSmall -femit-bin="$out/text_zig.wasm")
rm -f "$out"/*.o

ls -l "$out"/*.wasm
