//! `plwasm.create_aggregate`: the one way a non-superuser gets an aggregate with an
//! `internal` state.
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
use plwasm_core::types::SqlType;

use crate::error::{raise, OrRaise};
use crate::modules::quote_identifier;
use crate::{cache, catalog};

/// `plwasm.create_aggregate_by_oid(name, accumulate, finalize, merge, serialize, deserialize,
/// retract)`: creates (or replaces) aggregate `name` (in the accumulate function's schema
/// unless qualified) from wasm support functions. Returns its signature.
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
) -> String {
    let partial = [merge, serialize, deserialize];
    if partial.iter().any(Option::is_some) && !partial.iter().all(Option::is_some) {
        refuse(name, "merge, serialize and deserialize go together: give all three or none.".into());
    }
    // SAFETY: reads the current user id; cannot fail.
    let user = unsafe { pg_sys::GetUserId() };
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

    let mut identity: Option<([u8; 32], String)> = None;
    let mut arg_types: Vec<SqlType> = Vec::new();
    let mut all_parallel_safe = true;
    let mut qualified_names: HashMap<SupportRole, String> = HashMap::new();
    for (role, oid) in &parts {
        let facts = function_facts(*oid);
        if facts.language != "wasm" {
            refuse(name, format!("{} is not a LANGUAGE wasm function.", facts.signature));
        }
        if !facts.owned {
            pgrx::ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("must be owner of function {}", facts.signature)
            );
        }
        all_parallel_safe &= facts.parallel_safe;
        let proc = catalog::read_proc(*oid);
        let entry = cache::function_entry(&proc, user).or_raise(&proc.name);
        let Some((prefix, actual)) = entry.aggregate.clone() else {
            refuse(name, format!("{} is not a wasm aggregate support function.", facts.signature));
        };
        if actual != *role {
            refuse(
                name,
                format!("{} is the {} function of its aggregate, not its {}.", facts.signature, actual.suffix(), role.suffix()),
            );
        }
        match &identity {
            None => identity = Some((entry.module_hash, prefix)),
            Some((hash, first)) if *hash == entry.module_hash && *first == prefix => {}
            Some(_) => refuse(name, format!("{} belongs to another module or aggregate than the accumulate function.", facts.signature)),
        }
        match role {
            SupportRole::Accumulate => arg_types = entry.signature.args[1..].to_vec(),
            SupportRole::Retract if entry.signature.args[1..] != arg_types[..] => {
                refuse(name, format!("{} does not take the accumulate function's arguments.", facts.signature))
            }
            _ => {}
        }
        qualified_names.insert(*role, facts.qualified_name);
    }

    let (schema, aggregate) = target_name(name, accumulate);
    let may_create = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.has_schema_privilege(current_user, $1, 'CREATE')",
        &[schema.as_str().into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if !may_create {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for schema {schema}")
        );
    }

    let qualified = format!("{}.{}", quote_identifier(&schema), quote_identifier(&aggregate));
    let args: Vec<&str> = arg_types.iter().map(|t| t.sql_name()).collect();
    let signature = format!("{qualified}({})", args.join(", "));
    let function = |role: SupportRole| qualified_names.get(&role).cloned().unwrap_or_default();
    let mut options = vec![
        format!("SFUNC = {}", function(SupportRole::Accumulate)),
        "STYPE = internal".to_string(),
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
        options.push("MSTYPE = internal".to_string());
        options.push(format!("MFINALFUNC = {}", function(SupportRole::Finalize)));
    }
    options.push(format!("PARALLEL = {}", if all_parallel_safe { "SAFE" } else { "UNSAFE" }));
    let owner = Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.quote_ident(rolname) FROM pg_catalog.pg_roles WHERE oid = $1",
        &[DatumWithOid::from(user)],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| pgrx::error!("current user not found"));
    as_superuser(&[
        format!("CREATE OR REPLACE AGGREGATE {signature} ({})", options.join(", ")),
        format!("ALTER AGGREGATE {signature} OWNER TO {owner}"),
    ]);
    signature
}

/// What the helper needs to know of a support function, read as the caller.
struct FunctionFacts {
    signature: String,
    qualified_name: String,
    language: String,
    owned: bool,
    parallel_safe: bool,
}

fn function_facts(oid: pg_sys::Oid) -> FunctionFacts {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT p.oid::regprocedure::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname), \
                    l.lanname::text, pg_catalog.pg_has_role(p.proowner, 'USAGE'), p.proparallel = 's' \
               FROM pg_catalog.pg_proc p \
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
              WHERE p.oid = $1",
            Some(1),
            &[DatumWithOid::from(oid)],
        )?;
        if rows.is_empty() {
            pgrx::ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
                format!("function with oid {} does not exist", oid.to_u32())
            );
        }
        let row = rows.first();
        Ok::<_, pgrx::spi::Error>(FunctionFacts {
            signature: row.get(1)?.unwrap_or_default(),
            qualified_name: row.get(2)?.unwrap_or_default(),
            language: row.get(3)?.unwrap_or_default(),
            owned: row.get(4)?.unwrap_or(false),
            parallel_safe: row.get(5)?.unwrap_or(false),
        })
    })
    .unwrap_or_else(|err| pgrx::error!("reading pg_proc: {err}"))
}

/// The schema and name of the aggregate: `name` may be qualified; if not, the accumulate
/// function's schema.
fn target_name(name: &str, accumulate: pg_sys::Oid) -> (String, String) {
    let parts: Vec<String> = Spi::get_one_with_args::<Vec<String>>("SELECT pg_catalog.parse_ident($1)", &[name.into()])
        .ok()
        .flatten()
        .unwrap_or_default();
    match parts.as_slice() {
        [schema, aggregate] => (schema.clone(), aggregate.clone()),
        [aggregate] => {
            let schema = Spi::get_one_with_args::<String>(
                "SELECT n.nspname::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = $1",
                &[DatumWithOid::from(accumulate)],
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            (schema, aggregate.clone())
        }
        _ => {
            pgrx::ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_NAME,
                format!("\"{name}\" is not an aggregate name (name or schema.name)")
            );
        }
    }
}

fn refuse(name: &str, why: String) -> ! {
    raise(&PlWasmError::BadAggregate { what: why }, name)
}

/// Runs `statements` as the bootstrap superuser, after the caller's rights were checked.
fn as_superuser(statements: &[String]) {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: saves the current user and security context and switches to the bootstrap
    // superuser, restricted (no temp objects, no deferred changes), for these statements
    // alone. The normal path restores both below; on error, (sub)transaction abort does.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID),
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    for statement in statements {
        Spi::run(statement).unwrap_or_else(|err| pgrx::error!("could not create the aggregate: {err}"));
    }
    // SAFETY: restores exactly what was saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
}
