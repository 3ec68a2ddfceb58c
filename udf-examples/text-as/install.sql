-- Installs text_as and creates its two functions (run from the repository root after
-- udf-examples/build.sh):   psql -f udf-examples/text-as/install.sql
\set wasm `base64 -w0 udf-examples/build/text_as.wasm`
SELECT plwasm.install_module('text_as', decode(:'wasm', 'base64')) AS sha256;
CREATE FUNCTION ascii_upper(t text) RETURNS text IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS 'text_as:ascii_upper';
CREATE FUNCTION char_count(t text) RETURNS integer IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS 'text_as:char_count';
