-- plwasm 0.1.0 -> 0.2.0: wasm aggregates keep their state in plwasm.state instead of
-- internal, so any role can CREATE AGGREGATE with wasm support functions and dump and restore
-- them; plwasm.create_aggregate, which created internal-state aggregates as the bootstrap
-- superuser, is gone.
--
-- Aggregates made with 0.1.0 keep their support functions, which take internal; calling them
-- raises an error that says to re-create them (plwasm.create_functions(module, replace =>
-- true) makes the new ones; DROP the old aggregate first). docs/migration.md has the steps.

DROP FUNCTION plwasm.create_aggregate(text, regprocedure, regprocedure, regprocedure, regprocedure, regprocedure, regprocedure, boolean);
DROP FUNCTION plwasm.create_aggregate_by_oid(text, oid, oid, oid, oid, oid, oid, boolean);

-- plwasm.state: the transition state of every wasm aggregate. In memory it is an expanded
-- object holding a handle into the guest; stored, copied or sent to another process it is
-- flat: a header (format version, the module's SHA-256, the aggregate's name) and the
-- guest's serialized state. Text form: \x and the flat bytes in hex. See extension/src/state.rs.
CREATE TYPE plwasm.state;
CREATE FUNCTION plwasm.state_in(cstring) RETURNS plwasm.state
    AS 'MODULE_PATHNAME', 'plwasm_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION plwasm.state_out(plwasm.state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'plwasm_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION plwasm.state_recv(internal) RETURNS plwasm.state
    AS 'MODULE_PATHNAME', 'plwasm_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION plwasm.state_send(plwasm.state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'plwasm_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE plwasm.state (
    INPUT = plwasm.state_in,
    OUTPUT = plwasm.state_out,
    RECEIVE = plwasm.state_recv,
    SEND = plwasm.state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE plwasm.state IS 'the state of a wasm aggregate: a handle into the guest in memory, the guest''s serialized state when flat';

-- The store's insert trigger checks modules through this (as in plwasm--0.2.0.sql).
CREATE FUNCTION plwasm.checked_module_abi("name" TEXT, "wasm" bytea) RETURNS INT
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'checked_module_abi_wrapper';

-- pg_dump dumps the rows of both tables that the dumping role may act for (all of them for a
-- superuser), so a restore carries the modules, also one made by a non-superuser.
SELECT pg_catalog.pg_extension_config_dump('plwasm.module_store',
    'WHERE pg_catalog.pg_has_role(owner::pg_catalog.oid, ''USAGE'')');
SELECT pg_catalog.pg_extension_config_dump('plwasm.module_grants',
    'WHERE pg_catalog.pg_has_role((SELECT s.owner FROM plwasm.module_store s WHERE s.name OPERATOR(pg_catalog.=) module)::pg_catalog.oid, ''USAGE'')');

-- Rows inserted directly (pg_restore's COPY, as whoever restores) are checked as
-- install_module and grant_module check theirs: the inserting role must act for the module's
-- owner; a module is validated, its ABI and SHA-256 are computed, not taken from the row.
-- Updates and deletes stay with plwasm's functions.
CREATE FUNCTION plwasm.module_store_insert() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(NEW.owner::pg_catalog.oid, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to store wasm module "%" for role %', NEW.name, NEW.owner
            USING ERRCODE = '42501', HINT = 'Only a member of the owner role may add its modules.';
    END IF;
    NEW.abi := plwasm.checked_module_abi(NEW.name, NEW.wasm);
    NEW.sha256 := pg_catalog.sha256(NEW.wasm);
    RETURN NEW;
END $$;
CREATE TRIGGER checked_insert BEFORE INSERT ON plwasm.module_store
    FOR EACH ROW EXECUTE FUNCTION plwasm.module_store_insert();

CREATE FUNCTION plwasm.module_grants_insert() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    module_owner pg_catalog.oid;
BEGIN
    SELECT s.owner::pg_catalog.oid INTO module_owner FROM plwasm.module_store s
     WHERE s.name OPERATOR(pg_catalog.=) NEW.module;
    IF module_owner IS NULL OR NOT pg_catalog.pg_has_role(module_owner, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to grant wasm module "%"', NEW.module
            USING ERRCODE = '42501', HINT = 'Only a member of the module''s owner role may grant it.';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER checked_insert BEFORE INSERT ON plwasm.module_grants
    FOR EACH ROW EXECUTE FUNCTION plwasm.module_grants_insert();

GRANT INSERT ON plwasm.module_store, plwasm.module_grants TO PUBLIC;

