--
-- Wasm aggregates: state in the guest behind a handle, rows in batches, and PostgreSQL's own
-- aggregate machinery around them (GROUP BY, FILTER, ORDER BY, window frames, parallel
-- plans). A hand-written module holds four aggregates:
--   wsum    sum of float8 (NULL for no rows), with merge/serialize/deserialize and retract;
--   wfirst  the first non-NULL value it is given (so ORDER BY inside it matters);
--   wtrap   traps on 13, loops forever on -1;
--   wbig    takes 64 kB of guest memory per state.
--
CREATE SCHEMA agg;
SET search_path = agg, public;
CREATE TABLE agg_src (src text);
INSERT INTO agg_src VALUES ($$
(module
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "plwasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (block (loop
      (br_if 1 (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (drop (memory.grow (i32.const 1)))
      (br 0)))
    (local.get $p))
  (func $nothing (param i32))
  ;; wsum: state {f64 sum, i64 count}; rows {u32 handle, u32 nulls, f64 x}
  (func (export "wsum.new") (result i32) (call $alloc (i32.const 16)))
  (export "wsum.free" (func $nothing))
  (func $step (param $p i32) (param $n i32) (param $sign f64)
    (local $h i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get $n)))
      (if (i32.eqz (i32.load offset=4 (local.get $p))) (then
        (local.set $h (i32.load (local.get $p)))
        (f64.store (local.get $h)
          (f64.add (f64.load (local.get $h)) (f64.mul (local.get $sign) (f64.load offset=8 (local.get $p)))))
        (i64.store offset=8 (local.get $h)
          (i64.add (i64.load offset=8 (local.get $h)) (i64.trunc_f64_s (local.get $sign))))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br 0))))
  (func (export "wsum.accumulate") (param i32 i32) (call $step (local.get 0) (local.get 1) (f64.const 1)))
  (func (export "wsum.retract") (param i32 i32) (call $step (local.get 0) (local.get 1) (f64.const -1)))
  ;; finalize frame: argument slot at +0 (handle at +8), result slot at +16
  (func (export "wsum.finalize") (param $f i32)
    (local $h i32)
    (local.set $h (i32.load offset=8 (local.get $f)))
    (if (i64.eqz (i64.load offset=8 (local.get $h)))
      (then (i32.store offset=16 (local.get $f) (i32.const 1)))
      (else (f64.store offset=24 (local.get $f) (f64.load (local.get $h))))))
  (func (export "wsum.merge") (param $a i32) (param $b i32)
    (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.load (local.get $b))))
    (i64.store offset=8 (local.get $a) (i64.add (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b)))))
  (func (export "wsum.serialize") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 16))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (i32.load offset=8 (local.get $f)))))
  (func (export "wsum.deserialize") (param $f i32)
    (local $h i32)
    (local.set $h (call $alloc (i32.const 16)))
    (memory.copy (local.get $h) (i32.load offset=8 (local.get $f)) (i32.const 16))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (local.get $h))))
  ;; wfirst: state {f64 value, i32 seen}
  (func (export "wfirst.new") (result i32) (call $alloc (i32.const 16)))
  (export "wfirst.free" (func $nothing))
  (func (export "wfirst.accumulate") (param $p i32) (param $n i32)
    (local $h i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get $n)))
      (local.set $h (i32.load (local.get $p)))
      (if (i32.and (i32.eqz (i32.load offset=4 (local.get $p))) (i32.eqz (i32.load offset=8 (local.get $h)))) (then
        (f64.store (local.get $h) (f64.load offset=8 (local.get $p)))
        (i32.store offset=8 (local.get $h) (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br 0))))
  (func (export "wfirst.finalize") (param $f i32)
    (local $h i32)
    (local.set $h (i32.load offset=8 (local.get $f)))
    (if (i32.eqz (i32.load offset=8 (local.get $h)))
      (then (i32.store offset=16 (local.get $f) (i32.const 1)))
      (else (f64.store offset=24 (local.get $f) (f64.load (local.get $h))))))
  ;; wtrap: traps on 13, spins on -1; finalize returns 0
  (func (export "wtrap.new") (result i32) (call $alloc (i32.const 8)))
  (export "wtrap.free" (func $nothing))
  (func (export "wtrap.accumulate") (param $p i32) (param $n i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get $n)))
      (if (f64.eq (f64.load offset=8 (local.get $p)) (f64.const 13)) (then unreachable))
      (if (f64.eq (f64.load offset=8 (local.get $p)) (f64.const -1)) (then (loop (br 0))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br 0))))
  (func (export "wtrap.finalize") (param $f i32) (f64.store offset=24 (local.get $f) (f64.const 0)))
  ;; wbig: 64 kB per state
  (func (export "wbig.new") (result i32) (call $alloc (i32.const 65536)))
  (export "wbig.free" (func $nothing))
  (export "wbig.accumulate" (func $nothing2))
  (func $nothing2 (param i32 i32))
  (func (export "wbig.finalize") (param $f i32) (f64.store offset=24 (local.get $f) (f64.const 1)))
  ;; squares(n): RETURNS TABLE (i bigint, sq bigint); evens(n): RETURNS SETOF bigint
  (func $rows (param $f i32) (param $cols i32) (param $step i32)
    (local $n i32) (local $p i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (i64.load offset=8 (local.get $f))))
    (local.set $p (call $alloc (i32.mul (local.get $n) (i32.mul (local.get $cols) (i32.const 16)))))
    (i32.store offset=20 (local.get $f) (local.get $n))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (local.get $p)))
    (block (loop
      (br_if 1 (i32.ge_s (local.get $i) (local.get $n)))
      (i64.store (local.get $p) (i64.const 0))
      (i64.store offset=8 (local.get $p) (i64.extend_i32_s (i32.mul (local.get $i) (local.get $step))))
      (if (i32.eq (local.get $cols) (i32.const 2)) (then
        (i64.store offset=16 (local.get $p) (i64.const 0))
        (i64.store offset=24 (local.get $p) (i64.mul (i64.extend_i32_s (local.get $i)) (i64.extend_i32_s (local.get $i))))))
      (local.set $p (i32.add (local.get $p) (i32.mul (local.get $cols) (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br 0))))
  (func (export "squares") (param $f i32) (call $rows (local.get $f) (i32.const 2) (i32.const 1)))
  (func (export "evens") (param $f i32) (call $rows (local.get $f) (i32.const 1) (i32.const 2)))
)
$$);
-- Support functions: inline bodies naming their export; the same module text, so one module.
CREATE FUNCTION support(name text, signature text, export text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  EXECUTE format('CREATE FUNCTION %I%s LANGUAGE wasm PARALLEL SAFE AS %L',
                 name, signature, E'@export ' || export || E'\n' || (SELECT src FROM agg_src));
END $f$;
SELECT support('wsum_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wsum.accumulate'),
       support('wsum_ret', '(plwasm.state, float8) RETURNS plwasm.state', 'wsum.retract'),
       support('wsum_fin', '(plwasm.state) RETURNS float8', 'wsum.finalize'),
       support('wsum_merge', '(plwasm.state, plwasm.state) RETURNS plwasm.state', 'wsum.merge'),
       support('wfirst_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wfirst.accumulate'),
       support('wfirst_fin', '(plwasm.state) RETURNS float8', 'wfirst.finalize'),
       support('wtrap_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wtrap.accumulate'),
       support('wtrap_fin', '(plwasm.state) RETURNS float8', 'wtrap.finalize'),
       support('wbig_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wbig.accumulate'),
       support('wbig_fin', '(plwasm.state) RETURNS float8', 'wbig.finalize');
-- Plain CREATE AGGREGATE: the state type is plwasm.state, so no superuser is needed.
CREATE AGGREGATE wsum(float8) (SFUNC = wsum_acc, STYPE = plwasm.state, FINALFUNC = wsum_fin,
    COMBINEFUNC = wsum_merge, MSFUNC = wsum_acc, MINVFUNC = wsum_ret, MSTYPE = plwasm.state,
    MFINALFUNC = wsum_fin, PARALLEL = SAFE);
CREATE AGGREGATE wfirst(float8) (SFUNC = wfirst_acc, STYPE = plwasm.state, FINALFUNC = wfirst_fin, PARALLEL = SAFE);
CREATE AGGREGATE wtrap(float8) (SFUNC = wtrap_acc, STYPE = plwasm.state, FINALFUNC = wtrap_fin, PARALLEL = SAFE);
CREATE AGGREGATE agg.wbig(float8) (SFUNC = wbig_acc, STYPE = plwasm.state, FINALFUNC = wbig_fin, PARALLEL = SAFE);
SELECT aggfnoid, aggtransfn, aggfinalfn, aggcombinefn, aggserialfn, aggdeserialfn, aggmtransfn, aggminvtransfn,
       aggtranstype::regtype, aggmtranstype::regtype, aggfinalmodify, proparallel
  FROM pg_aggregate JOIN pg_proc ON pg_proc.oid = aggfnoid WHERE aggfnoid = 'wsum'::regproc;

CREATE FUNCTION plwasm_explain_analyze(query text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    RETURN NEXT line;
  END LOOP;
END $f$;

-- Results equal the built-in sum, over more rows than one batch.
SELECT wsum(x), sum(x) FROM generate_series(1, 100000) x;
-- No rows, or only NULLs: the guest's empty state says NULL.
SELECT wsum(x) FROM generate_series(1, 0) x;
SELECT wsum(NULL::float8) FROM generate_series(1, 5);
-- FILTER.
SELECT wsum(x) FILTER (WHERE x % 3 = 0), sum(x) FILTER (WHERE x % 3 = 0) FROM generate_series(1, 1000) x;
-- ORDER BY inside the aggregate decides what comes first.
SELECT wfirst(x ORDER BY x), wfirst(x ORDER BY x DESC), wfirst(x ORDER BY x % 7, x DESC)
  FROM generate_series(1, 20) x;

-- GROUP BY, sorted and hashed, 5000 groups.
CREATE TABLE g AS SELECT i % 5000 AS k, (i * 7 % 1000)::float8 AS x FROM generate_series(1, 200000) i;
ANALYZE g;
SET max_parallel_workers_per_gather = 0;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT k, wsum(x) FROM g GROUP BY k;
SELECT count(*) AS groups, count(*) FILTER (WHERE w IS DISTINCT FROM s) AS different
  FROM (SELECT k, wsum(x) AS w, sum(x) AS s FROM g GROUP BY k) q;
SET enable_hashagg = on;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT k, wsum(x) FROM g GROUP BY k;
SELECT count(*) AS groups, count(*) FILTER (WHERE w IS DISTINCT FROM s) AS different
  FROM (SELECT k, wsum(x) AS w, sum(x) AS s FROM g GROUP BY k) q;
RESET enable_sort;
-- Hash aggregation that spills to disk under a small work_mem (states of groups written out
-- are made again from their rows; the states in memory stay expanded), DISTINCT, and
-- GROUPING SETS.
SET enable_sort = off;
SET work_mem = '64kB';
SELECT count(*) AS groups, count(*) FILTER (WHERE w IS DISTINCT FROM s) AS different
  FROM (SELECT k, wsum(x) AS w, sum(x) AS s FROM g GROUP BY k) q;
SELECT bool_or(line ~ '^HashAggregate') AS hashed, bool_or(line ~ 'Disk Usage: [1-9]') AS spilled
  FROM plwasm_explain_analyze('SELECT k, wsum(x) FROM g GROUP BY k') line;
RESET work_mem;
RESET enable_sort;
SELECT wsum(DISTINCT x) = sum(DISTINCT x) AS distinct_same, count(DISTINCT x) FROM g;
SELECT k % 3 AS a, k % 2 AS b, wsum(x) = sum(x) AS same
  FROM g WHERE k < 30 GROUP BY GROUPING SETS ((k % 3), (k % 2), ()) ORDER BY 1, 2;

-- Window frames: a sliding frame uses retract; a growing frame and whole partitions too.
SELECT x, wsum(x) OVER w AS wasm, sum(x) OVER w AS builtin
  FROM generate_series(1, 8) x WINDOW w AS (ORDER BY x ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);
-- RANGE and GROUPS frames slide too.
SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b) AS different_range,
       count(*) FILTER (WHERE c IS DISTINCT FROM d) AS different_groups
  FROM (SELECT wsum(x) OVER (ORDER BY x RANGE BETWEEN 3 PRECEDING AND 1 FOLLOWING) a,
               sum(x) OVER (ORDER BY x RANGE BETWEEN 3 PRECEDING AND 1 FOLLOWING) b,
               wsum(x) OVER (ORDER BY x GROUPS BETWEEN 2 PRECEDING AND CURRENT ROW) c,
               sum(x) OVER (ORDER BY x GROUPS BETWEEN 2 PRECEDING AND CURRENT ROW) d
          FROM g WHERE k < 200) q;
SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b) AS different_sliding,
       count(*) FILTER (WHERE c IS DISTINCT FROM d) AS different_growing,
       count(*) FILTER (WHERE e IS DISTINCT FROM f) AS different_partition
  FROM (SELECT wsum(x) OVER (PARTITION BY k % 7 ORDER BY x, k ROWS BETWEEN 5 PRECEDING AND 2 FOLLOWING) a,
               sum(x) OVER (PARTITION BY k % 7 ORDER BY x, k ROWS BETWEEN 5 PRECEDING AND 2 FOLLOWING) b,
               wsum(x) OVER (ORDER BY k, x) c, sum(x) OVER (ORDER BY k, x) d,
               wsum(x) OVER (PARTITION BY k) e, sum(x) OVER (PARTITION BY k) f
          FROM g WHERE k < 300) q;

