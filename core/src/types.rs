//! SQL types that cross the wasm boundary, and how their values are converted.
//!
//! | SQL type           | wasm | value in the guest                                        |
//! |--------------------|------|-----------------------------------------------------------|
//! | boolean            | i32  | 0 or 1; a result is true when non-zero                    |
//! | smallint           | i32  | sign-extended; a result outside -32768..32767 is an error |
//! | integer            | i32  |                                                           |
//! | bigint             | i64  |                                                           |
//! | real               | f32  |                                                           |
//! | double precision   | f64  |                                                           |
//! | date               | i32  | days since 1970-01-01; ±infinity as i32::MIN / i32::MAX   |
//! | timestamp(tz)      | i64  | microseconds since 1970-01-01 00:00 UTC; ±infinity as     |
//! |                    |      | i64::MIN / i64::MAX                                       |
//! | void (result only) | none | the export returns nothing                                |
//!
//! Variable-length types (text, varchar, bytea, jsonb, numeric arrays) need ABI 1, which
//! passes every value through a frame in guest memory: see the `abi` module.
//!
//! Conversions here work on a Datum's raw 64 bits so they can be tested without a server;
//! the extension passes `Datum::value() as u64` in and gets the bits of the result Datum out.

use wasmtime::{ValRaw, ValType};

use crate::error::{PlWasmError, Result};

/// A SQL type plwasm can pass by value.
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
    /// PostgreSQL's `internal`: only an aggregate support function's state (see
    /// the `aggregate` module); never a value the guest sees.
    Internal,
}

/// How ABI 1 passes a value of a SQL type through a frame slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passing {
    /// In the slot's 64-bit value, with the ABI 0 conversion.
    Fixed(WasmType),
    /// Bytes at `value` (a guest address), `len` bytes long; `utf8` for text and JSON.
    Bytes { utf8: bool },
    /// Elements at `value`, `len` elements of this wasm type, little-endian, no NULLs.
    Array(WasmType),
    /// No value (void results).
    Nothing,
}

/// The wasm value types plwasm's numeric ABI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WasmType {
    I32,
    I64,
    F32,
    F64,
}

impl WasmType {
    pub fn name(self) -> &'static str {
        match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
        }
    }

    /// Bytes one value takes in memory (an array element, in ABI 1).
    pub fn byte_size(self) -> usize {
        match self {
            WasmType::I32 | WasmType::F32 => 4,
            WasmType::I64 | WasmType::F64 => 8,
        }
    }

    /// The wasm type of a module's parameter or result, if it is one plwasm uses.
    pub fn from_val_type(ty: &ValType) -> Option<WasmType> {
        match ty {
            ValType::I32 => Some(WasmType::I32),
            ValType::I64 => Some(WasmType::I64),
            ValType::F32 => Some(WasmType::F32),
            ValType::F64 => Some(WasmType::F64),
            _ => None,
        }
    }
}

/// Microseconds from 1970-01-01 (Unix) to 2000-01-01 (PostgreSQL's epoch).
pub const UNIX_TO_PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub const UNIX_TO_PG_EPOCH_DAYS: i32 = 10_957;

// PostgreSQL's valid ranges, in its own epoch (datatype/timestamp.h).
const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
const PG_MIN_DATE: i32 = -2_451_545; // DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE
const PG_END_DATE: i32 = 2_145_031_949; // DATE_END_JULIAN - POSTGRES_EPOCH_JDATE

