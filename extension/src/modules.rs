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
use crate::{cache, gucs};

/// The oid of `plwasm.module_store` once this backend has looked it up (0 before).
static MODULE_STORE_OID: AtomicU32 = AtomicU32::new(0);

/// Whether a relcache invalidation for `relid` concerns the module store.
pub fn is_module_store(relid: pg_sys::Oid) -> bool {
    let known = MODULE_STORE_OID.load(Ordering::Relaxed);
    known != 0 && (relid == pg_sys::InvalidOid || relid.to_u32() == known)
}

/// A stored module as the current role sees it.
pub struct StoredModule {
    pub hash: [u8; 32],
    pub owner: String,
    /// The current role owns it, is a superuser, or was granted it.
    pub usable: bool,
    /// Only when asked for.
    pub wasm: Option<Vec<u8>>,
}

const FETCH: &str = "
SELECT m.sha256, m.owner::text,
       m.owner = current_user
         OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
         OR EXISTS (SELECT 1 FROM plwasm.module_grants g
                     WHERE g.module = m.name
                       AND (g.grantee = 'public'
                            OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.grantee)
                                AND pg_catalog.pg_has_role(current_user, g.grantee, 'USAGE')))),
       CASE WHEN $2 THEN m.wasm END,
       'plwasm.module_store'::regclass::oid
  FROM plwasm.module_store m
 WHERE m.name = $1";

/// Reads module `name`; its bytes only when `with_bytes`.
///
/// Runs on the call path, also in parallel workers and in a leader whose transaction has
/// written (CREATE TABLE AS, INSERT ... SELECT). pgrx's SPI treats such a transaction as
/// read-write and increments the command counter, which parallel mode forbids; this read is
/// a plain SELECT, so it goes to SPI directly as read-only.
pub fn fetch(name: &str, with_bytes: bool) -> Result<Option<StoredModule>, PlWasmError> {
    let query = std::ffi::CString::new(FETCH).expect("no NUL in the query");
    let name_text = std::ffi::CString::new(name).map_err(|_| PlWasmError::BadModuleName { module: name.into() })?;
    // SAFETY: connects SPI, runs one read-only query with two arguments of the declared types,
    // copies every value it needs into owned Rust values while connected, and disconnects.
    // An error inside SPI raises (pgrx turns it into a panic that unwinds to the guard), and
    // transaction abort cleans up the SPI connection.
    unsafe {
        if pg_sys::SPI_connect() < 0 {
            return Err(spi_error("SPI_connect failed"));
        }
        let mut types = [pg_sys::TEXTOID, pg_sys::BOOLOID];
        let mut values = [
            pg_sys::Datum::from(pg_sys::cstring_to_text(name_text.as_ptr())),
            pg_sys::Datum::from(with_bytes),
        ];
        let nulls = [b' ' as std::ffi::c_char, b' ' as std::ffi::c_char];
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            2,
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
                (datum, false) => String::from_datum(datum, false).unwrap_or_default(),
                _ => String::new(),
            };
            let usable = matches!(column(3), (datum, false) if bool::from_datum(datum, false).unwrap_or(false));
            let wasm = bytes_of(column(4));
            if let (oid, false) = column(5) {
                MODULE_STORE_OID.store(oid.value() as u32, Ordering::Relaxed);
            }
            Ok(Some(StoredModule { hash, owner, usable, wasm }))
        };
        pg_sys::SPI_finish();
        result
    }
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

fn current_role() -> String {
    Spi::get_one::<String>("SELECT current_user::text").ok().flatten().unwrap_or_default()
}

fn is_superuser() -> bool {
    // SAFETY: superuser() reads the current user's catalog row; it raises only on catalog
    // corruption, which the guarded call turns into an ERROR.
    unsafe { pg_sys::superuser() }
}

/// Refuses unless `role` owns `module` (named `name`) or the current role is a superuser.
fn check_owner(name: &str, module: &StoredModule, role: &str) {
    if module.owner != role && !is_superuser() {
        raise_for_module(&PlWasmError::NotModuleOwner { module: name.into() }, name);
    }
}

/// Refuses unless module `name` exists and the current role owns it (or is a superuser).
fn check_owned(name: &str) {
    let Some(module) = fetch(name, false).or_raise_module(name) else {
        raise_for_module(&PlWasmError::ModuleNotFound { module: name.into() }, name)
    };
    check_owner(name, &module, &current_role());
}

