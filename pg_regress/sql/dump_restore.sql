--
-- pg_dump / pg_restore carry stored modules, grants and the functions that use them: a dump
-- restored into a fresh database works with no extra step, also when a non-superuser owns,
-- dumps and restores it.
--
SET client_min_messages = warning;
DROP DATABASE IF EXISTS plwasm_dump_src;
DROP DATABASE IF EXISTS plwasm_dump_dst;
RESET client_min_messages;
CREATE DATABASE plwasm_dump_src;
CREATE DATABASE plwasm_dump_dst;
\c plwasm_dump_src
CREATE EXTENSION plwasm;
SELECT plwasm.install_module('arith',
  '\x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b') IS NOT NULL AS installed;
SELECT plwasm.grant_module('arith', 'public');
CREATE FUNCTION add_one(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith';
CREATE FUNCTION inline_double(x float8) RETURNS float8 STRICT LANGUAGE wasm AS $$
  (module (func (export "inline_double") (param f64) (result f64) local.get 0 local.get 0 f64.add))
$$;
SELECT add_one(41), inline_double(2.5);
-- Custom format through pg_restore, the usual way.
\! pg_dump -Fc -d plwasm_dump_src -f /tmp/plwasm_dump_test.dump && pg_restore -d plwasm_dump_dst /tmp/plwasm_dump_test.dump && rm -f /tmp/plwasm_dump_test.dump && echo restored
\c plwasm_dump_dst
SELECT add_one(41), inline_double(2.5);
SELECT name, owner, size, functions, granted_to FROM plwasm.modules;
\c plwasm_regress
DROP DATABASE plwasm_dump_src;
DROP DATABASE plwasm_dump_dst;

-- A database owned by a non-superuser: its stored module, SDK scalar and set-returning
-- functions and aggregates (plwasm.state), dumped and restored into a fresh database by that
-- role, with no extra step.
CREATE ROLE regress_dump_owner LOGIN;
SET client_min_messages = warning;
DROP DATABASE IF EXISTS plwasm_ndump_src;
DROP DATABASE IF EXISTS plwasm_ndump_dst;
RESET client_min_messages;
CREATE DATABASE plwasm_ndump_src OWNER regress_dump_owner;
CREATE DATABASE plwasm_ndump_dst OWNER regress_dump_owner;
\c plwasm_ndump_src regress_dump_owner
CREATE EXTENSION plwasm;
\set timeseries `base64 -w0 ../udf-examples/build/timeseries.wasm`
SELECT plwasm.install_module('timeseries', decode(:'timeseries', 'base64')) IS NOT NULL AS installed;
SELECT count(*) AS created FROM plwasm.create_functions('timeseries');
CREATE TABLE pts AS SELECT i AS device, '2026-01-01'::timestamptz + n * interval '1 minute' AS ts,
                           sin(n / 10.0) * 10 + i AS value
                      FROM generate_series(1, 3) i, generate_series(0, 499) n;
CREATE VIEW answers AS
SELECT (SELECT array_agg(round(stats_mean(s)::numeric, 6) ORDER BY device)
          FROM (SELECT device, stats_agg(value) s FROM pts GROUP BY device) q) AS means,
       (SELECT series_length(lttb(ts, value, 20)) FROM pts WHERE device = 2) AS lttb_points,
       (SELECT round(approx_percentile(percentile_agg(value), 0.5)::numeric, 3) FROM pts) AS median,
       (SELECT count(*) FROM points((SELECT lttb(ts, value, 20) FROM pts WHERE device = 1))) AS srf_rows;
SELECT * FROM answers;
\! pg_dump -U regress_dump_owner -Fc -d plwasm_ndump_src -f /tmp/plwasm_ndump_test.dump && pg_restore -U regress_dump_owner -d plwasm_ndump_dst /tmp/plwasm_ndump_test.dump && rm -f /tmp/plwasm_ndump_test.dump && echo restored by regress_dump_owner
\c plwasm_ndump_dst regress_dump_owner
SELECT * FROM answers;
SELECT name, owner, abi, array_length(functions, 1) AS functions FROM plwasm.modules;
-- A direct insert into the store is checked like install_module: another owner is refused.
INSERT INTO plwasm.module_store (name, owner, sha256, abi, wasm)
  SELECT 'not_mine', 'postgres', sha256, abi, wasm FROM plwasm.module_store WHERE name = 'timeseries';
-- A row's own SHA-256 and ABI are not believed: they are recomputed.
INSERT INTO plwasm.module_store (name, owner, sha256, abi, wasm)
  SELECT 'mine', 'regress_dump_owner', '\x00'::bytea || substr(sha256, 2), 7, wasm FROM plwasm.module_store WHERE name = 'timeseries';
SELECT name, abi, sha256 = pg_catalog.sha256(wasm) AS hash_of_the_bytes FROM plwasm.module_store ORDER BY name;
\c plwasm_regress postgres
DROP DATABASE plwasm_ndump_src;
DROP DATABASE plwasm_ndump_dst;
DROP ROLE regress_dump_owner;
