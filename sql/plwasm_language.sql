-- The wasm procedural language. Hand-written because pgrx cannot declare a language handler.
-- CREATE EXTENSION puts these functions in schema plwasm (the control file's schema).

CREATE FUNCTION plwasm_call_handler() RETURNS language_handler
    AS 'MODULE_PATHNAME', 'plwasm_call_handler' LANGUAGE C;

CREATE FUNCTION plwasm_validator(oid) RETURNS void
    AS 'MODULE_PATHNAME', 'plwasm_validator' LANGUAGE C STRICT;

-- TRUSTED: any role with USAGE (granted to PUBLIC by default) may create wasm functions;
-- modules run sandboxed with no host access, under superuser-only limits.
CREATE TRUSTED LANGUAGE wasm
    HANDLER plwasm_call_handler
    VALIDATOR plwasm_validator;

COMMENT ON LANGUAGE wasm IS 'WebAssembly modules, sandboxed by plwasm';

-- plwasm.state: the transition state of every wasm aggregate. In memory it is an expanded
-- object holding a handle into the guest; stored, copied or sent to another process it is
-- flat: a header (format version, the module's SHA-256, the aggregate's name) and the
-- guest's serialized state. Text form: \x and the flat bytes in hex. See extension/src/state.rs.
CREATE TYPE state;
CREATE FUNCTION state_in(cstring) RETURNS state
    AS 'MODULE_PATHNAME', 'plwasm_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION state_out(state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'plwasm_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION state_recv(internal) RETURNS state
    AS 'MODULE_PATHNAME', 'plwasm_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION state_send(state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'plwasm_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE state (
    INPUT = state_in,
    OUTPUT = state_out,
    RECEIVE = state_recv,
    SEND = state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE state IS 'the state of a wasm aggregate: a handle into the guest in memory, the guest''s serialized state when flat';
