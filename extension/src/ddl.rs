//! The SQL plwasm writes for its users: `plwasm.create_functions`, which creates the
//! functions and aggregates a module declares. Everything it writes is plain DDL run as the
//! caller, so PostgreSQL checks ownership and privileges as for the caller's own statements:
//! since aggregate states are `plwasm.state` (not `internal`), no step needs another role.

use pgrx::prelude::*;
use plwasm_core::error::PlWasmError;

use crate::error::{raise_for_module, raise_internal, OrRaise};
use crate::pinned;
use crate::store::fetch;

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
