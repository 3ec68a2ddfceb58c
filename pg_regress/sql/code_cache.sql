-- The code cache: compiled modules shared by all sessions through files in
-- $PGDATA/pgsql_tmp_plwasm. DEBUG1 messages say when a module is stored there or loaded
-- from there; a LOG message when a damaged file is deleted.
-- Start empty, whatever earlier runs left (the count depends on them).
SELECT plwasm.clear_code_cache() >= 0 AS cleared;
SHOW plwasm.code_cache_size;
SELECT count(*) AS files FROM pg_ls_dir('pgsql_tmp_plwasm', true, false);
-- Modules no other test uses: cc_add x + 1000, cc_add2 x + 2000, cc_add3 x + 3000.
\set add1000 '\\x0061736d0100000001060160017e017e03020100070a010663635f61646400000a0a010800200042e8077c0b'
\set add2000 '\\x0061736d0100000001060160017e017e03020100070b010763635f6164643200000a0a010800200042d00f7c0b'
\set add3000 '\\x0061736d0100000001060160017e017e03020100070b010763635f6164643300000a0a010800200042b8177c0b'
SELECT encode(sha256(decode(substr(:'add1000', 3), 'hex')), 'hex') AS hash1000,
       encode(sha256(decode(substr(:'add2000', 3), 'hex')), 'hex') AS hash2000,
       encode(sha256(decode(substr(:'add3000', 3), 'hex')), 'hex') AS hash3000 \gset
\echo :hash1000
-- What an inline body's text decodes to is recorded beside the module's code, in a file
-- named by the SHA-256 of 'plwasm <release> inline module text', a NUL byte and the text
-- (directives and surrounding white space left off).
CREATE FUNCTION cc_record(module_text text) RETURNS text LANGUAGE sql STABLE AS $f$
  SELECT 'pgsql_tmp_plwasm/'
         || encode(sha256(convert_to('plwasm ' || extversion || ' inline module text', 'UTF8') || '\x00'::bytea
                          || convert_to(btrim(module_text, E' \n'), 'UTF8')), 'hex') || '.decoded'
    FROM pg_extension WHERE extname = 'plwasm'
