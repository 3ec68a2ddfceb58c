--
-- Fuel, memory and stack caps, and traps: each is an ERROR with a fitting SQLSTATE, and the
-- session (and the function) works afterwards.
--
-- Fuel (plwasm.fuel_limit, 54000).
CREATE FUNCTION spin() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "spin") (result i32) (loop br 0) i32.const 0))
$$;
CREATE FUNCTION count_down(n int8) RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (func (export "count_down") (param $n i64) (result i64)
    (block $done (loop $again
      local.get $n i64.eqz br_if $done
      local.get $n i64.const 1 i64.sub local.set $n
      br $again))
    local.get $n))
$$;
SELECT spin();
\echo :LAST_ERROR_SQLSTATE
SET plwasm.fuel_limit = 100000;
SELECT count_down(1000);
SELECT count_down(1000000);
\echo :LAST_ERROR_SQLSTATE
-- The budget is per call: many cheap calls are fine.
SELECT sum(count_down(100)) FROM generate_series(1, 10000);
RESET plwasm.fuel_limit;
SELECT count_down(1000000);

-- Memory (plwasm.max_memory, 54000): memory.grow past the cap is an error, not -1.
CREATE FUNCTION grow(pages int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (memory 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))
$$;
SELECT grow(10);
SELECT grow(10);
SET plwasm.max_memory = '1MB';
SELECT grow(100);
\echo :LAST_ERROR_SQLSTATE
-- After an error the instance is discarded: a fresh one starts at one page.
SELECT grow(0);
-- An initial memory over a lowered cap fails at instantiation.
RESET plwasm.max_memory;
CREATE FUNCTION six_mb() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (memory 100) (func (export "six_mb") (result i32) memory.size))
$$;
SET plwasm.max_memory = '1MB';
SELECT six_mb();
\echo :LAST_ERROR_SQLSTATE
RESET plwasm.max_memory;
SELECT six_mb();

-- Stack (plwasm.max_stack, 54001).
CREATE FUNCTION recurse(n int8) RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (func $recurse (export "recurse") (param i64) (result i64)
    local.get 0 i64.const 1 i64.add call $recurse))
$$;
SELECT recurse(0);
\echo :LAST_ERROR_SQLSTATE

-- Traps, with the wasm backtrace (function names from the name section).
CREATE FUNCTION safe_div(a int4, b int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module
    (func $divide (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
    (func (export "safe_div") (param i32 i32) (result i32) local.get 0 local.get 1 call $divide))
$$;
SELECT safe_div(7, 2);
SELECT safe_div(1, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT safe_div(-2147483648, -1);
\echo :LAST_ERROR_SQLSTATE
SELECT safe_div(9, 3);
CREATE FUNCTION to_int(x float8) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "to_int") (param f64) (result i32) local.get 0 i32.trunc_f64_s))
$$;
SELECT to_int(2.9), to_int(-2.9);
SELECT to_int('NaN');
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION boom() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "boom") (result i32) unreachable))
$$;
SELECT boom();
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION peek(addr int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (memory 1) (func (export "peek") (param i32) (result i32) local.get 0 i32.load))
$$;
SELECT peek(0);
SELECT peek(65536);
\echo :LAST_ERROR_SQLSTATE
SELECT peek(-4);
CREATE FUNCTION call_null() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (type $t (func (result i32))) (table 1 funcref)
    (func (export "call_null") (result i32) i32.const 0 call_indirect (type $t)))
$$;
SELECT call_null();
-- A start function that traps fails the first call, not CREATE FUNCTION.
CREATE FUNCTION bad_start() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func $init unreachable) (start $init) (func (export "bad_start") (result i32) i32.const 1))
$$;
SELECT bad_start();
\echo :LAST_ERROR_SQLSTATE

-- Errors roll back like any other: subtransactions and PL/pgSQL handlers catch them.
BEGIN;
CREATE TABLE t (x int4);
INSERT INTO t VALUES (1);
SAVEPOINT s;
INSERT INTO t VALUES (safe_div(1, 0));
ROLLBACK TO SAVEPOINT s;
INSERT INTO t VALUES (safe_div(10, 5));
SELECT x FROM t ORDER BY x;
ROLLBACK;
DO $$
BEGIN
  PERFORM safe_div(1, 0);
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
-- Guest state survives calls (the instance is kept per session) but not traps.
CREATE FUNCTION tally(fail bool) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (global $n (mut i32) (i32.const 0))
    (func (export "tally") (param i32) (result i32)
      global.get $n i32.const 1 i32.add global.set $n
      local.get 0 (if (then unreachable))
      global.get $n))
$$;
SELECT tally(false), tally(false), tally(false);
SELECT tally(true);
SELECT tally(false);
