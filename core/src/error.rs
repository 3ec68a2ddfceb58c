//! The one error type of plwasm and its mapping to PostgreSQL error reports.
//!
//! Every failure, at CREATE FUNCTION or at call time, becomes a [`PlWasmError`]. The
//! extension turns it into an `ereport` in exactly one place (`extension/src/error.rs`),
//! using [`PlWasmError::report`] for the SQLSTATE, message, detail and hint, so wording and
//! codes are decided (and unit-tested) here, without a server.

use std::fmt;

/// The SQLSTATEs plwasm raises. The extension maps each to pgrx's `PgSqlErrorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    /// 42P13: the function definition (body or signature) is not acceptable.
    InvalidFunctionDefinition,
    /// 54000: a configured limit (fuel, memory, table size) was reached.
    ProgramLimitExceeded,
    /// 54001: the wasm stack cap was reached (what PostgreSQL uses for stack depth too).
    StatementTooComplex,
    /// 38000: the guest trapped.
    ExternalRoutineException,
    /// 22012: integer division by zero inside the guest.
    DivisionByZero,
    /// 22003: a value does not fit (integer overflow trap, result out of range).
    NumericValueOutOfRange,
    /// 22008: a date or timestamp result out of PostgreSQL's range.
    DatetimeFieldOverflow,
    /// 57014: the call was interrupted (cancel, statement_timeout) and PostgreSQL did not
    /// raise its own error first.
    QueryCanceled,
    /// 0A000: something plwasm does not do (procedures, recursive calls into one instance).
    FeatureNotSupported,
    /// 42704: no stored module of that name.
    UndefinedObject,
    /// 42602: not a valid module name.
    InvalidName,
    /// 42501: not the owner, or no USAGE on a module.
    InsufficientPrivilege,
    /// 2BP01: functions still use the module.
    DependentObjectsStillExist,
    /// 58030: the code cache directory could not be cleared.
    IoError,
    /// 53200: the host could not allocate memory for a value.
    OutOfMemory,
    /// XX000: a bug in plwasm or wasmtime.
    InternalError,
    /// 22021: text from the guest that is not valid UTF-8 (or holds a NUL byte).
    CharacterNotInRepertoire,
    /// 22004: an array argument with NULL elements.
    NullValueNotAllowed,
    /// 2202E: an array argument with more than one dimension.
    ArraySubscriptError,
    DatatypeMismatch,
    ObjectNotInPrerequisiteState,
    /// 25006: a write on a hot standby or in a read-only transaction.
    ReadOnlySqlTransaction,
    /// 22P02: text that is not a value of the type (`plwasm.state` input).
    InvalidTextRepresentation,
    /// 22P03: bytes that are not a value of the type (`plwasm.state` binary input, a flat
    /// state's header).
    InvalidBinaryRepresentation,
    /// A SQLSTATE chosen by the guest through `plwasm.raise` (checked by [`guest_sqlstate`]).
    Guest([u8; 5]),
}

impl SqlState {
    /// The five-character code, as PostgreSQL prints it.
    pub fn code(&self) -> &str {
        match self {
            SqlState::InvalidFunctionDefinition => "42P13",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::StatementTooComplex => "54001",
            SqlState::ExternalRoutineException => "38000",
            SqlState::DivisionByZero => "22012",
            SqlState::NumericValueOutOfRange => "22003",
            SqlState::DatetimeFieldOverflow => "22008",
            SqlState::QueryCanceled => "57014",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::UndefinedObject => "42704",
            SqlState::InvalidName => "42602",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::DependentObjectsStillExist => "2BP01",
            SqlState::IoError => "58030",
            SqlState::OutOfMemory => "53200",
            SqlState::InternalError => "XX000",
            SqlState::CharacterNotInRepertoire => "22021",
            SqlState::NullValueNotAllowed => "22004",
            SqlState::ArraySubscriptError => "2202E",
            SqlState::DatatypeMismatch => "42804",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::ReadOnlySqlTransaction => "25006",
            SqlState::InvalidBinaryRepresentation => "22P03",
            // guest_sqlstate only accepts ASCII digits and upper-case letters.
            SqlState::Guest(code) => std::str::from_utf8(code).unwrap_or("38000"),
        }
    }
}

/// SQLSTATE classes a guest may not raise: not errors (00, 01, 02), or errors that tell the
/// client something about the server or the session that a function cannot know (connection,
/// transaction state and rollback, authorization, resources, operator intervention, system,
/// configuration, internal).
pub const RESERVED_SQLSTATE_CLASSES: &[&str] =
    &["00", "01", "02", "08", "25", "28", "3B", "40", "53", "55", "57", "58", "F0", "HV", "XX"];

