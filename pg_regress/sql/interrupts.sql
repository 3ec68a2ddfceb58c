--
-- statement_timeout, pg_cancel_backend() and pg_terminate_backend() stop a guest that loops
-- forever; the session (or, for terminate, the server) carries on.
--
CREATE FUNCTION spin_forever() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "spin_forever") (result i32) (loop br 0) i32.const 0))
$$;
-- No fuel limit: only an interrupt can stop it.
SET plwasm.fuel_limit = 0;
SET statement_timeout = '300ms';
SELECT spin_forever();
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT 'session still works' AS status;

-- A second session runs the loop; this one cancels it.
CREATE FUNCTION pg_temp.connstr() RETURNS text LANGUAGE sql AS $$
  SELECT format('host=%s port=%s dbname=%s user=%s',
                current_setting('unix_socket_directories'), current_setting('port'),
                current_database(), current_user)
$$;
CREATE FUNCTION pg_temp.wait_for_spinner(want_running bool) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..500 LOOP
    IF (SELECT count(*) > 0 FROM pg_stat_activity
         WHERE query = 'SELECT spin_forever()' AND state = 'active') = want_running THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);
    PERFORM pg_stat_clear_snapshot();  -- see other sessions' changes within this call
  END LOOP;
  RETURN false;
END $$;
SELECT dblink_connect('spinner', pg_temp.connstr());
SELECT dblink_exec('spinner', 'SET plwasm.fuel_limit = 0');
SELECT dblink_send_query('spinner', 'SELECT spin_forever()');
SELECT pg_temp.wait_for_spinner(true) AS running;
SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT spin_forever()' AND state = 'active';
SELECT * FROM dblink_get_result('spinner') AS r(x int4);
-- (dblink wants the end of the result drained.)
SELECT * FROM dblink_get_result('spinner') AS r(x int4);
SELECT pg_temp.wait_for_spinner(false) AS stopped;
-- The cancelled session is still usable.
SELECT * FROM dblink('spinner', 'SELECT 42') AS r(x int4);

SELECT dblink_send_query('spinner', 'SELECT spin_forever()');
SELECT pg_temp.wait_for_spinner(true) AS running;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT spin_forever()' AND state = 'active';
SELECT pg_temp.wait_for_spinner(false) AS stopped;
SELECT dblink_disconnect('spinner');
-- Only that backend ended: this session and new ones work.
SELECT * FROM dblink(pg_temp.connstr(), 'SELECT 1') AS r(x int4);
