//! The one table of SQL types plwasm passes. Every other list of types — the host's value
//! conversions, the extension's catalog OIDs and array element types, an aggregate's row
//! conversions, the SDK macros' Rust spellings, the hint an unsupported type gets — is
//! derived from [`TYPES`].
//!
//! Adding a type: docs/contributing.md has the checklist.

/// A SQL type plwasm can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Date,
    Timestamp,
    TimestampTz,
    /// Only as a result.
    Void,
    // ---- ABI 1 only ----
    Text,
    /// Passed like text; the name is kept for messages.
    Varchar,
    Bytea,
    /// Passed as its text form (UTF-8 JSON).
    Jsonb,
    Int4Array,
    Int8Array,
    Float4Array,
    Float8Array,
    /// PostgreSQL's `internal`: what plwasm 0.1's aggregate support functions took; refused
    /// now, with a hint to re-create them.
    Internal,
    /// `plwasm.state`, the extension's own type for an aggregate's state (a handle into the
    /// guest in memory, the guest's serialized state when flat); never a value the guest sees.
    State,
}

/// The wasm value types plwasm's values travel as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WasmType {
    I32,
    I64,
    F32,
    F64,
}

impl WasmType {
    pub const fn name(self) -> &'static str {
        match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
        }
    }

    /// Bytes one value takes in memory (an array element, in ABI 1).
    pub const fn byte_size(self) -> usize {
        match self {
            WasmType::I32 | WasmType::F32 => 4,
            WasmType::I64 | WasmType::F64 => 8,
        }
    }
}

/// How a fixed-width value is converted between its PostgreSQL Datum and the guest's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fixed {
    /// 0 or 1 (a result is true when non-zero).
    Bool,
    /// Sign-extended to i32; a result outside -32768..32767 is an error.
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// Days since 1970-01-01 (PostgreSQL counts from 2000); infinities at the i32 extremes.
    Date,
    /// Microseconds since 1970-01-01 00:00 (UTC for timestamptz); infinities at the i64
    /// extremes.
    Timestamp,
}

impl Fixed {
    pub const fn wasm_type(self) -> WasmType {
        match self {
            Fixed::Bool | Fixed::Int16 | Fixed::Int32 | Fixed::Date => WasmType::I32,
            Fixed::Int64 | Fixed::Timestamp => WasmType::I64,
            Fixed::Float32 => WasmType::F32,
            Fixed::Float64 => WasmType::F64,
        }
    }
}

/// How ABI 1 passes a value through a frame slot (docs/abi.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passing {
    /// In the slot's 64-bit value, with the ABI 0 conversion.
    Fixed(WasmType),
    /// Bytes at `value` (a guest address), `len` bytes long; `utf8` for text and JSON.
    Bytes { utf8: bool },
    /// Elements at `value`, `len` elements of this wasm type, little-endian, no NULLs.
    Array(WasmType),
    /// No value (void results, internal).
    Nothing,
}

/// What a value is, in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Fixed(Fixed),
    /// UTF-8 text (text, varchar, jsonb's text form).
    Text,
    /// Raw bytes (bytea).
    Bytes,
    /// A one-dimensional array without NULLs, of elements of catalog type `element_oid`.
    Array {
        element: WasmType,
        element_oid: u32,
    },
    /// No value.
    Nothing,
}

/// One row of the type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    pub ty: SqlType,
    /// As PostgreSQL's `format_type` prints it.
    pub sql_name: &'static str,
    /// Other spellings `plwasm.create_functions` declarations may use.
    pub aliases: &'static [&'static str],
    /// The short name messages use (`timestamptz`, `varchar` rather than their long forms).
    pub short_name: &'static str,
    /// The type's OID in PostgreSQL's fixed catalog (`pg_type.dat`), the same in every
    /// version plwasm supports; 0 for `plwasm.state`, which the extension creates (the
    /// catalog looks it up in the extension's schema).
    pub oid: u32,
    pub repr: Repr,
    /// The Rust types the SDK maps to it: by name (`i64`, `String`, `str` for `&str`)...
    pub rust: &'static [&'static str],
    /// ...and as the element of `&[T]` / `Vec<T>`.
    pub rust_element: Option<&'static str>,
    /// An argument a function may take (void may only be a result; internal only for
    /// aggregate support functions).
    pub argument: bool,
}

const fn row(
    ty: SqlType,
    sql_name: &'static str,
    aliases: &'static [&'static str],
    oid: u32,
    repr: Repr,
    rust: &'static [&'static str],
) -> TypeInfo {
    TypeInfo { ty, sql_name, aliases, short_name: sql_name, oid, repr, rust, rust_element: None, argument: true }
}

