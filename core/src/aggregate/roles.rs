//! The support functions of a wasm aggregate: which export each stands for, and the SQL
//! and wasm signatures it must have.

use plwasm_contract::batch::{is_row_type, MAX_ARGS as MAX_AGGREGATE_ARGS};
use plwasm_contract::names::{agg, AGGREGATE_EXPORTS, AGGREGATE_SEPARATOR};
use wasmtime::Module;

use crate::error::{PlWasmError, Result};
use crate::types::{Passing, SqlSignature, SqlType};

/// Which part of an aggregate a support function is. (Serializing a state is not a support
/// function: PostgreSQL flattens a `plwasm.state` when it must, and plwasm calls the guest's
/// `serialize` and `deserialize` exports for it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupportRole {
    Accumulate,
    Retract,
    Finalize,
    Merge,
}

impl SupportRole {
    pub const ALL: [SupportRole; 4] =
        [SupportRole::Accumulate, SupportRole::Retract, SupportRole::Finalize, SupportRole::Merge];

    /// For the two roles that queue rows, which way the rows go.
    pub fn step(self) -> Option<Step> {
        match self {
            SupportRole::Accumulate => Some(Step::Accumulate),
            SupportRole::Retract => Some(Step::Retract),
            _ => None,
        }
    }

    /// The export suffix: `accumulate` in `stats.accumulate`.
    pub fn suffix(self) -> &'static str {
        match self {
            SupportRole::Accumulate => agg::ACCUMULATE,
            SupportRole::Retract => agg::RETRACT,
            SupportRole::Finalize => agg::FINALIZE,
            SupportRole::Merge => agg::MERGE,
        }
    }

    /// The aggregate prefix and role an export name stands for, e.g. `("stats", Accumulate)`
    /// for `stats.accumulate`.
    pub fn of_export(export: &str) -> Option<(&str, SupportRole)> {
        let (prefix, suffix) = export.rsplit_once(AGGREGATE_SEPARATOR)?;
        let role = SupportRole::ALL.into_iter().find(|r| r.suffix() == suffix)?;
        (!prefix.is_empty()).then_some((prefix, role))
    }

    /// Checks a support function's SQL signature for this role.
    pub fn check_signature(self, signature: &SqlSignature) -> Result<()> {
        let bad = |what: String| Err(PlWasmError::AggregateSupport { what });
        let args = &signature.args;
        if args.contains(&SqlType::Internal) || signature.ret == SqlType::Internal {
            return bad(format!(
                "Since plwasm 0.2 a wasm aggregate's state is plwasm.state, not internal. Re-create the {} \
                 support function with plwasm.state (plwasm.create_functions(module, replace => true) does).",
                self.suffix()
            ));
        }
        let state_first = args.first() == Some(&SqlType::State);
        let rest = args.get(1..).unwrap_or_default();
        let described = || {
            let args: Vec<&str> = args.iter().map(|t| t.sql_name()).collect();
            format!(
                "({}) RETURNS {}{}",
                args.join(", "),
                signature.ret.sql_name(),
                if signature.strict { " STRICT" } else { "" }
            )
        };
        let needs = |expected: &str| {
            bad(format!("The {} support function must be {expected}; this one is {}.", self.suffix(), described()))
        };
        match self {
            SupportRole::Accumulate | SupportRole::Retract => {
                if !state_first || signature.ret != SqlType::State || signature.strict || rest.is_empty() {
                    return needs("(plwasm.state, argument types...) RETURNS plwasm.state, not STRICT");
                }
                if rest.len() > MAX_AGGREGATE_ARGS {
                    return bad(format!("A wasm aggregate takes at most {MAX_AGGREGATE_ARGS} arguments."));
                }
                if let Some(ty) = rest.iter().find(|t| !is_row_type(**t)) {
                    return bad(format!(
                        "Aggregate arguments must be fixed-width (boolean, integers, real, double precision, date, timestamp, timestamptz), text or bytea; {} is not.",
                        ty.sql_name()
                    ));
                }
            }
            SupportRole::Finalize => {
                let passable = !matches!(signature.ret.passing(), Passing::Nothing);
                if args.as_slice() != [SqlType::State] || !passable || signature.strict {
                    return needs("(plwasm.state) RETURNS a type wasm functions can return, not STRICT");
                }
            }
            SupportRole::Merge => {
                if args.as_slice() != [SqlType::State, SqlType::State]
                    || signature.ret != SqlType::State
                    || signature.strict
                {
                    return needs("(plwasm.state, plwasm.state) RETURNS plwasm.state, not STRICT");
                }
            }
        }
        Ok(())
    }
}

