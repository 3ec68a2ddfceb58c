-- plwasm demo: generated sensor data summarised with wasm functions.
\set ON_ERROR_STOP 1
\pset footer off
SET max_parallel_workers_per_gather = 0;
SET timezone = 'UTC';
\echo '== 2,000,000 readings from 4 devices, one every 5 seconds per device'
DROP TABLE IF EXISTS readings;
CREATE TABLE readings AS
SELECT d AS device,
       timestamptz '2024-01-01 00:00:00+00' + (i * 5) * interval '1 second' AS ts,
       20 + 8 * sin(i / 720.0 + d) + (hashint4(i * 4 + d) % 1000) / 250.0 AS temp_c
  FROM generate_series(1, 4) d, generate_series(0, 499999) i;
ANALYZE readings;

\echo '== the wasm functions of udf-examples/timeseries-wat'
\i udf-examples/timeseries-wat/install.sql
SELECT p.proname AS function, pg_get_function_arguments(p.oid) AS arguments,
       p.prorettype::regtype AS returns, length(p.prosrc) AS source_chars
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname = 'wasm' ORDER BY 1;

\echo '== hourly summary per device, bucketed in wasm (first rows)'
\timing on
SELECT device, bucket_start(ts, 3600) AS hour, count(*) AS n,
       round(avg(celsius_to_fahrenheit(temp_c))::numeric, 2) AS avg_f,
       count(*) FILTER (WHERE out_of_band(temp_c, 14, 26)) AS alarms
  FROM readings GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 6;

\echo '== the same bucketing with the built-in date_bin, for comparison'
SELECT count(DISTINCT (device, date_bin('1 hour', ts, 'epoch'))) AS buckets FROM readings;
SELECT count(DISTINCT (device, bucket_start(ts, 3600))) AS buckets FROM readings;
\timing off

\echo '== correctness: wasm bucket_start agrees with date_bin on every row (expect 0)'
SELECT count(*) AS disagreements FROM readings
 WHERE bucket_start(ts, 900) <> date_bin('15 minutes', ts, 'epoch');

\echo '== the sandbox: an endless loop is stopped by the fuel limit'
CREATE OR REPLACE FUNCTION spin() RETURNS int4 STRICT LANGUAGE wasm AS
  '(module (func (export "spin") (result i32) (loop br 0) i32.const 0))';
\set ON_ERROR_STOP 0
SELECT spin();
\echo '== a bad bucket width is a clean error, and the session goes on'
SELECT bucket_start(now(), 0);
SELECT 'still here' AS session;
