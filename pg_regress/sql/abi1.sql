--
-- ABI 1: every type in both directions through a frame, NULLs, errors and messages raised by
-- the guest, and hostile guests. One hand-written probe module serves many SQL functions:
-- its "echo" export copies the first argument's slot into the result slot, so the round trip
-- shows exactly what the host wrote and how it reads it back.
--
CREATE TABLE probe (src text);
INSERT INTO probe VALUES ($$
(module
  (import "plwasm" "raise" (func $raise (param i32 i32 i32)))
  (import "plwasm" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "22023bad input")
  (data (i32.const 32) "XX000")
  (data (i32.const 40) "ok\ffno")
  (data (i32.const 48) "a\00b")
  (data (i32.const 64) "note" "warn" "info" "logd")
  (func (export "plwasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (block (loop
      (br_if 1 (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
      (br 0)))
    (local.get $p))
  ;; result slot = frame + 16 * nargs
  (func (export "echo") (param $f i32)
    (i64.store offset=16 (local.get $f) (i64.load (local.get $f)))
    (i64.store offset=24 (local.get $f) (i64.load offset=8 (local.get $f))))
  (func (export "second") (param $f i32)
    (i64.store offset=32 (local.get $f) (i64.load offset=16 (local.get $f)))
    (i64.store offset=40 (local.get $f) (i64.load offset=24 (local.get $f))))
  (func (export "is_null") (param $f i32)
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (i32.and (i32.load (local.get $f)) (i32.const 1)))))
  (func (export "fail") (param $f i32) (call $raise (i32.const 16) (i32.const 21) (i32.const 9)))
  (func (export "fail_reserved") (param $f i32) (call $raise (i32.const 32) (i32.const 21) (i32.const 9)))
  (func (export "chatty") (param $f i32)
    (call $log (i32.const 3) (i32.const 64) (i32.const 4))
    (call $log (i32.const 4) (i32.const 68) (i32.const 4))
    (call $log (i32.const 2) (i32.const 72) (i32.const 4))
    (call $log (i32.const 1) (i32.const 76) (i32.const 4))
    (i32.store offset=16 (local.get $f) (i32.const 1)))
  (func (export "chatty_then_fail") (param $f i32)
    (call $log (i32.const 3) (i32.const 64) (i32.const 4))
    (call $raise (i32.const 16) (i32.const 21) (i32.const 9)))
  (func (export "oob") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 100))
    (i64.store offset=24 (local.get $f) (i64.const 2147483000)))
  (func (export "huge") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const -1)))
  (func (export "not_utf8") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 5))
    (i64.store offset=24 (local.get $f) (i64.const 40)))
  (func (export "nul_byte") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 3))
    (i64.store offset=24 (local.get $f) (i64.const 48)))
  (func (export "log_oob") (param $f i32) (call $log (i32.const 3) (i32.const 65530) (i32.const 100)))
  (func (export "spin") (param $f i32) (loop (br 0)))
  ;; Grows the memory by a page and answers "grow" from the new page.
  (func (export "grow_answer") (param $f i32)
    (local $at i32)
    (local.set $at (i32.shl (memory.grow (i32.const 1)) (i32.const 16)))
    (i32.store (local.get $at) (i32.const 0x776f7267))
    (i32.store offset=20 (local.get $f) (i32.const 4))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (local.get $at))))
  (func (export "fail_on_two") (param $f i32)
    (if (i64.eq (i64.load offset=8 (local.get $f)) (i64.const 2))
      (then (call $raise (i32.const 16) (i32.const 21) (i32.const 9))))
    (i64.store offset=24 (local.get $f) (i64.load offset=8 (local.get $f)))))
