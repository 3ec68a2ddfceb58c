//! Modules stored once in `plwasm.module_store` and used by many functions.
//!
//! Users read the store (it is as public as function bodies in `pg_proc`) but write it only
//! through these functions. They run as the caller, check ownership against the caller's
//! own user id, and only then switch to the store's owner for the write itself. Every change
//! sends a relcache invalidation for the store, so every session drops the function entries
//! built from stored modules at its next statement.

use std::sync::atomic::{AtomicU32, Ordering};

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use plwasm_core::body::{check_stored_binary, is_module_name};
use plwasm_core::error::PlWasmError;

use crate::error::{raise_for_module, OrRaise};
use crate::pinned::{self, RunAs};
use crate::{cache, gucs};

/// The oid of `plwasm.module_store` once this backend has looked it up (0 before).
static MODULE_STORE_OID: AtomicU32 = AtomicU32::new(0);

/// Whether a relcache invalidation for `relid` concerns the module store.
pub fn is_module_store(relid: pg_sys::Oid) -> bool {
    let known = MODULE_STORE_OID.load(Ordering::Relaxed);
    known != 0 && (relid == pg_sys::InvalidOid || relid.to_u32() == known)
}

/// A stored module as a given role sees it.
pub struct StoredModule {
    pub hash: [u8; 32],
    pub owner: pg_sys::Oid,
    /// The role asked about owns it, is a superuser, or was granted it.
    pub usable: bool,
    /// Only when asked for.
    pub wasm: Option<Vec<u8>>,
}

/// `$1` name, `$2` with bytes, `$3` the role whose USAGE is in question. Every function and
/// operator is qualified, and it runs with `search_path` pinned (see `pinned`).
const FETCH: &str = "
SELECT m.sha256, m.owner::pg_catalog.oid,
       m.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $3
         OR EXISTS (SELECT 1 FROM plwasm.module_grants g
                     WHERE g.module OPERATOR(pg_catalog.=) m.name
                       AND CASE WHEN g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN true
                                WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                                                  WHERE r.oid OPERATOR(pg_catalog.=) g.grantee::pg_catalog.oid) THEN false
                                ELSE pg_catalog.pg_has_role($3, g.grantee::pg_catalog.oid, 'USAGE') END),
       CASE WHEN $2 THEN m.wasm END,
       'plwasm.module_store'::pg_catalog.regclass::pg_catalog.oid
  FROM plwasm.module_store m
 WHERE m.name OPERATOR(pg_catalog.=) $1";

/// Reads module `name` as `role` may use it; its bytes only when `with_bytes`.
///
/// Runs on the call path, also in parallel workers and in a leader whose transaction has
/// written (CREATE TABLE AS, INSERT ... SELECT). pgrx's SPI treats such a transaction as
/// read-write and increments the command counter, which parallel mode forbids; this read is
/// a plain SELECT, so it goes to SPI directly as read-only.
pub fn fetch(name: &str, with_bytes: bool, role: pg_sys::Oid) -> Result<Option<StoredModule>, PlWasmError> {
    let query = std::ffi::CString::new(FETCH).expect("no NUL in the query");
    let name_text = std::ffi::CString::new(name).map_err(|_| PlWasmError::BadModuleName { module: name.into() })?;
    let superuser = pinned::is_superuser(role);
    // SAFETY: connects SPI, runs one read-only query with three arguments of the declared
    // types, copies every value it needs into owned Rust values while connected, and
    // disconnects. An error inside SPI raises (pgrx turns it into a panic that unwinds to the
    // guard), and transaction abort cleans up the SPI connection and the pinned path.
    pinned::with_pinned_path(RunAs::Caller, || unsafe {
        if pg_sys::SPI_connect() < 0 {
            return Err(spi_error("SPI_connect failed"));
        }
        let mut types = [pg_sys::TEXTOID, pg_sys::BOOLOID, pg_sys::OIDOID];
        let mut values = [
            pg_sys::Datum::from(pg_sys::cstring_to_text(name_text.as_ptr())),
            pg_sys::Datum::from(with_bytes),
            pg_sys::Datum::from(role),
        ];
        let nulls = [b' ' as std::ffi::c_char; 3];
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            3,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            1,
        );
        let result = if status != pg_sys::SPI_OK_SELECT as i32 {
            Err(spi_error(&format!("reading plwasm.module_store failed (SPI status {status})")))
        } else if pg_sys::SPI_processed == 0 {
            Ok(None)
        } else {
            let table = pg_sys::SPI_tuptable;
            let tuple = *(*table).vals;
            let desc = (*table).tupdesc;
            let column = |n: i32| {
                let mut is_null = false;
                let datum = pg_sys::SPI_getbinval(tuple, desc, n, &mut is_null);
                (datum, is_null)
            };
            let hash_bytes: Vec<u8> = bytes_of(column(1)).unwrap_or_default();
            let mut hash = [0u8; 32];
            if hash_bytes.len() == 32 {
                hash.copy_from_slice(&hash_bytes);
            }
            let owner = match column(2) {
                (datum, false) => pg_sys::Oid::from(datum.value() as u32),
                _ => pg_sys::InvalidOid,
            };
            let usable =
                superuser || matches!(column(3), (datum, false) if bool::from_datum(datum, false).unwrap_or(false));
            let wasm = bytes_of(column(4));
            if let (oid, false) = column(5) {
                MODULE_STORE_OID.store(oid.value() as u32, Ordering::Relaxed);
            }
            Ok(Some(StoredModule { hash, owner, usable, wasm }))
        };
        pg_sys::SPI_finish();
        result
    })
}

