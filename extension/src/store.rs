//! The module store's read side: what `plwasm.module_store` says about a module, as a given
//! role may use it. Read on the call path (also in parallel workers) straight from the
//! tables' primary-key indexes, found by oid in the extension's schema: no SQL, no names a
//! caller could shadow.

use std::sync::atomic::{AtomicU32, Ordering};

use pgrx::prelude::*;
use plwasm_core::error::PlWasmError;

use crate::pinned;

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
/// A direct read of the store's primary-key index, not a query: a new session's first call
/// would otherwise parse and plan SQL over cold catalogs (about 1 ms). It runs on the call
/// path, also in parallel workers, and reads with the statement's snapshot as a read-only
/// query would. USAGE is decided here as `plwasm.modules` and `grant_module` define it: the
/// role owns the module, is a superuser, or has the privileges of a grantee (PUBLIC, or a
/// role that still exists: `pg_has_role(..., 'USAGE')` is `has_privs_of_role`).
pub fn fetch(name: &str, with_bytes: bool, role: pg_sys::Oid) -> Result<Option<StoredModule>, PlWasmError> {
    let name_text = std::ffi::CString::new(name).map_err(|_| PlWasmError::BadModuleName { module: name.into() })?;
    let store = store_oid();
    // SAFETY: both relations are opened and closed here with AccessShareLock, and each scan
    // ends before its relation closes. Values are copied out of a tuple before the scan moves
    // on. Anything PostgreSQL raises (a missing relation, an I/O error) goes through pgrx's
    // guard into an ERROR; transaction abort releases the locks and buffer pins.
    unsafe {
        let name_datum = pg_sys::Datum::from(pg_sys::cstring_to_text(name_text.as_ptr()));
        let found = {
            let scan = KeyScan::begin(store, name_datum)?;
            let row = scan.next().map(|tuple| -> Result<_, PlWasmError> {
                let hash: [u8; 32] = scan.bytes(tuple, "sha256")?.and_then(|b| b.try_into().ok()).unwrap_or([0; 32]);
                let owner = scan.oid(tuple, "owner")?.unwrap_or(pg_sys::InvalidOid);
                let wasm = if with_bytes { scan.bytes(tuple, "wasm")? } else { None };
                Ok((hash, owner, wasm))
            });
            scan.end();
            row.transpose()?
        };
        let Some((hash, owner, wasm)) = found else { return Ok(None) };
        let usable = owner == role || pinned::is_superuser(role) || granted(name_datum, role)?;
        Ok(Some(StoredModule { hash, owner, usable, wasm }))
    }
}

/// Whether `plwasm.module_grants` gives `role` USAGE of the module named by `name_datum`.
///
/// # Safety
/// `name_datum` is a text Datum.
unsafe fn granted(name_datum: pg_sys::Datum, role: pg_sys::Oid) -> Result<bool, PlWasmError> {
    // SAFETY: as in fetch.
    unsafe {
        let scan = KeyScan::begin(extension_table(c"module_grants"), name_datum)?;
        let mut usable = Ok(false);
        while let Some(tuple) = scan.next() {
            match scan.oid(tuple, "grantee") {
                Ok(Some(grantee)) if grantee == pg_sys::InvalidOid || role_grants_to(grantee, role) => {
                    usable = Ok(true);
                    break;
                }
                Ok(_) => {}
                Err(err) => {
                    usable = Err(err);
                    break;
                }
            }
        }
        scan.end();
        usable
    }
}

/// Whether a grant to `grantee` reaches `role`: the grantee still exists and `role` has its
/// privileges.
fn role_grants_to(grantee: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: a syscache existence probe by oid.
    let exists = unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            grantee.into(),
            0.into(),
            0.into(),
            0.into(),
        )
    };
    exists && pinned::has_privs_of_role(role, grantee)
}

/// A scan of one of the store's tables by its primary key's first column (a module name),
/// through that index, with the statement's snapshot.
struct KeyScan {
    relation: pg_sys::Relation,
    scan: pg_sys::SysScanDesc,
}

