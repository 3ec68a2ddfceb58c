//! SQL signatures a module declares for its exports, so `plwasm.create_functions(module)` can
//! create all its functions in one call.
//!
//! A module carries them in custom sections, one line per function, in the format of the
//! guest contract (`plwasm_contract::signature_line`, written there by the SDK's macros and
//! split there for this module). An `aggregate` line declares a wasm aggregate whose exports
//! are `prefix.new`, `prefix.accumulate`, ... (see [`crate::aggregate`]).
//!
//! Everything is checked here, because the module is untrusted and the extension turns these
//! lines into SQL: names must be plain lower-case identifiers and types must be ones plwasm
//! passes, so nothing in a module can inject SQL.

use plwasm_contract::batch::is_row_type;
use plwasm_contract::signature_line::{named_items, Kind, LineError, ReadLine, Returns};

use crate::error::{PlWasmError, Result};
use crate::types::SqlType;

/// The custom section holding the declarations.
pub use plwasm_contract::names::SIGNATURE_SECTION as SECTION;

/// One function a module declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub sql_name: String,
    pub export: String,
    pub args: Vec<(String, SqlType)>,
    pub ret: SqlType,
    pub strict: bool,
    pub volatility: &'static str,
    /// `RETURNS SETOF type` (one unnamed column) or `RETURNS TABLE (...)`; `ret` is then void.
    pub set_of: Option<Vec<(String, SqlType)>>,
    /// For an aggregate, the optional parts it has; `export` is then the export prefix.
    pub aggregate: Option<AggregateParts>,
}

/// The optional parts of a declared aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateParts {
    /// merge, serialize and deserialize: partial (parallel) aggregation.
    pub merge: bool,
    /// retract: moving-aggregate mode for window frames.
    pub retract: bool,
}

/// Support function names add at most this suffix (`_deserialize`) to an aggregate's name.
const LONGEST_SUPPORT_SUFFIX: usize = "_deserialize".len();

impl DeclaredFunction {
    /// `name(arg type, ...) RETURNS type LANGUAGE wasm STRICT IMMUTABLE PARALLEL SAFE`, without
    /// the body, with `schema.` in front when given (already quoted by the caller).
    ///
    /// `quote` quotes identifiers (the extension passes PostgreSQL's `quote_identifier`).
    pub fn create_statement(
        &self,
        qualified_schema: Option<&str>,
        body: &str,
        replace: bool,
        quote: impl Fn(&str) -> String,
    ) -> String {
        let args: Vec<String> =
            self.args.iter().map(|(name, ty)| format!("{} {}", quote(name), ty.sql_name())).collect();
        let schema = qualified_schema.map(|s| format!("{s}.")).unwrap_or_default();
        let returns = match self.set_of.as_deref() {
            None => self.ret.sql_name().to_string(),
            Some([(name, ty)]) if name.is_empty() => format!("SETOF {}", ty.sql_name()),
            Some(columns) => {
                let columns: Vec<String> =
                    columns.iter().map(|(name, ty)| format!("{} {}", quote(name), ty.sql_name())).collect();
                format!("TABLE({})", columns.join(", "))
            }
        };
        format!(
            "{} {schema}{}({}) RETURNS {returns} LANGUAGE wasm {} {} PARALLEL SAFE AS '{body}'",
            create_verb(replace),
            quote(&self.sql_name),
            args.join(", "),
            if self.strict { "STRICT" } else { "CALLED ON NULL INPUT" },
            self.volatility.to_ascii_uppercase(),
        )
    }