-- Parallel: partial aggregates in workers, merged in the leader; same results as serial.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT wsum(x) FROM g;
SELECT wsum(x) = sum(x) AS same FROM g;
-- The workers really run: their partial states come to the leader flat and are merged.
SELECT (regexp_match(plan, 'Workers Launched: (\d+)'))[1]::int > 0 AS workers_launched
  FROM (SELECT string_agg(line, E'\n') AS plan
          FROM (SELECT * FROM plwasm_explain_analyze('SELECT wsum(x) FROM g')) e(line)) q;
EXPLAIN (COSTS OFF) SELECT k, wsum(x) FROM g GROUP BY k;
SELECT count(*) FILTER (WHERE w IS DISTINCT FROM s) AS different
  FROM (SELECT k, wsum(x) AS w, sum(x) AS s FROM g GROUP BY k) q;
-- wfirst has no merge, so it is never split.
EXPLAIN (COSTS OFF) SELECT wfirst(x) FROM g;
RESET max_parallel_workers_per_gather;

-- A trap inside an aggregate is an ERROR; the session goes on.
SELECT wtrap(x) FROM generate_series(1, 20) x;
SELECT wtrap(x), wsum(x) FROM generate_series(1, 12) x;
-- Cancel reaches a guest stuck in a batch (with no fuel limit to stop it first).
SET plwasm.fuel_limit = 0;
SET statement_timeout = '300ms';
SELECT wtrap(x) FROM (VALUES (1.0), (-1.0)) v(x);
RESET statement_timeout;
RESET plwasm.fuel_limit;
SELECT wsum(x) FROM generate_series(1, 10) x;
-- The states of an aggregate share an instance until it has used an eighth of plwasm.max_memory;
-- then new states get a fresh one. So 100 groups of 64 kB run under a 2MB cap, and what bounds
-- them together is plwasm.max_session_memory.
SET plwasm.max_memory = '2MB';
SELECT count(w) FROM (SELECT x % 10, wbig(x) AS w FROM generate_series(1, 100) x GROUP BY 1) q;
SELECT count(w) FROM (SELECT x, wbig(x) AS w FROM generate_series(1, 100) x GROUP BY 1) q;
SET plwasm.max_session_memory = '4MB';
SELECT count(w) FROM (SELECT x, wbig(x) AS w FROM generate_series(1, 100) x GROUP BY 1) q;
\echo :LAST_ERROR_SQLSTATE
RESET plwasm.max_session_memory;
RESET plwasm.max_memory;
SELECT count(w) FROM (SELECT x, wbig(x) AS w FROM generate_series(1, 100) x GROUP BY 1) q;
-- States in different instances still merge: under a one-page cap every new state gets an
-- instance of its own. A stored (flat) state is read straight into the instance of the state
-- it is merged into; a live one (from the subquery) is copied across.
CREATE AGGREGATE wsum_partial(float8) (SFUNC = wsum_acc, STYPE = plwasm.state);
CREATE AGGREGATE wsum_rollup(plwasm.state) (SFUNC = wsum_merge, STYPE = plwasm.state, FINALFUNC = wsum_fin);
CREATE TABLE wsum_parts AS SELECT x % 4 AS k, wsum_partial(x) AS s FROM generate_series(1, 100) x GROUP BY 1;
SET plwasm.max_memory = '64kB';
SELECT wsum_rollup(s ORDER BY k) AS rolled_up, (SELECT sum(x) FROM generate_series(1, 100) x) AS expected FROM wsum_parts;
SELECT wsum_rollup(s) AS rolled_up_live
  FROM (SELECT x % 4 AS k, wsum_partial(x) AS s FROM generate_series(1, 100) x GROUP BY 1) q;
