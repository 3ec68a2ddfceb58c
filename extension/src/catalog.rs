//! Reading a wasm function's `pg_proc` row into plain Rust values.

use std::ffi::CStr;

use pgrx::pg_sys::{self, Oid};
use pgrx::IntoDatum;
use plwasm_core::error::PlWasmError;
use plwasm_core::types::{SqlSignature, SqlType};
use plwasm_core::validate::{RoutineKind, RoutineShape};

/// What plwasm needs of a function's catalog row.
pub struct ProcInfo {
    pub oid: Oid,
    pub name: String,
    /// The owner, whose USAGE of a stored module the function runs on.
    pub owner: Oid,
    pub source: String,
    pub shape: RoutineShape,
    /// The SQL types, or the first one plwasm cannot pass.
    pub signature: Result<SqlSignature, PlWasmError>,
    /// Row version: the entry is stale once either changes.
    pub xmin: pg_sys::TransactionId,
    pub tid: pg_sys::ItemPointerData,
    /// The PROCOID syscache hash of `oid`, matched against invalidation callbacks.
    pub hash: u32,
}

impl ProcInfo {
    /// Whether a cached entry built from `(xmin, tid)` still describes this row.
    pub fn same_version(&self, xmin: pg_sys::TransactionId, tid: &pg_sys::ItemPointerData) -> bool {
        self.xmin == xmin
            && self.tid.ip_blkid.bi_hi == tid.ip_blkid.bi_hi
            && self.tid.ip_blkid.bi_lo == tid.ip_blkid.bi_lo
            && self.tid.ip_posid == tid.ip_posid
    }

    /// Checks everything about the row that does not need the module: kind, types, strictness.
    pub fn checked_signature(&self) -> Result<SqlSignature, PlWasmError> {
        plwasm_core::validate::check_routine(&self.shape, self.signature.clone())
    }
}

/// Reads the `pg_proc` row of `oid`.
pub fn read_proc(oid: Oid) -> ProcInfo {
    // SAFETY: the syscache returns a pinned tuple (or NULL, checked) that stays valid until
    // ReleaseSysCache; every field read below is copied into owned Rust values first.
    unsafe {
        let cache_id = pg_sys::SysCacheIdentifier::PROCOID as i32;
        let tuple = pg_sys::SearchSysCache1(cache_id, oid.into_datum().unwrap());
        if tuple.is_null() {
            crate::error::raise_internal(format!("cache lookup failed for function {}", oid.to_u32()));
        }
        let header = (*tuple).t_data;
        let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_proc;
        let form = &*form;

        let name = name_text(&form.proname);
        let mut is_null = false;
        let source_datum =
            pg_sys::SysCacheGetAttr(cache_id, tuple, pg_sys::Anum_pg_proc_prosrc as pg_sys::AttrNumber, &mut is_null);
        let source = if is_null {
            String::new()
        } else {
            let cstr = pg_sys::text_to_cstring(source_datum.cast_mut_ptr());
            let owned = CStr::from_ptr(cstr).to_string_lossy().into_owned();
            pg_sys::pfree(cstr.cast());
            owned
        };

        let kind = match form.prokind as u8 {
            b'p' => RoutineKind::Procedure,
            b'w' => RoutineKind::Window,
            b'a' => RoutineKind::Aggregate,
            _ => RoutineKind::Function,
        };
        let shape = RoutineShape { kind, strict: form.proisstrict, returns_set: form.proretset };
        let arg_oids = form.proargtypes.values.as_slice(form.pronargs as usize).to_vec();
        let mut signature = resolve_signature(&arg_oids, form.prorettype, form.proisstrict, form.proretset);
        if form.proretset {
            if let Ok(sig) = signature.as_mut() {
                match set_columns(tuple, form.prorettype) {
                    Ok(columns) => sig.set_of = Some(columns),
                    Err(err) => signature = Err(err),
                }
            }
        }
        let xmin = (*header).t_choice.t_heap.t_xmin;
        let tid = (*tuple).t_self;
        let hash = pg_sys::GetSysCacheHashValue(cache_id, oid.into_datum().unwrap(), 0.into(), 0.into(), 0.into());
        pg_sys::ReleaseSysCache(tuple);

        ProcInfo { oid, name, owner: form.proowner, source, shape, signature, xmin, tid, hash }
    }
}

/// The column types of a set-returning function: one for `SETOF t`, the `TABLE` columns for
/// `RETURNS TABLE (...)`.
///
/// # Safety
/// `tuple` must be a valid `pg_proc` tuple.
unsafe fn set_columns(tuple: pg_sys::HeapTuple, ret_oid: Oid) -> Result<Vec<SqlType>, PlWasmError> {
    if ret_oid != pg_sys::RECORDOID {
        return match sql_type(ret_oid) {
            Some(SqlType::Void | SqlType::Internal | SqlType::State) | None => {
                Err(PlWasmError::UnsupportedType { position: "The result".into(), type_name: type_name(ret_oid) })
            }
            Some(ty) => Ok(vec![ty]),
        };
    }
    // SAFETY: the caller's tuple is a pg_proc row; the descriptor is palloc'd and read at once.
    let desc = unsafe { pg_sys::build_function_result_tupdesc_t(tuple) };
    if desc.is_null() {
        return Err(PlWasmError::UnsupportedType { position: "The result".into(), type_name: "setof record".into() });
    }
    // SAFETY: desc is a valid, palloc'd (not reference-counted) TupleDesc; the wrapper neither
    // releases nor frees it, and reads attributes the way each PostgreSQL version lays them out.
    let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(desc) };
    desc.iter()
        .map(|attr| match sql_type(attr.atttypid) {
            Some(SqlType::Void | SqlType::Internal | SqlType::State) | None => Err(PlWasmError::UnsupportedType {
                position: format!("Result column \"{}\"", name_text(&attr.attname)),
                type_name: type_name(attr.atttypid),
            }),
            Some(ty) => Ok(ty),
        })
        .collect()
}

