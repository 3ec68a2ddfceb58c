//! The SQL plwasm writes for its users: `plwasm.create_functions` (the functions a module
//! declares, created as the caller) and `plwasm.create_aggregate`, the one way a non-superuser
//! gets an aggregate with an `internal` state.
//!
//! PostgreSQL lets only superusers create such aggregates, because an `internal` state handed
//! to the wrong support function corrupts memory. This helper checks that every support
//! function is a `LANGUAGE wasm` function the caller owns, that all of them are parts of the
//! same aggregate of the same module (their bodies name `prefix.role` exports), and that each
//! is in its role's place; only then does it create the aggregate as the bootstrap superuser
//! and hand it to the caller. The support functions check states again at run time.

use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use plwasm_core::aggregate::SupportRole;
use plwasm_core::error::PlWasmError;

use crate::backend::Caller;
use crate::error::{raise, raise_for_module, raise_internal, OrRaise};
use crate::pinned::{self, RunAs};
use crate::store::fetch;
use crate::{catalog, entries};

/// `plwasm.create_aggregate_by_oid(name, accumulate, finalize, merge, serialize, deserialize,
/// retract, replace)`: creates aggregate `name` (in the accumulate function's schema unless
/// qualified) from wasm support functions, or with `replace` replaces an aggregate of that
/// signature that the caller owns. Returns its signature.
///
/// The statement runs as the bootstrap superuser, because only a superuser may create an
/// aggregate with an `internal` state. So nothing in it is left to name resolution a caller
/// could steer: `search_path` is pinned, every type and function is written fully qualified
/// from the oids that were checked, an existing object is replaced only if the caller owns
/// it, and afterwards every support function `pg_aggregate` records is compared, by oid,
/// with the checked ones.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn create_aggregate_by_oid(
    name: &str,
    accumulate: pg_sys::Oid,
    finalize: pg_sys::Oid,
    merge: default!(Option<pg_sys::Oid>, "NULL"),
    serialize: default!(Option<pg_sys::Oid>, "NULL"),
    deserialize: default!(Option<pg_sys::Oid>, "NULL"),
    retract: default!(Option<pg_sys::Oid>, "NULL"),
    replace: default!(bool, false),
) -> String {
    let partial = [merge, serialize, deserialize];
    if partial.iter().any(Option::is_some) && !partial.iter().all(Option::is_some) {
        refuse(name, "merge, serialize and deserialize go together: give all three or none.".into());
    }
    let user = pinned::current_user();
    let parts: Vec<(SupportRole, pg_sys::Oid)> = [
        (SupportRole::Accumulate, Some(accumulate)),
        (SupportRole::Finalize, Some(finalize)),
        (SupportRole::Merge, merge),
        (SupportRole::Serialize, serialize),
        (SupportRole::Deserialize, deserialize),
        (SupportRole::Retract, retract),
    ]
    .into_iter()
    .filter_map(|(role, oid)| oid.map(|oid| (role, oid)))
    .collect();

    let wasm_language = language_oid(c"wasm");
    let mut identity: Option<([u8; 32], String)> = None;
    let mut arg_types: Vec<pg_sys::Oid> = Vec::new();
    let mut accumulate_namespace = pg_sys::InvalidOid;
    let mut all_parallel_safe = true;
    let mut qualified_names: HashMap<SupportRole, String> = HashMap::new();
    for (role, oid) in &parts {
        let proc = catalog::read_proc(*oid);
        let signature = procedure_text(*oid);
        if proc.language != wasm_language {
            refuse(name, format!("{signature} is not a LANGUAGE wasm function."));
        }
        if !pinned::has_privs_of_role(user, proc.owner) {
            raise(&PlWasmError::NotOwner { object: format!("function {signature}") }, name);
        }
        all_parallel_safe &= proc.parallel_safe;
        let entry = entries::function_entry(&proc, Caller::now()).or_raise(&proc.name);
        let Some((prefix, actual)) = entry.aggregate().map(|(p, r)| (p.to_string(), r)) else {
            refuse(name, format!("{signature} is not a wasm aggregate support function."));
        };
        if actual != *role {
            refuse(
                name,
                format!("{signature} is the {} function of its aggregate, not its {}.", actual.suffix(), role.suffix()),
            );
        }
        match &identity {
            None => identity = Some((entry.module_hash(), prefix)),
            Some((hash, first)) if *hash == entry.module_hash() && *first == prefix => {}
            Some(_) => refuse(
                name,
                format!("{signature} belongs to another module or aggregate than the accumulate function."),
            ),
        }
        match role {
            SupportRole::Accumulate => {
                arg_types = proc.arg_types[1..].to_vec();
                accumulate_namespace = proc.namespace;
            }
            SupportRole::Retract if proc.arg_types[1..] != arg_types[..] => {
                refuse(name, format!("{signature} does not take the accumulate function's arguments."))
            }
            _ => {}
        }
        qualified_names.insert(*role, qualified_function_name(proc.namespace, &proc.name));
    }

    let (namespace, aggregate) = target_name(name, accumulate_namespace);
    let schema = namespace_name(namespace);
    let may_create = pinned::with_pinned_path(RunAs::Caller, || {
        Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.has_schema_privilege($1, $2, 'CREATE')",
            &[DatumWithOid::from(user), DatumWithOid::from(namespace)],
        )
    })
    .ok()
    .flatten()
    .unwrap_or(false);
    if !may_create {
        raise(&PlWasmError::PermissionDenied { what: format!("schema {schema}") }, name);
    }

    let qualified = format!("{}.{}", quote_identifier(&schema), quote_identifier(&aggregate));
    let args: Vec<String> = arg_types.iter().map(|oid| qualified_type_name(*oid)).collect();
    let signature = format!("{qualified}({})", args.join(", "));
    let existing = find_routine(namespace, &aggregate, &arg_types);
    if let Some(found) = &existing {
        if !replace {
            raise(&PlWasmError::AggregateExists { signature: signature.clone() }, name);
        }
        if !pinned::has_privs_of_role(user, found.owner) {
            raise(&PlWasmError::NotOwner { object: format!("aggregate {signature}") }, name);
        }
        if found.kind != b'a' {
            raise(&PlWasmError::NotAnAggregate { signature: signature.clone() }, name);
        }
    }

    let function = |role: SupportRole| qualified_names.get(&role).cloned().unwrap_or_default();
    let mut options = vec![
        format!("SFUNC = {}", function(SupportRole::Accumulate)),
        "STYPE = pg_catalog.internal".to_string(),
        format!("FINALFUNC = {}", function(SupportRole::Finalize)),
    ];
    if merge.is_some() {
        options.push(format!("COMBINEFUNC = {}", function(SupportRole::Merge)));
        options.push(format!("SERIALFUNC = {}", function(SupportRole::Serialize)));
        options.push(format!("DESERIALFUNC = {}", function(SupportRole::Deserialize)));
    }
    if retract.is_some() {
        options.push(format!("MSFUNC = {}", function(SupportRole::Accumulate)));
        options.push(format!("MINVFUNC = {}", function(SupportRole::Retract)));
        options.push("MSTYPE = pg_catalog.internal".to_string());
        options.push(format!("MFINALFUNC = {}", function(SupportRole::Finalize)));
    }
    options.push(format!("PARALLEL = {}", if all_parallel_safe { "SAFE" } else { "UNSAFE" }));
    // A new aggregate with plain CREATE, so one made by someone else in the meantime is an
    // error rather than replaced.
    let verb = if existing.is_some() { "CREATE OR REPLACE AGGREGATE" } else { "CREATE AGGREGATE" };
    as_superuser(&format!("{verb} {signature} ({})", options.join(", ")));

    let Some(made) = find_routine(namespace, &aggregate, &arg_types) else {
        refuse(name, format!("{signature} was not found after it was created."));
    };
    match &existing {
        Some(found) if found.oid == made.oid && pinned::has_privs_of_role(user, made.owner) => {}
        Some(_) => refuse(name, format!("{signature} changed while it was being replaced.")),
        None => {
            as_superuser(&format!(
                "ALTER AGGREGATE {signature} OWNER TO {}",
                quote_identifier(&pinned::role_name(user))
            ));
            let owner = find_routine(namespace, &aggregate, &arg_types).map(|r| r.owner);
            if owner != Some(user) {
                refuse(name, format!("{signature} could not be given to its creator."));
            }
        }
    }
    let expected = Wiring {
        transfn: accumulate,
        finalfn: finalize,
        combinefn: merge.unwrap_or(pg_sys::InvalidOid),
        serialfn: serialize.unwrap_or(pg_sys::InvalidOid),
        deserialfn: deserialize.unwrap_or(pg_sys::InvalidOid),
        mtransfn: if retract.is_some() { accumulate } else { pg_sys::InvalidOid },
        minvtransfn: retract.unwrap_or(pg_sys::InvalidOid),
        mfinalfn: if retract.is_some() { finalize } else { pg_sys::InvalidOid },
        transtype: pg_sys::INTERNALOID,
        mtranstype: if retract.is_some() { pg_sys::INTERNALOID } else { pg_sys::InvalidOid },
    };
    if wiring_of(made.oid) != Some(expected) {
        refuse(name, format!("{signature} is not wired to the support functions that were checked."));
    }
    signature
}