    /// For an aggregate: its support functions' CREATE statements (bodies naming
    /// `module:prefix.role`), then the `CREATE AGGREGATE` that pairs them, with state type
    /// `plwasm.state`. Plain DDL, run as the caller: PostgreSQL checks ownership and
    /// privileges as for any aggregate.
    pub fn aggregate_statements(
        &self,
        qualified_schema: Option<&str>,
        module: &str,
        replace: bool,
        quote: impl Fn(&str) -> String,
    ) -> Vec<String> {
        let Some(parts) = self.aggregate else { return Vec::new() };
        let schema = qualified_schema.map(|s| format!("{s}.")).unwrap_or_default();
        let types: Vec<&str> = self.args.iter().map(|(_, ty)| ty.sql_name()).collect();
        let extra_args: String = types.iter().map(|t| format!(", {t}")).collect();
        let state = SqlType::State.sql_name();
        let support = |role: &str| format!("{schema}{}", quote(&format!("{}_{role}", self.sql_name)));
        let create = |role: &str, signature: String| {
            format!(
                "{} {}{signature} CALLED ON NULL INPUT LANGUAGE wasm IMMUTABLE PARALLEL SAFE AS '{module}:{}.{role}'",
                create_verb(replace),
                support(role),
                self.export
            )
        };
        let mut statements = vec![
            create("accumulate", format!("({state}{extra_args}) RETURNS {state}")),
            create("finalize", format!("({state}) RETURNS {}", self.ret.sql_name())),
        ];
        let mut options = vec![
            format!("SFUNC = {}", support("accumulate")),
            format!("STYPE = {state}"),
            format!("FINALFUNC = {}", support("finalize")),
        ];
        if parts.merge {
            statements.push(create("merge", format!("({state}, {state}) RETURNS {state}")));
            options.push(format!("COMBINEFUNC = {}", support("merge")));
        }
        if parts.retract {
            statements.push(create("retract", format!("({state}{extra_args}) RETURNS {state}")));
            options.push(format!("MSFUNC = {}", support("accumulate")));
            options.push(format!("MINVFUNC = {}", support("retract")));
            options.push(format!("MSTYPE = {state}"));
            options.push(format!("MFINALFUNC = {}", support("finalize")));
        }
        options.push("PARALLEL = SAFE".into());
        statements.push(format!(
            "CREATE {}AGGREGATE {schema}{}({}) ({})",
            if replace { "OR REPLACE " } else { "" },
            quote(&self.sql_name),
            types.join(", "),
            options.join(", ")
        ));
        statements
    }

    /// `name(type, type)`, as `regprocedure` prints it.
    pub fn identity(&self) -> String {
        let args: Vec<&str> = self.args.iter().map(|(_, ty)| ty.sql_name()).collect();
        format!("{}({})", self.sql_name, args.join(","))
    }
}

/// The declarations in `wasm`'s [`SECTION`] custom sections, in order.
pub fn declared_functions(wasm: &[u8]) -> Result<Vec<DeclaredFunction>> {
    let bad = |message: String| PlWasmError::BadDeclaration { message };
    let mut text = String::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|err| PlWasmError::InvalidModule { message: err.to_string() })?;
        if let wasmparser::Payload::CustomSection(section) = payload {
            if section.name() == SECTION {
                let chunk = std::str::from_utf8(section.data()).map_err(|_| bad("the section is not UTF-8".into()))?;
                text.push_str(chunk);
                text.push('\n');
            }
        }
    }
    let mut functions: Vec<DeclaredFunction> = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        let function = parse_line(line).map_err(|why| bad(format!("{why} in line \"{}\"", line.escape_debug())))?;
        if functions.iter().any(|f| f.identity() == function.identity()) {
            return Err(bad(format!("{} is declared twice", function.identity())));
        }
        functions.push(function);
    }
    Ok(functions)
}

/// PostgreSQL's NAMEDATALEN - 1.
const MAX_IDENTIFIER: usize = 63;

fn identifier(name: &str, what: &str) -> std::result::Result<String, String> {
    // Lower case only, so the name means the same quoted or not (the extension still quotes).
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && name.len() <= MAX_IDENTIFIER {
        Ok(name.to_string())
    } else {
        Err(format!("{what} \"{}\" is not a lower-case identifier", name.escape_debug()))
    }
}

