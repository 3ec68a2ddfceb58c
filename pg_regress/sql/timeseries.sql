--
-- The timeseries example module (udf-examples/timeseries-rust): downsampling and statistics
-- aggregates, each checked against an independent computation in SQL or PL/pgSQL on
-- generated data, serial and parallel.
--
CREATE SCHEMA ts;
SET search_path = ts, public;
\set timeseries `base64 -w0 ../udf-examples/build/timeseries.wasm`
SELECT plwasm.install_module('timeseries', decode(:'timeseries', 'base64')) IS NOT NULL AS installed;
SELECT plwasm.create_functions('timeseries', schema => 'ts');
SELECT p.oid::regprocedure AS aggregate, a.aggcombinefn <> 0 AS parallel, a.aggminvtransfn <> 0 AS moving
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid WHERE p.pronamespace = 'ts'::regnamespace ORDER BY p.oid::regprocedure::text;

-- Three devices, 60 000 points each, one per second; values deterministic.
CREATE TABLE points_raw AS
SELECT d AS device, timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i) AS ts,
       sin(i / (300.0 * d)) * 10 * d + ((i * 7919 + d * 104729) % 1000) / 250.0 AS value
  FROM generate_series(1, 3) d, generate_series(0, 59999) i;
ANALYZE points_raw;
SET max_parallel_workers_per_gather = 0;

-- points(series) expands a series into rows.

SELECT p.ts, round(p.value::numeric, 6) AS value
  FROM (SELECT lttb(ts, value, 5) AS s FROM points_raw WHERE device = 1) q, points(q.s) p;

-- LTTB equals the PL/pgSQL implementation, point for point, per device and size.
\i ../bench/lttb_plpgsql.sql
SELECT device, n,
       (SELECT array_agg(p.ts ORDER BY p.ts) FROM points(lttb(ts, value, n)) p)
     = (SELECT array_agg(l.t ORDER BY l.t)
          FROM lttb_plpgsql(array_agg(ts ORDER BY ts), array_agg(value ORDER BY ts), n) l) AS same_points,
       series_length(lttb(ts, value, n)) AS length
  FROM points_raw, (VALUES (3), (100), (1000)) s(n)
 GROUP BY device, n ORDER BY device, n;
-- Fewer points than asked for: all of them. The order rows arrive in does not matter.
SELECT series_length(lttb(ts, value, 1000)) FROM points_raw WHERE device = 1 AND ts < '2026-01-01 00:10:00+00';
SELECT lttb(ts, value, 50 ORDER BY value) = lttb(ts, value, 50 ORDER BY ts) AS order_free FROM points_raw WHERE device = 2;
SELECT lttb(ts, value, 2) FROM points_raw;

