--
-- The trust model: a role that can log in and has CREATE on a schema must not become a
-- superuser, nor change another role's modules or aggregates, through plwasm. Each block is
-- an attack that worked before it was closed; after each, the attacker is still not a
-- superuser and the victim's objects are unchanged.
--
CREATE ROLE regress_sec_victim LOGIN;
CREATE ROLE regress_sec_attacker LOGIN;
CREATE SCHEMA regress_evil AUTHORIZATION regress_sec_attacker;
CREATE SCHEMA regress_shared;
GRANT USAGE, CREATE ON SCHEMA regress_shared TO regress_sec_victim, regress_sec_attacker;
\set add_one '\\x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b'
\set add_two '\\x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042027c0b'
-- The attacker's kit: functions and operators named like pg_catalog's, which try to make
-- the attacker a superuser and say so if they ever run.
SET ROLE regress_sec_attacker;
CREATE FUNCTION regress_evil.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'attacker code ran as %', current_user;
  BEGIN
    ALTER ROLE regress_sec_attacker SUPERUSER;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END $$;
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_evil.escalate(); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION regress_evil.text_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_evil.escalate(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.text_eq);
CREATE FUNCTION regress_evil.oid_eq(a oid, b oid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_evil.escalate(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = regress_evil.oid_eq);
RESET ROLE;
CREATE VIEW regress_sec_status AS
SELECT r.rolname, r.rolsuper FROM pg_roles r WHERE r.rolname LIKE 'regress_sec_%' ORDER BY 1;

-- 1. The module store's writes under a hostile search_path: own now() and = run by the
--    store owner (a superuser) if any name in plwasm's SQL resolves through the caller's path.
SET ROLE regress_sec_attacker;
SET search_path = regress_evil, pg_catalog;
SELECT plwasm.install_module('evil_mod', :'add_one') IS NOT NULL AS installed;
SELECT plwasm.install_module('evil_mod', :'add_two') IS NOT NULL AS replaced;
SELECT plwasm.grant_module('evil_mod', 'public');
SELECT plwasm.revoke_module('evil_mod', 'public');
SELECT plwasm.drop_module('evil_mod');
RESET search_path;
RESET ROLE;
SELECT * FROM regress_sec_status;

-- 2. A wasm function that carries SET search_path, called by a superuser: loading its stored
--    module must not run the owner's operators as the caller.
SET ROLE regress_sec_attacker;
SELECT plwasm.install_module('evil_lib', :'add_one') IS NOT NULL AS installed;
CREATE FUNCTION regress_evil.bait(x int8) RETURNS int8 STRICT LANGUAGE wasm
    SET search_path = regress_evil, pg_catalog AS 'evil_lib:add_one';
RESET ROLE;
SELECT regress_evil.bait(41);
SELECT * FROM regress_sec_status;

-- 3. A stored module of another role: USAGE is checked for the function's owner, also with
--    check_function_bodies off (as pg_restore runs), and again when the function is loaded.
SET ROLE regress_sec_victim;
SELECT plwasm.install_module('victim_mod', :'add_one') IS NOT NULL AS installed;
RESET ROLE;
SET ROLE regress_sec_attacker;
SET check_function_bodies = off;
CREATE FUNCTION regress_evil.steal(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'victim_mod:add_one';
\echo :LAST_ERROR_SQLSTATE
-- A module that does not exist yet cannot be checked at CREATE...
CREATE FUNCTION regress_evil.steal_later(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'victim_later:add_one';
RESET check_function_bodies;
RESET ROLE;
SET ROLE regress_sec_victim;
SELECT plwasm.install_module('victim_later', :'add_one') IS NOT NULL AS installed;
RESET ROLE;
-- ...so it is checked when the function is first called.
SET ROLE regress_sec_attacker;
SELECT regress_evil.steal_later(1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Granted, it runs; revoked, it stops at the next statement.
SET ROLE regress_sec_victim;
SELECT plwasm.grant_module('victim_later', 'regress_sec_attacker');
RESET ROLE;
SET ROLE regress_sec_attacker;
SELECT regress_evil.steal_later(1);
RESET ROLE;
SET ROLE regress_sec_victim;
SELECT plwasm.revoke_module('victim_later', 'regress_sec_attacker');
RESET ROLE;
SET ROLE regress_sec_attacker;
SELECT regress_evil.steal_later(1);
RESET ROLE;

-- 4. install_module's ownership check and write are one step: a first install not yet
--    committed cannot be overwritten by another role waiting on it.
SELECT dblink_connect('attacker', format('host=%s port=%s dbname=%s user=regress_sec_attacker',
       current_setting('unix_socket_directories'), current_setting('port'), current_database()));
BEGIN;
SET LOCAL ROLE regress_sec_victim;
SELECT plwasm.install_module('raced', :'add_one') IS NOT NULL AS installed;
SELECT dblink_send_query('attacker', format('SELECT plwasm.install_module(%L, %L)', 'raced', :'add_two'));
SELECT pg_sleep(0.2);
COMMIT;
SELECT * FROM dblink_get_result('attacker', false) AS t(hash text);
SELECT dblink_disconnect('attacker');
SELECT name, owner, sha256 = encode(sha256(:'add_one'::bytea), 'hex') AS still_victims_code
  FROM plwasm.modules WHERE name = 'raced';

-- 5. A role dropped and made again under the same name does not get the old role's modules.
CREATE ROLE regress_sec_ghost LOGIN;
SET ROLE regress_sec_ghost;
SELECT plwasm.install_module('ghost_mod', :'add_one') IS NOT NULL AS installed;
RESET ROLE;
DROP ROLE regress_sec_ghost;
CREATE ROLE regress_sec_ghost LOGIN;
SET ROLE regress_sec_ghost;
SELECT plwasm.install_module('ghost_mod', :'add_two');
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.drop_module('ghost_mod');
RESET ROLE;
SELECT name, owner::text ~ '^[0-9]+$' AS owned_by_dropped_role FROM plwasm.modules WHERE name = 'ghost_mod';
SELECT plwasm.drop_module('ghost_mod');
DROP ROLE regress_sec_ghost;

-- 6. Aggregates: their state is plwasm.state, so a role makes wasm aggregates with plain
--    CREATE AGGREGATE and PostgreSQL's own checks apply; no DDL runs as another role. What a
--    role can do with the type must not reach another role's aggregate or the host.
CREATE TABLE regress_sec_agg (src text);
INSERT INTO regress_sec_agg VALUES ($$
(module
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "plwasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  ;; cnt: counts rows; state {i64 n}; rows {u32 handle, u32 nulls, u64 x}
  (func (export "cnt.new") (result i32) (call $alloc (i32.const 8)))
  (func (export "cnt.free") (param i32))
  (func (export "cnt.accumulate") (param $p i32) (param $n i32)
    (local $h i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get $n)))
      (local.set $h (i32.load (local.get $p)))
      (i64.store (local.get $h) (i64.add (i64.load (local.get $h)) (i64.const 1)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br 0))))
  (func (export "cnt.finalize") (param $f i32)
    (i64.store offset=24 (local.get $f) (i64.load (i32.load offset=8 (local.get $f))))))
$$);
GRANT SELECT ON regress_sec_agg TO PUBLIC;
-- The victim's own aggregate in the shared schema, of the same signature and result type as
-- the attacker's, so that CREATE OR REPLACE would replace it.
SET ROLE regress_sec_victim;
CREATE FUNCTION regress_shared.victim_step(int8, float8) RETURNS int8 LANGUAGE sql AS 'SELECT $1 + 1';
CREATE AGGREGATE regress_shared.total(float8) (SFUNC = regress_shared.victim_step, STYPE = int8, INITCOND = '0');
RESET ROLE;
SET ROLE regress_sec_attacker;
SELECT format('CREATE FUNCTION regress_shared.wacc(plwasm.state, float8) RETURNS plwasm.state LANGUAGE wasm AS %L',
              '@export cnt.accumulate' || chr(10) || src) FROM regress_sec_agg \gexec
SELECT format('CREATE FUNCTION regress_shared.wfin(plwasm.state) RETURNS int8 LANGUAGE wasm AS %L',
              '@export cnt.finalize' || chr(10) || src) FROM regress_sec_agg \gexec
-- Not replaced: PostgreSQL's ownership check.
CREATE OR REPLACE AGGREGATE regress_shared.total(float8)
    (SFUNC = regress_shared.wacc, STYPE = plwasm.state, FINALFUNC = regress_shared.wfin);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT p.proowner::regrole, a.aggtransfn, a.aggtranstype::regtype
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid WHERE a.aggfnoid = 'regress_shared.total'::regproc;
-- A wasm aggregate of the attacker's own, made and run without superuser.
SET ROLE regress_sec_attacker;
CREATE AGGREGATE regress_shared.wcount(float8)
    (SFUNC = regress_shared.wacc, STYPE = plwasm.state, FINALFUNC = regress_shared.wfin);
SELECT regress_shared.wcount(x::float8) FROM generate_series(1, 1000) AS x;
-- A C function taking internal (plwasm 0.1's attack: PostgreSQL would run it on plwasm's
-- states) cannot be a transition function of a plwasm.state aggregate at all.
CREATE AGGREGATE regress_shared.evil(float8)
    (SFUNC = pg_catalog.array_agg_transfn, STYPE = plwasm.state, FINALFUNC = regress_shared.wfin);
-- A SQL final function sees a wasm state only as its flat form, which needs the guest's
-- serialize (this module has none): never an address, never the guest's memory.
CREATE FUNCTION regress_shared.peek(plwasm.state) RETURNS text LANGUAGE sql AS 'SELECT $1::text';
CREATE AGGREGATE regress_shared.peeking(float8)
    (SFUNC = regress_shared.wacc, STYPE = plwasm.state, FINALFUNC = regress_shared.peek);
SELECT regress_shared.peeking(x::float8) FROM generate_series(1, 3) AS x;
-- A flat state that names another module's aggregate is refused before any guest sees it.
CREATE AGGREGATE regress_shared.forged(float8) (SFUNC = regress_shared.wacc, STYPE = plwasm.state,
    FINALFUNC = regress_shared.wfin, INITCOND = '\x50575301ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03636e74');
SELECT regress_shared.forged(x::float8) FROM generate_series(1, 3) AS x;
RESET ROLE;
SELECT * FROM regress_sec_status;

-- 7. SECURITY DEFINER: every caller runs as the owner, but guest state is not shared between
--    callers; DISCARD ALL drops the session's instances.
CREATE FUNCTION public.sec_tick() RETURNS int4 STRICT SECURITY DEFINER LANGUAGE wasm AS $$
  (module (global $n (mut i32) (i32.const 0))
    (func (export "sec_tick") (result i32) global.get $n i32.const 1 i32.add global.set $n global.get $n))
$$;
SELECT public.sec_tick(), public.sec_tick();
SET ROLE regress_sec_attacker;
SELECT public.sec_tick();
RESET ROLE;
SELECT public.sec_tick();
DISCARD ALL;
SELECT public.sec_tick();
DROP FUNCTION public.sec_tick();

-- The server and this session survived all of the above.
SELECT * FROM regress_sec_status;
DROP VIEW regress_sec_status;
DROP TABLE regress_sec_agg;
DROP SCHEMA regress_shared CASCADE;
DROP SCHEMA regress_evil CASCADE;
SELECT plwasm.drop_module(name) FROM plwasm.modules WHERE name IN ('evil_lib', 'victim_mod', 'victim_later', 'raced');
DROP ROLE regress_sec_victim;
DROP ROLE regress_sec_attacker;