impl KeyScan {
    /// # Safety
    /// `relid` is a table whose first column is text and leads its primary key.
    unsafe fn begin(relid: pg_sys::Oid, name_datum: pg_sys::Datum) -> Result<KeyScan, PlWasmError> {
        // SAFETY: the caller's contract; the scan key compares with the column's collation,
        // the one its index was built with (ScanKeyInit would set C, which may order text
        // differently from the index).
        unsafe {
            let relation = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            pg_sys::list_free(pg_sys::RelationGetIndexList(relation));
            let index = (*relation).rd_pkindex;
            if index == pg_sys::InvalidOid {
                pg_sys::table_close(relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                return Err(PlWasmError::Internal { message: "plwasm's module store has no primary key".into() });
            }
            let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
            pg_sys::ScanKeyInit(&mut key, 1, pg_sys::BTEqualStrategyNumber as u16, pg_sys::F_TEXTEQ.into(), name_datum);
            key.sk_collation = pgrx::PgTupleDesc::from_pg_unchecked((*relation).rd_att)
                .get(0)
                .map_or(pg_sys::InvalidOid, |a| a.attcollation);
            let snapshot = if pg_sys::ActiveSnapshotSet() {
                pg_sys::GetActiveSnapshot()
            } else {
                pg_sys::GetTransactionSnapshot()
            };
            let scan = pg_sys::systable_beginscan(relation, index, true, snapshot, 1, &mut key);
            Ok(KeyScan { relation, scan })
        }
    }

    /// The next matching row, valid until the next call or [`KeyScan::end`].
    unsafe fn next(&self) -> Option<pg_sys::HeapTuple> {
        // SAFETY: an open scan.
        let tuple = unsafe { pg_sys::systable_getnext(self.scan) };
        (!tuple.is_null()).then_some(tuple)
    }

    unsafe fn end(self) {
        // SAFETY: the scan and relation begin() opened, each closed once.
        unsafe {
            pg_sys::systable_endscan(self.scan);
            pg_sys::table_close(self.relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        }
    }

    /// Column `column` of `tuple`, `None` when NULL.
    unsafe fn column(&self, tuple: pg_sys::HeapTuple, column: &str) -> Result<Option<pg_sys::Datum>, PlWasmError> {
        // SAFETY: the relation's own descriptor; attnum is one of its live columns.
        unsafe {
            let desc = (*self.relation).rd_att;
            let Some(at) = pgrx::PgTupleDesc::from_pg_unchecked(desc)
                .iter()
                .position(|a| !a.attisdropped && pgrx::name_data_to_str(&a.attname) == column)
            else {
                return Err(PlWasmError::Internal { message: format!("plwasm's module store has no column {column}") });
            };
            let mut is_null = false;
            let datum = pg_sys::heap_getattr(tuple, at as i32 + 1, desc, &mut is_null);
            Ok((!is_null).then_some(datum))
        }
    }

    /// An oid (or regrole) column.
    unsafe fn oid(&self, tuple: pg_sys::HeapTuple, column: &str) -> Result<Option<pg_sys::Oid>, PlWasmError> {
        // SAFETY: the caller's tuple of this scan.
        Ok(unsafe { self.column(tuple, column)? }.map(|datum| pg_sys::Oid::from(datum.value() as u32)))
    }

    /// A bytea column, detoasted and copied.
    unsafe fn bytes(&self, tuple: pg_sys::HeapTuple, column: &str) -> Result<Option<Vec<u8>>, PlWasmError> {
        // SAFETY: the caller's tuple of this scan; from_datum detoasts (reading TOAST as needed).
        unsafe {
            match self.column(tuple, column)? {
                None => Ok(None),
                Some(datum) => match <&[u8]>::from_datum(datum, false) {
                    Some(bytes) => plwasm_core::limits::owned_copy(bytes, "a stored module").map(Some),
                    None => Ok(None),
                },
            }
        }
    }
}

/// The oid of `plwasm.module_store`, looked up by name in the extension's own schema.
pub(crate) fn store_oid() -> pg_sys::Oid {
    let relid = extension_table(c"module_store");
    MODULE_STORE_OID.store(relid.to_u32(), Ordering::Relaxed);
    relid
}

/// The oid of table `name` in the extension's own schema, which only the extension's owner
/// can create in.
fn extension_table(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: both lookups read the syscache; get_namespace_oid raises if the extension's
    // schema is gone, which the guarded call turns into an ERROR.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"plwasm".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        crate::error::raise_internal(format!("plwasm.{} is missing", name.to_string_lossy()));
    }
    relid
}