RESET plwasm.max_memory;

-- Support functions run only inside aggregates.
SELECT wsum_fin(NULL::plwasm.state);
-- An aggregate pairing support functions of different aggregates (any role can create one
-- now) is refused when it runs: a state is read only by the aggregate that made it.
CREATE AGGREGATE mixed(float8) (SFUNC = wsum_acc, STYPE = plwasm.state, FINALFUNC = wfirst_fin);
SELECT mixed(x) FROM generate_series(1, 3) x;
DROP AGGREGATE mixed(float8);

-- Support function signatures are checked at CREATE FUNCTION.
\set SHOW_CONTEXT never
SELECT support('bad_acc', '(plwasm.state, float8) RETURNS plwasm.state STRICT', 'wsum.accumulate');
SELECT support('bad_acc', '(plwasm.state, float8[]) RETURNS plwasm.state', 'wsum.accumulate');
SELECT support('bad_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wsum.nothing');
SELECT support('bad_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wfirst.retract');
SELECT support('bad_acc', '(plwasm.state) RETURNS plwasm.state', 'wsum.serialize');
-- plwasm 0.1's internal-state support functions are refused with a way out.
SELECT support('old_acc', '(internal, float8) RETURNS internal', 'wsum.accumulate');
\set SHOW_CONTEXT errors