-- M4 equals first/last/min/max per pixel column computed in SQL.
CREATE FUNCTION m4_sql(dev int, width int, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (ts timestamptz, value float8) LANGUAGE sql AS $$
  WITH p AS (
    SELECT r.ts, r.value,
           least((extract(epoch FROM r.ts - t0) * 1000000)::bigint * width
                 / (extract(epoch FROM t1 - t0) * 1000000)::bigint, width - 1) AS col
      FROM points_raw r WHERE r.device = dev AND r.ts BETWEEN t0 AND t1),
  chosen AS (
    -- per column: the earliest point, the latest, the lowest value, the highest value
    -- (ties between values go to the earliest point)
    SELECT DISTINCT ON (col, k) col, k, ts, value FROM (
      SELECT col, 1 AS k, ts, value, extract(epoch FROM ts)::float8 AS key FROM p
      UNION ALL SELECT col, 2, ts, value, -extract(epoch FROM ts)::float8 FROM p
      UNION ALL SELECT col, 3, ts, value, value FROM p
      UNION ALL SELECT col, 4, ts, value, -value FROM p) x
    ORDER BY col, k, key, ts)
  SELECT DISTINCT ts, value FROM chosen ORDER BY ts
$$;
SELECT device, width,
       (SELECT array_agg(row(p.ts, p.value) ORDER BY p.ts) FROM points(m4(ts, value, width, t0, t1)) p)
     = (SELECT array_agg(row(m.ts, m.value) ORDER BY m.ts) FROM m4_sql(device, width, t0, t1) m) AS same_points,
       series_length(m4(ts, value, width, t0, t1)) AS length
  FROM points_raw,
       (VALUES (10), (200)) w(width),
       (VALUES (timestamptz '2026-01-01 00:05:00+00', timestamptz '2026-01-01 12:00:00+00')) r(t0, t1)
 GROUP BY device, width, t0, t1 ORDER BY device, width;
SELECT m4(ts, value, 0, now(), now()) FROM points_raw;

-- stats_agg against the built-in aggregates, and stats_rollup of per-device summaries.
SELECT device, stats_count(s) = count AS count,
       abs(stats_mean(s) - mean) <= 1e-12 * abs(mean) AS mean,
       abs(stats_variance(s) - variance) <= 1e-9 * variance AS variance,
       abs(stats_stddev(s) - stddev) <= 1e-9 * stddev AS stddev,
       stats_min(s) = min AS min, stats_max(s) = max AS max
  FROM (SELECT device, stats_agg(value) s, count(*) count, avg(value) mean, var_samp(value) variance,
               stddev_samp(value) stddev, min(value) min, max(value) max
          FROM points_raw GROUP BY device) q ORDER BY device;
SELECT stats_count(r) AS count, abs(stats_stddev(r) - (SELECT stddev(value) FROM points_raw)) < 1e-9 AS stddev
  FROM (SELECT stats_rollup(s) r FROM (SELECT stats_agg(value) s FROM points_raw GROUP BY device) q) r;
-- Rows of many states interleaved within each batch (a hashed GROUP BY on a key that changes
-- with every row): each state gets exactly its own rows.
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT extract(epoch FROM ts)::bigint % 7 k, stats_agg(value) FROM points_raw GROUP BY 1;
SELECT count(*) AS groups,
       count(*) FILTER (WHERE stats_count(s) = n AND stats_min(s) = lo AND stats_max(s) = hi
                          AND abs(stats_mean(s) - mean) <= 1e-12 * abs(mean) AND sketch_count(p) = n) AS equal
  FROM (SELECT extract(epoch FROM ts)::bigint % 7 k, stats_agg(value) s, percentile_agg(value) p, count(*) n,
               min(value) lo, max(value) hi, avg(value) mean
          FROM points_raw GROUP BY 1) q;
RESET enable_sort;
SELECT stats_count(stats_agg(x)), stats_mean(stats_agg(x)), stats_variance(stats_agg(x))
  FROM (VALUES (NULL::float8)) v(x);
SELECT stats_mean('\x00'::bytea);

-- percentile_agg: within 1% of the value at rank floor(q*(n-1)), per device and rolled up.
SELECT device, q,
       abs(approx_percentile(s, q) - exact) <= 0.01 * abs(exact) AS within_1_percent
  FROM (SELECT device, percentile_agg(value) s, array_agg(value ORDER BY value) sorted, count(*) n
          FROM points_raw GROUP BY device) g,
       (VALUES (0.0), (0.01), (0.5), (0.9), (0.99), (1.0)) v(q),
       LATERAL (SELECT sorted[floor(q * (n - 1))::int + 1] AS exact) e
 ORDER BY device, q;
SELECT sketch_count(r), abs(approx_percentile(r, 0.5) - (SELECT (array_agg(value ORDER BY value))[floor(0.5 * (count(*) - 1))::int + 1] FROM points_raw))
         <= 0.01 * abs(approx_percentile(r, 0.5)) AS median_within_1_percent
  FROM (SELECT percentile_rollup(s) r FROM (SELECT percentile_agg(value) s FROM points_raw GROUP BY device) q) r;
SELECT approx_percentile(percentile_agg(value), 1.5) FROM points_raw;

-- running_mean slides with its window frame (retract) and matches avg.
SELECT count(*) FILTER (WHERE abs(a - b) > 1e-9) AS different
  FROM (SELECT running_mean(value) OVER w a, avg(value) OVER w b FROM points_raw WHERE device = 3
        WINDOW w AS (ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW)) q;
-- Its author wrote no serialization: the SDK derives one (#[derive(State)]), so its state can
-- be made flat and read back like any other (here: returned by an aggregate without a final
-- function, then used as another one's initial state).
CREATE AGGREGATE running_mean_state(float8) (SFUNC = running_mean_accumulate, STYPE = plwasm.state);
SELECT running_mean_state(x) AS flat FROM generate_series(1, 4) x \gset
-- (not echoed: the statement holds the module's SHA-256)
\set ECHO none
SELECT format('CREATE AGGREGATE running_mean_from(float8) (SFUNC = running_mean_accumulate, STYPE = plwasm.state, FINALFUNC = running_mean_finalize, INITCOND = %L)', :'flat') \gexec
\set ECHO all
SELECT running_mean_from(x) AS "mean of 1..4 and 10" FROM (VALUES (10.0::float8)) v(x);
DROP AGGREGATE running_mean_from(float8);
DROP AGGREGATE running_mean_state(float8);

-- In parallel: partial aggregates in workers; the same results.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT device, stats_agg(value) FROM points_raw GROUP BY device;
CREATE TEMP TABLE parallel_results AS
SELECT device, stats_agg(value) s, percentile_agg(value) p,
       m4(ts, value, 100, '2026-01-01 00:00:00+00', '2026-01-01 17:00:00+00') m,
       lttb(ts, value, 300) l
  FROM points_raw GROUP BY device;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT r.device, abs(stats_mean(r.s) - stats_mean(q.s)) < 1e-12 AS stats, r.p = q.p AS sketch, r.m = q.m AS m4, r.l = q.l AS lttb
  FROM parallel_results r
  JOIN (SELECT device, stats_agg(value) s, percentile_agg(value) p,
               m4(ts, value, 100, '2026-01-01 00:00:00+00', '2026-01-01 17:00:00+00') m,
               lttb(ts, value, 300) l
          FROM points_raw GROUP BY device) q USING (device)
 ORDER BY 1;

-- Partial states can be stored and rolled up later: an aggregate without a final function
-- keeps stats_agg's state per day in a table (flat, as plwasm.state), and one with the merge
-- as its transition function combines the stored states; the same as aggregating the rows.
CREATE AGGREGATE stats_partial(float8) (SFUNC = stats_agg_accumulate, STYPE = plwasm.state);
CREATE AGGREGATE stats_combine(plwasm.state) (SFUNC = stats_agg_merge, STYPE = plwasm.state,
    FINALFUNC = stats_agg_finalize);
CREATE TABLE daily_states AS
  SELECT device, date_trunc('day', ts) AS day, stats_partial(value) AS state FROM points_raw GROUP BY 1, 2;
SELECT pg_typeof(state) FROM daily_states LIMIT 1;
SELECT count(*) FILTER (WHERE abs(rolled.mean - direct.mean) > 1e-9 OR rolled.n <> direct.n) AS different
  FROM (SELECT device, stats_mean(stats_combine(state)) AS mean, stats_count(stats_combine(state)) AS n
          FROM daily_states GROUP BY device) rolled
  JOIN (SELECT device, stats_mean(stats_agg(value)) AS mean, stats_count(stats_agg(value)) AS n
          FROM points_raw GROUP BY device) direct USING (device);
DROP TABLE daily_states;
DROP AGGREGATE stats_combine(plwasm.state);
DROP AGGREGATE stats_partial(float8);

DROP SCHEMA ts CASCADE;
SELECT plwasm.drop_module('timeseries');
