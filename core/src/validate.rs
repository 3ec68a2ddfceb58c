//! Checks a module against the SQL function that will call it. Runs at CREATE FUNCTION (the
//! validator) and again when a backend first loads the function, so both refuse the same way.

use wasmtime::{Engine, ExternType, Module};

use crate::abi::{ALLOC_EXPORT, FREE_EXPORT, IMPORT_MODULE, MEMORY_EXPORT};
use crate::aggregate::SupportRole;
use crate::error::{PlWasmError, Result};
use crate::introspect::describe_func_type;
use crate::types::{describe_wasm_signature, wasm_type_of, SqlSignature, SqlType, WasmType};

const WASM_PAGE_SIZE: u64 = 65536;

/// What kind of routine `pg_proc.prokind` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineKind {
    Function,
    Procedure,
    Window,
    Aggregate,
}

/// The parts of a `pg_proc` row that decide whether plwasm can run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutineShape {
    pub kind: RoutineKind,
    pub strict: bool,
    pub returns_set: bool,
}

/// Refuses routines plwasm cannot run, whatever their module, in the order a user fixes
/// them: the kind of routine, then its types (`signature` holds the first unsupported one).
/// What the module's ABI can pass (NULLs, text) is checked with the module.
pub fn check_routine(shape: &RoutineShape, signature: Result<SqlSignature>) -> Result<SqlSignature> {
    let unsupported = |what: &str| Err(PlWasmError::UnsupportedKind { what: what.to_string() });
    match shape.kind {
        RoutineKind::Procedure => return unsupported("procedures"),
        RoutineKind::Window => return unsupported("window functions"),
        RoutineKind::Aggregate => return unsupported("aggregates"),
        RoutineKind::Function => {}
    }
    let signature = signature?;
    if shape.returns_set && signature.set_of.is_none() {
        return unsupported("set-returning functions of this result type");
    }
    Ok(signature)
}

/// Most functions a module may define: compile work grows with them.
pub const MAX_FUNCTIONS: u32 = 100_000;
/// Largest function body, in bytes: compile time grows faster than linearly with one body.
pub const MAX_FUNCTION_BODY: usize = 2 * 1024 * 1024;

/// Compiles `wasm` after [`check_compile_bounds`]. wasmtime validates the binary first; its
/// message carries the offset.
pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module> {
    check_compile_bounds(wasm)?;
    Module::new(engine, wasm).map_err(|err| PlWasmError::InvalidModule { message: format!("{err:#}") })
}