$$);
-- Creates f(args) RETURNS ret calling the probe's export.
CREATE FUNCTION make_probe(name text, args text, ret text, export text, strict bool DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('CREATE FUNCTION %I(%s) RETURNS %s LANGUAGE wasm %s AS %L', name, args, ret,
                 CASE WHEN strict THEN 'STRICT' ELSE '' END,
                 '@export ' || export || E'\n' || (SELECT src FROM probe));
END $fn$;
SELECT make_probe('echo_' || replace(replace(t, ' ', '_'), '[]', '_array'), t, t, 'echo')
  FROM unnest(ARRAY['boolean', 'smallint', 'integer', 'bigint', 'real', 'double precision', 'date',
                    'timestamp', 'timestamptz', 'text', 'varchar', 'bytea', 'jsonb',
                    'integer[]', 'bigint[]', 'real[]', 'double precision[]']) t;
-- Fixed-width values keep ABI 0's meaning inside the slot.
SELECT echo_boolean(true) AS t, echo_boolean(false) AS f, echo_smallint((-32768)::int2) AS i2,
       echo_integer(-2147483648) AS i4, echo_bigint(9223372036854775807) AS i8,
       echo_real('-0.5'::real) AS f4, echo_double_precision('NaN') AS f8;
SELECT echo_date('2024-02-29') AS d, echo_date('infinity') AS dinf,
       echo_timestamp('2000-01-01 00:00:00.000001') AS ts,
       echo_timestamptz('1969-12-31 23:59:59+00') = '1969-12-31 23:59:59+00' AS tstz;
-- Variable-length values: empty, multibyte, large (one copy each way), binary.
SELECT echo_text('') = '' AS empty, echo_text('grüße, 世界') AS utf8,
       length(echo_text(repeat('x', 3000000))) AS big, echo_varchar('v'::varchar) AS vc;
SELECT echo_bytea('\x00ff10'::bytea) AS bytes, echo_bytea(''::bytea) AS empty_bytes,
       echo_jsonb('{"b": [1, 2.5, null], "a": "é"}') AS json;
SELECT echo_integer_array('{1,-2,2147483647}') AS i4s, echo_bigint_array('{-9223372036854775808}') AS i8s,
       echo_real_array('{1.5,-0}') AS f4s, echo_double_precision_array('{Infinity,1e-300}') AS f8s,
       echo_double_precision_array('{}') AS none;
-- Arrays come back one-dimensional with lower bound 1, whatever went in.
SELECT array_lower(a, 1), array_upper(a, 1), a FROM (SELECT echo_integer_array('[0:2]={7,8,9}') AS a) s;
-- Toasted (compressed) values are detoasted before the copy.
CREATE TABLE docs (body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE MAIN;
INSERT INTO docs VALUES (repeat('abc', 100000));
SELECT pg_column_size(body) < 10000 AS compressed, echo_text(body) = body AS same FROM docs;
-- NULLs: a non-STRICT ABI 1 function sees them, and can return them.
SELECT echo_text(NULL) IS NULL AS null_text, echo_integer_array(NULL) IS NULL AS null_array;
SELECT make_probe('is_null_int', 'x integer', 'boolean', 'is_null');
SELECT make_probe('second_text', 'a integer, b text', 'text', 'second');
SELECT is_null_int(NULL) AS n, is_null_int(1) AS nn, second_text(NULL, 'kept') AS s, second_text(1, NULL) IS NULL AS sn;
-- A STRICT ABI 1 function is not called with NULL.
SELECT make_probe('strict_is_null', 'x integer', 'boolean', 'is_null', strict => true);
SELECT strict_is_null(NULL) IS NULL AS not_called;
-- Arrays with NULL elements or more than one dimension are refused.
SELECT echo_double_precision_array('{1,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT echo_integer_array('{{1,2},{3,4}}');
\echo :LAST_ERROR_SQLSTATE
-- Row after row: every call after a call site's first takes the per-row path, which reads
-- plain varlenas in place and leaves compressed or out-of-line ones (row 5) to the checked
-- path. The same values either way, NULLs included.
CREATE TABLE rows_in (n int, t text, b bytea, a float8[], i int4[]);
INSERT INTO rows_in VALUES
  (1, 'first', '\x01', '{1.5}', '{1}'),
  (2, '', '', '{}', '{}'),
  (3, NULL, NULL, NULL, NULL),
  (4, 'grüße', '\x00ff', '{NaN,-0,Infinity}', '{-2147483648,0}'),
  (5, repeat('abc', 100000), decode(repeat('00', 5000), 'hex'), ARRAY[1e-300, 2], '[0:1]={7,8}');
SELECT n, md5(echo_text(t)) = md5(t) AS text_same, echo_bytea(b) = b AS bytea_same,
       echo_double_precision_array(a) AS floats, echo_integer_array(i) AS ints
  FROM rows_in ORDER BY n;
SELECT n, echo_integer_array(i) FROM (VALUES (1, '{1}'::int4[]), (2, '{{1,2},{3,4}}')) v(n, i);
\echo :LAST_ERROR_SQLSTATE
-- An error on a later row is the same error, with the same context; messages of every row
-- arrive.
SELECT make_probe('fail_on_two', 'x bigint', 'bigint', 'fail_on_two');
SELECT fail_on_two(n) FROM generate_series(1, 3) n;
\echo :LAST_ERROR_SQLSTATE
SELECT make_probe('chatty_rows', 'x integer', 'integer', 'chatty');
SELECT count(chatty_rows(n)) FROM generate_series(1, 2) n;
-- A guest that grows its memory during a call and puts the result in the new page: the
-- per-row path, which keeps the memory's extent between calls, looks again.
SELECT make_probe('grow_answer', 'x integer', 'text', 'grow_answer');
SELECT n, grow_answer(n) FROM generate_series(1, 3) n;
DROP TABLE rows_in;
--
-- The guest raises errors with its own SQLSTATE; reserved classes become 38000.
--
SELECT make_probe('guest_fail', 'x integer', 'integer', 'fail');
SELECT make_probe('guest_fail_reserved', 'x integer', 'integer', 'fail_reserved');
SELECT guest_fail(1);
\echo :LAST_ERROR_SQLSTATE
SELECT guest_fail_reserved(1);
\echo :LAST_ERROR_SQLSTATE
-- Messages: NOTICE, WARNING and INFO reach the client after the call; LOG goes to the server log.
SELECT make_probe('chatty', 'x integer', 'integer', 'chatty');
SELECT chatty(1) IS NULL AS returned_null;
-- Messages logged before an error are still delivered, then the error.
SELECT make_probe('chatty_then_fail', 'x integer', 'integer', 'chatty_then_fail');
SELECT chatty_then_fail(1);
--
-- Hostile guests: every bad result is an ERROR, never a read outside the guest's memory.
--
SELECT make_probe('bad_' || e, 'x integer', r, e)
  FROM (VALUES ('oob', 'text'), ('huge', 'bytea'), ('not_utf8', 'text'), ('nul_byte', 'text'),
               ('log_oob', 'integer'), ('spin', 'integer')) v(e, r);
SELECT bad_oob(1);
\echo :LAST_ERROR_SQLSTATE
SELECT bad_huge(1);
\echo :LAST_ERROR_SQLSTATE
SELECT bad_not_utf8(1);
\echo :LAST_ERROR_SQLSTATE
SELECT bad_nul_byte(1);
\echo :LAST_ERROR_SQLSTATE
SELECT bad_log_oob(1);
\echo :LAST_ERROR_SQLSTATE
SET plwasm.fuel_limit = 100000;
SELECT bad_spin(1);
\echo :LAST_ERROR_SQLSTATE
RESET plwasm.fuel_limit;
-- The same bytes that are not UTF-8 are fine as bytea.
SELECT make_probe('bytes_not_utf8', 'x integer', 'bytea', 'not_utf8');
SELECT bytes_not_utf8(1);
-- An argument larger than plwasm.max_memory is refused before it is copied.
SET plwasm.max_memory = '1MB';
SELECT length(echo_text(repeat('y', 2000000)));
\echo :LAST_ERROR_SQLSTATE
RESET plwasm.max_memory;
-- An allocator that hands out a misaligned or out-of-bounds block breaks the ABI.
CREATE FUNCTION bad_alloc(t text) RETURNS text LANGUAGE wasm AS $$
(module (memory (export "memory") 1) (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (func (export "plwasm_alloc") (param i32) (result i32) i32.const 65533)
  (func (export "bad_alloc") (param i32)))
$$;
SELECT bad_alloc('x');
\echo :LAST_ERROR_SQLSTATE
-- A module that exports plwasm_free gets an argument buffer over 1MB back once the call is
-- over; smaller buffers are kept for the next call. This one counts what it got back.
CREATE FUNCTION frees(t text) RETURNS int8 STRICT LANGUAGE wasm AS $$
(module (memory (export "memory") 64) (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024)) (global $freed (mut i32) (i32.const 0))
  (func (export "plwasm_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "plwasm_free") (param i32 i32) (global.set $freed (i32.add (global.get $freed) (i32.const 1))))
  (func (export "frees") (param $f i32) (i64.store offset=24 (local.get $f) (i64.extend_i32_u (global.get $freed)))))
$$;
SELECT frees(repeat('y', 2000000)) AS during_big_call, frees('x') AS after_it;
SELECT frees('x') AS small_buffers_are_kept;
CREATE FUNCTION bad_free(t text) RETURNS text LANGUAGE wasm AS $$
(module (memory (export "memory") 1) (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (func (export "plwasm_alloc") (param i32) (result i32) i32.const 8)
  (func (export "plwasm_free") (param i32))
  (func (export "bad_free") (param i32)))
$$;
\echo :LAST_ERROR_SQLSTATE
-- After all that, the session and the probe still work.
SELECT echo_text('still fine'), is_null_int(NULL) AS n;
--
-- Definition errors: what ABI 0 cannot do, and ABI 1 modules missing their exports.
--
CREATE FUNCTION abi0_text(t text) RETURNS text STRICT LANGUAGE wasm AS
  '(module (func (export "abi0_text") (param i32) (result i32) local.get 0))';
CREATE FUNCTION abi0_lax(x int4) RETURNS int4 LANGUAGE wasm AS
  '(module (func (export "abi0_lax") (param i32) (result i32) local.get 0))';
CREATE FUNCTION no_alloc(t text) RETURNS text LANGUAGE wasm AS
  '(module (memory (export "memory") 1) (func (export "plwasm_abi_v1")) (func (export "no_alloc") (param i32)))';
CREATE FUNCTION wrong_entry(t text) RETURNS text LANGUAGE wasm AS $$
(module (memory (export "memory") 1) (func (export "plwasm_abi_v1"))
  (func (export "plwasm_alloc") (param i32) (result i32) i32.const 8)
  (func (export "wrong_entry") (param i32 i32) (result i32) i32.const 0))
$$;
CREATE FUNCTION wants_wasi(t text) RETURNS text LANGUAGE wasm AS $$
(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1) (func (export "plwasm_abi_v1"))
  (func (export "plwasm_alloc") (param i32) (result i32) i32.const 8)
  (func (export "wants_wasi") (param i32)))
$$;
DROP TABLE probe, docs;