const fn array(
    ty: SqlType,
    sql_name: &'static str,
    aliases: &'static [&'static str],
    oid: u32,
    element: WasmType,
    element_oid: u32,
    rust_element: &'static str,
) -> TypeInfo {
    TypeInfo {
        rust_element: Some(rust_element),
        ..row(ty, sql_name, aliases, oid, Repr::Array { element, element_oid }, &[])
    }
}

/// Every SQL type plwasm passes, in [`SqlType`] order.
pub const TYPES: [TypeInfo; 20] = [
    row(SqlType::Bool, "boolean", &["bool"], 16, Repr::Fixed(Fixed::Bool), &["bool"]),
    row(SqlType::Int2, "smallint", &["int2"], 21, Repr::Fixed(Fixed::Int16), &["i16"]),
    row(SqlType::Int4, "integer", &["int", "int4"], 23, Repr::Fixed(Fixed::Int32), &["i32"]),
    row(SqlType::Int8, "bigint", &["int8"], 20, Repr::Fixed(Fixed::Int64), &["i64"]),
    row(SqlType::Float4, "real", &["float4"], 700, Repr::Fixed(Fixed::Float32), &["f32"]),
    row(SqlType::Float8, "double precision", &["float8"], 701, Repr::Fixed(Fixed::Float64), &["f64"]),
    row(SqlType::Date, "date", &[], 1082, Repr::Fixed(Fixed::Date), &["Date"]),
    TypeInfo {
        short_name: "timestamp",
        ..row(
            SqlType::Timestamp,
            "timestamp without time zone",
            &["timestamp"],
            1114,
            Repr::Fixed(Fixed::Timestamp),
            &["Timestamp"],
        )
    },
    TypeInfo {
        short_name: "timestamptz",
        ..row(
            SqlType::TimestampTz,
            "timestamp with time zone",
            &["timestamptz"],
            1184,
            Repr::Fixed(Fixed::Timestamp),
            &["TimestampTz"],
        )
    },
    TypeInfo { argument: false, ..row(SqlType::Void, "void", &[], 2278, Repr::Nothing, &[]) },
    row(SqlType::Text, "text", &[], 25, Repr::Text, &["String", "str"]),
    TypeInfo {
        short_name: "varchar",
        ..row(SqlType::Varchar, "character varying", &["varchar"], 1043, Repr::Text, &[])
    },
    TypeInfo { rust_element: Some("u8"), ..row(SqlType::Bytea, "bytea", &[], 17, Repr::Bytes, &[]) },
    row(SqlType::Jsonb, "jsonb", &[], 3802, Repr::Text, &["Jsonb"]),
    array(SqlType::Int4Array, "integer[]", &["int4[]", "int[]"], 1007, WasmType::I32, 23, "i32"),
    array(SqlType::Int8Array, "bigint[]", &["int8[]"], 1016, WasmType::I64, 20, "i64"),
    array(SqlType::Float4Array, "real[]", &["float4[]"], 1021, WasmType::F32, 700, "f32"),
    array(SqlType::Float8Array, "double precision[]", &["float8[]"], 1022, WasmType::F64, 701, "f64"),
    TypeInfo { argument: false, ..row(SqlType::Internal, "internal", &[], 2281, Repr::Nothing, &[]) },
    TypeInfo { argument: false, ..row(SqlType::State, "plwasm.state", &[], 0, Repr::Nothing, &[]) },
];

impl SqlType {
    /// Every SQL type a value of which can cross (all but `internal` and `plwasm.state`).
    pub const ALL: [SqlType; 18] = {
        let mut all = [SqlType::Void; 18];
        let mut i = 0;
        while i < 18 {
            all[i] = TYPES[i].ty;
            i += 1;
        }
        all
    };

