--
-- pg_dump / pg_restore carry stored modules, grants and the functions that use them: a dump
-- restored into a fresh database works with no extra step.
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
