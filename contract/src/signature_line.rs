//! The declared-signature line: how a module tells `plwasm.create_functions` the SQL
//! signature of each function it exports. A module carries lines in custom sections named
//! [`SIGNATURE_SECTION`](crate::names::SIGNATURE_SECTION) (the SDK writes one per function;
//! the linker concatenates them), one function per line, six tab-separated fields:
//!
//! ```text
//! sql_name <TAB> export <TAB> name type, name type <TAB> result <TAB> strict|called <TAB> immutable|stable|volatile
//! sql_name <TAB> prefix <TAB> name type, ...       <TAB> result <TAB> aggregate     <TAB> merge,retract (or -)
//! ```
//!
//! `result` is a type, `setof type`, or `table(name type, name type)`. This module writes
//! and splits lines; what the names and types may be is the host's check (`plwasm-core`'s
//! `declared` module), because there the module is untrusted.

use core::fmt::{self, Write};

/// Fields per line.
pub const FIELDS: usize = 6;
pub const SEPARATOR: char = '\t';
const STRICT: &str = "strict";
const CALLED: &str = "called";
const AGGREGATE: &str = "aggregate";
const MERGE: &str = "merge";
const RETRACT: &str = "retract";
const NO_PARTS: &str = "-";
const SETOF: &str = "setof ";
const TABLE: &str = "table(";

/// A function's volatility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    /// The keyword, lower case as in a line (upper-cased, it is the SQL keyword).
    pub const fn keyword(self) -> &'static str {
        match self {
            Volatility::Immutable => "immutable",
            Volatility::Stable => "stable",
            Volatility::Volatile => "volatile",
        }
    }

    pub fn from_keyword(word: &str) -> Option<Volatility> {
        [Volatility::Immutable, Volatility::Stable, Volatility::Volatile].into_iter().find(|v| v.keyword() == word)
    }
}

/// What a line declares: a plain function or an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function {
        strict: bool,
        volatility: Volatility,
    },
    /// `merge` means merge, serialize and deserialize (partial aggregation); `retract`
    /// means moving-aggregate mode for window frames.
    Aggregate {
        merge: bool,
        retract: bool,
    },
}

/// A declared result, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns<'a, C> {
    Value(&'a str),
    SetOf(&'a str),
    /// The columns: `&[(name, type)]` to write, the unsplit `name type, ...` text when read
    /// (split it with [`named_items`]).
    Table(C),
}

/// A line, borrowed from the text it was read from or from its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a, A, C> {
    pub sql_name: &'a str,
    /// The export (a function) or the export prefix (an aggregate).
    pub export: &'a str,
    /// `&[(name, type)]` to write; the unsplit field when read.
    pub args: A,
    pub returns: Returns<'a, C>,
    pub kind: Kind,
}

/// A line to write.
pub type WriteLine<'a> = Line<'a, &'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]>;
/// A line as read.
pub type ReadLine<'a> = Line<'a, &'a str, &'a str>;

/// Why a line does not split into a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError<'a> {
    FieldCount(usize),
    Kind(&'a str),
    Volatility(&'a str),
    AggregatePart(&'a str),
    /// An item of a `name type` list without a type.
    Untyped(&'a str),
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::FieldCount(n) => write!(f, "{n} tab-separated fields instead of {FIELDS}"),
            LineError::Kind(word) => write!(f, "\"{word}\" is neither {STRICT}, {CALLED} nor {AGGREGATE}"),
            LineError::Volatility(word) => write!(f, "unknown volatility \"{word}\""),
            LineError::AggregatePart(word) => write!(f, "unknown aggregate part \"{word}\""),
            LineError::Untyped(item) => write!(f, "\"{item}\" has no type"),
        }
    }
}

impl fmt::Display for WriteLine<'_> {
    /// The line, with its final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}{SEPARATOR}", self.sql_name, self.export)?;
        write_named(f, self.args)?;
        f.write_char(SEPARATOR)?;
        match self.returns {
            Returns::Value(ty) => f.write_str(ty)?,
            Returns::SetOf(ty) => write!(f, "{SETOF}{ty}")?,
            Returns::Table(columns) => {
                f.write_str(TABLE)?;
                write_named(f, columns)?;
                f.write_char(')')?;
            }
        }
        f.write_char(SEPARATOR)?;
        match self.kind {
            Kind::Function { strict, volatility } => {
                write!(f, "{}{SEPARATOR}{}", if strict { STRICT } else { CALLED }, volatility.keyword())?
            }
            Kind::Aggregate { merge, retract } => {
                write!(f, "{AGGREGATE}{SEPARATOR}")?;
                match (merge, retract) {
                    (false, false) => f.write_str(NO_PARTS)?,
                    (true, false) => f.write_str(MERGE)?,
                    (false, true) => f.write_str(RETRACT)?,
                    (true, true) => write!(f, "{MERGE},{RETRACT}")?,
                }
            }
        }
        f.write_char('\n')
    }
}