/// A bytea column's bytes, copied.
///
/// # Safety
/// `datum` must be a bytea Datum valid for now (or `is_null`).
unsafe fn bytes_of((datum, is_null): (pg_sys::Datum, bool)) -> Option<Vec<u8>> {
    // SAFETY: the caller's contract; from_datum detoasts and copies.
    unsafe { <&[u8]>::from_datum(datum, is_null).map(<[u8]>::to_vec) }
}

fn spi_error(message: &str) -> PlWasmError {
    PlWasmError::Internal { message: message.to_string() }
}

/// Whether the current user may change `module`: it owns it (has its owner's privileges) or
/// is a superuser.
fn may_change(module: &StoredModule) -> bool {
    let me = pinned::current_user();
    pinned::is_superuser(me) || pinned::has_privs_of_role(me, module.owner)
}

/// Refuses unless module `name` exists and the current role owns it (or is a superuser).
fn check_owned(name: &str) {
    let Some(module) = fetch(name, false, pinned::current_user()).or_raise_module(name) else {
        raise_for_module(&PlWasmError::ModuleNotFound { module: name.into() }, name)
    };
    if !may_change(&module) {
        raise_for_module(&PlWasmError::NotModuleOwner { module: name.into() }, name);
    }
}

/// The owner of `plwasm.module_store`, as whom the store is written.
fn store_owner() -> pg_sys::Oid {
    let relid = store_oid();
    pinned::with_pinned_path(RunAs::Caller, || {
        Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
            &[relid.into()],
        )
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| pgrx::error!("plwasm.module_store is missing"))
}

