--
-- Modules stored once (plwasm.install_module) and used by many functions.
--
-- add_one: (i64) -> i64, adding 1; add_one_v2 adds 2; pair exports double and square (f64).
\set add_one '\\x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042017c0b'
\set add_one_v2 '\\x0061736d0100000001060160017e017e03020100070b01076164645f6f6e6500000a09010700200042027c0b'
\set pair '\\x0061736d0100000001060160017c017c030302000007130206646f75626c6500000673717561726500010a1102070020002000a00b070020002000a20b'
CREATE SCHEMA mods;
SET search_path = mods, public;
SELECT plwasm.install_module('arith', :'add_one');
SELECT plwasm.install_module('pair', :'pair');
-- A function names a stored module; module:export names the export.
CREATE FUNCTION add_one(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith';
CREATE FUNCTION inc(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith:add_one';
CREATE FUNCTION double(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair';
CREATE FUNCTION sq(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:square';
SELECT add_one(1), inc(10), double(1.5), sq(3);
SELECT name, owner, sha256, size, abi, exports, functions, granted_to FROM plwasm.modules ORDER BY name;
-- Checked like inline modules.
CREATE FUNCTION bad_sig(x int4) RETURNS int4 STRICT LANGUAGE wasm AS 'arith:add_one';
CREATE FUNCTION no_such_export(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith:nope';
CREATE FUNCTION no_such_module(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'nope';
\echo :LAST_ERROR_SQLSTATE
-- With check_function_bodies off (as in a restore) the module is not looked up yet...
SET check_function_bodies = off;
CREATE FUNCTION later(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'arith_later:add_one';
RESET check_function_bodies;
-- ...and works once it exists.
SELECT later(1);
SELECT plwasm.install_module('arith_later', :'add_one');
SELECT later(1);

-- Installing again replaces the module; other sessions see it at their next statement.
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
       current_setting('unix_socket_directories'), current_setting('port'),
       current_database(), current_user));
SELECT * FROM dblink('other', 'SELECT mods.add_one(1)') AS t(v int8);
SELECT plwasm.install_module('arith', :'add_one_v2');
SELECT add_one(1), inc(1);
SELECT * FROM dblink('other', 'SELECT mods.add_one(1)') AS t(v int8);
SELECT dblink_disconnect('other');

-- What install_module refuses.
SELECT plwasm.install_module('bad name', :'add_one');
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.install_module('junk', '\x00112233');
SELECT plwasm.install_module('imports',
  '\x0061736d010000000105016000017e020b0103656e76036e6f77000003020100070501016600010a0601040010000b');
SELECT plwasm.install_module('future_abi',
  '\x0061736d010000000108026000006000017e03030200010715020d706c7761736d5f6162695f76370000016600010a090202000b040042010b');
\echo :LAST_ERROR_SQLSTATE
SET plwasm.max_module_size = '1kB';
SELECT plwasm.install_module('big', ('\x0061736d01000000' || repeat('00', 2000))::bytea);
RESET plwasm.max_module_size;

-- Ownership and USAGE.
CREATE ROLE regress_plwasm_mod LOGIN;
CREATE SCHEMA regress_mod AUTHORIZATION regress_plwasm_mod;
SET ROLE regress_plwasm_mod;
SET search_path = regress_mod;
-- Not the owner: cannot replace, drop or grant postgres's module, or use it.
SELECT plwasm.install_module('arith', :'add_one');
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.drop_module('pair');
SELECT plwasm.grant_module('pair', 'regress_plwasm_mod');
CREATE FUNCTION my_double(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:double';
\echo :LAST_ERROR_SQLSTATE
-- Users may insert rows (so pg_restore works for them), checked as install_module checks:
-- a module of their own that is valid wasm, nothing else; they may not change or delete rows.
INSERT INTO plwasm.module_store VALUES ('sneaky', current_user::regrole, '\x00', 0, '\x00');
INSERT INTO plwasm.module_grants VALUES ('pair', 'regress_plwasm_mod');
UPDATE plwasm.module_store SET wasm = '\x00';
DELETE FROM plwasm.module_store;
-- In a read-only transaction (as on a hot standby) the store cannot change.
BEGIN READ ONLY;
SELECT plwasm.install_module('mine', :'add_one');
ROLLBACK;
-- A module of one's own.
SELECT plwasm.install_module('mine', :'add_one');
CREATE FUNCTION my_inc(x int8) RETURNS int8 STRICT LANGUAGE wasm AS 'mine:add_one';
SELECT my_inc(41);
RESET ROLE;
-- The owner grants USAGE; a revoke stops the grantee's functions at their next statement
-- (USAGE is checked for a function's owner whenever a session loads the function).
SELECT plwasm.grant_module('pair', 'regress_plwasm_mod');
SELECT granted_to FROM plwasm.modules WHERE name = 'pair';
SET ROLE regress_plwasm_mod;
CREATE FUNCTION regress_mod.my_double(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:double';
SELECT regress_mod.my_double(2);
RESET ROLE;
SELECT plwasm.revoke_module('pair', 'regress_plwasm_mod');
SET ROLE regress_plwasm_mod;
SELECT regress_mod.my_double(4);
CREATE FUNCTION regress_mod.my_square(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:square';
RESET ROLE;
-- A grant to a group role reaches the members that inherit its privileges, and no one else;
-- it is checked for a function's owner at CREATE and again at each session's first call.
CREATE ROLE regress_mod_group NOLOGIN;
CREATE ROLE regress_mod_member LOGIN IN ROLE regress_mod_group;
CREATE ROLE regress_mod_noinherit LOGIN NOINHERIT IN ROLE regress_mod_group;
CREATE SCHEMA regress_mod_members;
GRANT CREATE, USAGE ON SCHEMA regress_mod_members TO regress_mod_member, regress_mod_noinherit;
SELECT plwasm.grant_module('pair', 'regress_mod_group');
SET ROLE regress_mod_member;
CREATE FUNCTION regress_mod_members.via_group(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:double';
SELECT regress_mod_members.via_group(5);
RESET ROLE;
SET ROLE regress_mod_noinherit;
CREATE FUNCTION regress_mod_members.not_inherited(x float8) RETURNS float8 STRICT LANGUAGE wasm AS 'pair:double';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Out of the group, the member's function stops at the next session's first call.
REVOKE regress_mod_group FROM regress_mod_member;
\c
SET search_path = mods, public;
SELECT regress_mod_members.via_group(5);
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.revoke_module('pair', 'regress_mod_group');
DROP SCHEMA regress_mod_members CASCADE;
DROP ROLE regress_mod_group, regress_mod_member, regress_mod_noinherit;
SET search_path = mods, public;
SELECT plwasm.grant_module('pair', 'no_such_role');
SELECT name, owner, functions FROM plwasm.modules ORDER BY name;

-- drop_module refuses while functions use a module, unless told to cascade.
SELECT plwasm.drop_module('pair');
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.drop_module('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT plwasm.drop_module('pair', cascade => true);
SELECT double(1);
DROP SCHEMA regress_mod CASCADE;
SELECT plwasm.drop_module('mine');
DROP ROLE regress_plwasm_mod;
SELECT name, functions FROM plwasm.modules ORDER BY name;
DROP SCHEMA mods CASCADE;
SELECT plwasm.drop_module('arith');
SELECT plwasm.drop_module('arith_later');
RESET search_path;