fn sql_type(name: &str) -> std::result::Result<SqlType, String> {
    SqlType::from_sql_name(name).ok_or_else(|| format!("type \"{}\" is not one plwasm passes", name.escape_debug()))
}

fn parse_line(line: &str) -> std::result::Result<DeclaredFunction, String> {
    let line = ReadLine::parse(line).map_err(|err| err.to_string())?;
    let sql_name = identifier(line.sql_name, "function name")?;
    let is_aggregate = matches!(line.kind, Kind::Aggregate { .. });
    if is_aggregate && sql_name.len() + LONGEST_SUPPORT_SUFFIX > MAX_IDENTIFIER {
        return Err(format!("aggregate name \"{sql_name}\" is too long for its support functions' names"));
    }
    // An export name may be any string wasm allows, but it ends up inside a quoted SQL literal.
    let export = line.export;
    if export.is_empty() || !export.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("export name \"{}\" is not letters, digits and underscores", export.escape_debug()));
    }
    let mut args = Vec::new();
    for item in named_items(line.args) {
        let (name, ty) = item.map_err(|err| untyped("argument", err))?;
        let ty = sql_type(ty)?;
        if ty == SqlType::Void {
            return Err("void is not an argument type".into());
        }
        args.push((identifier(name, "argument name")?, ty));
    }
    let (ret, set_of) = result(line.returns)?;
    let export = export.to_string();
    match line.kind {
        Kind::Aggregate { merge, retract } => {
            if set_of.is_some() || ret == SqlType::Void {
                return Err("an aggregate returns one value".into());
            }
            if args.is_empty() || args.iter().any(|(_, ty)| !is_row_type(*ty)) {
                return Err("aggregate arguments must be fixed-width types, text or bytea".into());
            }
            let aggregate = Some(AggregateParts { merge, retract });
            Ok(DeclaredFunction {
                sql_name,
                export,
                args,
                ret,
                strict: false,
                volatility: "immutable",
                set_of: None,
                aggregate,
            })
        }
        Kind::Function { strict, volatility } => Ok(DeclaredFunction {
            sql_name,
            export,
            args,
            ret,
            strict,
            volatility: volatility.keyword(),
            set_of,
            aggregate: None,
        }),
    }
}

/// `argument "x" has no type`.
fn untyped(what: &str, err: LineError<'_>) -> String {
    match err {
        LineError::Untyped(item) => format!("{what} \"{item}\" has no type"),
        other => other.to_string(),
    }
}

/// A declared result: its type, and for a set its named columns.
type DeclaredResult = (SqlType, Option<Vec<(String, SqlType)>>);

fn result(returns: Returns<'_, &str>) -> std::result::Result<DeclaredResult, String> {
    let value_type = |name: &str| match sql_type(name)? {
        SqlType::Void => Err("a set's columns cannot be void".to_string()),
        ty => Ok(ty),
    };
    match returns {
        Returns::Value(ty) => Ok((sql_type(ty)?, None)),
        Returns::SetOf(ty) => Ok((SqlType::Void, Some(vec![(String::new(), value_type(ty)?)]))),
        Returns::Table(columns) => {
            let mut parsed = Vec::new();
            for item in named_items(columns) {
                let (name, ty) = item.map_err(|err| untyped("column", err))?;
                parsed.push((identifier(name, "column name")?, value_type(ty)?));
            }
            if parsed.is_empty() {
                return Err("a table result has no columns".into());
            }
            Ok((SqlType::Void, Some(parsed)))
        }
    }
}