/// What `pg_aggregate` says an aggregate calls, as oids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wiring {
    transfn: pg_sys::Oid,
    finalfn: pg_sys::Oid,
    combinefn: pg_sys::Oid,
    serialfn: pg_sys::Oid,
    deserialfn: pg_sys::Oid,
    mtransfn: pg_sys::Oid,
    minvtransfn: pg_sys::Oid,
    mfinalfn: pg_sys::Oid,
    transtype: pg_sys::Oid,
    mtranstype: pg_sys::Oid,
}

fn wiring_of(aggregate: pg_sys::Oid) -> Option<Wiring> {
    pinned::with_pinned_path(RunAs::Caller, || {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT a.aggtransfn::pg_catalog.oid, a.aggfinalfn::pg_catalog.oid, a.aggcombinefn::pg_catalog.oid,
                        a.aggserialfn::pg_catalog.oid, a.aggdeserialfn::pg_catalog.oid, a.aggmtransfn::pg_catalog.oid,
                        a.aggminvtransfn::pg_catalog.oid, a.aggmfinalfn::pg_catalog.oid, a.aggtranstype, a.aggmtranstype
                   FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[DatumWithOid::from(aggregate)],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            let row = rows.first();
            let oid = |n: usize| row.get::<pg_sys::Oid>(n).map(|v| v.unwrap_or(pg_sys::InvalidOid));
            Ok::<_, pgrx::spi::Error>(Some(Wiring {
                transfn: oid(1)?,
                finalfn: oid(2)?,
                combinefn: oid(3)?,
                serialfn: oid(4)?,
                deserialfn: oid(5)?,
                mtransfn: oid(6)?,
                minvtransfn: oid(7)?,
                mfinalfn: oid(8)?,
                transtype: oid(9)?,
                mtranstype: oid(10)?,
            }))
        })
    })
    .unwrap_or_else(|err| raise_internal(format!("reading pg_aggregate: {err}")))
}