/// Checks that an ABI 1 module has the exports aggregate `prefix` needs, with their types,
/// including the one `role` calls.
pub fn check_exports(module: &Module, prefix: &str, role: SupportRole) -> Result<()> {
    let wanted = export_name(prefix, role.suffix());
    for (suffix, ty, required) in AGGREGATE_EXPORTS {
        let name = export_name(prefix, suffix);
        let actual = crate::introspect::function_export_type(module, &name);
        match actual {
            Some(actual) if actual == ty => {}
            Some(actual) => {
                return Err(PlWasmError::AggregateSupport {
                    what: format!("Export \"{name}\" must have wasm type {ty}, not {actual}."),
                })
            }
            None if required || name == wanted => {
                return Err(PlWasmError::AggregateSupport {
                    what: format!("The module has no function export \"{name}\" of type {ty}."),
                })
            }
            None => {}
        }
    }
    Ok(())
}

/// Whether to add or remove a batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Accumulate = 0,
    Retract = 1,
}

impl Step {
    /// The support role whose export takes this step's batches.
    pub fn role(self) -> SupportRole {
        match self {
            Step::Accumulate => SupportRole::Accumulate,
            Step::Retract => SupportRole::Retract,
        }
    }
}

/// The export `suffix` of aggregate `prefix`: `stats.accumulate`.
pub(super) fn export_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}{AGGREGATE_SEPARATOR}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_carry_the_role() {
        assert_eq!(SupportRole::of_export("stats.accumulate"), Some(("stats", SupportRole::Accumulate)));
        assert_eq!(SupportRole::of_export("a.b.merge"), Some(("a.b", SupportRole::Merge)));
        assert_eq!(SupportRole::of_export(".merge"), None);
        assert_eq!(SupportRole::of_export("stats.new"), None);
        assert_eq!(SupportRole::of_export("stats"), None);
    }

    fn sig(args: &[SqlType], ret: SqlType, strict: bool) -> SqlSignature {
        SqlSignature { args: args.to_vec(), ret, strict, set_of: None }
    }

    #[test]
    fn support_signatures_are_checked_per_role() {
        use SqlType::{Bytea, Float8, Float8Array, Int4, Internal, State, Text, TimestampTz};
        let ok = |role: SupportRole, s: SqlSignature| role.check_signature(&s).is_ok();
        assert!(ok(SupportRole::Accumulate, sig(&[State, Float8, TimestampTz], State, false)));
        assert!(!ok(SupportRole::Accumulate, sig(&[State, Float8], State, true)), "strict");
        assert!(ok(SupportRole::Accumulate, sig(&[State, Bytea, Text], State, false)));
        assert!(!ok(SupportRole::Accumulate, sig(&[State, Float8Array], State, false)), "arrays");
        assert!(!ok(SupportRole::Accumulate, sig(&[State], State, false)), "no arguments");
        assert!(ok(SupportRole::Finalize, sig(&[State], Float8Array, false)));
        assert!(!ok(SupportRole::Finalize, sig(&[State], State, false)));
        assert!(ok(SupportRole::Merge, sig(&[State, State], State, false)));
        assert!(!ok(SupportRole::Merge, sig(&[State, State], State, true)));
        let too_many = [State].into_iter().chain([Int4; 33]).collect::<Vec<_>>();
        assert!(!ok(SupportRole::Accumulate, sig(&too_many, State, false)));
        let old = SupportRole::Accumulate.check_signature(&sig(&[Internal, Float8], Internal, false)).unwrap_err();
        assert!(format!("{old:?}").contains("plwasm 0.2"), "{old:?}");
    }
}