/// Runs one write as the owner of `plwasm.module_store`, after the caller's rights were
/// checked; returns the number of rows it wrote. Owner checks that must be atomic with the
/// write are part of the statement itself.
fn write_as_store_owner(query: &str, args: &[DatumWithOid<'_>]) -> Result<usize, pgrx::spi::Error> {
    let owner = store_owner();
    pinned::with_pinned_path(RunAs::Role(owner), || {
        Spi::connect_mut(|client| client.update(query, None, args).map(|table| table.len()))
    })
}

/// The caller's user id and whether it is a superuser, as arguments of a store write.
fn caller_args() -> (pg_sys::Oid, bool) {
    let me = pinned::current_user();
    (me, pinned::is_superuser(me))
}

/// The oid of `plwasm.module_store`, looked up by name in the extension's own schema.
fn store_oid() -> pg_sys::Oid {
    // SAFETY: both lookups read the syscache; get_namespace_oid raises if the extension's
    // schema is gone, which the guarded call turns into an ERROR.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"plwasm".as_ptr(), false);
        pg_sys::get_relname_relid(c"module_store".as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        pgrx::error!("plwasm.module_store is missing");
    }
    MODULE_STORE_OID.store(relid.to_u32(), Ordering::Relaxed);
    relid
}

/// Tells every session that stored modules changed (at commit).
fn invalidate_sessions() {
    // SAFETY: queues a relcache invalidation for an existing relation, sent at commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(store_oid()) };
}

/// `plwasm.install_module(name, wasm)`: validates and stores a module, or replaces the
/// caller's module of that name. Returns the module's SHA-256 in hex.
#[pg_extern(volatile, parallel_unsafe)]
fn install_module(name: &str, wasm: &[u8]) -> String {
    if !is_module_name(name) {
        raise_for_module(&PlWasmError::BadModuleName { module: name.into() }, name);
    }
    let hash = check_stored_binary(wasm, gucs::max_module_size()).or_raise_module(name);
    let abi = cache::check_stored_module(wasm, hash).or_raise_module(name);
    let (me, superuser) = caller_args();
    // One statement: a new name becomes the caller's; an existing row is replaced only if the
    // caller owns it. ON CONFLICT waits for a concurrent first install of the same name and
    // then applies the owner condition to the committed row.
    let written = write_as_store_owner(
        "INSERT INTO plwasm.module_store AS m (name, owner, sha256, abi, wasm)
              VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE
            SET sha256 = EXCLUDED.sha256, abi = EXCLUDED.abi, wasm = EXCLUDED.wasm, installed = pg_catalog.now()
          WHERE $6 OR pg_catalog.pg_has_role($2, m.owner::pg_catalog.oid, 'USAGE')
         RETURNING 1",
        &[name.into(), me.into(), hash.to_vec().into(), (abi as i32).into(), wasm.into(), superuser.into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not store wasm module \"{name}\": {err}"));
    if written == 0 {
        raise_for_module(&PlWasmError::NotModuleOwner { module: name.into() }, name);
    }
    invalidate_sessions();
    hex::encode(hash)
}

/// The functions whose body names module `name`, as `regprocedure` text (qualified: the
/// query runs with `search_path` pinned).
fn functions_using(name: &str) -> Vec<String> {
    pinned::with_pinned_path(RunAs::Caller, || {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text FROM pg_catalog.pg_proc p
                   JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
                  WHERE l.lanname OPERATOR(pg_catalog.=) 'wasm'
                    AND pg_catalog.split_part(pg_catalog.btrim(p.prosrc, E' \\t\\r\\n'), ':', 1) OPERATOR(pg_catalog.=) $1
                  ORDER BY 1",
                None,
                &[name.into()],
            )?;
            rows.map(|row| row.get::<String>(1).map(Option::unwrap_or_default)).collect::<Result<Vec<_>, _>>()
        })
    })
    .unwrap_or_else(|err| pgrx::error!("could not list functions using wasm module \"{name}\": {err}"))
}

/// `plwasm.drop_module(name, cascade => false)`: removes a module; refuses while functions
/// use it, unless `cascade`, which drops those functions first (as the caller, so
/// PostgreSQL checks that the caller may drop each).
#[pg_extern(volatile, parallel_unsafe)]
fn drop_module(name: &str, cascade: default!(bool, false)) {
    check_owned(name);
    let users = functions_using(name);
    if !users.is_empty() {
        if !cascade {
            raise_for_module(&PlWasmError::ModuleInUse { module: name.into(), functions: users }, name);
        }
        for function in &users {
            pgrx::notice!("drop cascades to function {function}");
            pinned::with_pinned_path(RunAs::Caller, || Spi::run(&format!("DROP FUNCTION {function}")))
                .unwrap_or_else(|err| pgrx::error!("could not drop function {function}: {err}"));
        }
    }
    let (me, superuser) = caller_args();
    let deleted = write_as_store_owner(
        "DELETE FROM plwasm.module_store m WHERE m.name OPERATOR(pg_catalog.=) $1
            AND ($3 OR pg_catalog.pg_has_role($2, m.owner::pg_catalog.oid, 'USAGE'))",
        &[name.into(), me.into(), superuser.into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not drop wasm module \"{name}\": {err}"));
    if deleted == 0 {
        raise_for_module(&PlWasmError::NotModuleOwner { module: name.into() }, name);
    }
    invalidate_sessions();
}

/// An oid as a bigint argument: pgrx passes `InvalidOid` (PUBLIC's 0) as NULL.
fn oid_number(oid: pg_sys::Oid) -> i64 {
    i64::from(oid.to_u32())
}

/// A grantee as stored: 0 for `public`, else the role's oid (42704 if there is none).
fn grantee_oid(role: &str) -> pg_sys::Oid {
    if role == "public" {
        return pg_sys::InvalidOid;
    }
    let name = std::ffi::CString::new(role).unwrap_or_else(|_| pgrx::error!("role name contains a NUL byte"));
    // SAFETY: get_role_oid with missing_ok reads the syscache and returns InvalidOid if absent.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        pgrx::ereport!(ERROR, PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("role \"{role}\" does not exist"));
    }
    oid
}