-- Flat states: what PostgreSQL stores and sends. Text input checks the header; a state of
-- another module or aggregate is refused before any guest sees it; the guest bytes are the
-- guest's to check.
SELECT 'nonsense'::plwasm.state;
SELECT '\x505753'::plwasm.state;
SELECT '\x5057530200000000000000000000000000000000000000000000000000000000000000000177'::plwasm.state;
CREATE AGGREGATE wsum_from(float8) (SFUNC = wsum_acc, STYPE = plwasm.state, FINALFUNC = wsum_fin,
    INITCOND = '\x505753010000000000000000000000000000000000000000000000000000000000000000047773756d');
SELECT wsum_from(x) FROM generate_series(1, 3) x;
DROP AGGREGATE wsum_from(float8);
-- An aggregate without a final function returns its state: flattened (the guest's
-- serialize), printed, read back and deserialized as another aggregate's initial state.
CREATE AGGREGATE wsum_state(float8) (SFUNC = wsum_acc, STYPE = plwasm.state);
SELECT wsum_state(x) AS flat FROM generate_series(1, 4) x \gset
SELECT length(:'flat') AS text_length, substr(:'flat', 1, 10) AS header;
-- (not echoed: the statement holds the module's SHA-256)
\set ECHO none
SELECT format('CREATE AGGREGATE wsum_more(float8) (SFUNC = wsum_acc, STYPE = plwasm.state, FINALFUNC = wsum_fin, INITCOND = %L)', :'flat') \gexec
\set ECHO all
SELECT wsum_more(x) AS "10 + 5 + 6" FROM generate_series(5, 6) x;
SELECT plwasm.state_send(:'flat'::plwasm.state) = decode(substr(:'flat', 3), 'hex') AS binary_is_the_flat_form;
DROP AGGREGATE wsum_more(float8);
DROP AGGREGATE wsum_state(float8);

-- A role without superuser makes its own wasm aggregate with plain CREATE AGGREGATE, and owns it.
CREATE ROLE regress_agg_user;
CREATE ROLE regress_agg_other;
CREATE SCHEMA agg_user AUTHORIZATION regress_agg_user;
GRANT USAGE ON SCHEMA agg TO regress_agg_user, regress_agg_other;
GRANT SELECT ON agg_src TO regress_agg_user;
SET ROLE regress_agg_user;
SET search_path = agg_user, agg;
SELECT support('my_acc', '(plwasm.state, float8) RETURNS plwasm.state', 'wsum.accumulate'),
       support('my_fin', '(plwasm.state) RETURNS float8', 'wsum.finalize');
CREATE AGGREGATE my_sum(float8) (SFUNC = my_acc, STYPE = plwasm.state, FINALFUNC = my_fin);
SELECT my_sum(x) FROM generate_series(1, 10) x;
SELECT proowner::regrole FROM pg_proc WHERE oid = 'agg_user.my_sum'::regproc;
-- Another role cannot replace it, nor create in a schema it may not: PostgreSQL's own checks.
SET ROLE regress_agg_other;
CREATE OR REPLACE AGGREGATE agg_user.my_sum(float8) (SFUNC = agg.wsum_acc, STYPE = plwasm.state, FINALFUNC = agg.wsum_fin);
CREATE AGGREGATE agg_user.theirs(float8) (SFUNC = agg.wsum_acc, STYPE = plwasm.state, FINALFUNC = agg.wsum_fin);
RESET ROLE;
SET search_path = agg, public;
DROP SCHEMA agg_user CASCADE;
REVOKE ALL ON SCHEMA agg FROM regress_agg_user, regress_agg_other;
REVOKE ALL ON agg_src FROM regress_agg_user;
DROP ROLE regress_agg_user;
DROP ROLE regress_agg_other;

-- Set-returning functions: RETURNS TABLE and RETURNS SETOF, in FROM and in the select list.
SELECT support('squares', '(n int4) RETURNS TABLE (i bigint, sq bigint)', 'squares'),
       support('evens', '(n int4) RETURNS SETOF bigint', 'evens');
SELECT * FROM squares(5);
SELECT evens(4);
SELECT count(*), sum(sq) FROM squares(100000);
SELECT n, (SELECT count(*) FROM squares(n)) FROM generate_series(0, 2) n;
SELECT * FROM squares(3) WITH ORDINALITY;
-- Set-returning functions need ABI 1 (a frame) like any result that is not one number.
CREATE FUNCTION numeric_set(int4) RETURNS SETOF int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "numeric_set") (param i32) (result i32) local.get 0))
$$;

DROP SCHEMA agg CASCADE;
