--
-- Hostile guests, run by a role without superuser: each is an ERROR with a fitting SQLSTATE
-- (or is bounded and succeeds), and afterwards the session and the server are alive.
--
SELECT pg_postmaster_start_time() AS server_started \gset
CREATE ROLE regress_hostile LOGIN;
CREATE SCHEMA regress_hostile AUTHORIZATION regress_hostile;
SET search_path = regress_hostile;

-- Memory across many instances: 48 functions that each touch 6MB, called in one statement,
-- under a session budget of 64MB. Idle instances are dropped (least recently used first) to
-- make room, so the statement runs and the session never holds more than the budget.
SET plwasm.max_session_memory = '64MB';
SET ROLE regress_hostile;
DO $$
BEGIN
  FOR i IN 1..48 LOOP
    EXECUTE format($f$CREATE FUNCTION hog%s() RETURNS int4 STRICT LANGUAGE wasm AS %L$f$, i,
      format('(module (memory 1) (func (export "hog%s") (result i32)
                (drop (memory.grow (i32.const 95)))
                (memory.fill (i32.const 0) (i32.const 7) (i32.mul (memory.size) (i32.const 65536)))
                (memory.size)))', i));
  END LOOP;
END $$;
SELECT sum(pages) AS pages, count(*) AS functions
  FROM (SELECT hog1() + hog2() + hog3() + hog4() + hog5() + hog6() + hog7() + hog8() AS pages
        UNION ALL SELECT hog9() + hog10() + hog11() + hog12() + hog13() + hog14() + hog15() + hog16()
        UNION ALL SELECT hog17() + hog18() + hog19() + hog20() + hog21() + hog22() + hog23() + hog24()
        UNION ALL SELECT hog25() + hog26() + hog27() + hog28() + hog29() + hog30() + hog31() + hog32()
        UNION ALL SELECT hog33() + hog34() + hog35() + hog36() + hog37() + hog38() + hog39() + hog40()
        UNION ALL SELECT hog41() + hog42() + hog43() + hog44() + hog45() + hog46() + hog47() + hog48()) t;
SELECT plwasm.session_memory() <= 64 * 1024 * 1024 AS within_budget, plwasm.session_memory() > 0 AS holds_some;
-- The plain role cannot raise its own budget.
SET plwasm.max_session_memory = '1GB';
RESET ROLE;
-- One instance that alone needs more than the budget (though less than plwasm.max_memory)
-- is refused, after the idle ones were dropped.
SET plwasm.max_session_memory = '32MB';
SET ROLE regress_hostile;
CREATE FUNCTION whale() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (memory 1) (func (export "whale") (result i32) (memory.grow (i32.const 600))))';
SELECT whale();
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.session_memory() <= 32 * 1024 * 1024 AS within_budget;
RESET ROLE;
RESET plwasm.max_session_memory;

-- A start function that never ends, with no fuel limit: statement_timeout stops it while
-- the module is instantiated (before any call).
SET plwasm.fuel_limit = 0;
SET ROLE regress_hostile;
CREATE FUNCTION never_starts() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (func $forever (loop (br 0))) (start $forever) (func (export "never_starts") (result i32) (i32.const 1)))';
SET statement_timeout = '200ms';
SELECT never_starts();
RESET statement_timeout;
SELECT 'the next statement is not cancelled' AS after;
RESET ROLE;
RESET plwasm.fuel_limit;

-- A module that takes seconds to compile: statement_timeout stops CREATE FUNCTION, and the
-- cancel does not spill over to the next statement.
SET plwasm.code_cache_size = 0;
SET ROLE regress_hostile;
SELECT '(module (func (export "slow") (param i64) (result i64) local.get 0) '
       || string_agg(format('(func (export "f%s") (param i64) (result i64) %s local.get 0)', i,
                            repeat('local.get 0 i64.const 3 i64.mul i64.const 7 i64.add drop ', 40)), ' ')
       || ')' AS slow_module
  FROM generate_series(1, 8000) i \gset
SET statement_timeout = '300ms';
CREATE FUNCTION slow(x int8) RETURNS int8 STRICT LANGUAGE wasm AS :'slow_module';
SELECT 'the next statement is not cancelled' AS after;
RESET statement_timeout;
SELECT count(*) FROM pg_proc WHERE proname = 'slow';
\unset slow_module
RESET ROLE;
RESET plwasm.code_cache_size;

-- Proposals plwasm does not accept are refused at CREATE FUNCTION (42P13): GC types,
-- exceptions, threads (shared memory), memory64, several memories, relaxed SIMD.
SET ROLE regress_hostile;
CREATE FUNCTION gc() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (type (struct (field i32))) (func (export "gc") (result i32) (i32.const 1)))';
CREATE FUNCTION exn() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (tag $t) (func (export "exn") (result i32) (throw $t)))';
CREATE FUNCTION shared() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (memory 1 1 shared) (func (export "shared") (result i32) (i32.const 1)))';
CREATE FUNCTION mem64() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (memory i64 1) (func (export "mem64") (result i32) (i32.const 1)))';
CREATE FUNCTION two_memories() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (memory 1) (memory 1) (func (export "two_memories") (result i32) (i32.const 1)))';
CREATE FUNCTION relaxed() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (func (export "relaxed") (result i32)
     (i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 1 2 3 4)))))';