impl SqlType {
    /// The SQL name, as PostgreSQL's `format_type` prints it.
    pub fn sql_name(self) -> &'static str {
        match self {
            SqlType::Bool => "boolean",
            SqlType::Int2 => "smallint",
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Float4 => "real",
            SqlType::Float8 => "double precision",
            SqlType::Date => "date",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::TimestampTz => "timestamp with time zone",
            SqlType::Void => "void",
            SqlType::Text => "text",
            SqlType::Varchar => "character varying",
            SqlType::Bytea => "bytea",
            SqlType::Jsonb => "jsonb",
            SqlType::Int4Array => "integer[]",
            SqlType::Int8Array => "bigint[]",
            SqlType::Float4Array => "real[]",
            SqlType::Float8Array => "double precision[]",
            SqlType::Internal => "internal",
        }
    }

    /// Every SQL type plwasm passes, for parsing names (as `format_type` prints them).
    pub const ALL: [SqlType; 18] = [
        SqlType::Bool,
        SqlType::Int2,
        SqlType::Int4,
        SqlType::Int8,
        SqlType::Float4,
        SqlType::Float8,
        SqlType::Date,
        SqlType::Timestamp,
        SqlType::TimestampTz,
        SqlType::Void,
        SqlType::Text,
        SqlType::Varchar,
        SqlType::Bytea,
        SqlType::Jsonb,
        SqlType::Int4Array,
        SqlType::Int8Array,
        SqlType::Float4Array,
        SqlType::Float8Array,
    ];

    /// The type named `name` (`text`, `double precision[]`, `timestamptz`, `int8`…), if plwasm
    /// passes it.
    pub fn from_sql_name(name: &str) -> Option<SqlType> {
        let name = name.trim().to_ascii_lowercase();
        let alias = match name.as_str() {
            "bool" => "boolean",
            "int2" => "smallint",
            "int" | "int4" => "integer",
            "int8" => "bigint",
            "float4" => "real",
            "float8" => "double precision",
            "timestamp" => "timestamp without time zone",
            "timestamptz" => "timestamp with time zone",
            "varchar" => "character varying",
            "int4[]" | "int[]" => "integer[]",
            "int8[]" => "bigint[]",
            "float4[]" => "real[]",
            "float8[]" => "double precision[]",
            other => other,
        };
        SqlType::ALL.into_iter().find(|t| t.sql_name() == alias)
    }

    /// How ABI 1 passes this type.
    pub fn passing(self) -> Passing {
        match self {
            SqlType::Void | SqlType::Internal => Passing::Nothing,
            SqlType::Text | SqlType::Varchar | SqlType::Jsonb => Passing::Bytes { utf8: true },
            SqlType::Bytea => Passing::Bytes { utf8: false },
            SqlType::Int4Array => Passing::Array(WasmType::I32),
            SqlType::Int8Array => Passing::Array(WasmType::I64),
            SqlType::Float4Array => Passing::Array(WasmType::F32),
            SqlType::Float8Array => Passing::Array(WasmType::F64),
            fixed => Passing::Fixed(fixed.wasm_type().expect("fixed-width types have a wasm type")),
        }
    }

    /// Whether ABI 0 (plain wasm values) can pass this type.
    pub fn is_numeric_abi(self) -> bool {
        matches!(self.passing(), Passing::Fixed(_) | Passing::Nothing)
    }

    /// The short name used in range errors (`timestamp` rather than its long form).
    fn short_name(self) -> &'static str {
        match self {
            SqlType::Timestamp => "timestamp",
            SqlType::TimestampTz => "timestamptz",
            other => other.sql_name(),
        }
    }

    /// The wasm type carrying this SQL type; `None` for void.
    pub fn wasm_type(self) -> Option<WasmType> {
        match self {
            SqlType::Bool | SqlType::Int2 | SqlType::Int4 | SqlType::Date => Some(WasmType::I32),
            SqlType::Int8 | SqlType::Timestamp | SqlType::TimestampTz => Some(WasmType::I64),
            SqlType::Float4 => Some(WasmType::F32),
            SqlType::Float8 => Some(WasmType::F64),
            _ => None,
        }
    }

    /// Converts an argument Datum's bits to the guest's value.
    #[inline]
    pub fn datum_to_wasm(self, bits: u64) -> Result<ValRaw> {
        Ok(match self {
            SqlType::Bool => ValRaw::i32((bits & 0xff != 0) as i32),
            // DatumGetInt16/Int32 take the low bits; the Datum itself may be sign- or zero-extended.
            SqlType::Int2 => ValRaw::i32(bits as u16 as i16 as i32),
            SqlType::Int4 => ValRaw::i32(bits as u32 as i32),
            SqlType::Int8 => ValRaw::i64(bits as i64),
            SqlType::Float4 => ValRaw::f32(bits as u32),
            SqlType::Float8 => ValRaw::f64(bits),
            SqlType::Date => ValRaw::i32(pg_date_to_unix(bits as u32 as i32)),
            SqlType::Timestamp | SqlType::TimestampTz => ValRaw::i64(
                pg_timestamp_to_unix(bits as i64)
                    .ok_or(PlWasmError::ArgumentOutOfRange { type_name: self.short_name() })?,
            ),
            _ => {
                return Err(PlWasmError::Internal { message: format!("{} is not a fixed-width type", self.sql_name()) })
            }
        })
    }

    /// Converts the guest's result to Datum bits, refusing values the SQL type cannot hold.
    #[inline]
    pub fn wasm_to_datum(self, raw: ValRaw) -> Result<u64> {
        let out_of_range = |value: String| PlWasmError::ResultOutOfRange { type_name: self.short_name(), value };
        Ok(match self {
            SqlType::Bool => (raw.get_i32() != 0) as u64,
            SqlType::Int2 => {
                let v = raw.get_i32();
                let small = i16::try_from(v).map_err(|_| out_of_range(v.to_string()))?;
                small as i64 as u64
            }
            SqlType::Int4 => raw.get_i32() as i64 as u64,
            SqlType::Int8 => raw.get_i64() as u64,
            SqlType::Float4 => raw.get_f32() as u64,
            SqlType::Float8 => raw.get_f64(),
            SqlType::Date => {
                let v = raw.get_i32();
                unix_date_to_pg(v).ok_or_else(|| out_of_range(v.to_string()))? as i64 as u64
            }
            SqlType::Timestamp | SqlType::TimestampTz => {
                let v = raw.get_i64();
                unix_timestamp_to_pg(v).ok_or_else(|| out_of_range(v.to_string()))? as u64
            }
            _ => 0,
        })
    }
}