/// Refuses, before any compile work, modules with more than [`MAX_FUNCTIONS`] functions or a
/// function body over [`MAX_FUNCTION_BODY`] bytes. Reads only section headers and body sizes;
/// malformed input is left to the compiler, which reports it with its offset.
pub fn check_compile_bounds(wasm: &[u8]) -> Result<()> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::FunctionSection(functions)) if functions.count() > MAX_FUNCTIONS => {
                return Err(PlWasmError::CompileLimit {
                    what: format!(
                        "It defines {} functions; plwasm compiles at most {MAX_FUNCTIONS}.",
                        functions.count()
                    ),
                });
            }
            Ok(wasmparser::Payload::CodeSectionEntry(body)) if body.range().len() > MAX_FUNCTION_BODY => {
                return Err(PlWasmError::CompileLimit {
                    what: format!(
                        "A function body at offset {} is {} bytes; plwasm compiles bodies of at most {MAX_FUNCTION_BODY} bytes.",
                        body.range().start,
                        body.range().len()
                    ),
                });
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Checks a compiled module for a SQL function: its ABI, imports, the export and its
/// signature, and the initial memory. Returns the ABI.
pub fn check_module(
    module: &Module,
    export: &str,
    sql_name: &str,
    signature: &SqlSignature,
    initial_memory_cap: Option<usize>,
) -> Result<u32> {
    let abi = check_stored_module(module)?;
    let uses = |ty: SqlType| signature.args.contains(&ty) || signature.ret == ty;
    if uses(SqlType::State) || uses(SqlType::Internal) {
        return check_aggregate_support(module, abi, export, signature);
    }
    if abi == 0 {
        if let Some((position, ty)) = signature.first_non_numeric() {
            return Err(PlWasmError::TypeNeedsAbi1 { position, type_name: ty.sql_name().to_string() });
        }
        if !signature.strict {
            return Err(PlWasmError::NotStrict);
        }
    }

    // Only function imports are allowed, so every memory is defined by the module itself.
    if let (Some(cap), Some(pages)) = (initial_memory_cap, module.resources_required().max_initial_memory_size) {
        let bytes = pages.saturating_mul(WASM_PAGE_SIZE);
        if bytes > cap as u64 {
            return Err(PlWasmError::InitialMemoryTooLarge { bytes, limit: cap as u64 });
        }
    }

    let ty = match module.get_export(export) {
        Some(ExternType::Func(func)) => func,
        Some(other) => {
            return Err(PlWasmError::ExportNotFunction {
                export: export.to_string(),
                kind: extern_kind(&other).to_string(),
            })
        }
        None => {
            let functions = module
                .exports()
                .filter(|e| matches!(e.ty(), ExternType::Func(_)))
                .map(|e| e.name().to_string())
                .collect();
            return Err(PlWasmError::MissingExport { export: export.to_string(), functions });
        }
    };

    let (expected_params, expected_results) =
        if abi == 0 { (signature.wasm_params(), signature.wasm_results()) } else { (vec![WasmType::I32], vec![]) };
    let actual_params: Vec<Option<WasmType>> = ty.params().map(|t| wasm_type_of(&t)).collect();
    let actual_results: Vec<Option<WasmType>> = ty.results().map(|t| wasm_type_of(&t)).collect();
    let matches = actual_params.iter().copied().eq(expected_params.iter().copied().map(Some))
        && actual_results.iter().copied().eq(expected_results.iter().copied().map(Some));
    if !matches {
        return Err(PlWasmError::SignatureMismatch {
            export: export.to_string(),
            sql: signature.describe(sql_name),
            expected: describe_wasm_signature(&expected_params, &expected_results),
            actual: describe_func_type(&ty),
        });
    }
    Ok(abi)
}

/// A support function of a wasm aggregate: its SQL signature fits its role (named by the
/// export), and the module has the aggregate's exports.
fn check_aggregate_support(module: &Module, abi: u32, export: &str, signature: &SqlSignature) -> Result<u32> {
    let Some((prefix, role)) = SupportRole::of_export(export) else {
        return Err(PlWasmError::AggregateSupport {
            what: format!(
                "Only aggregate support functions take or return plwasm.state, and their export names end in .accumulate, .retract, .finalize or .merge; \"{export}\" does not."
            ),
        });
    };
    if abi != 1 {
        return Err(PlWasmError::AggregateSupport { what: "Wasm aggregates need an ABI 1 module.".into() });
    }
    role.check_signature(signature)?;
    crate::aggregate::check_exports(module, prefix, role)?;
    Ok(abi)
}

/// ABI 0 modules may import nothing; ABI 1 modules may import `plwasm.raise` and `plwasm.log`
/// with their exact types (see [`crate::host`]), and nothing else.
pub fn check_imports(module: &Module, abi: u32) -> Result<()> {
    for import in module.imports() {
        let allowed = abi >= 1
            && import.module() == IMPORT_MODULE
            && crate::host::IMPORTS.iter().any(|(name, ty)| {
                *name == import.name() && matches!(import.ty(), ExternType::Func(f) if describe_func_type(&f) == *ty)
            });
        if !allowed {
            return Err(PlWasmError::ForbiddenImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
                kind: extern_kind(&import.ty()).to_string(),
            });
        }
    }
    Ok(())
}

