//! The one way plwasm runs SQL on a caller's behalf: with `search_path` pinned to
//! `pg_catalog, pg_temp` for the duration, and, only where PostgreSQL's own checks cannot do
//! the job, as another role.
//!
//! Why: a caller controls its own `search_path` (and a wasm function may carry
//! `SET search_path`), so any unqualified name in SQL that plwasm runs would resolve to the
//! caller's objects, and run them with whatever rights that SQL runs with. Pinning the path
//! makes only `pg_catalog` (and the caller's own temporary schema, last) visible; the SQL
//! passed here also schema-qualifies every function and operator (`OPERATOR(pg_catalog.=)`),
//! so it means the same thing whatever the caller did.
//!
//! The setting lives in its own GUC nest level. The normal path pops it; on error,
//! (sub)transaction abort pops it, and restores the user id, as PostgreSQL does for a
//! function's `SET` clause.

use pgrx::pg_sys::{self, Oid};

/// Who the SQL runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The current user: PostgreSQL checks the caller's own rights.
    Caller,
    /// Another role, in a restricted security context, after the caller's rights were
    /// checked by plwasm.
    Role(Oid),
}

const PINNED_PATH: &std::ffi::CStr = c"pg_catalog, pg_temp";

/// Runs `f` (which runs SQL) with `search_path` pinned, as `run_as`.
pub fn with_pinned_path<R>(run_as: RunAs, f: impl FnOnce() -> R) -> R {
    // SAFETY: NewGUCNestLevel and set_config_option are what fmgr uses for a function's SET
    // clause; the value is a constant valid search_path, so set_config_option cannot fail
    // (elevel 0 would only turn a failure into a return of 0, checked below).
    let nest_level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        let applied = pg_sys::set_config_option(
            c"search_path".as_ptr(),
            PINNED_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
        if applied <= 0 {
            crate::error::raise_internal("could not pin search_path");
        }
        level
    };
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    if let RunAs::Role(role) = run_as {
        // SAFETY: saves the current user and security context and switches to `role`,
        // restricted (no temp objects, no SET ROLE, no deferred changes), for `f` alone. The
        // normal path restores both below; on error, (sub)transaction abort does.
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
            pg_sys::SetUserIdAndSecContext(
                role,
                saved_context
                    | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                    | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
    }
    let result = f();
    if let RunAs::Role(_) = run_as {
        // SAFETY: restores exactly what was saved above.
        unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    }
    // SAFETY: pops the nest level pushed above, restoring the caller's search_path.
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}

/// The current user id.
pub fn current_user() -> Oid {
    // SAFETY: GetUserId only reads a global.
    unsafe { pg_sys::GetUserId() }
}

/// Whether `role` is a superuser (false for a role that does not exist).
pub fn is_superuser(role: Oid) -> bool {
    // SAFETY: superuser_arg reads the role's catalog row through the syscache.
    unsafe { pg_sys::superuser_arg(role) }
}

/// Whether `member` has the privileges of `role` (is it, or a member that inherits).
pub fn has_privs_of_role(member: Oid, role: Oid) -> bool {
    // SAFETY: has_privs_of_role reads role membership through the syscache.
    unsafe { pg_sys::has_privs_of_role(member, role) }
}
