--
-- Installing plwasm creates the trusted language wasm and schema plwasm.
--
CREATE EXTENSION plwasm;
SELECT extname, extnamespace::regnamespace AS schema FROM pg_extension WHERE extname = 'plwasm';
SELECT lanname, lanpltrusted, lanplcallfoid::regproc AS handler, lanvalidator::regproc AS validator
  FROM pg_language WHERE lanname = 'wasm';
-- The limits, their defaults, units, and who may change them.
SELECT name, setting, unit, context, min_val, max_val
  FROM pg_settings WHERE name LIKE 'plwasm.%' ORDER BY name;
-- Used by later tests to open second sessions.
CREATE EXTENSION dblink;