/// A routine found by schema oid, name and exact argument type oids.
struct Routine {
    oid: pg_sys::Oid,
    owner: pg_sys::Oid,
    kind: u8,
}

fn find_routine(namespace: pg_sys::Oid, name: &str, arg_types: &[pg_sys::Oid]) -> Option<Routine> {
    let vector: Vec<String> = arg_types.iter().map(|oid| oid.to_u32().to_string()).collect();
    let vector = vector.join(" ");
    pinned::with_pinned_path(RunAs::Caller, || {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT p.oid, p.proowner, p.prokind::pg_catalog.text FROM pg_catalog.pg_proc p
                  WHERE p.pronamespace OPERATOR(pg_catalog.=) $1
                    AND p.proname OPERATOR(pg_catalog.=) $2::pg_catalog.name
                    AND p.proargtypes OPERATOR(pg_catalog.=) $3::pg_catalog.oidvector",
                Some(1),
                &[DatumWithOid::from(namespace), name.into(), vector.as_str().into()],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            let row = rows.first();
            Ok::<_, pgrx::spi::Error>(Some(Routine {
                oid: row.get(1)?.unwrap_or(pg_sys::InvalidOid),
                owner: row.get(2)?.unwrap_or(pg_sys::InvalidOid),
                kind: row.get::<String>(3)?.and_then(|k| k.bytes().next()).unwrap_or(b'f'),
            }))
        })
    })
    .unwrap_or_else(|err| raise_internal(format!("reading pg_proc: {err}")))
}

