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