/// PostgreSQL days (2000 epoch) to Unix days; infinities stay at the extremes.
#[inline]
pub fn pg_date_to_unix(days: i32) -> i32 {
    match days {
        i32::MIN | i32::MAX => days,
        // Valid dates are far from the i32 limits, so the shift cannot overflow.
        _ => days.saturating_add(UNIX_TO_PG_EPOCH_DAYS),
    }
}

/// Unix days to PostgreSQL days, or `None` outside PostgreSQL's date range.
pub fn unix_date_to_pg(days: i32) -> Option<i32> {
    match days {
        i32::MIN | i32::MAX => Some(days),
        _ => {
            let pg = days.checked_sub(UNIX_TO_PG_EPOCH_DAYS)?;
            (PG_MIN_DATE..PG_END_DATE).contains(&pg).then_some(pg)
        }
    }
}

/// PostgreSQL microseconds (2000 epoch) to Unix microseconds; `None` for the last ~30
/// millennia of PostgreSQL's range, which do not fit in an i64 once shifted.
#[inline]
pub fn pg_timestamp_to_unix(micros: i64) -> Option<i64> {
    match micros {
        i64::MIN | i64::MAX => Some(micros),
        _ => micros.checked_add(UNIX_TO_PG_EPOCH_MICROS).filter(|v| *v != i64::MAX),
    }
}

/// Unix microseconds to PostgreSQL microseconds, or `None` outside PostgreSQL's range.
pub fn unix_timestamp_to_pg(micros: i64) -> Option<i64> {
    match micros {
        i64::MIN | i64::MAX => Some(micros),
        _ => {
            let pg = micros.checked_sub(UNIX_TO_PG_EPOCH_MICROS)?;
            (PG_MIN_TIMESTAMP..PG_END_TIMESTAMP).contains(&pg).then_some(pg)
        }
    }
}

/// A SQL function's signature, as far as plwasm cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSignature {
    pub args: Vec<SqlType>,
    pub ret: SqlType,
    /// `STRICT`: PostgreSQL never passes NULL arguments.
    pub strict: bool,
    /// `RETURNS SETOF t` (one column) or `RETURNS TABLE (...)`: the column types of each row;
    /// `ret` is then `Void`. Needs ABI 1 (see `abi::row_set`).
    pub set_of: Option<Vec<SqlType>>,
}