/// `plwasm.grant_module(module, role)`: lets `role` (or `public`) create and run functions
/// that use the caller's module.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_module(module: &str, role: &str) {
    check_owned(module);
    let grantee = grantee_oid(role);
    write_as_store_owner(
        "INSERT INTO plwasm.module_grants (module, grantee)
              VALUES ($1, $2::pg_catalog.oid::pg_catalog.regrole) ON CONFLICT DO NOTHING",
        &[module.into(), oid_number(grantee).into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not grant wasm module \"{module}\": {err}"));
    invalidate_sessions();
}

/// `plwasm.revoke_module(module, role)`: takes a grant back. USAGE is checked for a function's
/// owner whenever a session loads the function, so functions of `role` that use the module
/// stop working at their next statement.
#[pg_extern(volatile, parallel_unsafe)]
fn revoke_module(module: &str, role: &str) {
    check_owned(module);
    let grantee = grantee_oid(role);
    write_as_store_owner(
        "DELETE FROM plwasm.module_grants g WHERE g.module OPERATOR(pg_catalog.=) $1
            AND g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid",
        &[module.into(), oid_number(grantee).into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not revoke wasm module \"{module}\": {err}"));
    invalidate_sessions();
}

/// `plwasm.module_exports(wasm)`: the exported functions of a module with their wasm
/// signatures, or NULL when the bytes do not compile. Used by the `plwasm.modules` view.
#[pg_extern(stable, parallel_safe)]
fn module_exports(wasm: &[u8]) -> Option<Vec<String>> {
    cache::describe_exports(wasm)
}

/// PostgreSQL's own identifier quoting (adds quotes only where needed).
pub(crate) fn quote_identifier(name: &str) -> String {
    let cstring = std::ffi::CString::new(name).unwrap_or_else(|_| pgrx::error!("identifier contains a NUL byte"));
    // SAFETY: quote_identifier reads a NUL-terminated string and returns either it or a new
    // palloc'd one; we copy the result before the CString is dropped.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::quote_identifier(cstring.as_ptr())).to_string_lossy().into_owned() }
}

/// `plwasm.create_functions(module, schema => NULL, replace => false)`: creates every SQL
/// function the module declares in its `plwasm.signatures` section (the Rust guest SDK writes
/// it), in `schema` or the current schema. A function that exists already is an error
/// (42723) unless `replace`, which replaces it (PostgreSQL then checks that the caller owns
/// it). Runs as the caller, so USAGE on the module and CREATE on the schema are checked as
/// for CREATE FUNCTION. Returns the functions created.
#[pg_extern(volatile, parallel_unsafe)]
fn create_functions(
    module: &str,
    schema: default!(Option<&str>, "NULL"),
    replace: default!(bool, false),
) -> SetOfIterator<'static, String> {
    let Some(stored) = fetch(module, true, pinned::current_user()).or_raise_module(module) else {
        raise_for_module(&PlWasmError::ModuleNotFound { module: module.into() }, module)
    };
    if !stored.usable {
        raise_for_module(&PlWasmError::ModulePermissionDenied { module: module.into() }, module);
    }
    let wasm = stored.wasm.unwrap_or_default();
    let mut declared = plwasm_core::declared::declared_functions(&wasm).or_raise_module(module);
    declared.sort_by_key(|a| a.identity());
    if declared.is_empty() {
        raise_for_module(&PlWasmError::NothingDeclared { module: module.into() }, module);
    }
    let schema = schema.map(quote_identifier);
    let mut created = Vec::with_capacity(declared.len());
    for function in &declared {
        let statements = if function.aggregate.is_some() {
            function.aggregate_statements(schema.as_deref(), module, replace, quote_identifier)
        } else {
            let body = format!("{module}:{}", function.export);
            vec![function.create_statement(schema.as_deref(), &body, replace, quote_identifier)]
        };
        for statement in statements {
            Spi::run(&statement).unwrap_or_else(|err| pgrx::error!("could not create {}: {err}", function.identity()));
        }
        created.push(match &schema {
            Some(schema) => format!("{schema}.{}", function.identity()),
            None => function.identity(),
        });
    }
    SetOfIterator::new(created)
}
