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