    /// This type's row of [`TYPES`].
    pub const fn info(self) -> &'static TypeInfo {
        &TYPES[self as usize]
    }

    pub const fn sql_name(self) -> &'static str {
        self.info().sql_name
    }

    pub const fn short_name(self) -> &'static str {
        self.info().short_name
    }

    pub const fn oid(self) -> u32 {
        self.info().oid
    }

    /// The fixed-width conversion, for fixed-width types.
    pub const fn fixed(self) -> Option<Fixed> {
        match self.info().repr {
            Repr::Fixed(fixed) => Some(fixed),
            _ => None,
        }
    }

    /// The wasm type carrying a fixed-width value; `None` for the others.
    pub const fn wasm_type(self) -> Option<WasmType> {
        match self.fixed() {
            Some(fixed) => Some(fixed.wasm_type()),
            None => None,
        }
    }

    /// How ABI 1 passes this type.
    pub const fn passing(self) -> Passing {
        match self.info().repr {
            Repr::Fixed(fixed) => Passing::Fixed(fixed.wasm_type()),
            Repr::Text => Passing::Bytes { utf8: true },
            Repr::Bytes => Passing::Bytes { utf8: false },
            Repr::Array { element, .. } => Passing::Array(element),
            Repr::Nothing => Passing::Nothing,
        }
    }

    /// Whether ABI 0 (plain wasm values) can pass this type.
    pub const fn is_numeric_abi(self) -> bool {
        matches!(self.passing(), Passing::Fixed(_) | Passing::Nothing)
    }

    /// The type with fixed catalog OID `oid`, if plwasm passes it (never `plwasm.state`).
    pub fn from_oid(oid: u32) -> Option<SqlType> {
        TYPES.iter().find(|info| info.oid == oid && oid != 0).map(|info| info.ty)
    }

    /// The type named `name` (`text`, `double precision[]`, `timestamptz`, `INT8`…), if
    /// plwasm passes it and a user can name it.
    pub fn from_sql_name(name: &str) -> Option<SqlType> {
        let name = name.trim();
        SqlType::ALL.into_iter().find(|ty| {
            let info = ty.info();
            info.sql_name.eq_ignore_ascii_case(name) || info.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// The type the SDK maps Rust type `name` to (`i64`, `String`, `str`, `Jsonb`, ...).
    pub fn from_rust_name(name: &str) -> Option<SqlType> {
        TYPES.iter().find(|info| info.rust.contains(&name)).map(|info| info.ty)
    }

    /// The type the SDK maps `&[name]` and `Vec<name>` to.
    pub fn from_rust_element(name: &str) -> Option<SqlType> {
        TYPES.iter().find(|info| info.rust_element == Some(name)).map(|info| info.ty)
    }
}

/// `Supported types: boolean, ...`: the hint an unsupported type gets, from the table.
pub fn write_supported_types(out: &mut impl core::fmt::Write) -> core::fmt::Result {
    let list = |out: &mut dyn core::fmt::Write, numeric: bool| -> core::fmt::Result {
        let mut first = true;
        for info in TYPES.iter().filter(|i| i.argument && i.ty.is_numeric_abi() == numeric) {
            out.write_str(if first { "" } else { ", " })?;
            out.write_str(info.short_name)?;
            first = false;
        }
        Ok(())
    };
    out.write_str("Supported types: ")?;
    list(out, true)?;
    write!(out, ", {} (as a result); with ABI 1 modules also ", SqlType::Void.short_name())?;
    list(out, false)?;
    out.write_char('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order() {
        for (i, info) in TYPES.iter().enumerate() {
            assert_eq!(info.ty as usize, i, "{}", info.sql_name);
        }
        assert_eq!(SqlType::ALL.len() + 2, TYPES.len());
        assert!(!SqlType::ALL.contains(&SqlType::Internal) && !SqlType::ALL.contains(&SqlType::State));
        assert_eq!(SqlType::from_oid(0), None);
    }

    #[test]
    fn names_and_aliases_parse() {
        assert_eq!(SqlType::from_sql_name("float8[]"), Some(SqlType::Float8Array));
        assert_eq!(SqlType::from_sql_name(" TEXT "), Some(SqlType::Text));
        assert_eq!(SqlType::from_sql_name("internal"), None);
        assert_eq!(SqlType::from_sql_name("text); drop table x; --"), None);
        for ty in SqlType::ALL {
            assert_eq!(SqlType::from_sql_name(ty.sql_name()), Some(ty));
            for alias in ty.info().aliases {
                assert_eq!(SqlType::from_sql_name(alias), Some(ty));
            }
        }
    }

    #[test]
    fn oids_and_rust_spellings_are_unique() {
        for (i, a) in TYPES.iter().enumerate() {
            for b in &TYPES[i + 1..] {
                assert_ne!(a.oid, b.oid);
                assert!(a.rust.iter().all(|r| !b.rust.contains(r)), "{r:?}", r = a.rust);
                assert!(a.rust_element.is_none() || a.rust_element != b.rust_element);
            }
        }
        assert_eq!(SqlType::from_rust_name("str"), Some(SqlType::Text));
        assert_eq!(SqlType::from_rust_element("u8"), Some(SqlType::Bytea));
        assert_eq!(SqlType::from_oid(1022), Some(SqlType::Float8Array));
    }

    #[test]
    fn the_hint_lists_every_type() {
        extern crate std;
        let mut hint = std::string::String::new();
        write_supported_types(&mut hint).unwrap();
        assert_eq!(
            hint,
            "Supported types: boolean, smallint, integer, bigint, real, double precision, date, timestamp, \
             timestamptz, void (as a result); with ABI 1 modules also text, varchar, bytea, jsonb, integer[], \
             bigint[], real[], double precision[]."
        );
    }

    #[test]
    fn array_elements_are_table_types() {
        for info in &TYPES {
            if let Repr::Array { element, element_oid } = info.repr {
                let element_type = SqlType::from_oid(element_oid).unwrap();
                assert_eq!(element_type.wasm_type(), Some(element));
                assert_eq!(Some(element.name()), info.rust_element);
            }
        }
    }
}
