--
-- PARALLEL SAFE wasm functions run in parallel workers (each worker makes its own engine and
-- instance): same results as the serial plan, errors and cancel reach the workers.
--
CREATE TABLE par AS SELECT g AS id, (g % 1000) * 0.25 AS v FROM generate_series(1, 200000) g;
ANALYZE par;
CREATE FUNCTION par_scale(x float8) RETURNS float8 IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS $$
  (module (func (export "par_scale") (param f64) (result f64) local.get 0 f64.const 4 f64.mul))
$$;
CREATE FUNCTION par_div(a int4, b int4) RETURNS int4 IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS $$
  (module (func (export "par_div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))
$$;
CREATE FUNCTION par_spin(x float8) RETURNS bool STRICT PARALLEL SAFE LANGUAGE wasm AS $$
  (module (func (export "par_spin") (param f64) (result i32) (loop br 0) i32.const 1))
$$;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT sum(par_scale(v)) FROM par WHERE par_scale(v) > 100;
SELECT sum(par_scale(v)), count(*) FROM par WHERE par_scale(v) > 100;
SET max_parallel_workers_per_gather = 0;
SELECT sum(par_scale(v)), count(*) FROM par WHERE par_scale(v) > 100;
-- Independently: sum of 4v over rows with 4v > 100.
SELECT sum(4 * v), count(*) FROM par WHERE 4 * v > 100;
SET max_parallel_workers_per_gather = 2;
-- A trap in a worker is an error in the leader.
-- The failing row may be in the leader or in a worker (which adds a CONTEXT line): hide it.
\set SHOW_CONTEXT never
SELECT count(*) FROM par WHERE par_div(id, CASE WHEN id = 150000 THEN 0 ELSE 1 END) > 0;
\set SHOW_CONTEXT errors
\echo :LAST_ERROR_SQLSTATE
-- statement_timeout stops endless loops in the leader and the workers.
SET plwasm.fuel_limit = 0;
SET statement_timeout = '300ms';
SELECT count(*) FROM par WHERE par_spin(v);
RESET statement_timeout;
RESET plwasm.fuel_limit;
SELECT count(*) AS still_works FROM par WHERE par_scale(v) >= 0;
DROP TABLE par;
