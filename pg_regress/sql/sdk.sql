--
-- Modules built with the Rust guest SDK: plwasm.create_functions reads the SQL signatures the
-- module declares, and the functions agree with independent SQL computations. Then the same
-- small ABI 1 text module in C, AssemblyScript and Zig.
--
\set text_utils `base64 -w0 ../udf-examples/build/text_utils.wasm`
\set checksums `base64 -w0 ../udf-examples/build/checksums.wasm`
\set vectors `base64 -w0 ../udf-examples/build/vectors.wasm`
\set json_tools `base64 -w0 ../udf-examples/build/json_tools.wasm`
\set numeric_rust `base64 -w0 ../udf-examples/build/numeric_rust.wasm`
-- A non-superuser author: installs modules, creates functions in a schema of their own.
CREATE ROLE sdk_author LOGIN;
CREATE SCHEMA sdk AUTHORIZATION sdk_author;
GRANT USAGE ON SCHEMA plwasm TO sdk_author;
SET ROLE sdk_author;
SET search_path = sdk, public;
SELECT length(plwasm.install_module('text_utils', decode(:'text_utils', 'base64'))) AS text_utils,
       length(plwasm.install_module('checksums', decode(:'checksums', 'base64'))) AS checksums,
       length(plwasm.install_module('vectors', decode(:'vectors', 'base64'))) AS vectors,
       length(plwasm.install_module('json_tools', decode(:'json_tools', 'base64'))) AS json_tools;
SELECT name, owner, abi FROM plwasm.modules WHERE name IN ('text_utils', 'checksums', 'vectors', 'json_tools') ORDER BY name;
SELECT plwasm.create_functions('text_utils');
SELECT plwasm.create_functions('checksums', schema => 'sdk');
SELECT plwasm.create_functions('vectors');
SELECT plwasm.create_functions('json_tools');
-- Functions that exist already are not replaced silently; replace => true replaces them.
SELECT plwasm.create_functions('json_tools');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM plwasm.create_functions('json_tools', replace => true);
-- The declared signatures: argument names, STRICT unless an argument is an Option, volatility.
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result, p.proisstrict AS strict, p.provolatile AS volatility,
       p.prosrc AS body
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'sdk' AND p.proname IN ('slugify', 'mask_email', 'check_email', 'dot', 'jsonb_pointer')
 ORDER BY p.oid::regprocedure::text;
-- text_utils
SELECT s, slugify(s) FROM (VALUES ('Crème Brûlée — 2 for £5!'), ('  Hello,   World  '), ('Straße & Œuvre'), (''), ('---')) v(s);
SELECT e, normalize_email(e) FROM (VALUES (' John.Doe+news@GoogleMail.com '), ('Alice+x@Example.ORG'), ('no-at-sign'), ('a@b'), ('bad user@x.com')) v(e);
SELECT mask_email('alice@example.com', NULL) AS default_keep, mask_email('alice@example.com', 3) AS keep_3,
       mask_email(NULL, 3) IS NULL AS null_email, mask_email('noatsign', 0) AS no_domain;
SELECT u, url_host(u) FROM (VALUES ('https://User:pw@WWW.Example.COM:8443/path?q=1'), ('example.org/x'), ('mailto:someone@example.com'), ('http:///nohost'), ('localhost:5432')) v(u);
SELECT check_email('x@y.z') AS ok, check_email('x@y') AS not_ok;
-- checksums: the CRC-32 check value, FNV-1a reference values, SHA-256 equal to the built-in
-- on 500 generated inputs of 0..4000 bytes.
SELECT crc32('123456789'::bytea) AS crc_check, crc32(''::bytea) AS crc_empty,
       fnv1a64('a'::bytea) AS fnv_a, fnv1a64('hello'::bytea) AS fnv_hello;
SELECT count(*) AS inputs, count(*) FILTER (WHERE sdk.sha256_wasm(b) = sha256(b)) AS sha256_equal,
       count(*) FILTER (WHERE xor_bytes(xor_bytes(b, '\x5aa5'), '\x5aa5') = b) AS xor_twice_equal
  FROM (SELECT decode(repeat(md5(i::text), i % 126), 'hex') AS b FROM generate_series(1, 500) i) s;