impl SqlSignature {
    /// The first type ABI 0 cannot pass, with its position (`Argument 2`, `The result`).
    pub fn first_non_numeric(&self) -> Option<(String, SqlType)> {
        if let Some(columns) = &self.set_of {
            return Some(("The set-returning result".to_string(), columns.first().copied().unwrap_or(SqlType::Void)));
        }
        let args = self.args.iter().enumerate().map(|(i, t)| (format!("Argument {}", i + 1), *t));
        args.chain(std::iter::once(("The result".to_string(), self.ret))).find(|(_, t)| !t.is_numeric_abi())
    }

    /// The wasm parameter types the export must have.
    pub fn wasm_params(&self) -> Vec<WasmType> {
        self.args.iter().filter_map(|t| t.wasm_type()).collect()
    }

    /// The wasm result types the export must have (none for void).
    pub fn wasm_results(&self) -> Vec<WasmType> {
        self.ret.wasm_type().into_iter().collect()
    }

    /// `name(bigint, real) returns bigint`
    pub fn describe(&self, name: &str) -> String {
        let args: Vec<&str> = self.args.iter().map(|t| t.sql_name()).collect();
        let ret = match self.set_of.as_deref() {
            None => self.ret.sql_name().to_string(),
            Some([only]) => format!("setof {}", only.sql_name()),
            Some(columns) => {
                format!("table({})", columns.iter().map(|t| t.sql_name()).collect::<Vec<_>>().join(", "))
            }
        };
        format!("{name}({}) returns {ret}", args.join(", "))
    }
}

/// `(i64, f32) -> i64`, or `(i64) -> ()` for no result.
pub fn describe_wasm_signature(params: &[WasmType], results: &[WasmType]) -> String {
    format_signature(params.iter().map(|t| t.name().to_string()), results.iter().map(|t| t.name().to_string()))
}

