//! The module store's SQL API: `install_module`, `drop_module`, `grant_module`,
//! `revoke_module` and `module_exports`, for modules stored once in `plwasm.module_store` and
//! used by many functions.
//!
//! Users read the store (it is as public as function bodies in `pg_proc`) but write it only
//! through these functions. They run as the caller and check ownership against the caller's
//! own user id; only the write itself runs as the store's owner (through `pinned`), and a
//! write that replaces or deletes a row repeats the owner check in its own statement, so the
//! check and the write are one step. Every change sends a relcache invalidation for the
//! store, so every session drops the function entries built from stored modules at its next
//! statement.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use plwasm_core::body::{check_stored_binary, is_module_name};
use plwasm_core::error::PlWasmError;

use crate::error::{raise, raise_for_module, raise_internal, OrRaise};
use crate::pinned::{self, RunAs};
use crate::store::{fetch, store_oid, StoredModule};
use crate::{compiled, gucs};

/// An internal error (XX000) about module `name`.
fn internal_for_module(name: &str, message: String) -> ! {
    raise_for_module(&PlWasmError::Internal { message }, name)
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
    .unwrap_or_else(|| raise_internal("plwasm.module_store is missing"))
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

/// Refuses a change to the store where PostgreSQL would refuse the write anyway (a hot
/// standby, a read-only transaction), before any work and with a message that says so.
fn refuse_read_only(module: &str) {
    // SAFETY: both read backend state; neither raises.
    let (standby, read_only) = unsafe { (pg_sys::RecoveryInProgress(), pg_sys::XactReadOnly) };
    if standby || read_only {
        raise_for_module(&PlWasmError::StoreReadOnly { module: module.into(), standby }, module);
    }
}

/// On a Citus coordinator (docs/citus.md): runs the same store change on every worker, as
/// the caller, so functions that Citus creates or runs there find the module (and its grants),
/// and a replaced module is what every worker runs at its next statement. `command` is a
/// `format()` string of one `plwasm.*` call over `args`; each worker checks ownership and
/// validates the module itself. Elsewhere (no Citus, a worker, no workers) it does nothing.
fn on_citus_workers(module: &str, command: &str, args: [String; 2]) {
    // SAFETY: a catalog lookup by name; missing_ok reports absence as InvalidOid.
    let citus = unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) };
    if citus == pg_sys::InvalidOid {
        return;
    }
    let [first, second] = args;
    let outcome = pinned::with_pinned_path(RunAs::Caller, || {
        Spi::connect(|client| {
            let coordinator = client
                .select("SELECT pg_catalog.citus_is_coordinator()", None, &[])?
                .first()
                .get::<bool>(1)?
                .unwrap_or(false);
            if !coordinator {
                return Ok(None);
            }
            client
                .select(
                    "SELECT pg_catalog.string_agg(w.nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||)
                            w.nodeport::pg_catalog.text OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) w.result, '; ')
                       FROM pg_catalog.run_command_on_workers(pg_catalog.format($1, $2, $3)) w
                      WHERE NOT w.success",
                    None,
                    &[command.into(), first.into(), second.into()],
                )?
                .first()
                .get::<String>(1)
        })
    })
    .unwrap_or_else(|err| internal_for_module(module, format!("could not reach the Citus workers: {err}")));
    if let Some(failures) = outcome {
        raise_for_module(&PlWasmError::WorkerChangeFailed { module: module.into(), failures }, module);
    }
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
    refuse_read_only(name);
    let (hash, abi) = checked_module(name, wasm);
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
    .unwrap_or_else(|err| internal_for_module(name, format!("could not store it: {err}")));
    if written == 0 {
        raise_for_module(&PlWasmError::NotModuleOwner { module: name.into() }, name);
    }
    on_citus_workers(
        name,
        "SELECT plwasm.install_module(%L, %L::pg_catalog.bytea) IS NOT NULL",
        [name.into(), format!("\\x{}", hex::encode(wasm))],
    );
    invalidate_sessions();
    hex::encode(hash)
}

/// `plwasm.checked_module_abi(name, wasm)`: for the store's insert trigger (rows that
/// `pg_restore` copies in, or any direct INSERT): checks the name and the module as
/// `install_module` does and returns its ABI; the trigger checks ownership and sets the
/// SHA-256. Sessions are told the store changed.
#[pg_extern(volatile, parallel_unsafe)]
fn checked_module_abi(name: &str, wasm: &[u8]) -> i32 {
    let (_, abi) = checked_module(name, wasm);
    invalidate_sessions();
    abi as i32
}