/// ABI 1 modules export their memory and an allocator, and may export a free for buffers.
fn check_frame_exports(module: &Module) -> Result<()> {
    match module.get_export(FREE_EXPORT) {
        None => {}
        Some(ExternType::Func(f)) if describe_func_type(&f) == "(i32, i32) -> ()" => {}
        Some(other) => {
            return Err(PlWasmError::AbiExportMissing {
                name: FREE_EXPORT,
                expected: "a function (i32, i32) -> ()",
                actual: Some(match other {
                    ExternType::Func(f) => format!("a function {}", describe_func_type(&f)),
                    t => extern_kind(&t).to_string(),
                }),
            })
        }
    }
    match module.get_export(MEMORY_EXPORT) {
        Some(ExternType::Memory(_)) => {}
        other => {
            return Err(PlWasmError::AbiExportMissing {
                name: MEMORY_EXPORT,
                expected: "a memory",
                actual: other.map(|t| extern_kind(&t).to_string()),
            })
        }
    }
    let alloc_type = "a function (i32) -> i32";
    match module.get_export(ALLOC_EXPORT) {
        Some(ExternType::Func(f)) if describe_func_type(&f) == "(i32) -> i32" => Ok(()),
        other => Err(PlWasmError::AbiExportMissing {
            name: ALLOC_EXPORT,
            expected: alloc_type,
            actual: other.map(|t| match t {
                ExternType::Func(f) => format!("a function {}", describe_func_type(&f)),
                t => extern_kind(&t).to_string(),
            }),
        }),
    }
}

/// The plwasm ABI versions this build runs. 0 is the numeric ABI: plain wasm values, no
/// declaration needed; 1 passes every type (and NULL) through a frame in guest memory.
pub const SUPPORTED_ABIS: &[u32] = &[0, 1];

pub use plwasm_contract::names::ABI_EXPORT_PREFIX;

/// The ABI a module targets, refused if this build does not run it.
pub fn module_abi(module: &Module) -> Result<u32> {
    let mut declared: Option<u32> = None;
    for export in module.exports() {
        if let Some(version) = export.name().strip_prefix(ABI_EXPORT_PREFIX) {
            let version: u32 = version.parse().map_err(|_| PlWasmError::UnsupportedAbi {
                declared: export.name().to_string(),
                supported: SUPPORTED_ABIS,
            })?;
            if declared.is_some_and(|d| d != version) {
                return Err(PlWasmError::UnsupportedAbi {
                    declared: export.name().to_string(),
                    supported: SUPPORTED_ABIS,
                });
            }
            declared = Some(version);
        }
    }
    let abi = declared.unwrap_or(0);
    if !SUPPORTED_ABIS.contains(&abi) {
        return Err(PlWasmError::UnsupportedAbi {
            declared: format!("{ABI_EXPORT_PREFIX}{abi}"),
            supported: SUPPORTED_ABIS,
        });
    }
    Ok(abi)
}

