--
-- Scalar functions of every supported type.
--
CREATE FUNCTION add_one(x int8) RETURNS int8 IMMUTABLE STRICT LANGUAGE wasm AS $$
  (module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))
$$;
SELECT add_one(41);
-- STRICT: NULL in, NULL out, the module is not called.
SELECT add_one(NULL) IS NULL AS is_null;
-- Wasm integer arithmetic wraps.
SELECT add_one(9223372036854775807);
-- Over many rows; expected sum(1..100000) + 100000.
SELECT sum(add_one(g)) FROM generate_series(1, 100000) g;

-- The same module as hex (bytea escape form) and as base64; @export names the export.
CREATE FUNCTION add_one_hex(x int8) RETURNS int8 STRICT LANGUAGE wasm AS
  '@export add_one
   \x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b';
CREATE FUNCTION add_one_b64(x int8) RETURNS int8 STRICT LANGUAGE wasm AS
  '@export add_one
   AGFzbQEAAAABBgFgAX4BfgMCAQAHCwEHYWRkX29uZQAACgkBBwAgAEIBfAs=';
SELECT add_one_hex(1), add_one_b64(2);

CREATE FUNCTION add_one_f(x float8) RETURNS float8 IMMUTABLE STRICT LANGUAGE wasm AS $$
  (module (func (export "add_one_f") (param f64) (result f64) local.get 0 f64.const 1 f64.add))
$$;
SELECT add_one_f(0.5), add_one_f('NaN'), add_one_f('-Infinity');

-- boolean <-> i32 (0/1; any non-zero result is true)
CREATE FUNCTION negate(b bool) RETURNS bool STRICT LANGUAGE wasm AS $$
  (module (func (export "negate") (param i32) (result i32) local.get 0 i32.eqz))
$$;
CREATE FUNCTION truthy(x int4) RETURNS bool STRICT LANGUAGE wasm AS $$
  (module (func (export "truthy") (param i32) (result i32) local.get 0))
$$;
SELECT negate(true), negate(false), truthy(0), truthy(-7);

-- smallint <-> i32, with a range check on the result
CREATE FUNCTION neg2(x int2) RETURNS int2 STRICT LANGUAGE wasm AS $$
  (module (func (export "neg2") (param i32) (result i32) i32.const 0 local.get 0 i32.sub))
$$;
SELECT neg2(5::int2), neg2(-32767::int2);
SELECT neg2((-32768)::int2);
\echo :LAST_ERROR_SQLSTATE

-- integer and mixed parameter types
CREATE FUNCTION scale(x int4, factor float8) RETURNS float8 STRICT LANGUAGE wasm AS $$
  (module (func (export "scale") (param i32 f64) (result f64)
    local.get 0 f64.convert_i32_s local.get 1 f64.mul))
$$;
SELECT scale(3, 0.5), scale(-2147483648, 2);

-- real <-> f32
CREATE FUNCTION half(x real) RETURNS real STRICT LANGUAGE wasm AS $$
  (module (func (export "half") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul))
$$;
SELECT half(3), half(-1.5);

-- date <-> i32 days since 1970-01-01; infinity as the i32 extremes
CREATE FUNCTION unix_day(d date) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "unix_day") (param i32) (result i32) local.get 0))
$$;
CREATE FUNCTION from_unix_day(n int4) RETURNS date STRICT LANGUAGE wasm AS $$
  (module (func (export "from_unix_day") (param i32) (result i32) local.get 0))
$$;
SELECT unix_day('1970-01-02'), unix_day('2000-01-01'), unix_day('1969-12-31'), unix_day('infinity');
SELECT from_unix_day(0), from_unix_day(19782), from_unix_day(-2147483648);
-- Past PostgreSQL's last date.
SELECT from_unix_day(2147483000);
\echo :LAST_ERROR_SQLSTATE

-- timestamp(tz) <-> i64 microseconds since 1970-01-01 00:00 UTC
SET timezone = 'UTC';
CREATE FUNCTION unix_micros(t timestamptz) RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (func (export "unix_micros") (param i64) (result i64) local.get 0))
$$;
CREATE FUNCTION from_unix_micros(n int8) RETURNS timestamptz STRICT LANGUAGE wasm AS $$
  (module (func (export "from_unix_micros") (param i64) (result i64) local.get 0))
$$;
CREATE FUNCTION plus_hour(t timestamp) RETURNS timestamp STRICT LANGUAGE wasm AS $$
  (module (func (export "plus_hour") (param i64) (result i64) local.get 0 i64.const 3600000000 i64.add))
$$;
SELECT unix_micros('1970-01-01 00:00:01+00'), unix_micros('2024-03-01 12:00:00+00');
SELECT unix_micros('1970-01-01 00:00:00+00') = extract(epoch FROM '1970-01-01 00:00:00+00'::timestamptz)::int8 * 1000000 AS matches_epoch;
SELECT from_unix_micros(0), from_unix_micros(1709294400000000), from_unix_micros(9223372036854775807);
SELECT plus_hour('2024-12-31 23:30:00');
SELECT from_unix_micros(-9223372036854775000);
\echo :LAST_ERROR_SQLSTATE
RESET timezone;

-- No arguments; a void result.
CREATE FUNCTION answer() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "answer") (result i32) i32.const 42))
$$;
CREATE FUNCTION ignore(x int4) RETURNS void STRICT LANGUAGE wasm AS $$
  (module (func (export "ignore") (param i32)))
$$;
SELECT answer(), ignore(1);

-- CREATE OR REPLACE takes effect at the next call.
CREATE OR REPLACE FUNCTION answer() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "answer") (result i32) i32.const 43))
$$;
SELECT answer();

-- In an expression index; the planner uses it.
CREATE TABLE points (x int8);
INSERT INTO points SELECT g FROM generate_series(1, 1000) g;
CREATE INDEX points_add_one ON points (add_one(x));
ANALYZE points;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT x FROM points WHERE add_one(x) = 501;
SELECT x FROM points WHERE add_one(x) = 501;
RESET enable_seqscan;
DROP TABLE points;

-- A function's body is stored as written, so pg_dump shows the module.
SELECT prosrc FROM pg_proc WHERE proname = 'add_one_hex';
