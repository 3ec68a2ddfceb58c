//! What a module exports and with which types: read from a binary (validated with the
//! proposals plwasm accepts, but not compiled, so listing modules in the `plwasm.modules` view
//! costs no machine code, keeps nothing in the backend and takes no room in the code cache),
//! or from a module already compiled.

use wasmparser::{ExternalKind, Parser, Payload, Validator};
use wasmtime::{ExternType, Module};

use crate::engine::wasm_features;
use crate::error::{PlWasmError, Result};
use crate::types::format_signature;

/// `name: (params) -> results` for every function export, in export order.
pub fn export_signatures(wasm: &[u8]) -> Result<Vec<String>> {
    let invalid = |err: wasmparser::BinaryReaderError| PlWasmError::InvalidModule { message: err.to_string() };
    let types = Validator::new_with_features(wasm_features()).validate_all(wasm).map_err(invalid)?;
    let mut described = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::ExportSection(exports) = payload.map_err(invalid)? else { continue };
        for export in exports {
            let export = export.map_err(invalid)?;
            if export.kind != ExternalKind::Func {
                continue;
            }
            let func = types[types.as_ref().core_function_at(export.index)].unwrap_func();
            let signature = format_signature(
                func.params().iter().map(|t| t.to_string()),
                func.results().iter().map(|t| t.to_string()),
            );
            described.push(format!("{}: {signature}", export.name));
        }
    }
    Ok(described)
}

/// The wasm type of function export `name` of a compiled module (`(i32) -> ()`), `None` if
/// it is not a function export.
pub fn function_export_type(module: &Module, name: &str) -> Option<String> {
    match module.get_export(name) {
        Some(ExternType::Func(func)) => Some(describe_func_type(&func)),
        _ => None,
    }
}

/// `(params) -> results` of a function type.
pub(crate) fn describe_func_type(ty: &wasmtime::FuncType) -> String {
    format_signature(ty.params().map(|t| t.to_string()), ty.results().map(|t| t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_function_exports_with_their_types() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "add") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
                 (func (export "nothing")))"#,
        )
        .unwrap();
        assert_eq!(export_signatures(&wasm).unwrap(), vec!["add: (i64, i64) -> i64", "nothing: () -> ()"]);
    }

    #[test]
    fn refuses_what_the_engine_refuses() {
        // GC and exceptions are not accepted, so such modules are not described either.
        let gc = wat::parse_str(r#"(module (type (struct (field i32))) (func (export "f")))"#).unwrap();
        assert!(export_signatures(&gc).is_err());
        assert!(export_signatures(b"\0asm\x01\0\0\0\x01").is_err());
    }
}