\echo :LAST_ERROR_SQLSTATE
-- Floats reach SQL with the same bits everywhere: every NaN the guest hands over (a result,
-- an array element) is the canonical one, whatever sign and payload the CPU left on it.
CREATE FUNCTION nan_f8() RETURNS float8 STRICT LANGUAGE wasm AS
  '(module (func (export "nan_f8") (result f64)
     (f64.div (f64.reinterpret_i64 (i64.const 0xfff4000000000001)) (f64.const 1))))';
CREATE FUNCTION nan_f4() RETURNS float4 STRICT LANGUAGE wasm AS
  '(module (func (export "nan_f4") (result f32)
     (f32.div (f32.reinterpret_i32 (i32.const 0xffa00001)) (f32.const 1))))';
CREATE FUNCTION nan_array() RETURNS float8[] STRICT LANGUAGE wasm AS
  '(module (memory (export "memory") 1)
     (global (export "plwasm_abi_v1") i32 (i32.const 1))
     (data (i32.const 64) "\00\00\00\00\00\00\f0\3f\01\00\00\00\00\00\f4\ff\00\00\00\00\00\00\00\40")
     (func (export "plwasm_alloc") (param i32) (result i32) (i32.const 1024))
     (func (export "nan_array") (param $f i32)
       (f64.store (i32.const 72) (f64.div (f64.load (i32.const 72)) (f64.const 1)))
       (i32.store offset=4 (local.get $f) (i32.const 3))
       (i64.store offset=8 (local.get $f) (i64.const 64))))';
SELECT encode(float8send(nan_f8()), 'hex') AS float8_nan, encode(float4send(nan_f4()), 'hex') AS float4_nan;
SELECT encode(float8send(x), 'hex') AS element FROM unnest(nan_array()) AS x;

-- Table and data bombs: a table past the element cap, a data segment past the memory.
CREATE FUNCTION big_table() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (table 2000000 funcref) (func (export "big_table") (result i32) (i32.const 1)))';
SELECT big_table();
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION far_data() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (memory 1) (data (i32.const 65530) "0123456789") (func (export "far_data") (result i32) (i32.const 1)))';
SELECT far_data();
\echo :LAST_ERROR_SQLSTATE

-- A set whose rows all point at one large value: rows are converted one at a time, and all
-- rows of one call may hold at most 1GB of values together, so 2000 copies of a 1MB argument
-- are refused (54000) instead of becoming 2GB in the host; a small set of the same kind works.
CREATE FUNCTION echoes(t text, n int4) RETURNS SETOF text STRICT LANGUAGE wasm AS $$
(module (memory (export "memory") 1) (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "plwasm_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (drop (memory.grow (i32.sub (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1)) (memory.size))))
    (local.get $p))
  ;; frame: t's slot at 0, n's slot at 16 (value at 24), result slot at 32 {flags, count, address}
  (func (export "echoes") (param $f i32) (local $n i32) (local $rows i32) (local $i i32) (local $row i32)
    (local.set $n (i32.wrap_i64 (i64.load offset=24 (local.get $f))))
    (local.set $rows (call $alloc (i32.mul (local.get $n) (i32.const 16))))
    (i32.store offset=36 (local.get $f) (local.get $n))
    (i64.store offset=40 (local.get $f) (i64.extend_i32_u (local.get $rows)))
    (block (loop
      (br_if 1 (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $row (i32.add (local.get $rows) (i32.mul (local.get $i) (i32.const 16))))
      (i64.store (local.get $row) (i64.load (local.get $f)))
      (i64.store offset=8 (local.get $row) (i64.load offset=8 (local.get $f)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br 0))))
)
$$;
SELECT count(*), sum(length(e)) FROM echoes(repeat('x', 1000), 1000) e;
SELECT count(*) FROM echoes(repeat('x', 1000000), 2000);
\echo :LAST_ERROR_SQLSTATE

-- Deep recursion with large frames stops at the wasm stack cap (54001), not a crash.
CREATE FUNCTION deep(n int8) RETURNS int8 STRICT LANGUAGE wasm AS $$
(module
  (func $deep (export "deep") (param $n i64) (result i64)
    (local v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128)
    (local.set 1 (i64x2.splat (local.get $n)))
    (local.set 16 (i64x2.add (local.get 1) (local.get 1)))
    (i64.add (i64x2.extract_lane 0 (local.get 16)) (call $deep (i64.add (local.get $n) (i64.const 1))))))
$$;
SELECT deep(1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The server never restarted, and this session still works.
SELECT pg_postmaster_start_time() = :'server_started' AS same_server, 'alive' AS session;
DROP SCHEMA regress_hostile CASCADE;
DROP ROLE regress_hostile;
RESET search_path;