/// The SQLSTATE a guest asked for, if it is well formed (five digits or upper-case letters)
/// and not in a reserved class; `Err` says why not.
pub fn guest_sqlstate(bytes: &[u8]) -> std::result::Result<SqlState, String> {
    let code: [u8; 5] = bytes.try_into().map_err(|_| format!("{} bytes, not 5", bytes.len()))?;
    if !code.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return Err("not five digits or upper-case letters".into());
    }
    let class = std::str::from_utf8(&code[..2]).unwrap_or("");
    if RESERVED_SQLSTATE_CLASSES.contains(&class) {
        return Err(format!("class {class} is reserved for the server"));
    }
    Ok(SqlState::Guest(code))
}

/// Why a guest trapped, in words a SQL user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapKind {
    Unreachable,
    MemoryOutOfBounds,
    TableOutOfBounds,
    IndirectCallToNull,
    BadSignature,
    IntegerDivisionByZero,
    IntegerOverflow,
    BadConversionToInteger,
    /// Any other trap, with wasmtime's own words.
    Other(String),
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::Unreachable => f.write_str("unreachable instruction executed"),
            TrapKind::MemoryOutOfBounds => f.write_str("out-of-bounds memory access"),
            TrapKind::TableOutOfBounds => f.write_str("out-of-bounds table access"),
            TrapKind::IndirectCallToNull => f.write_str("indirect call to a null table entry"),
            TrapKind::BadSignature => f.write_str("indirect call with a mismatched signature"),
            TrapKind::IntegerDivisionByZero => f.write_str("integer divide by zero"),
            TrapKind::IntegerOverflow => f.write_str("integer overflow"),
            TrapKind::BadConversionToInteger => f.write_str("invalid conversion to integer (NaN or out of range)"),
            TrapKind::Other(msg) => f.write_str(msg),
        }
    }
}

