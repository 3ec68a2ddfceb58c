-- Modules stored once and used by many functions (plwasm.install_module and friends).
-- Users read the store; they write it only through plwasm's functions, which check ownership.

CREATE TABLE plwasm.module_store (
    name      text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$'),
    -- A role oid (a name in a dump, so a restore maps it to the role of that name there); a
    -- role renamed keeps its modules, a role dropped and made again does not get them back.
    owner     regrole NOT NULL,
    sha256    bytea NOT NULL CHECK (length(sha256) = 32),
    abi       int NOT NULL,
    wasm      bytea NOT NULL,
    installed timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE plwasm.module_store IS 'wasm modules installed with plwasm.install_module';

CREATE TABLE plwasm.module_grants (
    module  text NOT NULL REFERENCES plwasm.module_store (name) ON DELETE CASCADE ON UPDATE CASCADE,
    -- 0 ('-') stands for PUBLIC.
    grantee regrole NOT NULL,
    PRIMARY KEY (module, grantee)
);
COMMENT ON TABLE plwasm.module_grants IS 'roles allowed to create functions using a module (plwasm.grant_module)';

-- pg_dump dumps the rows of both tables that the dumping role may act for (all of them for a
-- superuser), so a restore carries the modules, also one made by a non-superuser.
SELECT pg_catalog.pg_extension_config_dump('plwasm.module_store',
    'WHERE pg_catalog.pg_has_role(owner::pg_catalog.oid, ''USAGE'')');
SELECT pg_catalog.pg_extension_config_dump('plwasm.module_grants',
    'WHERE pg_catalog.pg_has_role((SELECT s.owner FROM plwasm.module_store s WHERE s.name OPERATOR(pg_catalog.=) module)::pg_catalog.oid, ''USAGE'')');

REVOKE ALL ON plwasm.module_store, plwasm.module_grants FROM PUBLIC;
GRANT SELECT ON plwasm.module_store, plwasm.module_grants TO PUBLIC;
GRANT USAGE ON SCHEMA plwasm TO PUBLIC;

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

CREATE VIEW plwasm.modules AS
SELECT m.name,
       m.owner,
       encode(m.sha256, 'hex') AS sha256,
       length(m.wasm) AS size,
       m.abi,
       plwasm.module_exports(m.wasm) AS exports,
       ARRAY(SELECT p.oid::regprocedure
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
              WHERE l.lanname = 'wasm' AND split_part(btrim(p.prosrc, E' \t\r\n'), ':', 1) = m.name
              ORDER BY p.oid::regprocedure::text) AS functions,
       ARRAY(SELECT CASE WHEN g.grantee = 0 THEN 'public' ELSE g.grantee::text END
               FROM plwasm.module_grants g WHERE g.module = m.name ORDER BY 1) AS granted_to,
       m.installed
  FROM plwasm.module_store m;
COMMENT ON VIEW plwasm.modules IS 'installed wasm modules, their exports and the functions that use them';
GRANT SELECT ON plwasm.modules TO PUBLIC;

-- Deleting the shared compiled code is for superusers (checked inside too).
REVOKE EXECUTE ON FUNCTION plwasm.clear_code_cache() FROM PUBLIC;