/// Checks a module about to be stored with `plwasm.install_module`; returns its ABI.
pub fn check_stored_module(module: &Module) -> Result<u32> {
    let abi = module_abi(module)?;
    check_imports(module, abi)?;
    if abi == 1 {
        check_frame_exports(module)?;
    }
    Ok(abi)
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SqlType;

    #[test]
    fn compile_work_is_bounded_before_compiling() {
        // One function whose body is a long run of nops.
        let body = format!("(module (func {}))", "nop ".repeat(MAX_FUNCTION_BODY + 1));
        let wasm = wat::parse_str(&body).unwrap();
        assert!(matches!(check_compile_bounds(&wasm), Err(PlWasmError::CompileLimit { .. })));
        let many = format!("(module {})", "(func)".repeat(MAX_FUNCTIONS as usize + 1));
        let wasm = wat::parse_str(&many).unwrap();
        let err = check_compile_bounds(&wasm).unwrap_err();
        assert_eq!(err.sqlstate().code(), "54000");
        assert!(check_compile_bounds(&wat::parse_str("(module (func))").unwrap()).is_ok());
    }

    fn shape(kind: RoutineKind, strict: bool, returns_set: bool) -> RoutineShape {
        RoutineShape { kind, strict, returns_set }
    }

    fn module(wat: &str) -> Module {
        compile(&crate::engine::new_engine(&Default::default()).unwrap(), wat::parse_str(wat).unwrap().as_slice())
            .unwrap()
    }

    #[test]
    fn abi_is_declared_by_an_export() {
        assert_eq!(module_abi(&module("(module)")), Ok(0));
        let v0 = module(r#"(module (global (export "plwasm_abi_v0") i32 (i32.const 0)))"#);
        assert_eq!(module_abi(&v0), Ok(0));
        let v7 = module(r#"(module (func (export "plwasm_abi_v7")))"#);
        assert_eq!(
            module_abi(&v7),
            Err(PlWasmError::UnsupportedAbi { declared: "plwasm_abi_v7".into(), supported: SUPPORTED_ABIS })
        );
        let junk = module(r#"(module (func (export "plwasm_abi_vX")))"#);
        assert_eq!(
            module_abi(&junk),
            Err(PlWasmError::UnsupportedAbi { declared: "plwasm_abi_vX".into(), supported: SUPPORTED_ABIS })
        );
    }

    #[test]
    fn routines_are_checked_kind_first_then_types_then_strictness() {
        let good = || Ok(SqlSignature { args: vec![SqlType::Int8], ret: SqlType::Int8, strict: false, set_of: None });
        let bad_type = || Err(PlWasmError::UnsupportedType { position: "result".into(), type_name: "text".into() });
        assert!(check_routine(&shape(RoutineKind::Function, true, false), good()).is_ok());
        assert_eq!(
            check_routine(&shape(RoutineKind::Procedure, false, false), bad_type()),
            Err(PlWasmError::UnsupportedKind { what: "procedures".into() })
        );
        assert_eq!(
            check_routine(&shape(RoutineKind::Function, true, true), good()),
            Err(PlWasmError::UnsupportedKind { what: "set-returning functions of this result type".into() })
        );
        let set = SqlSignature { set_of: Some(vec![SqlType::Int8]), ret: SqlType::Void, ..good().unwrap() };
        assert!(check_routine(&shape(RoutineKind::Function, true, true), Ok(set)).is_ok());
        assert!(matches!(
            check_routine(&shape(RoutineKind::Function, false, false), bad_type()),
            Err(PlWasmError::UnsupportedType { .. })
        ));
        assert!(check_routine(&shape(RoutineKind::Function, false, false), good()).is_ok());
    }

    const FRAME_MODULE: &str = r#"(module
        (import "plwasm" "log" (func $log (param i32 i32 i32)))
        (memory (export "memory") 1)
        (global (export "plwasm_abi_v1") i32 (i32.const 1))
        (func (export "plwasm_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "f") (param i32)))"#;

    #[test]
    fn abi0_needs_strict_numeric_functions() {
        let m = module(r#"(module (func (export "f") (param i64) (result i64) local.get 0))"#);
        let lax = SqlSignature { args: vec![SqlType::Int8], ret: SqlType::Int8, strict: false, set_of: None };
        assert_eq!(check_module(&m, "f", "f", &lax, None), Err(PlWasmError::NotStrict));
        let text = SqlSignature { args: vec![SqlType::Int8], ret: SqlType::Text, strict: true, set_of: None };
        assert!(matches!(check_module(&m, "f", "f", &text, None), Err(PlWasmError::TypeNeedsAbi1 { .. })));
    }

    #[test]
    fn abi1_modules_take_a_frame_and_may_import_plwasm_functions() {
        let m = module(FRAME_MODULE);
        let sig =
            SqlSignature { args: vec![SqlType::Text, SqlType::Int4], ret: SqlType::Text, strict: false, set_of: None };
        assert_eq!(check_module(&m, "f", "f", &sig, None), Ok(1));
        assert!(matches!(
            check_module(&m, "plwasm_alloc", "f", &sig, None),
            Err(PlWasmError::SignatureMismatch { .. })
        ));

        let no_alloc = module(&FRAME_MODULE.replace("\"plwasm_alloc\"", "\"malloc\""));
        assert!(matches!(
            check_stored_module(&no_alloc),
            Err(PlWasmError::AbiExportMissing { name: "plwasm_alloc", actual: None, .. })
        ));
        let wasi = module(&FRAME_MODULE.replace("\"plwasm\" \"log\"", "\"wasi_snapshot_preview1\" \"fd_write\""));
        assert!(matches!(check_stored_module(&wasi), Err(PlWasmError::ForbiddenImport { .. })));
        let wrong_type = module(&FRAME_MODULE.replace("(param i32 i32 i32)", "(param i32 i32)"));
        assert!(matches!(check_stored_module(&wrong_type), Err(PlWasmError::ForbiddenImport { .. })));
        let abi0_import = module(&FRAME_MODULE.replace("plwasm_abi_v1", "not_an_abi"));
        assert!(matches!(check_stored_module(&abi0_import), Err(PlWasmError::ForbiddenImport { .. })));
    }
}
