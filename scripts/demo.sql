-- plwasm demo: 10 million generated sensor points downsampled and summarised at query time
-- by wasm aggregates (udf-examples/timeseries-rust), next to the built-in aggregates.
\set ON_ERROR_STOP 1
\pset footer off
SET timezone = 'UTC';
SET client_min_messages = warning;
SET search_path = demo, public;
\echo '== 10,000,000 points: 5 devices, one reading per second for 23 days each'
\timing on
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;
CREATE TABLE points AS
SELECT d AS device,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS ts,
       20 + 6 * sin(2 * pi() * i / 86400.0 + d)                     -- daily cycle
          + 3 * sin(2 * pi() * i / (86400.0 * 7))                    -- weekly drift
          + (hashint4(i * 5 + d) % 1000) / 400.0                     -- noise
          + CASE WHEN hashint4(i + d * 7919) % 20000 = 0 THEN 12 ELSE 0 END AS value  -- spikes
  FROM generate_series(1, 5) d, generate_series(0, 1999999) i;
ANALYZE points;
\timing off

\echo '== the wasm module: functions and aggregates, created from its own signatures'
\i udf-examples/timeseries-rust/install.sql

-- plwasm's limits stay at their defaults (64MB per instance, 10^9 fuel per call): LTTB keeps a
-- group's points (16 bytes each, 32MB for 2,000,000), and a group whose state has grown large
-- gets an instance of its own.
\timing on
\echo '== LTTB: 1000 points per device out of 2,000,000'
SELECT device, series_length(lttb(ts, value, 1000)) AS points FROM points GROUP BY device ORDER BY device;
\echo '== M4 for a 1000-pixel-wide chart: first, last, min and max per pixel column'
SELECT device, series_length(m4(ts, value, 1000, '2026-01-01', '2026-01-24 03:33:20')) AS points
  FROM points GROUP BY device ORDER BY device;
\echo '== statistics per device: the wasm aggregate, then the built-ins'
SELECT device, stats_count(s) AS n, round(stats_mean(s)::numeric, 4) AS mean,
       round(stats_stddev(s)::numeric, 4) AS stddev, round(stats_max(s)::numeric, 2) AS max
  FROM (SELECT device, stats_agg(value) AS s FROM points GROUP BY device) q ORDER BY device;
SELECT device, count(*) AS n, round(avg(value)::numeric, 4) AS mean,
       round(stddev(value)::numeric, 4) AS stddev, round(max(value)::numeric, 2) AS max
  FROM points GROUP BY device ORDER BY device;
\echo '== percentiles from mergeable sketches: daily sketches rolled up to the whole month'
CREATE TEMP TABLE daily AS
SELECT device, date_trunc('day', ts) AS day, percentile_agg(value) AS sketch FROM points GROUP BY 1, 2;
SELECT device, round(approx_percentile(percentile_rollup(sketch), 0.5)::numeric, 3) AS p50,
       round(approx_percentile(percentile_rollup(sketch), 0.99)::numeric, 3) AS p99
  FROM daily GROUP BY device ORDER BY device;
\echo '== exact percentiles with the built-in ordered-set aggregate, for comparison'
SELECT device, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY value)::numeric, 3) AS p50,
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY value)::numeric, 3) AS p99
  FROM points GROUP BY device ORDER BY device;
\timing off

\echo '== the parallel plan (partial aggregates in workers, merged in the leader)'
EXPLAIN (COSTS OFF) SELECT device, stats_agg(value) FROM points GROUP BY device;

\echo '== device 1 as rows, for the chart: raw, LTTB (1000 points), M4 (1000 columns)'
\copy (SELECT ts, value FROM points WHERE device = 1 ORDER BY ts) TO '/var/tmp/plwasm/demo_raw.csv' CSV
\copy (SELECT p.ts, p.value FROM (SELECT lttb(ts, value, 1000) s FROM points WHERE device = 1) q, points(q.s) p) TO '/var/tmp/plwasm/demo_lttb.csv' CSV
\copy (SELECT p.ts, p.value FROM (SELECT m4(ts, value, 1000, '2026-01-01', '2026-01-24 03:33:20') s FROM points WHERE device = 1) q, points(q.s) p) TO '/var/tmp/plwasm/demo_m4.csv' CSV

\echo '== the sandbox: a bad argument is a clean error, and the session goes on'
\set ON_ERROR_STOP 0
SELECT lttb(ts, value, 2) FROM points WHERE device = 1;
SELECT 'still here' AS session;