$f$;
SELECT cc_record(:'add3000') AS record3000 \gset
-- plwasm.module_exports (and so the plwasm.modules view) reads a module without compiling it:
-- it stores nothing, and it describes nothing over plwasm.max_module_size.
SELECT plwasm.module_exports(decode(substr(:'add3000', 3), 'hex')) AS exports;
SELECT count(*) AS files FROM pg_ls_dir('pgsql_tmp_plwasm', true, false);
-- The same module with a 2005-byte custom section: valid, and described up to the limit.
SELECT decode(substr(:'add3000', 3) || '00d50f0178' || repeat('00', 2003), 'hex') AS big3000 \gset
SELECT plwasm.module_exports(:'big3000') AS exports;
SET plwasm.max_module_size = '1kB';
SELECT plwasm.module_exports(:'big3000') AS too_large;
RESET plwasm.max_module_size;
-- CREATE FUNCTION compiles the module and stores its code.
SET client_min_messages = debug1;
CREATE FUNCTION cc_add(int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS :'add1000';
RESET client_min_messages;
SELECT count(*) AS files FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE :'hash1000' || '-%.cwasm';
-- A new session loads the code instead of compiling the module.
\c
SET client_min_messages = debug1;
SELECT cc_add(1);
RESET client_min_messages;
-- This session maps the file. Deleting it changes nothing for the module: the mapping
-- stays, also for a new instance after DISCARD ALL.
SELECT current_setting('data_directory') || '/pgsql_tmp_plwasm/' || f AS file1000
  FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE :'hash1000' || '-%.cwasm' \gset
SELECT count(*) > 0 AS mapped, bool_and(l LIKE '% (deleted)') AS deleted
  FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/maps'), E'\n') l
 WHERE l LIKE '%' || :'hash1000' || '%';
SELECT plwasm.clear_code_cache() >= 1 AS cleared;
SELECT count(*) > 0 AS mapped, bool_and(l LIKE '% (deleted)') AS deleted
  FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/maps'), E'\n') l
 WHERE l LIKE '%' || :'hash1000' || '%';
SELECT cc_add(10);
DISCARD ALL;
SELECT cc_add(11);
-- A damaged file is deleted, and the module compiled again and stored anew. (Cache files
-- are only ever replaced, never written in place; this one is new, as COPY makes it.)
COPY (SELECT 'not machine code') TO :'file1000';
\c
SET client_min_messages = debug1;
SELECT cc_add(2);
RESET client_min_messages;
SELECT (pg_stat_file(:'file1000')).size > 1000 AS stored_again;
-- An empty file too.
COPY (SELECT '') TO :'file1000';
\c
SET client_min_messages = log;
SELECT cc_add(3);
RESET client_min_messages;
-- plwasm.code_cache_size = 0: nothing is read or written.
\c
SET plwasm.code_cache_size = 0;
SET client_min_messages = debug1;
SELECT cc_add(4);
RESET client_min_messages;
-- A module larger than the limit is compiled but not stored.
\c
SET plwasm.code_cache_size = '1kB';
SET client_min_messages = debug1;
CREATE FUNCTION cc_add2(int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS :'add2000';
RESET client_min_messages;
SELECT count(*) AS files FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE :'hash2000' || '-%';
-- Beyond the limit the least recently used files are deleted: with room for about one
-- small module, storing x + 3000 leaves only its own file.
\c
SELECT max((pg_stat_file('pgsql_tmp_plwasm/' || f)).size) * 3 / 2 / 1024 || 'kB' AS room_for_one
  FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE :'hash1000' || '-%' \gset
SET plwasm.code_cache_size = :'room_for_one';
CREATE FUNCTION cc_add3(int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS :'add3000';
SELECT f LIKE :'hash3000' || '-%.cwasm' AS newest_kept, count(*) OVER () AS files
  FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE '%.cwasm';
-- Records are pruned like modules (which older ones are left depends on file times); the
-- newest is kept. Each is 44 bytes: the binary's SHA-256, its size and a CRC.
SELECT bool_or('pgsql_tmp_plwasm/' || f = :'record3000') AS newest_record_kept, bool_and((pg_stat_file('pgsql_tmp_plwasm/' || f)).size = 44) AS sizes
  FROM pg_ls_dir('pgsql_tmp_plwasm') f WHERE f LIKE '%.decoded';
SELECT cc_add(5), cc_add2(5), cc_add3(5);
-- Clearing is for superusers.
CREATE ROLE cc_user;
SET ROLE cc_user;
SELECT plwasm.clear_code_cache();
RESET ROLE;
DROP ROLE cc_user;
SELECT count(*) AS files_before FROM pg_ls_dir('pgsql_tmp_plwasm') \gset
SELECT plwasm.clear_code_cache() = :files_before AS deleted_every_file;
SELECT count(*) AS files FROM pg_ls_dir('pgsql_tmp_plwasm');
-- A WAT body: a new session's first call finds the compiled module through the record of
-- what the text decodes to, without parsing the text again.
\c
CREATE FUNCTION cc_wat(x int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS $$
  (module (func (export "cc_wat") (param i64) (result i64) local.get 0 i64.const 4000 i64.add))
$$;
SELECT current_setting('data_directory') || '/' || cc_record(prosrc) AS record_wat
  FROM pg_proc WHERE proname = 'cc_wat' \gset
SELECT (pg_stat_file(:'record_wat')).size AS record_size;
\c
SET client_min_messages = debug1;
SELECT cc_wat(1);
RESET client_min_messages;
-- A damaged record is deleted; the body is decoded, and the record written anew.
COPY (SELECT 'not a record') TO :'record_wat';
\c
SET client_min_messages = debug1;
SELECT cc_wat(2);
RESET client_min_messages;
SELECT (pg_stat_file(:'record_wat')).size AS record_size;
-- A record whose module file is damaged: the module is compiled again from the body. The
-- record starts with the module's hash, which names the module's file. (A file a session
-- maps must never be rewritten in place, also not while that session exits: this module
-- is only compiled and stored, by CREATE FUNCTION, and then damaged before any session
-- loads it.)
CREATE FUNCTION cc_wat5(x int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS $$
  (module (func (export "cc_wat5") (param i64) (result i64) local.get 0 i64.const 5000 i64.add))
$$;
SELECT current_setting('data_directory') || '/pgsql_tmp_plwasm/' || f AS module_wat5
  FROM pg_proc, pg_ls_dir('pgsql_tmp_plwasm') f
 WHERE proname = 'cc_wat5' AND f LIKE encode(pg_read_binary_file(cc_record(prosrc), 0, 32), 'hex') || '-%.cwasm' \gset
COPY (SELECT 'not machine code') TO :'module_wat5';
\c
SET client_min_messages = debug1;
SELECT cc_wat5(3);
RESET client_min_messages;
-- A record does not let a module over plwasm.max_module_size through: the body is decoded,
-- and refused, as without one.
SELECT E'@export cc_add3\n' || :'big3000' AS big_body \gset
CREATE FUNCTION cc_big(int8) RETURNS int8 LANGUAGE wasm IMMUTABLE STRICT AS :'big_body';
\c
SET plwasm.max_module_size = '1kB';
SELECT cc_big(1);
RESET plwasm.max_module_size;
SELECT cc_big(1);
DROP FUNCTION cc_wat(int8), cc_wat5(int8), cc_big(int8), cc_record(text);
DROP FUNCTION cc_add(int8), cc_add2(int8), cc_add3(int8);
