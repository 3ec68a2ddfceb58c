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
use crate::floats::{canonical_f32, canonical_f64};

pub use plwasm_contract::types::{Fixed, Passing, Repr, SqlType, TypeInfo, WasmType, TYPES};

/// The wasm type of a module's parameter or result, if it is one plwasm uses.
pub fn wasm_type_of(ty: &ValType) -> Option<WasmType> {
    match ty {
        ValType::I32 => Some(WasmType::I32),
        ValType::I64 => Some(WasmType::I64),
        ValType::F32 => Some(WasmType::F32),
        ValType::F64 => Some(WasmType::F64),
        _ => None,
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

/// Value conversions between a Datum's bits and the guest's wasm values, for the
/// fixed-width types of the contract's table.
pub trait DatumConversion {
    /// Converts an argument Datum's bits to the guest's value.
    fn datum_to_wasm(self, bits: u64) -> Result<ValRaw>;
    /// Converts the guest's result to Datum bits, refusing values the SQL type cannot hold.
    fn wasm_to_datum(self, raw: ValRaw) -> Result<u64>;
}

impl DatumConversion for SqlType {
    /// Converts an argument Datum's bits to the guest's value.
    #[inline]
    fn datum_to_wasm(self, bits: u64) -> Result<ValRaw> {
        let Some(fixed) = self.fixed() else {
            return Err(PlWasmError::Internal { message: format!("{} is not a fixed-width type", self.sql_name()) });
        };
        Ok(match fixed {
            Fixed::Bool => ValRaw::i32((bits & 0xff != 0) as i32),
            // DatumGetInt16/Int32 take the low bits; the Datum itself may be sign- or zero-extended.
            Fixed::Int16 => ValRaw::i32(bits as u16 as i16 as i32),
            Fixed::Int32 => ValRaw::i32(bits as u32 as i32),
            Fixed::Int64 => ValRaw::i64(bits as i64),
            Fixed::Float32 => ValRaw::f32(bits as u32),
            Fixed::Float64 => ValRaw::f64(bits),
            Fixed::Date => ValRaw::i32(pg_date_to_unix(bits as u32 as i32)),
            Fixed::Timestamp => ValRaw::i64(
                pg_timestamp_to_unix(bits as i64)
                    .ok_or(PlWasmError::ArgumentOutOfRange { type_name: self.short_name() })?,
            ),
        })
    }

    #[inline]
    fn wasm_to_datum(self, raw: ValRaw) -> Result<u64> {
        let out_of_range = |value: String| PlWasmError::ResultOutOfRange { type_name: self.short_name(), value };
        let Some(fixed) = self.fixed() else { return Ok(0) };
        Ok(match fixed {
            Fixed::Bool => (raw.get_i32() != 0) as u64,
            Fixed::Int16 => {
                let v = raw.get_i32();
                let small = i16::try_from(v).map_err(|_| out_of_range(v.to_string()))?;
                small as i64 as u64
            }
            Fixed::Int32 => raw.get_i32() as i64 as u64,
            Fixed::Int64 => raw.get_i64() as u64,
            Fixed::Float32 => canonical_f32(raw.get_f32()) as u64,
            Fixed::Float64 => canonical_f64(raw.get_f64()),
            Fixed::Date => {
                let v = raw.get_i32();
                unix_date_to_pg(v).ok_or_else(|| out_of_range(v.to_string()))? as i64 as u64
            }
            Fixed::Timestamp => {
                let v = raw.get_i64();
                unix_timestamp_to_pg(v).ok_or_else(|| out_of_range(v.to_string()))? as u64
            }
        })
    }
}

/// A fixed-width argument's Datum bits as they sit in a 64-bit slot word (i32 values
/// sign-extended): what `abi::fixed_to_slot(datum_to_wasm(..))` gives, in one step, for an
/// aggregate's per-row path. `None` for a timestamp the guest cannot represent.
#[inline(always)]
pub fn fixed_slot_bits(fixed: Fixed, datum_bits: u64) -> Option<u64> {
    Some(match fixed {
        Fixed::Int64 | Fixed::Float64 => datum_bits,
        Fixed::Int32 => datum_bits as u32 as i32 as i64 as u64,
        Fixed::Int16 => datum_bits as u16 as i16 as i64 as u64,
        Fixed::Bool => (datum_bits & 0xff != 0) as u64,
        Fixed::Float32 => datum_bits as u32 as u64,
        Fixed::Date => pg_date_to_unix(datum_bits as u32 as i32) as i64 as u64,
        Fixed::Timestamp => pg_timestamp_to_unix(datum_bits as i64)? as u64,
    })
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
