-- Installs text_zig and creates its two functions (run from the repository root after
-- udf-examples/build.sh):   psql -f udf-examples/text-zig/install.sql
\set wasm `base64 -w0 udf-examples/build/text_zig.wasm`
SELECT plwasm.install_module('text_zig', decode(:'wasm', 'base64')) AS sha256;
CREATE FUNCTION ascii_upper(t text) RETURNS text IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS 'text_zig:ascii_upper';
CREATE FUNCTION char_count(t text) RETURNS integer IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS 'text_zig:char_count';
