--
-- Each backend caches compiled modules; a changed function is seen by the next call in
-- every session, without reconnecting.
--
CREATE FUNCTION version_fn() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "version_fn") (result i32) i32.const 1))
$$;
SELECT version_fn();
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
       current_setting('unix_socket_directories'), current_setting('port'),
       current_database(), current_user));
SELECT * FROM dblink('other', 'SELECT version_fn()') AS t(v int4);
-- Replaced here: the other session sees it at its next statement.
CREATE OR REPLACE FUNCTION version_fn() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "version_fn") (result i32) i32.const 2))
$$;
SELECT * FROM dblink('other', 'SELECT version_fn()') AS t(v int4);
-- Replaced there: this session sees it.
SELECT dblink_exec('other', $q$CREATE OR REPLACE FUNCTION version_fn() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (func (export "version_fn") (result i32) i32.const 3))'$q$);
SELECT version_fn();
-- Within one transaction too.
BEGIN;
SELECT version_fn();
CREATE OR REPLACE FUNCTION version_fn() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "version_fn") (result i32) i32.const 4))
$$;
SELECT version_fn();
ROLLBACK;
SELECT version_fn();
-- ALTER FUNCTION changes the row too. Without @export, the export follows the function's
-- name, so a renamed function looks for a new export.
ALTER FUNCTION version_fn() RENAME TO version_fn_renamed;
SELECT version_fn_renamed();
\echo :LAST_ERROR_SQLSTATE
ALTER FUNCTION version_fn_renamed() RENAME TO version_fn;
SELECT version_fn();
-- Dropped and re-created under the same name.
DROP FUNCTION version_fn();
CREATE FUNCTION version_fn() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "version_fn") (result i32) i32.const 5))
$$;
SELECT * FROM dblink('other', 'SELECT version_fn()') AS t(v int4);
SELECT version_fn();
SELECT dblink_disconnect('other');
DROP FUNCTION version_fn();