/// A `name` column's text.
fn name_text(name: &pg_sys::NameData) -> String {
    // SAFETY: NameData is a NUL-terminated fixed-size buffer.
    unsafe { CStr::from_ptr(name.data.as_ptr()) }.to_string_lossy().into_owned()
}

fn resolve_signature(
    arg_oids: &[Oid],
    ret_oid: Oid,
    strict: bool,
    returns_set: bool,
) -> Result<SqlSignature, PlWasmError> {
    let mut args = Vec::with_capacity(arg_oids.len());
    for (i, oid) in arg_oids.iter().enumerate() {
        match sql_type(*oid) {
            Some(SqlType::Void) | None => {
                return Err(PlWasmError::UnsupportedType {
                    position: format!("Argument {}", i + 1),
                    type_name: type_name(*oid),
                })
            }
            Some(ty) => args.push(ty),
        }
    }
    // A set's columns are read by set_columns; the single result is then void.
    let ret = if returns_set {
        SqlType::Void
    } else {
        sql_type(ret_oid).ok_or_else(|| PlWasmError::UnsupportedType {
            position: "The result".into(),
            type_name: type_name(ret_oid),
        })?
    };
    Ok(SqlSignature { args, ret, strict, set_of: None })
}

fn sql_type(oid: Oid) -> Option<SqlType> {
    SqlType::from_oid(oid.to_u32()).or_else(|| (oid == state_type()).then_some(SqlType::State))
}

/// The type oid of `ty`.
pub fn type_oid(ty: SqlType) -> Oid {
    match ty {
        SqlType::State => state_type(),
        other => Oid::from(other.oid()),
    }
}

/// The oid of `plwasm.state` (created by the extension in its own schema, which the control
/// file fixes as `plwasm` and only the extension owner can replace), or InvalidOid.
pub fn state_type() -> Oid {
    // SAFETY: plain catalog lookups by name in a fixed schema; both report "not found" as
    // InvalidOid (missing_ok), and the name Datum points at a static C string.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"plwasm".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as i32,
            pg_sys::Anum_pg_type_oid as pg_sys::AttrNumber,
            pg_sys::Datum::from(c"state".as_ptr()),
            pg_sys::Datum::from(schema),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    }
}

// The contract's type table records PostgreSQL's fixed catalog OIDs; check them against the
// server headers this build uses.
const _: () = {
    let checks = [
        (SqlType::Internal, pg_sys::INTERNALOID),
        (SqlType::State, pg_sys::InvalidOid),
        (SqlType::Bool, pg_sys::BOOLOID),
        (SqlType::Int2, pg_sys::INT2OID),
        (SqlType::Int4, pg_sys::INT4OID),
        (SqlType::Int8, pg_sys::INT8OID),
        (SqlType::Float4, pg_sys::FLOAT4OID),
        (SqlType::Float8, pg_sys::FLOAT8OID),
        (SqlType::Date, pg_sys::DATEOID),
        (SqlType::Timestamp, pg_sys::TIMESTAMPOID),
        (SqlType::TimestampTz, pg_sys::TIMESTAMPTZOID),
        (SqlType::Void, pg_sys::VOIDOID),
        (SqlType::Text, pg_sys::TEXTOID),
        (SqlType::Varchar, pg_sys::VARCHAROID),
        (SqlType::Bytea, pg_sys::BYTEAOID),
        (SqlType::Jsonb, pg_sys::JSONBOID),
        (SqlType::Int4Array, pg_sys::INT4ARRAYOID),
        (SqlType::Int8Array, pg_sys::INT8ARRAYOID),
        (SqlType::Float4Array, pg_sys::FLOAT4ARRAYOID),
        (SqlType::Float8Array, pg_sys::FLOAT8ARRAYOID),
    ];
    assert!(checks.len() == plwasm_core::types::TYPES.len());
    let mut i = 0;
    while i < checks.len() {
        assert!(checks[i].0.oid() == checks[i].1.to_u32());
        i += 1;
    }
};

/// The type's name as PostgreSQL prints it (`text`, `integer[]`, `my_schema.my_type`).
fn type_name(oid: Oid) -> String {
    // SAFETY: format_type_be returns a palloc'd C string for any oid (or raises for an invalid
    // one, which the guarded call turns into a Rust panic); we copy it before freeing.
    unsafe {
        let cstr = pg_sys::format_type_be(oid);
        let owned = CStr::from_ptr(cstr).to_string_lossy().into_owned();
        pg_sys::pfree(cstr.cast());
        owned
    }
}
