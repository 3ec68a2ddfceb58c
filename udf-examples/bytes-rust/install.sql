-- Installs the checksums module and creates its SQL functions in the current schema.
-- Run from the repository root after udf-examples/build.sh, as any role that may create
-- functions there:   psql -f udf-examples/bytes-rust/install.sql
\set wasm `base64 -w0 udf-examples/build/checksums.wasm`
SELECT plwasm.install_module('checksums', decode(:'wasm', 'base64')) AS sha256;
SELECT plwasm.create_functions('checksums');