-- vectors: against the same formulas in SQL over 300 generated vector pairs of 0..49 elements.
SELECT setseed(0.42);
CREATE TEMP TABLE pairs AS
SELECT i, array_agg(random() - 0.5 ORDER BY j) FILTER (WHERE j > 0) AS a,
          array_agg(random() - 0.5 ORDER BY j) FILTER (WHERE j > 0) AS b
  FROM generate_series(1, 300) i, generate_series(0, i % 50) j GROUP BY i;
UPDATE pairs SET a = '{}', b = '{}' WHERE a IS NULL;
WITH sql AS (
  SELECT i, sum(x * y) AS dot, sum(x * x) AS aa, sum(y * y) AS bb
    FROM pairs, unnest(a, b) AS u(x, y) GROUP BY i)
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE abs(dot(p.a, p.b) - coalesce(s.dot, 0)) < 1e-12) AS dot_equal,
       count(*) FILTER (WHERE cosine_similarity(p.a, p.b) IS NULL AND s.aa IS NULL
                           OR abs(cosine_similarity(p.a, p.b) - s.dot / sqrt(s.aa * s.bb)) < 1e-12) AS cosine_equal,
       count(*) FILTER (WHERE abs(l2_norm(p.a) - sqrt(coalesce(s.aa, 0))) < 1e-12) AS norm_equal,
       count(*) FILTER (WHERE cardinality(p.a) = 0 OR abs(l2_norm(l2_normalize(p.a)) - 1) < 1e-12) AS unit_length
  FROM pairs p LEFT JOIN sql s USING (i);
SELECT count(*) FILTER (WHERE argsort(a) = (SELECT coalesce(array_agg(o::int ORDER BY x, o), '{}') FROM unnest(a) WITH ORDINALITY u(x, o))) AS argsort_equal,
       count(*) FILTER (WHERE cumulative_sum(ints) = (SELECT coalesce(array_agg(s ORDER BY o), '{}') FROM (SELECT o, (sum(x) OVER (ORDER BY o))::bigint AS s FROM unnest(ints) WITH ORDINALITY u(x, o)) w)) AS cumsum_equal,
       count(*) FILTER (WHERE int_sum(ints::int[]) = (SELECT coalesce(sum(x), 0) FROM unnest(ints) x)) AS int_sum_equal
  FROM (SELECT a, (SELECT coalesce(array_agg((x * 1e6)::bigint), '{}') FROM unnest(a) x) AS ints FROM pairs) s;
