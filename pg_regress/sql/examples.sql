--
-- udf-examples/timeseries-wat installs and agrees with PostgreSQL's own functions.
--
\set ECHO none
\set QUIET on
\i ../udf-examples/timeseries-wat/install.sql
\set QUIET off
\set ECHO all
SET timezone = 'UTC';
SELECT bucket_start('2024-03-01 12:34:56+00', 900);
-- Before 1970, buckets still floor (not truncate toward zero).
SELECT bucket_start('1969-12-31 23:59:59+00', 3600);
-- Against date_bin on a range that crosses the epoch, at three widths (expect 0).
SELECT count(*) AS disagreements
  FROM generate_series(timestamptz '1969-12-25', '1970-01-05', '7 minutes 3 seconds') ts,
       (VALUES (60), (900), (86400)) w(s)
 WHERE bucket_start(ts, w.s) <> date_bin(make_interval(secs => w.s), ts, 'epoch');
SELECT bucket_start(now(), 0);
\echo :LAST_ERROR_SQLSTATE
SELECT celsius_to_fahrenheit(100), celsius_to_fahrenheit(-40);
SELECT out_of_band(42, 0, 40), out_of_band(20, 0, 40), out_of_band('NaN', 0, 40);
RESET timezone;
