--
-- The same numeric module written in Rust, C, AssemblyScript and Zig (udf-examples/numeric-*,
-- built by udf-examples/build.sh), loaded from the client with psql and called from SQL.
--
\set rust `base64 -w0 ../udf-examples/build/numeric_rust.wasm`
\set c `base64 -w0 ../udf-examples/build/numeric_c.wasm`
\set as `base64 -w0 ../udf-examples/build/numeric_as.wasm`
\set zig `base64 -w0 ../udf-examples/build/numeric_zig.wasm`
SELECT plwasm.install_module('numeric_rust', decode(:'rust', 'base64')) IS NOT NULL AS rust,
       plwasm.install_module('numeric_c', decode(:'c', 'base64')) IS NOT NULL AS c,
       plwasm.install_module('numeric_as', decode(:'as', 'base64')) IS NOT NULL AS assemblyscript,
       plwasm.install_module('numeric_zig', decode(:'zig', 'base64')) IS NOT NULL AS zig;
SELECT name, abi, exports FROM plwasm.modules WHERE name LIKE 'numeric_%' ORDER BY name;
-- One set of SQL functions per language.
DO $$
DECLARE lang text;
BEGIN
  FOREACH lang IN ARRAY ARRAY['rust', 'c', 'as', 'zig'] LOOP
    EXECUTE format('CREATE FUNCTION clamp_%s(x float8, lo float8, hi float8) RETURNS float8 IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'numeric_' || lang || ':clamp');
    EXECUTE format('CREATE FUNCTION lerp_%s(a float8, b float8, t float8) RETURNS float8 IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'numeric_' || lang || ':lerp');
    EXECUTE format('CREATE FUNCTION gcd_%s(a int8, b int8) RETURNS int8 IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'numeric_' || lang || ':gcd');
    EXECUTE format('CREATE FUNCTION collatz_%s(n int8) RETURNS int4 IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'numeric_' || lang || ':collatz_steps');
  END LOOP;
END $$;
-- Known values: clamp, lerp, gcd(1071, 462) = 21, Collatz steps of 27 = 111.
SELECT clamp_rust(5, 0, 1), clamp_c(-5, 0, 1), clamp_as(0.25, 0, 1), clamp_zig(7, 0, 10);
SELECT lerp_rust(0, 10, 0.25), lerp_c(0, 10, 0.25), lerp_as(-4, 4, 0.5), lerp_zig(1, 3, 2);
SELECT gcd_rust(1071, 462), gcd_c(-1071, 462), gcd_as(0, -9), gcd_zig(0, 0);
SELECT collatz_rust(27), collatz_c(27), collatz_as(1), collatz_zig(0);
-- The four agree with each other and with SQL on generated inputs (expect 0 disagreements).
CREATE FUNCTION pg_temp.gcd_sql(a int8, b int8) RETURNS int8 LANGUAGE plpgsql AS $$
DECLARE x int8 := abs(a); y int8 := abs(b); r int8;
BEGIN
  WHILE y <> 0 LOOP r := x % y; x := y; y := r; END LOOP;
  RETURN x;
END $$;
SELECT count(*) AS disagreements
  FROM generate_series(1, 2000) i,
       LATERAL (SELECT (i * 7919) % 10007 - 5000 AS a, (i * 104729) % 3001 - 1500 AS b) v
 WHERE gcd_rust(v.a, v.b) <> pg_temp.gcd_sql(v.a, v.b)
    OR gcd_c(v.a, v.b) <> gcd_rust(v.a, v.b)
    OR gcd_as(v.a, v.b) <> gcd_rust(v.a, v.b)
    OR gcd_zig(v.a, v.b) <> gcd_rust(v.a, v.b)
    OR lerp_rust(v.a, v.b, i / 2000.0) <> v.a + (v.b - v.a) * (i / 2000.0)::float8
    OR lerp_c(v.a, v.b, i / 2000.0) <> lerp_zig(v.a, v.b, i / 2000.0)
    OR lerp_as(v.a, v.b, i / 2000.0) <> lerp_rust(v.a, v.b, i / 2000.0)
    OR clamp_rust(v.a, -100, 100) <> greatest(-100, least(100, v.a))
    OR clamp_c(v.a, -100, 100) <> clamp_as(v.a, -100, 100)
    OR clamp_zig(v.a, -100, 100) <> clamp_rust(v.a, -100, 100)
    OR collatz_rust(i) <> collatz_c(i) OR collatz_as(i) <> collatz_zig(i) OR collatz_c(i) <> collatz_zig(i);
SELECT max(collatz_zig(i)) AS longest_below_2001 FROM generate_series(1, 2000) i;
-- Clean up.
DO $$
DECLARE lang text;
BEGIN
  FOREACH lang IN ARRAY ARRAY['rust', 'c', 'as', 'zig'] LOOP
    PERFORM plwasm.drop_module('numeric_' || lang, cascade => true);
  END LOOP;
END $$;