/// The schema oid and name of the aggregate: `name` may be qualified; if not, the accumulate
/// function's schema.
fn target_name(name: &str, accumulate_namespace: pg_sys::Oid) -> (pg_sys::Oid, String) {
    let parts: Vec<String> = pinned::with_pinned_path(RunAs::Caller, || {
        Spi::get_one_with_args::<Vec<String>>("SELECT pg_catalog.parse_ident($1)", &[name.into()])
    })
    .ok()
    .flatten()
    .unwrap_or_default();
    match parts.as_slice() {
        [schema, aggregate] => {
            let schema_c = std::ffi::CString::new(schema.as_str()).unwrap_or_default();
            // SAFETY: get_namespace_oid with missing_ok reads the syscache; InvalidOid if absent.
            let namespace = unsafe { pg_sys::get_namespace_oid(schema_c.as_ptr(), true) };
            if namespace == pg_sys::InvalidOid {
                raise(&PlWasmError::SchemaNotFound { schema: schema.clone() }, name);
            }
            (namespace, aggregate.clone())
        }
        [aggregate] => (accumulate_namespace, aggregate.clone()),
        _ => raise(&PlWasmError::BadAggregateName { name: name.into() }, name),
    }
}

fn namespace_name(namespace: pg_sys::Oid) -> String {
    // SAFETY: get_namespace_name returns NULL or a palloc'd copy of the name.
    unsafe {
        let name = pg_sys::get_namespace_name(namespace);
        if name.is_null() {
            raise_internal(format!("schema with oid {} does not exist", namespace.to_u32()));
        }
        std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// `schema.name` of a function, quoted where needed.
fn qualified_function_name(namespace: pg_sys::Oid, name: &str) -> String {
    format!("{}.{}", quote_identifier(&namespace_name(namespace)), quote_identifier(name))
}

/// A type as SQL that always means that type: keywords (`double precision`) or qualified.
fn qualified_type_name(oid: pg_sys::Oid) -> String {
    // SAFETY: format_type_be_qualified returns a palloc'd C string for an existing type.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be_qualified(oid)).to_string_lossy().into_owned() }
}

/// `name(argtypes)` of a function, for messages.
fn procedure_text(oid: pg_sys::Oid) -> String {
    // SAFETY: format_procedure returns a palloc'd C string (or the oid for a missing one).
    unsafe { std::ffi::CStr::from_ptr(pg_sys::format_procedure(oid)).to_string_lossy().into_owned() }
}

fn language_oid(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: get_language_oid reads the syscache; it raises if the language is missing.
    unsafe { pg_sys::get_language_oid(name.as_ptr(), false) }
}

fn refuse(name: &str, why: String) -> ! {
    raise(&PlWasmError::BadAggregate { what: why }, name)
}

/// Runs `statement` as the bootstrap superuser with `search_path` pinned, after the caller's
/// rights were checked.
fn as_superuser(statement: &str) {
    pinned::with_pinned_path(RunAs::Role(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID)), || Spi::run(statement))
        .unwrap_or_else(|err| raise_internal(format!("could not create the aggregate: {err}")));
}

/// PostgreSQL's own identifier quoting (adds quotes only where needed).
pub(crate) fn quote_identifier(name: &str) -> String {
    let cstring = std::ffi::CString::new(name).unwrap_or_else(|_| raise_internal("identifier contains a NUL byte"));
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
            Spi::run(&statement)
                .unwrap_or_else(|err| raise_internal(format!("could not create {}: {err}", function.identity())));
        }
        created.push(match &schema {
            Some(schema) => format!("{schema}.{}", function.identity()),
            None => function.identity(),
        });
    }
    SetOfIterator::new(created)
}