/// Everything that can go wrong in plwasm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlWasmError {
    // ---- definition errors, raised by the validator (and by the first call) ----
    /// The body is empty once directives and white space are removed.
    EmptyBody,
    /// A `@directive` line plwasm does not know, or one used wrongly.
    BadDirective { line: String, reason: String },
    /// WebAssembly text that does not parse; `message` carries the parser's line and column.
    WatSyntax { message: String },
    /// `\x…` hex or base64 that does not decode.
    BadEncoding { encoding: &'static str, message: String },
    /// Decoded bytes that are not a wasm binary (no `\0asm` header).
    NotWasm,
    /// Text that is none of the accepted forms.
    UnrecognizedBody,
    /// The module (or its source text) is over `plwasm.max_module_size`.
    ModuleTooLarge { size: usize, limit: usize },
    /// wasmtime refused the binary (validation or compilation), with its position.
    InvalidModule { message: String },
    /// The module imports something plwasm does not provide.
    ForbiddenImport { module: String, name: String, kind: String },
    /// No export of that name.
    MissingExport { export: String, functions: Vec<String> },
    /// An export of that name that is not a function.
    ExportNotFunction { export: String, kind: String },
    /// The export's wasm signature differs from what the SQL signature needs.
    SignatureMismatch { export: String, sql: String, expected: String, actual: String },
    /// A SQL type plwasm cannot pass to or from wasm.
    UnsupportedType { position: String, type_name: String },
    /// A function that is not STRICT.
    NotStrict,
    /// `RETURNS SETOF`, procedures, window functions.
    UnsupportedKind { what: String },
    /// The module's initial linear memory already exceeds `plwasm.max_memory`.
    InitialMemoryTooLarge { bytes: u64, limit: u64 },
    /// An aggregate support function whose signature or module does not fit its role.
    AggregateSupport { what: String },
    /// An aggregate support function called other than by an aggregate.
    NotInAggregate,
    /// A state made by another aggregate (or not by plwasm) handed to a support function.
    ForeignState,
    /// The state's instance failed earlier; the state is gone.
    StateLost,
    /// A flat `plwasm.state` that is not one (bad header), from text, binary input or a
    /// stored value; `text` for the text input function.
    MalformedState { why: String, text: bool },
    /// A flat state of another module or aggregate handed to a support function.
    StateOfAnotherAggregate { module: String, aggregate: String },
    /// PostgreSQL needs a state flat (parallel plans, copies) but the module's aggregate has
    /// no serialize export.
    StateNotSerializable,
    /// A set-returning function called where no set is accepted.
    SetNotAllowed,

    // ---- call-time errors ----
    /// The call used its whole fuel budget.
    FuelExhausted { limit: u64 },
    /// `memory.grow` (or instantiation) past `plwasm.max_memory`.
    MemoryLimit { requested: u64, limit: u64 },
    /// Growth that would take all instances of the session past `plwasm.max_session_memory`,
    /// after idle instances were evicted.
    SessionMemoryLimit { requested: u64, limit: u64 },
    /// A module over the compile-work bounds (functions per module, bytes per function body).
    CompileLimit { what: String },
    /// `table.grow` (or instantiation) past the table cap.
    TableLimit { requested: u64, limit: u64 },
    /// Wasm recursion past the wasm stack cap.
    StackOverflow { limit: usize },
    /// The guest trapped.
    Trap { kind: TrapKind, backtrace: Option<String> },
    /// Cancel or statement_timeout arrived while the guest ran.
    Interrupted,
    /// A result that does not fit its SQL type.
    ResultOutOfRange { type_name: &'static str, value: String },
    /// An argument that cannot be represented in the guest's type.
    ArgumentOutOfRange { type_name: &'static str },
    /// The same instance was entered while already running.
    Reentered,
    /// Instantiation failed for a reason other than a limit (e.g. the start function trapped
    /// is reported as a trap; this is for link errors and the like).
    Instantiate { message: String },
    /// A module declares an ABI this build does not run.
    UnsupportedAbi { declared: String, supported: &'static [u32] },
    /// No stored module of that name.
    ModuleNotFound { module: String },
    /// Not a valid module name.
    BadModuleName { module: String },
    /// The current role does not own the module.
    NotModuleOwner { module: String },
    /// The current role may not use the module.
    ModulePermissionDenied { module: String },
    /// Functions still use the module.
    ModuleInUse { module: String, functions: Vec<String> },
    /// A change to the module store on a hot standby (or in a read-only transaction).
    StoreReadOnly { module: String, standby: bool },
    /// A Citus coordinator could not make the same store change on its workers.
    WorkerChangeFailed { module: String, failures: String },
    /// ABI 0 cannot pass this type; the module must target ABI 1.
    TypeNeedsAbi1 { position: String, type_name: String },
    /// An ABI 1 module lacks an export the ABI requires, or has it with the wrong type.
    AbiExportMissing { name: &'static str, expected: &'static str, actual: Option<String> },
    /// The arguments of one call need more guest memory than `plwasm.max_memory`.
    ArgumentsTooLarge { bytes: u64, limit: u64 },
    /// A result longer than PostgreSQL can store in one value.
    ResultTooLarge { bytes: u64, limit: u64 },
    /// The guest broke the ABI: a pointer or length outside its memory, a bad allocation.
    AbiViolation { what: String },
    /// Text from the guest that is not valid UTF-8 or holds a NUL byte.
    InvalidText { what: String },
    /// An array argument with NULL elements.
    ArrayHasNulls { position: usize },
    /// An array argument with more than one dimension.
    ArrayNotOneDimensional { position: usize, dims: usize },
    /// The guest called `plwasm.raise`.
    GuestRaised { sqlstate: SqlState, message: String, refused: Option<String> },
    /// A line of a module's `plwasm.signatures` section that plwasm refuses.
    BadDeclaration { message: String },
    /// `plwasm.create_functions` on a module that declares no functions.
    NothingDeclared { module: String },
    /// Something only a superuser may do (`clear the plwasm code cache`).
    SuperuserRequired { to: String },
    /// A role that does not exist.
    RoleNotFound { role: String },
    /// The code cache directory could not be cleared.
    CodeCacheIo { message: String },
    /// An error in an aggregate's accumulate or retract step (`export`), while rows queued
    /// earlier were handed over because another support function needed them.
    InBatch { export: String, error: Box<PlWasmError> },
    /// The host could not allocate `bytes` for a buffer (checked allocation, not an abort).
    OutOfMemory { bytes: u64, what: &'static str },
    /// A bug: should never reach a user.
    Internal { message: String },
}

/// What the extension hands to `ereport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub sqlstate: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// What an error is about: a SQL function, or a stored module (for `plwasm.install_module`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Function(&'a str),
    Module(&'a str),
}

impl Subject<'_> {
    fn name(&self) -> &str {
        match self {
            Subject::Function(name) | Subject::Module(name) => name,
        }
    }

    /// `wasm module of function "f"` or `wasm module "m"`.
    fn module_phrase(&self) -> String {
        match self {
            Subject::Function(name) => format!("wasm module of function \"{name}\""),
            Subject::Module(name) => format!("wasm module \"{name}\""),
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * KB;
    const GB: u64 = 1024 * MB;
    if bytes >= GB && bytes.is_multiple_of(GB) {
        format!("{}GB", bytes / GB)
    } else if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{}MB", bytes / MB)
    } else if bytes >= KB && bytes.is_multiple_of(KB) {
        format!("{}kB", bytes / KB)
    } else {
        format!("{bytes} bytes")
    }
}

impl PlWasmError {
    /// The SQLSTATE this error is raised with.
    pub fn sqlstate(&self) -> SqlState {
        use PlWasmError::*;
        match self {
            EmptyBody
            | BadDirective { .. }
            | WatSyntax { .. }
            | BadEncoding { .. }
            | NotWasm
            | UnrecognizedBody
            | ModuleTooLarge { .. }
            | InvalidModule { .. }
            | ForbiddenImport { .. }
            | MissingExport { .. }
            | ExportNotFunction { .. }
            | SignatureMismatch { .. }
            | UnsupportedType { .. }
            | NotStrict
            | UnsupportedKind { .. }
            | TypeNeedsAbi1 { .. }
            | BadDeclaration { .. }
            | NothingDeclared { .. }
            | AbiExportMissing { .. }
            | AggregateSupport { .. }
            | InitialMemoryTooLarge { .. } => SqlState::InvalidFunctionDefinition,
            NotInAggregate | SetNotAllowed => SqlState::FeatureNotSupported,
            ForeignState | StateOfAnotherAggregate { .. } => SqlState::DatatypeMismatch,
            MalformedState { text: true, .. } => SqlState::InvalidTextRepresentation,
            MalformedState { text: false, .. } => SqlState::InvalidBinaryRepresentation,
            StateNotSerializable => SqlState::FeatureNotSupported,
            StateLost => SqlState::ObjectNotInPrerequisiteState,
            FuelExhausted { .. }
            | MemoryLimit { .. }
            | SessionMemoryLimit { .. }
            | CompileLimit { .. }
            | TableLimit { .. }
            | ArgumentsTooLarge { .. }
            | ResultTooLarge { .. } => SqlState::ProgramLimitExceeded,
            AbiViolation { .. } => SqlState::ExternalRoutineException,
            InvalidText { .. } => SqlState::CharacterNotInRepertoire,
            ArrayHasNulls { .. } => SqlState::NullValueNotAllowed,
            ArrayNotOneDimensional { .. } => SqlState::ArraySubscriptError,
            GuestRaised { sqlstate, .. } => *sqlstate,
            StackOverflow { .. } => SqlState::StatementTooComplex,
            Trap { kind: TrapKind::IntegerDivisionByZero, .. } => SqlState::DivisionByZero,
            Trap { kind: TrapKind::IntegerOverflow | TrapKind::BadConversionToInteger, .. } => {
                SqlState::NumericValueOutOfRange
            }
            Trap { .. } | Instantiate { .. } => SqlState::ExternalRoutineException,
            Interrupted => SqlState::QueryCanceled,
            ResultOutOfRange { type_name, .. } | ArgumentOutOfRange { type_name } => {
                if matches!(*type_name, "date" | "timestamp" | "timestamptz") {
                    SqlState::DatetimeFieldOverflow
                } else {
                    SqlState::NumericValueOutOfRange
                }
            }
            Reentered | UnsupportedAbi { .. } => SqlState::FeatureNotSupported,
            ModuleNotFound { .. } => SqlState::UndefinedObject,
            BadModuleName { .. } => SqlState::InvalidName,
            NotModuleOwner { .. } | ModulePermissionDenied { .. } => SqlState::InsufficientPrivilege,
            ModuleInUse { .. } => SqlState::DependentObjectsStillExist,
            StoreReadOnly { .. } => SqlState::ReadOnlySqlTransaction,
            WorkerChangeFailed { .. } => SqlState::ObjectNotInPrerequisiteState,
            OutOfMemory { .. } => SqlState::OutOfMemory,
            InBatch { error, .. } => error.sqlstate(),
            SuperuserRequired { .. } => SqlState::InsufficientPrivilege,
            RoleNotFound { .. } => SqlState::UndefinedObject,
            CodeCacheIo { .. } => SqlState::IoError,
            Internal { .. } => SqlState::InternalError,
        }
    }

    /// The full report for an error about `subject`.
    pub fn report(&self, subject: Subject<'_>) -> Report {
        use PlWasmError::*;
        let sqlstate = self.sqlstate();
        let function = subject.name();
        let module_phrase = subject.module_phrase();
        let (message, detail, hint): (String, Option<String>, Option<String>) = match self {
            EmptyBody => (
                format!("wasm function \"{function}\" has an empty body"),
                None,
                Some("The body must be a whole module: WebAssembly text, \\x-prefixed hex, or base64.".into()),
            ),
            BadDirective { line, reason } => (
                format!("invalid directive in wasm function \"{function}\": {reason}"),
                Some(format!("Directive line: {line}")),
                Some("The only directive is \"@export name\", on its own line before the module.".into()),
            ),
            WatSyntax { message } => (
                format!("invalid WebAssembly text in function \"{function}\""),
                Some(message.clone()),
                None,
            ),
            BadEncoding { encoding, message } => (
                format!("invalid {encoding} in wasm function \"{function}\""),
                Some(message.clone()),
                None,
            ),
            NotWasm => (
                match subject {
                    Subject::Function(_) => format!("body of wasm function \"{function}\" does not decode to a WebAssembly binary"),
                    Subject::Module(_) => format!("{module_phrase} is not a WebAssembly binary"),
                },
                Some("A binary module starts with the bytes \\x0061736d (\"\\0asm\").".into()),
                None,
            ),
            UnrecognizedBody => (
                format!("body of wasm function \"{function}\" is not a WebAssembly module"),
                None,
                Some("Give WebAssembly text starting with \"(module\", a binary as \\x-prefixed hex, or a binary as base64.".into()),
            ),
            ModuleTooLarge { size, limit } => (
                format!("{module_phrase} is too large"),
                Some(format!(
                    "The module is {} and plwasm.max_module_size is {}.",
                    human_bytes(*size as u64),
                    human_bytes(*limit as u64)
                )),
                Some("A superuser can raise plwasm.max_module_size.".into()),
            ),
            InvalidModule { message } => (
                format!("{module_phrase} is not valid WebAssembly"),
                Some(message.clone()),
                None,
            ),
            ForbiddenImport { module, name, kind } => (
                format!("{module_phrase} imports {kind} \"{module}\".\"{name}\", which plwasm does not provide"),
                Some("plwasm grants no host access: ABI 0 modules may import nothing, ABI 1 modules only the functions plwasm.raise and plwasm.log, both (i32, i32, i32) -> ().".into()),
                None,
            ),
            MissingExport { export, functions } => (
                format!("{module_phrase} has no export named \"{export}\""),
                Some(if functions.is_empty() {
                    "The module exports no functions.".into()
                } else {
                    format!("Exported functions: {}.", functions.join(", "))
                }),
                Some("Name the export like the SQL function, or put \"@export name\" on the first line of the body.".into()),
            ),
            ExportNotFunction { export, kind } => (
                format!("export \"{export}\" of wasm function \"{function}\" is a {kind}, not a function"),
                None,
                None,
            ),
            SignatureMismatch { export, sql, expected, actual } => (
                format!("wasm export \"{export}\" does not match the SQL signature of function \"{function}\""),
                Some(format!("SQL signature {sql} needs wasm type {expected}, but the export has type {actual}.")),
                Some("See the type mapping in the plwasm documentation.".into()),
            ),
            UnsupportedType { position, type_name } => (
                format!("wasm functions cannot use type {type_name}"),
                Some(format!("{position} of function \"{function}\" has type {type_name}.")),
                Some({
                    let mut hint = String::new();
                    let _ = plwasm_contract::types::write_supported_types(&mut hint);
                    hint
                }),
            ),
            NotStrict => (
                format!("wasm function \"{function}\" must be declared STRICT"),
                Some("Its module targets ABI 0, which has no way to pass or return NULL.".into()),
                Some("Add STRICT (RETURNS NULL ON NULL INPUT), or build the module for ABI 1, which passes NULLs.".into()),
            ),
            TypeNeedsAbi1 { position, type_name } => (
                format!("wasm function \"{function}\" needs an ABI 1 module for type {type_name}"),
                Some(format!("{position} has type {type_name}; the module targets ABI 0, which passes only numbers, dates and timestamps.")),
                Some("Build the module for ABI 1 (export plwasm_abi_v1, memory and plwasm_alloc), for example with the plwasm-guest Rust crate.".into()),
            ),
            AbiExportMissing { name, expected, actual } => (
                format!("{module_phrase} targets ABI 1 but does not export {name} as {expected}"),
                actual.as_ref().map(|a| format!("The module's \"{name}\" is {a}.")),
                Some("See docs/abi.md for what an ABI 1 module exports.".into()),
            ),
            ArgumentsTooLarge { bytes, limit } => (
                format!("arguments of wasm function \"{function}\" are too large"),
                Some(format!("They need {} of guest memory; plwasm.max_memory is {}.", human_bytes(*bytes), human_bytes(*limit))),
                Some("A superuser can raise plwasm.max_memory.".into()),
            ),
            ResultTooLarge { bytes, limit } => (
                format!("wasm function \"{function}\" returned a value that is too large"),
                Some(format!("The result is {} long; the limit is {}.", human_bytes(*bytes), human_bytes(*limit))),
                None,
            ),
            AbiViolation { what } => (
                format!("wasm function \"{function}\" broke the plwasm ABI"),
                Some(format!("{what}.")),
                None,
            ),
            InvalidText { what } => (
                format!("wasm function \"{function}\" returned invalid text"),
                Some(format!("{what}.")),
                None,
            ),
            BadDeclaration { message } => (
                format!("{module_phrase} declares an invalid SQL signature"),
                Some(format!("In its plwasm.signatures section: {message}.")),
                None,
            ),
            NothingDeclared { module } => (
                format!("wasm module \"{module}\" declares no SQL functions"),
                Some("The module has no plwasm.signatures section.".into()),
                Some("Build it with the plwasm-guest Rust crate, or create its functions with CREATE FUNCTION ... AS 'module:export'.".into()),
            ),
            ArrayHasNulls { position } => (
                format!("array argument {position} of wasm function \"{function}\" contains NULL elements"),
                None,
                Some("wasm functions take arrays without NULLs; remove them first, e.g. with array_remove(a, NULL).".into()),
            ),
            ArrayNotOneDimensional { position, dims } => (
                format!("array argument {position} of wasm function \"{function}\" has {dims} dimensions"),
                Some("wasm functions take one-dimensional arrays.".into()),
                None,
            ),
            GuestRaised { message, refused, .. } => (
                message.clone(),
                refused.as_ref().map(|why| format!("The module asked for SQLSTATE {why}; plwasm raised 38000 instead.")),
                None,
            ),
            UnsupportedKind { what } => (
                format!("{what} cannot be written in language wasm"),
                None,
                None,
            ),
            InitialMemoryTooLarge { bytes, limit } => (
                format!("{module_phrase} needs more initial memory than plwasm.max_memory allows"),
                Some(format!("The module declares {} of initial memory; plwasm.max_memory is {}.", human_bytes(*bytes), human_bytes(*limit))),
                Some("A superuser can raise plwasm.max_memory.".into()),
            ),
            FuelExhausted { limit } => (
                format!("wasm function \"{function}\" ran out of fuel"),
                Some(format!("The call used its whole budget of {limit} fuel units (about one unit per wasm instruction).")),
                Some("A superuser can raise plwasm.fuel_limit, or set it to 0 for no limit.".into()),
            ),
            MemoryLimit { requested, limit } => (
                format!("wasm function \"{function}\" exceeded its memory limit"),
                Some(format!("The module asked for {} of linear memory; plwasm.max_memory is {}.", human_bytes(*requested), human_bytes(*limit))),
                Some("A superuser can raise plwasm.max_memory.".into()),
            ),
            SessionMemoryLimit { requested, limit } => (
                format!("wasm function \"{function}\" exceeded the session's wasm memory limit"),
                Some(format!(
                    "All wasm instances of this session would need {}; plwasm.max_session_memory is {}. Idle instances were already dropped.",
                    human_bytes(*requested),
                    human_bytes(*limit)
                )),
                Some("Use fewer wasm functions with large memories in one statement, lower plwasm.max_memory, or have a superuser raise plwasm.max_session_memory.".into()),
            ),
            CompileLimit { what } => (
                format!("{module_phrase} is too complex to compile"),
                Some(what.clone()),
                Some("Split the module, or build it with fewer or smaller functions.".into()),
            ),
            TableLimit { requested, limit } => (
                format!("wasm function \"{function}\" exceeded its table limit"),
                Some(format!("The module asked for a table of {requested} elements; the cap is {limit}.")),
                None,
            ),
            StackOverflow { limit } => (
                format!("stack depth limit exceeded in wasm function \"{function}\""),
                Some(format!("The wasm call stack reached plwasm.max_stack ({}).", human_bytes(*limit as u64))),
                Some("Look for unbounded recursion in the module; a superuser can raise plwasm.max_stack for new sessions.".into()),
            ),
            Trap { kind, backtrace } => (
                format!("wasm function \"{function}\" trapped: {kind}"),
                backtrace.as_ref().map(|bt| format!("wasm backtrace: {bt}")),
                None,
            ),
            Interrupted => (
                format!("canceling wasm function \"{function}\" due to an interrupt"),
                None,
                None,
            ),
            ResultOutOfRange { type_name, value } => (
                format!("wasm function \"{function}\" returned a value out of range for type {type_name}"),
                Some(format!("The function returned {value}.")),
                None,
            ),
            ArgumentOutOfRange { type_name } => (
                format!("argument of wasm function \"{function}\" is out of the range plwasm can pass as {type_name}"),
                Some("Timestamps after about 294246 AD do not fit in 64-bit microseconds since 1970.".into()),
                None,
            ),
            AggregateSupport { what } => (
                format!("wasm function \"{function}\" is not a valid aggregate support function"),
                Some(what.clone()),
                Some("See \"Aggregates\" in docs/abi.md for the exports and signatures a wasm aggregate needs.".into()),
            ),
            NotInAggregate => (
                format!("wasm aggregate support function \"{function}\" called in non-aggregate context"),
                None,
                None,
            ),
            ForeignState => (
                format!("wasm aggregate support function \"{function}\" was given a state its aggregate did not make"),
                Some("Each support function of a wasm aggregate accepts only states made by the same module's same aggregate.".into()),
                Some("Make the aggregate's support functions parts of one aggregate of one module (plwasm.create_functions does).".into()),
            ),
            StateOfAnotherAggregate { module, aggregate } => (
                format!("wasm aggregate support function \"{function}\" was given a state of another aggregate"),
                Some(format!("The state was made by aggregate \"{aggregate}\" of the module with SHA-256 {module}.")),
                Some("A plwasm.state value is read only by the aggregate, of the same module content, that made it.".into()),
            ),
            MalformedState { why, text } => (
                if *text {
                    "invalid input syntax for type plwasm.state".to_string()
                } else {
                    "invalid plwasm.state value".to_string()
                },
                Some(why.clone()),
                None,
            ),
            StateNotSerializable => (
                format!("the state of wasm aggregate \"{function}\" cannot be made flat"),
                Some("PostgreSQL needs this state as bytes here (a parallel plan or a copy), and the module's aggregate has no serialize export.".into()),
                Some("Give the aggregate serialize and deserialize exports (the Rust SDK adds them for states that derive plwasm_guest::State).".into()),
            ),
            StateLost => (
                format!("the aggregate state of wasm function \"{function}\" was lost"),
                Some("An earlier error stopped the module instance that held the state.".into()),
                None,
            ),
            SetNotAllowed => (
                format!("set-valued function \"{function}\" called in context that cannot accept a set"),
                None,
                None,
            ),
            Reentered => (
                format!("wasm function \"{function}\" was called while it was already running"),
                None,
                None,
            ),
            Instantiate { message } => (
                format!("could not instantiate the wasm module of function \"{function}\""),
                Some(message.clone()),
                None,
            ),
            UnsupportedAbi { declared, supported } => (
                format!("{module_phrase} declares an ABI this plwasm does not support (export \"{declared}\")"),
                Some(format!(
                    "Supported ABIs: {}. A module without a plwasm_abi_vN export uses ABI 0.",
                    supported.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
                )),
                None,
            ),
            ModuleNotFound { module } => (
                format!("wasm module \"{module}\" does not exist"),
                None,
                Some("Install it with plwasm.install_module(name, wasm); plwasm.modules lists the installed ones.".into()),
            ),
            BadModuleName { module } => (
                format!("invalid wasm module name \"{module}\""),
                Some("A module name is a letter or underscore, then up to 62 letters, digits or underscores.".into()),
                None,
            ),
            NotModuleOwner { module } => (format!("must be owner of wasm module \"{module}\""), None, None),
            ModulePermissionDenied { module } => (
                format!("permission denied for wasm module \"{module}\""),
                None,
                Some("The module's owner can allow it with plwasm.grant_module(module, role).".into()),
            ),
            WorkerChangeFailed { module, failures } => (
                format!("could not change wasm module \"{module}\" on the Citus workers"),
                Some(failures.clone()),
                Some("The coordinator's change is rolled back; workers that succeeded keep theirs. Fix the workers and run it again.".into()),
            ),
            StoreReadOnly { module, standby } => (
                if *standby {
                    format!("cannot change wasm module \"{module}\" on a hot standby")
                } else {
                    format!("cannot change wasm module \"{module}\" in a read-only transaction")
                },
                None,
                Some(if *standby {
                    "Change it on the primary; standbys get the module store by replication.".into()
                } else {
                    "Change it in a read-write transaction.".into()
                }),
            ),
            ModuleInUse { module, functions } => (
                format!("cannot drop wasm module \"{module}\" because other objects depend on it"),
                Some(format!("Used by: {}.", functions.join(", "))),
                Some("Drop those functions first, or use plwasm.drop_module(name, cascade => true).".into()),
            ),
            InBatch { export, error } => {
                let inner = error.report(Subject::Function(export));
                let handed_over = format!(
                    "The error happened in export \"{export}\", which was handed queued rows when \"{function}\" was called."
                );
                let detail = match inner.detail {
                    Some(detail) => format!("{detail}\n{handed_over}"),
                    None => handed_over,
                };
                (inner.message, Some(detail), inner.hint)
            }
            SuperuserRequired { to } => (format!("must be superuser to {to}"), None, None),
            RoleNotFound { role } => (format!("role \"{role}\" does not exist"), None, None),
            CodeCacheIo { message } => (message.clone(), None, None),
            OutOfMemory { bytes, what } => (
                "out of memory".to_string(),
                Some(format!("Failed on request of size {bytes} for {what} of wasm function \"{function}\".")),
                None,
            ),
            Internal { message } => (
                match subject {
                    _ if function.is_empty() => format!("internal plwasm error: {message}"),
                    Subject::Function(_) => format!("internal plwasm error in function \"{function}\": {message}"),
                    Subject::Module(_) => format!("internal plwasm error about wasm module \"{function}\": {message}"),
                },
                None,
                None,
            ),
        };
        Report { sqlstate, message, detail, hint }
    }
}

impl fmt::Display for PlWasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.report(Subject::Function("?"));
        f.write_str(&report.message)?;
        if let Some(detail) = report.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlWasmError {}

pub type Result<T, E = PlWasmError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_postgres_sqlstates() {
        assert_eq!(PlWasmError::NotStrict.sqlstate().code(), "42P13");
        assert_eq!(PlWasmError::FuelExhausted { limit: 1 }.sqlstate().code(), "54000");
        assert_eq!(PlWasmError::StackOverflow { limit: 1 }.sqlstate().code(), "54001");
        let div = PlWasmError::Trap { kind: TrapKind::IntegerDivisionByZero, backtrace: None };
        assert_eq!(div.sqlstate().code(), "22012");
        let oob = PlWasmError::Trap { kind: TrapKind::MemoryOutOfBounds, backtrace: None };
        assert_eq!(oob.sqlstate().code(), "38000");
        let ts = PlWasmError::ResultOutOfRange { type_name: "timestamp", value: "1".into() };
        assert_eq!(ts.sqlstate().code(), "22008");
        let i2 = PlWasmError::ResultOutOfRange { type_name: "smallint", value: "1".into() };
        assert_eq!(i2.sqlstate().code(), "22003");
    }

    #[test]
    fn definition_helpers_report_like_postgres() {
        let cases = [
            (PlWasmError::RoleNotFound { role: "nobody".into() }, "42704", "role \"nobody\" does not exist"),
            (PlWasmError::CodeCacheIo { message: "cannot clear".into() }, "58030", "cannot clear"),
        ];
        for (err, code, message) in cases {
            let report = err.report(Subject::Function("a"));
            assert_eq!((report.sqlstate.code(), report.message.as_str()), (code, message));
        }
        let internal = PlWasmError::Internal { message: "x".into() };
        assert_eq!(internal.report(Subject::Module("m")).message, "internal plwasm error about wasm module \"m\": x");
        assert_eq!(internal.report(Subject::Function("")).message, "internal plwasm error: x");
    }

    #[test]
    fn guests_choose_sqlstates_outside_reserved_classes() {
        assert_eq!(guest_sqlstate(b"22023").map(|s| s.code().to_string()), Ok("22023".into()));
        assert_eq!(guest_sqlstate(b"P0001").map(|s| s.code().to_string()), Ok("P0001".into()));
        assert!(guest_sqlstate(b"XX000").unwrap_err().contains("reserved"));
        assert!(guest_sqlstate(b"57014").is_err());
        assert!(guest_sqlstate(b"2202e").is_err());
        assert!(guest_sqlstate(b"2202").is_err());
        let raised =
            PlWasmError::GuestRaised { sqlstate: SqlState::Guest(*b"22023"), message: "bad".into(), refused: None };
        assert_eq!(raised.sqlstate().code(), "22023");
        assert_eq!(raised.report(Subject::Function("f")).message, "bad");
    }

    #[test]
    fn fuel_report_says_how_to_raise_it() {
        let r = PlWasmError::FuelExhausted { limit: 1000 }.report(Subject::Function("spin"));
        assert_eq!(r.message, "wasm function \"spin\" ran out of fuel");
        assert!(r.detail.unwrap().contains("1000 fuel units"));
        assert!(r.hint.unwrap().contains("plwasm.fuel_limit"));
    }

    #[test]
    fn module_errors_name_the_module() {
        let r = PlWasmError::NotWasm.report(Subject::Module("text_utils"));
        assert_eq!(r.message, "wasm module \"text_utils\" is not a WebAssembly binary");
        let r = PlWasmError::InvalidModule { message: "x".into() }.report(Subject::Function("f"));
        assert_eq!(r.message, "wasm module of function \"f\" is not valid WebAssembly");
    }

    #[test]
    fn sizes_print_in_guc_units() {
        assert_eq!(human_bytes(64 * 1024 * 1024), "64MB");
        assert_eq!(human_bytes(512 * 1024), "512kB");
        assert_eq!(human_bytes(4 * 1024 * 1024 * 1024), "4GB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