fn write_named(f: &mut fmt::Formatter<'_>, items: &[(&str, &str)]) -> fmt::Result {
    for (i, (name, ty)) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{name} {ty}")?;
    }
    Ok(())
}

impl<'a> ReadLine<'a> {
    /// Splits one line (without its newline) into its fields.
    pub fn parse(line: &'a str) -> Result<ReadLine<'a>, LineError<'a>> {
        let mut fields = [""; FIELDS];
        let mut count = 0;
        for field in line.split(SEPARATOR) {
            if count < FIELDS {
                fields[count] = field;
            }
            count += 1;
        }
        if count != FIELDS {
            return Err(LineError::FieldCount(count));
        }
        let [sql_name, export, args, result, kind, last] = fields;
        let kind = match kind {
            AGGREGATE => {
                let (mut merge, mut retract) = (false, false);
                for part in last.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != NO_PARTS) {
                    match part {
                        MERGE => merge = true,
                        RETRACT => retract = true,
                        other => return Err(LineError::AggregatePart(other)),
                    }
                }
                Kind::Aggregate { merge, retract }
            }
            STRICT | CALLED => Kind::Function {
                strict: kind == STRICT,
                volatility: Volatility::from_keyword(last).ok_or(LineError::Volatility(last))?,
            },
            other => return Err(LineError::Kind(other)),
        };
        Ok(Line { sql_name, export, args, returns: parse_returns(result), kind })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn parse_returns(field: &str) -> Returns<'_, &str> {
    let field = field.trim();
    if let Some(ty) = strip_prefix_ignore_case(field, SETOF) {
        return Returns::SetOf(ty.trim());
    }
    if let Some(columns) = strip_prefix_ignore_case(field, TABLE).and_then(|rest| rest.strip_suffix(')')) {
        return Returns::Table(columns);
    }
    Returns::Value(field)
}

/// The `(name, type)` items of a `name type, name type` field (an empty field has none).
pub fn named_items(list: &str) -> impl Iterator<Item = Result<(&str, &str), LineError<'_>>> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty()).map(|item| match item.split_once(' ') {
        Some((name, ty)) => Ok((name, ty.trim())),
        None => Err(LineError::Untyped(item)),
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn written_lines_read_back() {
        let args = [("a", "double precision[]"), ("b", "integer")];
        let columns = [("ts", "timestamptz"), ("v", "float8")];
        for (returns, kind) in [
            (Returns::Value("text"), Kind::Function { strict: true, volatility: Volatility::Stable }),
            (Returns::SetOf("bigint"), Kind::Function { strict: false, volatility: Volatility::Immutable }),
            (Returns::Table(&columns[..]), Kind::Function { strict: true, volatility: Volatility::Volatile }),
            (Returns::Value("real"), Kind::Aggregate { merge: true, retract: true }),
            (Returns::Value("real"), Kind::Aggregate { merge: false, retract: false }),
        ] {
            let written = Line { sql_name: "f", export: "g", args: &args[..], returns, kind }.to_string();
            let read = ReadLine::parse(written.strip_suffix('\n').unwrap()).unwrap();
            assert_eq!((read.sql_name, read.export, read.kind), ("f", "g", kind));
            assert_eq!(named_items(read.args).collect::<Result<Vec<_>, _>>().unwrap(), args);
            match (returns, read.returns) {
                (Returns::Table(want), Returns::Table(got)) => {
                    assert_eq!(named_items(got).collect::<Result<Vec<_>, _>>().unwrap(), want)
                }
                (Returns::Value(a), Returns::Value(b)) | (Returns::SetOf(a), Returns::SetOf(b)) => assert_eq!(a, b),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(ReadLine::parse("a\tb\tc").unwrap_err(), LineError::FieldCount(3));
        assert_eq!(ReadLine::parse("f\tf\t\ttext\tleakproof\timmutable").unwrap_err(), LineError::Kind("leakproof"));
        assert_eq!(ReadLine::parse("f\tf\t\ttext\tstrict\tpure").unwrap_err(), LineError::Volatility("pure"));
        assert_eq!(
            ReadLine::parse("f\tf\t\ttext\taggregate\tsideways").unwrap_err(),
            LineError::AggregatePart("sideways")
        );
        assert_eq!(named_items("x").next(), Some(Err(LineError::Untyped("x"))));
        assert_eq!(LineError::FieldCount(3).to_string(), "3 tab-separated fields instead of 6");
        assert_eq!(parse_returns("SETOF int8"), Returns::SetOf("int8"));
    }
}