/// Runs one write as the owner of `plwasm.module_store`, after the caller's rights were checked.
fn write_as_store_owner(query: &str, args: &[DatumWithOid<'_>]) -> Result<(), pgrx::spi::Error> {
    let owner: pg_sys::Oid =
        Spi::get_one("SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'plwasm.module_store'::regclass")
            .ok()
            .flatten()
            .unwrap_or_else(|| pgrx::error!("plwasm.module_store is missing"));
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: saves the current user and security context and switches to the store's owner,
    // restricted (no temp objects, no deferred changes), for the write alone. The normal path
    // restores both below; on error, transaction or subtransaction abort restores them.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let result = Spi::run_with_args(query, args);
    // SAFETY: restores exactly what was saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Tells every session that stored modules changed (at commit).
fn invalidate_sessions() {
    let relid: Option<pg_sys::Oid> = Spi::get_one("SELECT 'plwasm.module_store'::regclass::oid").ok().flatten();
    if let Some(relid) = relid {
        MODULE_STORE_OID.store(relid.to_u32(), Ordering::Relaxed);
        // SAFETY: queues a relcache invalidation for an existing relation, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    let me = current_role();
    if let Some(existing) = fetch(name, false).or_raise_module(name) {
        check_owner(name, &existing, &me);
    }
    write_as_store_owner(
        "INSERT INTO plwasm.module_store (name, owner, sha256, abi, wasm) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE
            SET sha256 = EXCLUDED.sha256, abi = EXCLUDED.abi, wasm = EXCLUDED.wasm, installed = now()",
        &[name.into(), me.as_str().into(), hash.to_vec().into(), (abi as i32).into(), wasm.into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not store wasm module \"{name}\": {err}"));
    invalidate_sessions();
    hex(&hash)
}

/// The functions whose body names module `name`, as `regprocedure` text.
fn functions_using(name: &str) -> Vec<String> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang
              WHERE l.lanname = 'wasm' AND split_part(btrim(p.prosrc, E' \\t\\r\\n'), ':', 1) = $1
              ORDER BY 1",
            None,
            &[name.into()],
        )?;
        rows.map(|row| row.get::<String>(1).map(Option::unwrap_or_default)).collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|err| pgrx::error!("could not list functions using wasm module \"{name}\": {err}"))
}

/// `plwasm.drop_module(name, cascade => false)`: removes a module; refuses while functions
/// use it, unless `cascade`, which drops those functions first.
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
            // regprocedure's text form is already quoted and schema-qualified as needed.
            Spi::run(&format!("DROP FUNCTION {function}"))
                .unwrap_or_else(|err| pgrx::error!("could not drop function {function}: {err}"));
        }
    }
    write_as_store_owner("DELETE FROM plwasm.module_store WHERE name = $1", &[name.into()])
        .unwrap_or_else(|err| pgrx::error!("could not drop wasm module \"{name}\": {err}"));
    invalidate_sessions();
}

/// `plwasm.grant_module(module, role)`: lets `role` (or `public`) create functions that use
/// the caller's module.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_module(module: &str, role: &str) {
    check_owned(module);
    let exists = role == "public"
        || Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[role.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
    if !exists {
        pgrx::ereport!(ERROR, PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("role \"{role}\" does not exist"));
    }
    write_as_store_owner(
        "INSERT INTO plwasm.module_grants (module, grantee) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[module.into(), role.into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not grant wasm module \"{module}\": {err}"));
}

/// `plwasm.revoke_module(module, role)`: takes a grant back. Functions already created keep
/// working: USAGE is checked when a function is created or replaced.
#[pg_extern(volatile, parallel_unsafe)]
fn revoke_module(module: &str, role: &str) {
    check_owned(module);
    write_as_store_owner(
        "DELETE FROM plwasm.module_grants WHERE module = $1 AND grantee = $2",
        &[module.into(), role.into()],
    )
    .unwrap_or_else(|err| pgrx::error!("could not revoke wasm module \"{module}\": {err}"));
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

/// `plwasm.create_functions(module, schema => NULL)`: creates (or replaces) every SQL function
/// the module declares in its `plwasm.signatures` section (the Rust guest SDK writes it), in
/// `schema` or the current schema. Runs as the caller, so USAGE on the module and CREATE on
/// the schema are checked as for CREATE FUNCTION. Returns the functions created.
#[pg_extern(volatile, parallel_unsafe)]
fn create_functions(module: &str, schema: default!(Option<&str>, "NULL")) -> SetOfIterator<'static, String> {
    let Some(stored) = fetch(module, true).or_raise_module(module) else {
        raise_for_module(&PlWasmError::ModuleNotFound { module: module.into() }, module)
    };
    if !stored.usable {
        raise_for_module(&PlWasmError::ModulePermissionDenied { module: module.into() }, module);
    }
    let wasm = stored.wasm.unwrap_or_default();
    let mut declared = plwasm_core::declared::declared_functions(&wasm).or_raise_module(module);
    declared.sort_by(|a, b| a.identity().cmp(&b.identity()));
    if declared.is_empty() {
        raise_for_module(&PlWasmError::NothingDeclared { module: module.into() }, module);
    }
    let schema = schema.map(quote_identifier);
    let mut created = Vec::with_capacity(declared.len());
    for function in &declared {
        let statements = if function.aggregate.is_some() {
            function.aggregate_statements(schema.as_deref(), module, quote_identifier)
        } else {
            let body = format!("{module}:{}", function.export);
            vec![function.create_statement(schema.as_deref(), &body, quote_identifier)]
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
