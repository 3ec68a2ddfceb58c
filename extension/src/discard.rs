//! `DISCARD ALL` resets a session, so it also drops the session's wasm instances (their
//! globals and memories): the next call of each function instantiates its module afresh.
//! PostgreSQL has no callback for DISCARD, so plwasm watches utility statements.

use std::ffi::c_char;

use pgrx::pg_sys;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hook once per process (from `_PG_init`, also in the postmaster).
pub fn install() {
    // SAFETY: _PG_init runs once per process on the main thread, before any statement; the
    // previous hook is kept and called first, as every ProcessUtility hook must.
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

#[pgrx::pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    completion: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: pstmt is the valid planned utility statement PostgreSQL hands every hook.
    let discard_all = unsafe {
        let statement = (*pstmt).utilityStmt;
        !statement.is_null()
            && (*statement).type_ == pg_sys::NodeTag::T_DiscardStmt
            && (*(statement as *mut pg_sys::DiscardStmt)).target == pg_sys::DiscardMode::DISCARD_ALL
    };
    // SAFETY: passes PostgreSQL's own arguments on unchanged; PREVIOUS was set once at load.
    unsafe {
        match PREVIOUS {
            Some(previous) => {
                previous(pstmt, query_string, read_only_tree, context, params, query_env, dest, completion)
            }
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                completion,
            ),
        }
    }
    if discard_all {
        crate::entries::discard_instances();
    }
}