/// What every way into the store checks of a module: its name, its size and that it is a
/// module plwasm runs (compiled, and kept for later calls). Returns its SHA-256 and ABI.
fn checked_module(name: &str, wasm: &[u8]) -> ([u8; 32], u32) {
    if !is_module_name(name) {
        raise_for_module(&PlWasmError::BadModuleName { module: name.into() }, name);
    }
    let hash = check_stored_binary(wasm, gucs::max_module_size()).or_raise_module(name);
    let abi = compiled::check_stored_module(wasm, hash).or_raise_module(name);
    (hash, abi)
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
    .unwrap_or_else(|err| internal_for_module(name, format!("could not list the functions using it: {err}")))
}

/// `plwasm.drop_module(name, cascade => false)`: removes a module; refuses while functions
/// use it, unless `cascade`, which drops those functions first (as the caller, so
/// PostgreSQL checks that the caller may drop each).
#[pg_extern(volatile, parallel_unsafe)]
fn drop_module(name: &str, cascade: default!(bool, false)) {
    refuse_read_only(name);
    check_owned(name);
    let users = functions_using(name);
    if !users.is_empty() {
        if !cascade {
            raise_for_module(&PlWasmError::ModuleInUse { module: name.into(), functions: users }, name);
        }
        for function in &users {
            pgrx::notice!("drop cascades to function {function}");
            pinned::with_pinned_path(RunAs::Caller, || Spi::run(&format!("DROP FUNCTION {function}")))
                .unwrap_or_else(|err| internal_for_module(name, format!("could not drop function {function}: {err}")));
        }
    }
    let (me, superuser) = caller_args();
    let deleted = write_as_store_owner(
        "DELETE FROM plwasm.module_store m WHERE m.name OPERATOR(pg_catalog.=) $1
            AND ($3 OR pg_catalog.pg_has_role($2, m.owner::pg_catalog.oid, 'USAGE'))",
        &[name.into(), me.into(), superuser.into()],
    )
    .unwrap_or_else(|err| internal_for_module(name, format!("could not drop it: {err}")));
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
    let name = std::ffi::CString::new(role).unwrap_or_else(|_| raise_internal("role name contains a NUL byte"));
    // SAFETY: get_role_oid with missing_ok reads the syscache and returns InvalidOid if absent.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        raise(&PlWasmError::RoleNotFound { role: role.into() }, role);
    }
    oid
}

/// `plwasm.grant_module(module, role)`: lets `role` (or `public`) create and run functions
/// that use the caller's module.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_module(module: &str, role: &str) {
    refuse_read_only(module);
    check_owned(module);
    let grantee = grantee_oid(role);
    write_as_store_owner(
        "INSERT INTO plwasm.module_grants (module, grantee)
              VALUES ($1, $2::pg_catalog.oid::pg_catalog.regrole) ON CONFLICT DO NOTHING",
        &[module.into(), oid_number(grantee).into()],
    )
    .unwrap_or_else(|err| internal_for_module(module, format!("could not grant it: {err}")));
    on_citus_workers(module, "SELECT plwasm.grant_module(%L, %L)", [module.into(), role.into()]);
    invalidate_sessions();
}

/// `plwasm.revoke_module(module, role)`: takes a grant back. USAGE is checked for a function's
/// owner whenever a session loads the function, so functions of `role` that use the module
/// stop working at their next statement.
#[pg_extern(volatile, parallel_unsafe)]
fn revoke_module(module: &str, role: &str) {
    refuse_read_only(module);
    check_owned(module);
    let grantee = grantee_oid(role);
    write_as_store_owner(
        "DELETE FROM plwasm.module_grants g WHERE g.module OPERATOR(pg_catalog.=) $1
            AND g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid",
        &[module.into(), oid_number(grantee).into()],
    )
    .unwrap_or_else(|err| internal_for_module(module, format!("could not revoke it: {err}")));
    on_citus_workers(module, "SELECT plwasm.revoke_module(%L, %L)", [module.into(), role.into()]);
    invalidate_sessions();
}

/// `plwasm.module_exports(wasm)`: the exported functions of a module with their wasm
/// signatures, or NULL when the bytes do not compile. Used by the `plwasm.modules` view.
#[pg_extern(stable, parallel_safe)]
fn module_exports(wasm: &[u8]) -> Option<Vec<String>> {
    compiled::describe_exports(wasm)
}
