--
-- CREATE FUNCTION refuses bad modules and signatures with SQLSTATE 42P13.
--
-- Malformed WebAssembly text: the parser's position is shown.
CREATE FUNCTION bad_wat(x int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
(module
  (func (export "bad_wat") (param i32) (result i32) i32.const))
$$;
\echo :LAST_ERROR_SQLSTATE
-- A malformed binary: wasmtime's offset is shown.
CREATE FUNCTION bad_bin() RETURNS int4 STRICT LANGUAGE wasm AS '\x0061736d01000000ff';
\echo :LAST_ERROR_SQLSTATE
-- Bytes that are not wasm at all, bad hex, bad base64, and neither.
CREATE FUNCTION not_wasm() RETURNS int4 STRICT LANGUAGE wasm AS '\x00112233';
CREATE FUNCTION bad_hex() RETURNS int4 STRICT LANGUAGE wasm AS '\x0061736g';
CREATE FUNCTION bad_b64() RETURNS int4 STRICT LANGUAGE wasm AS 'AGFzbQEAAAABBg=x';
CREATE FUNCTION not_module() RETURNS int4 STRICT LANGUAGE wasm AS 'SELECT 42;';
CREATE FUNCTION empty_body() RETURNS int4 STRICT LANGUAGE wasm AS '   ';
\echo :LAST_ERROR_SQLSTATE
-- Directives.
CREATE FUNCTION bad_directive() RETURNS int4 STRICT LANGUAGE wasm AS '@abi 2
(module)';
CREATE FUNCTION empty_export() RETURNS int4 STRICT LANGUAGE wasm AS '@export
(module)';
-- No export of the function's name: the exported functions are listed.
CREATE FUNCTION plus_one(x int8) RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (func (export "add_one") (param i64) (result i64) local.get 0)
          (func (export "add_two") (param i64) (result i64) local.get 0))
$$;
\echo :LAST_ERROR_SQLSTATE
-- An export of that name that is not a function.
CREATE FUNCTION counter() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (global (export "counter") i32 (i32.const 1)))
$$;
-- Signatures that do not match: both sides are shown.
CREATE FUNCTION wrong_param(x int4) RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (func (export "wrong_param") (param i64) (result i64) local.get 0))
$$;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION wrong_result(x float8) RETURNS void STRICT LANGUAGE wasm AS $$
  (module (func (export "wrong_result") (param f64) (result f64) local.get 0))
$$;
CREATE FUNCTION too_many(x int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "too_many") (param i32 i32) (result i32) local.get 0))
$$;
-- Imports: plwasm grants no host access.
CREATE FUNCTION clock() RETURNS int8 STRICT LANGUAGE wasm AS $$
  (module (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
          (func (export "clock") (result i64) i64.const 0))
$$;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION shared_mem() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (import "env" "memory" (memory 1)) (func (export "shared_mem") (result i32) i32.const 0))
$$;
-- Types plwasm cannot pass: the message names the type.
CREATE FUNCTION takes_text(s text) RETURNS int4 STRICT LANGUAGE wasm AS '(module)';
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION returns_numeric(x int4) RETURNS numeric STRICT LANGUAGE wasm AS '(module)';
CREATE FUNCTION takes_array(a int4[]) RETURNS int4 STRICT LANGUAGE wasm AS '(module)';
CREATE FUNCTION returns_record(x int4, OUT a int4, OUT b int4) STRICT LANGUAGE wasm AS '(module)';
-- Not STRICT.
CREATE FUNCTION lenient(x int4) RETURNS int4 LANGUAGE wasm AS $$
  (module (func (export "lenient") (param i32) (result i32) local.get 0))
$$;
\echo :LAST_ERROR_SQLSTATE
-- Procedures; and a set-returning function over an ABI 0 module (sets need ABI 1).
CREATE FUNCTION many(x int4) RETURNS SETOF int4 STRICT LANGUAGE wasm AS '(module)';
CREATE PROCEDURE proc() LANGUAGE wasm AS '(module)';
-- Initial memory over plwasm.max_memory (64MB by default): 2000 pages are 125MB.
CREATE FUNCTION big_memory() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (memory 2000) (func (export "big_memory") (result i32) i32.const 1))
$$;
\echo :LAST_ERROR_SQLSTATE
-- Modules over plwasm.max_module_size.
SET plwasm.max_module_size = '1kB';
CREATE FUNCTION big_module() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (memory 1)
    (data (i32.const 0) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 64) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 128) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 192) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 256) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 320) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 384) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 448) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 512) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 576) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 640) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 704) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 768) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 832) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 896) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (data (i32.const 960) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    (func (export "big_module") (result i32) i32.const 1))
$$;
\echo :LAST_ERROR_SQLSTATE
RESET plwasm.max_module_size;
-- Modules are checked even with check_function_bodies off (as during a restore).
SET check_function_bodies = off;
CREATE FUNCTION unchecked(x int4) RETURNS int4 STRICT LANGUAGE wasm AS '(module)';
RESET check_function_bodies;
-- None of the refused functions exists.
SELECT count(*) AS refused_functions_created FROM pg_proc
 WHERE proname IN ('bad_wat', 'bad_bin', 'not_wasm', 'plus_one', 'wrong_param', 'clock',
                   'takes_text', 'lenient', 'many', 'proc', 'big_memory', 'big_module', 'unchecked');
