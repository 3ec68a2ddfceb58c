//! SQL signatures a module declares for its exports, so `plwasm.create_functions(module)` can
//! create all its functions in one call.
//!
//! A module carries them in custom sections named [`SECTION`] (the Rust guest SDK writes one
//! per exported function; the linker concatenates them). Each line declares one function:
//!
//! ```text
//! sql_name <TAB> export <TAB> arg_name type, arg_name type <TAB> result type <TAB> strict|called <TAB> immutable|stable|volatile
//! ```
//!
//! Everything is checked here, because the module is untrusted and the extension turns these
//! lines into SQL: names must be plain lower-case identifiers and types must be ones plwasm
//! passes, so nothing in a module can inject SQL.

use crate::error::{PlWasmError, Result};
use crate::types::SqlType;

/// The custom section holding the declarations.
pub const SECTION: &str = "plwasm.signatures";

/// One function a module declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub sql_name: String,
    pub export: String,
    pub args: Vec<(String, SqlType)>,
    pub ret: SqlType,
    pub strict: bool,
    pub volatility: &'static str,
}

impl DeclaredFunction {
    /// `name(arg type, ...) RETURNS type LANGUAGE wasm STRICT IMMUTABLE PARALLEL SAFE`, without
    /// the body, with `schema.` in front when given (already quoted by the caller).
    ///
    /// `quote` quotes identifiers (the extension passes PostgreSQL's `quote_identifier`).
    pub fn create_statement(
        &self,
        qualified_schema: Option<&str>,
        body: &str,
        quote: impl Fn(&str) -> String,
    ) -> String {
        let args: Vec<String> =
            self.args.iter().map(|(name, ty)| format!("{} {}", quote(name), ty.sql_name())).collect();
        let schema = qualified_schema.map(|s| format!("{s}.")).unwrap_or_default();
        format!(
            "CREATE OR REPLACE FUNCTION {schema}{}({}) RETURNS {} LANGUAGE wasm {} {} PARALLEL SAFE AS '{body}'",
            quote(&self.sql_name),
            args.join(", "),
            self.ret.sql_name(),
            if self.strict { "STRICT" } else { "CALLED ON NULL INPUT" },
            self.volatility.to_ascii_uppercase(),
        )
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
    let fields: Vec<&str> = line.split('\t').collect();
    let [sql_name, export, args, ret, strictness, volatility] = fields[..] else {
        return Err(format!("{} tab-separated fields instead of 6", fields.len()));
    };
    let sql_name = identifier(sql_name, "function name")?;
    // An export name may be any string wasm allows, but it ends up inside a quoted SQL literal.
    if export.is_empty() || !export.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("export name \"{}\" is not letters, digits and underscores", export.escape_debug()));
    }
    let mut parsed_args = Vec::new();
    for arg in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let (name, ty) = arg.split_once(' ').ok_or_else(|| format!("argument \"{arg}\" has no type"))?;
        let ty = sql_type(ty)?;
        if ty == SqlType::Void {
            return Err("void is not an argument type".into());
        }
        parsed_args.push((identifier(name, "argument name")?, ty));
    }
    let strict = match strictness {
        "strict" => true,
        "called" => false,
        other => return Err(format!("\"{other}\" is neither strict nor called")),
    };
    let volatility = match volatility {
        "immutable" => "immutable",
        "stable" => "stable",
        "volatile" => "volatile",
        other => return Err(format!("unknown volatility \"{other}\"")),
    };
    Ok(DeclaredFunction {
        sql_name,
        export: export.to_string(),
        args: parsed_args,
        ret: sql_type(ret)?,
        strict,
        volatility,
    })
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
            declared[0].create_statement(Some("vec"), "m:dot", |s| s.to_string()),
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
        ] {
            let err = declared_functions(&module_with(line)).unwrap_err();
            assert!(matches!(err, PlWasmError::BadDeclaration { .. }), "{line}: {err:?}");
        }
        let twice = "f\tf\t\ttext\tstrict\timmutable\nf\tg\t\ttext\tstrict\timmutable\n";
        assert!(declared_functions(&module_with(twice)).is_err());
    }

    #[test]
    fn modules_without_the_section_declare_nothing() {
        assert_eq!(declared_functions(b"\0asm\x01\0\0\0").unwrap(), vec![]);
    }
}