/// Formats wasm parameter and result type names as `(a, b) -> r`, `(a) -> ()` or `() -> (r, s)`.
pub fn format_signature(params: impl Iterator<Item = String>, results: impl Iterator<Item = String>) -> String {
    let params: Vec<String> = params.collect();
    let results: Vec<String> = results.collect();
    let results = match results.as_slice() {
        [] => "()".to_string(),
        [only] => only.clone(),
        many => format!("({})", many.join(", ")),
    };
    format!("({}) -> {}", params.join(", "), results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: SqlType, bits: u64) -> u64 {
        ty.wasm_to_datum(ty.datum_to_wasm(bits).unwrap()).unwrap()
    }

    #[test]
    fn fixed_width_values_round_trip() {
        assert_eq!(round_trip(SqlType::Int8, (-5i64) as u64), (-5i64) as u64);
        assert_eq!(round_trip(SqlType::Int4, (-7i32) as i64 as u64), (-7i64) as u64);
        assert_eq!(round_trip(SqlType::Int2, (-3i16) as i64 as u64), (-3i64) as u64);
        assert_eq!(round_trip(SqlType::Float8, 1.5f64.to_bits()), 1.5f64.to_bits());
        assert_eq!(round_trip(SqlType::Float4, 2.5f32.to_bits() as u64), 2.5f32.to_bits() as u64);
        assert_eq!(round_trip(SqlType::Bool, 1), 1);
        assert_eq!(round_trip(SqlType::Bool, 0), 0);
    }

    #[test]
    fn int2_arguments_are_sign_extended_whatever_the_datum_high_bits() {
        let zero_extended = 0xffffu64; // -1 as int16, zero-extended
        assert_eq!(SqlType::Int2.datum_to_wasm(zero_extended).unwrap().get_i32(), -1);
    }

    #[test]
    fn out_of_range_int2_results_are_errors() {
        let err = SqlType::Int2.wasm_to_datum(ValRaw::i32(40_000)).unwrap_err();
        assert_eq!(err, PlWasmError::ResultOutOfRange { type_name: "smallint", value: "40000".into() });
        assert_eq!(SqlType::Int2.wasm_to_datum(ValRaw::i32(-32768)).unwrap(), (-32768i64) as u64);
    }

    #[test]
    fn booleans_are_true_when_non_zero() {
        assert_eq!(SqlType::Bool.wasm_to_datum(ValRaw::i32(42)).unwrap(), 1);
    }

    #[test]
    fn dates_shift_to_unix_epoch() {
        // 2000-01-01 is day 0 for PostgreSQL and day 10957 since 1970.
        assert_eq!(SqlType::Date.datum_to_wasm(0).unwrap().get_i32(), 10_957);
        assert_eq!(SqlType::Date.wasm_to_datum(ValRaw::i32(0)).unwrap() as i64, -10_957);
        // Infinities pass through.
        assert_eq!(SqlType::Date.datum_to_wasm(i32::MAX as u32 as u64).unwrap().get_i32(), i32::MAX);
        assert_eq!(unix_date_to_pg(i32::MIN), Some(i32::MIN));
        // Past PostgreSQL's last date.
        assert_eq!(unix_date_to_pg(i32::MAX - 1), None);
    }

    #[test]
    fn timestamps_shift_to_unix_epoch() {
        assert_eq!(pg_timestamp_to_unix(0), Some(UNIX_TO_PG_EPOCH_MICROS));
        assert_eq!(unix_timestamp_to_pg(0), Some(-UNIX_TO_PG_EPOCH_MICROS));
        assert_eq!(pg_timestamp_to_unix(i64::MAX), Some(i64::MAX));
        assert_eq!(unix_timestamp_to_pg(i64::MIN), Some(i64::MIN));
        // The far end of PostgreSQL's range does not fit once shifted.
        assert_eq!(pg_timestamp_to_unix(PG_END_TIMESTAMP - 1), None);
        assert!(matches!(
            SqlType::Timestamp.datum_to_wasm((PG_END_TIMESTAMP - 1) as u64),
            Err(PlWasmError::ArgumentOutOfRange { type_name: "timestamp" })
        ));
        // Before 4714 BC is out of range as a result.
        assert_eq!(unix_timestamp_to_pg(PG_MIN_TIMESTAMP + UNIX_TO_PG_EPOCH_MICROS - 1), None);
        assert_eq!(unix_timestamp_to_pg(PG_MIN_TIMESTAMP + UNIX_TO_PG_EPOCH_MICROS), Some(PG_MIN_TIMESTAMP));
    }

    #[test]
    fn type_names_parse_with_postgres_aliases() {
        assert_eq!(SqlType::from_sql_name("float8[]"), Some(SqlType::Float8Array));
        assert_eq!(SqlType::from_sql_name("double precision[]"), Some(SqlType::Float8Array));
        assert_eq!(SqlType::from_sql_name(" TEXT "), Some(SqlType::Text));
        assert_eq!(SqlType::from_sql_name("timestamptz"), Some(SqlType::TimestampTz));
        assert_eq!(SqlType::from_sql_name("text); drop table x; --"), None);
        for ty in SqlType::ALL {
            assert_eq!(SqlType::from_sql_name(ty.sql_name()), Some(ty));
        }
    }

    #[test]
    fn abi0_refuses_variable_length_types() {
        let sig =
            SqlSignature { args: vec![SqlType::Int4, SqlType::Text], ret: SqlType::Int4, strict: true, set_of: None };
        assert_eq!(sig.first_non_numeric(), Some(("Argument 2".to_string(), SqlType::Text)));
        assert_eq!(SqlType::Bytea.passing(), Passing::Bytes { utf8: false });
        assert_eq!(SqlType::Float4Array.passing(), Passing::Array(WasmType::F32));
    }

    #[test]
    fn signatures_describe_themselves() {
        let sig =
            SqlSignature { args: vec![SqlType::Int8, SqlType::Float4], ret: SqlType::Bool, strict: true, set_of: None };
        assert_eq!(sig.describe("f"), "f(bigint, real) returns boolean");
        assert_eq!(describe_wasm_signature(&sig.wasm_params(), &sig.wasm_results()), "(i64, f32) -> i32");
        let void = SqlSignature { args: vec![], ret: SqlType::Void, strict: true, set_of: None };
        assert_eq!(describe_wasm_signature(&void.wasm_params(), &void.wasm_results()), "() -> ()");
    }
}