/// `CREATE OR REPLACE FUNCTION` when replacing is asked for, else `CREATE FUNCTION` (which
/// fails on an existing function instead of silently replacing it).
fn create_verb(replace: bool) -> &'static str {
    if replace {
        "CREATE OR REPLACE FUNCTION"
    } else {
        "CREATE FUNCTION"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_with(section: &str) -> Vec<u8> {
        // A custom section: id 0, size, name (length-prefixed), payload.
        let mut body = vec![SECTION.len() as u8];
        body.extend_from_slice(SECTION.as_bytes());
        body.extend_from_slice(section.as_bytes());
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.push(0);
        wasm.push(body.len() as u8); // tests keep sections under 128 bytes
        wasm.extend(body);
        wasm
    }

    #[test]
    fn declarations_become_create_statements() {
        let wasm = module_with("dot\tdot\ta double precision[], b float8[]\tdouble precision\tcalled\timmutable\n");
        let declared = declared_functions(&wasm).unwrap();
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].identity(), "dot(double precision[],double precision[])");
        assert_eq!(
            declared[0].create_statement(Some("vec"), "m:dot", true, |s| s.to_string()),
            "CREATE OR REPLACE FUNCTION vec.dot(a double precision[], b double precision[]) RETURNS double precision \
             LANGUAGE wasm CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE AS 'm:dot'"
        );
    }

    #[test]
    fn hostile_declarations_are_refused() {
        for line in [
            "f\tf\tx text\ttext); DROP TABLE t; --\tstrict\timmutable",
            "F\tf\t\ttext\tstrict\timmutable",
            "f\tf'x\t\ttext\tstrict\timmutable",
            "f\tf\tx\ttext\tstrict\timmutable",
            "f\tf\tx text\ttext\tstrict",
            "f\tf\tx void\ttext\tstrict\timmutable",
            "f\tf\t\ttext\tleakproof\timmutable",
            "f\tf\t\ttable()\tstrict\timmutable",
            "f\tf\t\ttable(TS timestamptz)\tstrict\timmutable",
        ] {
            let err = declared_functions(&module_with(line)).unwrap_err();
            assert!(matches!(err, PlWasmError::BadDeclaration { .. }), "{line}: {err:?}");
        }
        let twice = "f\tf\t\ttext\tstrict\timmutable\nf\tg\t\ttext\tstrict\timmutable\n";
        assert!(declared_functions(&module_with(twice)).is_err());
    }

    #[test]
    fn sets_and_aggregates_are_declared_too() {
        let wasm = module_with("pts\tpts\ts bytea\ttable(ts timestamptz, value float8)\tstrict\timmutable\n");
        let f = &declared_functions(&wasm).unwrap()[0];
        assert_eq!(
            f.create_statement(None, "m:pts", false, |s| s.to_string()),
            "CREATE FUNCTION pts(s bytea) RETURNS TABLE(ts timestamp with time zone, value double precision) \
             LANGUAGE wasm STRICT IMMUTABLE PARALLEL SAFE AS 'm:pts'"
        );
        let wasm = module_with("total\tsum\tx float8\tdouble precision\taggregate\tmerge\n");
        let agg = &declared_functions(&wasm).unwrap()[0];
        let statements = agg.aggregate_statements(Some("s"), "m", true, |s| s.to_string());
        assert_eq!(statements.len(), 4);
        assert_eq!(
            statements[0],
            "CREATE OR REPLACE FUNCTION s.total_accumulate(plwasm.state, double precision) RETURNS plwasm.state \
             CALLED ON NULL INPUT LANGUAGE wasm IMMUTABLE PARALLEL SAFE AS 'm:sum.accumulate'"
        );
        assert_eq!(
            statements[3],
            "CREATE OR REPLACE AGGREGATE s.total(double precision) (SFUNC = s.total_accumulate, STYPE = plwasm.state, \
             FINALFUNC = s.total_finalize, COMBINEFUNC = s.total_merge, PARALLEL = SAFE)"
        );
        for bad in [
            "total\tsum\tx float8[]\tdouble precision\taggregate\t-",
            "total\tsum\t\tdouble precision\taggregate\t-",
            "total\tsum\tx float8\tsetof float8\taggregate\t-",
            "total\tsum\tx float8\tfloat8\taggregate\tsideways",
        ] {
            assert!(declared_functions(&module_with(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn modules_without_the_section_declare_nothing() {
        assert_eq!(declared_functions(b"\0asm\x01\0\0\0").unwrap(), vec![]);
    }
}
