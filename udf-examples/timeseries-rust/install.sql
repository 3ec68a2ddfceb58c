-- Installs the timeseries module and creates its functions and aggregates in the current
-- schema. Run from the repository root after udf-examples/build.sh, as any role that may
-- create functions there:   psql -f udf-examples/timeseries-rust/install.sql
\set wasm `base64 -w0 udf-examples/build/timeseries.wasm`
SELECT plwasm.install_module('timeseries', decode(:'wasm', 'base64')) AS sha256;
SELECT plwasm.create_functions('timeseries');
