-- Time-series helpers written directly in WebAssembly text: no toolchain needed.
-- Install: psql -d yourdb -f udf-examples/timeseries-wat/install.sql   (needs CREATE EXTENSION plwasm)

-- Start of the fixed-width bucket containing ts, buckets aligned to 1970-01-01 00:00 UTC.
-- Like date_bin(make_interval(secs => width_seconds), ts, 'epoch'), also before 1970.
-- width_seconds = 0 is an integer division by zero (SQLSTATE 22012).
CREATE OR REPLACE FUNCTION bucket_start(ts timestamptz, width_seconds int8) RETURNS timestamptz
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS $$
(module
  (func (export "bucket_start") (param $ts i64) (param $width_s i64) (result i64)
    (local $width i64)
    ;; timestamps are microseconds since 1970-01-01 UTC
    local.get $width_s i64.const 1000000 i64.mul local.set $width
    ;; ts - floor_mod(ts, width)
    local.get $ts
    local.get $ts local.get $width i64.rem_s local.get $width i64.add local.get $width i64.rem_s
    i64.sub))
$$;

-- Degrees Celsius to Fahrenheit.
CREATE OR REPLACE FUNCTION celsius_to_fahrenheit(c float8) RETURNS float8
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS $$
(module
  (func (export "celsius_to_fahrenheit") (param f64) (result f64)
    local.get 0 f64.const 1.8 f64.mul f64.const 32 f64.add))
$$;

-- Is v outside [lo, hi]? NaN counts as outside.
CREATE OR REPLACE FUNCTION out_of_band(v float8, lo float8, hi float8) RETURNS bool
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE wasm AS $$
(module
  (func (export "out_of_band") (param $v f64) (param $lo f64) (param $hi f64) (result i32)
    ;; not (lo <= v and v <= hi)
    local.get $lo local.get $v f64.le
    local.get $v local.get $hi f64.le
    i32.and i32.eqz))
$$;
