-- Installs the text_utils module and creates its SQL functions in the current schema.
-- Run from the repository root after udf-examples/build.sh, as any role that may create
-- functions there:   psql -f udf-examples/text-rust/install.sql
\set wasm `base64 -w0 udf-examples/build/text_utils.wasm`
SELECT plwasm.install_module('text_utils', decode(:'wasm', 'base64')) AS sha256;
SELECT plwasm.create_functions('text_utils');
