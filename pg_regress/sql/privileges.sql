--
-- wasm is a trusted language: a role without superuser creates and calls wasm functions,
-- but cannot change the limits.
--
CREATE ROLE regress_plwasm_user LOGIN;
CREATE SCHEMA regress_plwasm AUTHORIZATION regress_plwasm_user;
\c - regress_plwasm_user
SET search_path = regress_plwasm;
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;
-- Before plwasm is loaded in this session, SET only makes a placeholder; loading plwasm
-- (here, by CREATE FUNCTION's validator) refuses it.
SET plwasm.fuel_limit = 0;
CREATE FUNCTION my_add(a int4, b int4) RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "my_add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
$$;
SHOW plwasm.fuel_limit;
SELECT my_add(2, 3);
-- Once loaded, every limit is superuser-only.
SET plwasm.fuel_limit = 0;
\echo :LAST_ERROR_SQLSTATE
SET plwasm.max_memory = '1GB';
SET plwasm.max_module_size = '1GB';
SET plwasm.max_stack = '8MB';
ALTER ROLE regress_plwasm_user SET plwasm.fuel_limit = 0;
-- So the fuel limit still stops an endless loop.
CREATE FUNCTION my_spin() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (func (export "my_spin") (result i32) (loop br 0) i32.const 0))
$$;
SELECT my_spin();
\echo :LAST_ERROR_SQLSTATE
-- Untrusted languages stay out of reach.
CREATE FUNCTION my_c() RETURNS int4 LANGUAGE c AS 'plwasm', 'plwasm_validator';

\c - postgres
-- Guest state is per role: each role gets its own instance of a function.
CREATE FUNCTION public.tick() RETURNS int4 STRICT LANGUAGE wasm AS $$
  (module (global $n (mut i32) (i32.const 0))
    (func (export "tick") (result i32) global.get $n i32.const 1 i32.add global.set $n global.get $n))
$$;
CREATE FUNCTION public.tick_as_owner() RETURNS int4 STRICT SECURITY DEFINER LANGUAGE wasm AS $$
  @export tick
  (module (global $n (mut i32) (i32.const 0))
    (func (export "tick") (result i32) global.get $n i32.const 1 i32.add global.set $n global.get $n))
$$;
SELECT public.tick(), public.tick();
SET ROLE regress_plwasm_user;
SELECT public.tick();
SELECT public.tick_as_owner(), public.tick_as_owner();
RESET ROLE;
SELECT public.tick();
SELECT public.tick_as_owner();
-- EXECUTE can be revoked like for any function.
REVOKE EXECUTE ON FUNCTION public.tick() FROM PUBLIC;
SET ROLE regress_plwasm_user;
SELECT public.tick();
RESET ROLE;
-- The language itself can be taken away from a role.
REVOKE USAGE ON LANGUAGE wasm FROM PUBLIC;
SET ROLE regress_plwasm_user;
CREATE FUNCTION regress_plwasm.no_usage() RETURNS int4 STRICT LANGUAGE wasm AS '(module)';
RESET ROLE;
GRANT USAGE ON LANGUAGE wasm TO PUBLIC;

DROP FUNCTION public.tick(), public.tick_as_owner();
DROP SCHEMA regress_plwasm CASCADE;
DROP ROLE regress_plwasm_user;