SELECT scale('{1.5,-2,0}'::real[], 2) AS scaled, int_sum('{2147483647,2147483647}') AS no_overflow;
SELECT dot('{1,2,3}', '{1,2}');
\echo :LAST_ERROR_SQLSTATE
-- A Rust panic (here an index out of bounds) is an ERROR with the panic message; the next
-- call gets a fresh instance.
SELECT element('{1.5,2.5}', 2) AS second;
SELECT element('{1.5,2.5}', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT element('{1.5,2.5}', 1) AS first;
-- json_tools
SELECT jsonb_flatten('{"a": {"b": 1, "c": [true, null]}, "d": "x", "e": {}, "f": []}') AS flat;
SELECT p, jsonb_pointer(doc, p) AS wasm, doc #> string_to_array(substr(p, 2), '/') AS builtin
  FROM (VALUES ('{"items": [{"name": "n1"}, {"name": "n2", "tags": ["x"]}]}'::jsonb)) d(doc),
       unnest(ARRAY['/items/1/name', '/items/1/tags/0', '/items/0', '/missing', '/items/7/name']) p;
SELECT jsonb_sum_numbers(doc) AS wasm,
       (SELECT sum(v::text::float8) FROM jsonb_path_query(doc, 'strict $.** ? (@.type() == "number")') v) AS builtin
  FROM (VALUES ('[1, {"a": 2.5, "b": [3, "4", {"c": -0.5}]}, true, null]'::jsonb)) d(doc);
SELECT jsonb_redact('{"user": "ann", "password": "s3cret", "token": "t", "n": 1}', 'password, token') AS redacted;
-- A module that declares nothing, and a module the role may not use.
SELECT length(plwasm.install_module('plain_numeric', decode(:'numeric_rust', 'base64'))) AS plain_numeric;
SELECT plwasm.create_functions('plain_numeric');
RESET ROLE;
CREATE ROLE sdk_other LOGIN;
GRANT USAGE ON SCHEMA plwasm TO sdk_other;
SET ROLE sdk_other;
SELECT plwasm.create_functions('vectors');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE sdk_author;
SELECT plwasm.grant_module('vectors', 'sdk_other');
RESET ROLE;
CREATE SCHEMA other AUTHORIZATION sdk_other;
SET ROLE sdk_other;
SELECT plwasm.create_functions('vectors', schema => 'other');
SELECT other.dot('{1,2}', '{3,4}') AS granted_dot;
RESET ROLE;
--
-- The same small text module in C, AssemblyScript and Zig.
--
RESET search_path;
\set text_c `base64 -w0 ../udf-examples/build/text_c.wasm`
\set text_as `base64 -w0 ../udf-examples/build/text_as.wasm`
\set text_zig `base64 -w0 ../udf-examples/build/text_zig.wasm`
SELECT length(plwasm.install_module('text_c', decode(:'text_c', 'base64'))) AS c,
       length(plwasm.install_module('text_as', decode(:'text_as', 'base64'))) AS assemblyscript,
       length(plwasm.install_module('text_zig', decode(:'text_zig', 'base64'))) AS zig;
DO $$
DECLARE lang text;
BEGIN
  FOREACH lang IN ARRAY ARRAY['c', 'as', 'zig'] LOOP
    EXECUTE format('CREATE FUNCTION ascii_upper_%s(t text) RETURNS text IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'text_' || lang || ':ascii_upper');
    EXECUTE format('CREATE FUNCTION char_count_%s(t text) RETURNS integer IMMUTABLE STRICT LANGUAGE wasm AS %L', lang, 'text_' || lang || ':char_count');
  END LOOP;
END $$;
SELECT ascii_upper_c(s) AS c, ascii_upper_as(s) AS assemblyscript, ascii_upper_zig(s) AS zig,
       char_count_c(s) AS chars_c, char_count_as(s) AS chars_as, char_count_zig(s) AS chars_zig
  FROM (VALUES ('hello, wörld'), (''), ('ß → 世界')) v(s);
-- All three agree with SQL on 2000 generated strings, some long enough to grow the buffers.
SELECT count(*) AS strings,
       count(*) FILTER (WHERE ascii_upper_c(s) = translate(s, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
                          AND ascii_upper_as(s) = ascii_upper_c(s) AND ascii_upper_zig(s) = ascii_upper_c(s)) AS upper_equal,
       count(*) FILTER (WHERE char_count_c(s) = length(s) AND char_count_as(s) = length(s) AND char_count_zig(s) = length(s)) AS count_equal
  FROM (SELECT repeat(md5(i::text) || 'äö€', i % 300) AS s FROM generate_series(1, 2000) i) g;
-- Clean up.
SELECT plwasm.drop_module(m, cascade => true) FROM unnest(ARRAY['text_c', 'text_as', 'text_zig']) m;
-- sdk_author may drop their modules, but not sdk_other's functions that use one.
SET ROLE sdk_author;
SELECT plwasm.drop_module('vectors', cascade => true);
RESET ROLE;
SET client_min_messages = warning;
DROP SCHEMA other CASCADE;
SET ROLE sdk_author;
SELECT plwasm.drop_module(m, cascade => true) FROM unnest(ARRAY['text_utils', 'checksums', 'vectors', 'json_tools', 'plain_numeric']) m;
DROP TABLE pairs;
RESET ROLE;
DROP SCHEMA sdk CASCADE;
REVOKE USAGE ON SCHEMA plwasm FROM sdk_author, sdk_other;
DROP ROLE sdk_author, sdk_other;
