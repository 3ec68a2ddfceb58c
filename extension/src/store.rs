//! The module store's read side: what `plwasm.module_store` says about a module, as a given
//! role may use it. Read on the call path (also in parallel workers), always with
//! `search_path` pinned and every name qualified.

use std::sync::atomic::{AtomicU32, Ordering};

use pgrx::prelude::*;
use plwasm_core::error::PlWasmError;

use crate::pinned::{self, RunAs};

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

/// The last lookup without bytes: the support functions of one aggregate (and the other
/// functions of a module) meet the same module in one statement, so their entries share one
/// read. Valid for the statement and command it was made in, and forgotten when the module
/// store changes (the invalidation that also drops function entries).
struct Memo {
    name: String,
    role: pg_sys::Oid,
    statement: (pg_sys::TimestampTz, pg_sys::CommandId),
    found: Option<([u8; 32], pg_sys::Oid, bool)>,
}

thread_local! {
    static MEMO: std::cell::RefCell<Option<Memo>> = const { std::cell::RefCell::new(None) };
}

/// Forgets the memoized lookup (the module store changed).
pub fn forget_lookups() {
    MEMO.with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            *memo = None;
        }
    });
}

fn this_statement() -> (pg_sys::TimestampTz, pg_sys::CommandId) {
    // SAFETY: both read backend globals; neither can raise.
    unsafe { (pg_sys::GetCurrentStatementStartTimestamp(), pg_sys::GetCurrentCommandId(false)) }
}

/// [`fetch`] without the bytes, read once per statement for the same module and role.
pub fn lookup(name: &str, role: pg_sys::Oid) -> Result<Option<StoredModule>, PlWasmError> {
    let statement = this_statement();
    let remembered = MEMO.with(|memo| {
        memo.borrow().as_ref().filter(|m| m.name == name && m.role == role && m.statement == statement).map(|m| m.found)
    });
    let to_module =
        |(hash, owner, usable): ([u8; 32], pg_sys::Oid, bool)| StoredModule { hash, owner, usable, wasm: None };
    if let Some(found) = remembered {
        return Ok(found.map(to_module));
    }
    let found = fetch(name, false, role)?;
    let summary = found.as_ref().map(|m| (m.hash, m.owner, m.usable));
    MEMO.with(|memo| {
        *memo.borrow_mut() = Some(Memo { name: name.to_string(), role, statement, found: summary });
    });
    Ok(found)
}

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

/// The oid of `plwasm.module_store`, looked up by name in the extension's own schema.
pub(crate) fn store_oid() -> pg_sys::Oid {
    // SAFETY: both lookups read the syscache; get_namespace_oid raises if the extension's
    // schema is gone, which the guarded call turns into an ERROR.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"plwasm".as_ptr(), false);
        pg_sys::get_relname_relid(c"module_store".as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        crate::error::raise_internal("plwasm.module_store is missing");
    }
    MODULE_STORE_OID.store(relid.to_u32(), Ordering::Relaxed);
    relid
}
