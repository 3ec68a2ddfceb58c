//! Expansion tests: what `#[export]` and `#[aggregate]` generate, read back through the
//! contract's parser, and the errors they give.

use plwasm_contract::signature_line::{named_items, Kind, ReadLine, Returns, Volatility};
use syn::punctuated::Punctuated;
use syn::{Meta, Token};

use super::{expand, expand_aggregate};

fn options(text: &str) -> Punctuated<Meta, Token![,]> {
    syn::parse::Parser::parse_str(Punctuated::<Meta, Token![,]>::parse_terminated, text).unwrap()
}

/// The signature line an expansion embeds (its byte string literal, unescaped).
fn embedded_line(tokens: &proc_macro2::TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens.clone()).expect("the expansion parses as items");
    let mut found = None;
    find_line(&file.items, &mut found);
    found.expect("a __PLWASM_SIGNATURE static")
}

fn find_line(items: &[syn::Item], found: &mut Option<String>) {
    for item in items {
        match item {
            syn::Item::Static(s) if s.ident == "__PLWASM_SIGNATURE" => {
                let attrs: Vec<String> = s.attrs.iter().map(|a| quote::quote!(#a).to_string()).collect();
                assert!(attrs.iter().any(|a| a.contains("plwasm.signatures")), "{attrs:?}");
                if let syn::Expr::Unary(unary) = &*s.expr {
                    if let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::ByteStr(bytes), .. }) = &*unary.expr {
                        *found = Some(String::from_utf8(bytes.value()).unwrap());
                    }
                }
            }
            syn::Item::Const(c) => {
                if let syn::Expr::Block(block) = &*c.expr {
                    let inner: Vec<syn::Item> = block
                        .block
                        .stmts
                        .iter()
                        .filter_map(|s| match s {
                            syn::Stmt::Item(item) => Some(item.clone()),
                            _ => None,
                        })
                        .collect();
                    find_line(&inner, found);
                }
            }
            _ => {}
        }
    }
}

fn export_names(tokens: &proc_macro2::TokenStream) -> Vec<String> {
    let text = tokens.to_string();
    text.match_indices("export_name = \"")
        .map(|(at, m)| {
            let rest = &text[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn an_export_records_its_sql_signature() {
    let function: syn::ItemFn =
        syn::parse_quote! { fn dot(a: &[f64], _b: Option<Vec<f64>>, label: &str) -> Result<f64, Error> { 0.0 } };
    let tokens = expand(options("name = \"vector_dot\", stable"), function).unwrap();
    let line = embedded_line(&tokens);
    let read = ReadLine::parse(line.strip_suffix('\n').unwrap()).unwrap();
    assert_eq!((read.sql_name, read.export), ("vector_dot", "dot"));
    assert_eq!(
        read.kind,
        Kind::Function { strict: false, volatility: Volatility::Stable },
        "an Option makes it CALLED"
    );
    let args: Vec<(&str, &str)> = named_items(read.args).map(Result::unwrap).collect();
    assert_eq!(args, [("a", "double precision[]"), ("b", "double precision[]"), ("label", "text")]);
    assert_eq!(read.returns, Returns::Value("double precision"));
    assert_eq!(export_names(&tokens), ["dot"]);
}

#[test]
fn sets_and_tables_are_declared() {
    let function: syn::ItemFn =
        syn::parse_quote! { fn pts(raw: &[u8]) -> Table<(TimestampTz, f64)> { Table(Vec::new()) } };
    let line = embedded_line(&expand(options("columns = \"ts, value\""), function).unwrap());
    let read = ReadLine::parse(line.trim_end()).unwrap();
    assert_eq!(read.kind, Kind::Function { strict: true, volatility: Volatility::Immutable });
    let Returns::Table(columns) = read.returns else { panic!("{line}") };
    let columns: Vec<(&str, &str)> = named_items(columns).map(Result::unwrap).collect();
    assert_eq!(columns, [("ts", "timestamp with time zone"), ("value", "double precision")]);

    let function: syn::ItemFn = syn::parse_quote! { fn ids() -> SetOf<i64> { SetOf(Vec::new()) } };
    let line = embedded_line(&expand(options(""), function).unwrap());
    assert_eq!(ReadLine::parse(line.trim_end()).unwrap().returns, Returns::SetOf("bigint"));
}

#[test]
fn unsupported_types_and_options_are_compile_errors() {
    for function in [
        syn::parse_quote! { fn f(x: u64) -> i64 { 0 } },
        syn::parse_quote! { fn f(x: &String) -> i64 { 0 } },
        syn::parse_quote! { fn f(x: &[bool]) -> i64 { 0 } },
        syn::parse_quote! { fn f<T>(x: T) -> i64 { 0 } },
    ] {
        let function: syn::ItemFn = function;
        assert!(expand(options(""), function).is_err());
    }
    let function: syn::ItemFn = syn::parse_quote! { fn f(x: u64) -> i64 { 0 } };
    let message = expand(options(""), function).unwrap_err().to_string();
    assert!(message.contains("i64") && message.contains("&str") && message.contains("TimestampTz"), "{message}");
    let function: syn::ItemFn = syn::parse_quote! { fn f() {} };
    assert!(expand(options("leakproof"), function).is_err());
}

#[test]
fn an_aggregate_exports_its_parts_and_declares_them() {
    let block: syn::ItemImpl = syn::parse_quote! {
        impl Stats {
            fn accumulate(&mut self, x: f64, tag: Option<&str>) {}
            fn retract(&mut self, x: f64, tag: Option<&str>) {}
            fn finalize(&self) -> Option<f64> { None }
            fn merge(&mut self, other: &Self) {}
            fn serialize(&self) -> Vec<u8> { Vec::new() }
            fn deserialize(bytes: &[u8]) -> Self { Stats }
        }
    };
    let tokens = expand_aggregate(options("name = \"stats\""), block).unwrap();
    let line = embedded_line(&tokens);
    let read = ReadLine::parse(line.trim_end()).unwrap();
    assert_eq!((read.sql_name, read.export), ("stats", "stats"));
    assert_eq!(read.kind, Kind::Aggregate { merge: true, retract: true });
    let mut names = export_names(&tokens);
    names.sort();
    assert_eq!(
        names,
        [
            "stats.accumulate",
            "stats.deserialize",
            "stats.finalize",
            "stats.free",
            "stats.merge",
            "stats.new",
            "stats.retract",
            "stats.serialize"
        ]
    );
    // The text argument is read from the payload area.
    assert!(tokens.to_string().contains("& [false , true]"), "{tokens}");
}

#[test]
fn every_aggregate_can_be_made_flat() {
    // No serialize/deserialize written: the exports use the state's plwasm_guest::State.
    let block: syn::ItemImpl = syn::parse_quote! {
        impl Mean { fn accumulate(&mut self, x: f64) {} fn finalize(&self) -> f64 { 0.0 } }
    };
    let tokens = expand_aggregate(options("name = \"mean\""), block).unwrap();
    let mut names = export_names(&tokens);
    names.sort();
    assert_eq!(
        names,
        ["mean.accumulate", "mean.deserialize", "mean.finalize", "mean.free", "mean.new", "mean.serialize"]
    );
    assert!(tokens.to_string().contains("plwasm_guest :: State > :: to_bytes"), "{tokens}");
    // Half of a pair is an error.
    let block: syn::ItemImpl = syn::parse_quote! {
        impl Mean { fn accumulate(&mut self, x: f64) {} fn finalize(&self) -> f64 { 0.0 } fn serialize(&self) -> Vec<u8> { vec![] } }
    };
    assert!(expand_aggregate(options("name = \"mean\""), block).is_err());
}

#[test]
fn aggregates_refuse_what_the_host_would() {
    let block: syn::ItemImpl =
        syn::parse_quote! { impl S { fn accumulate(&mut self, x: Vec<f64>) {} fn finalize(&self) -> f64 { 0.0 } } };
    assert!(expand_aggregate(options("name = \"s\""), block).is_err(), "array arguments");
    let block: syn::ItemImpl =
        syn::parse_quote! { impl S { fn accumulate(&mut self, x: f64) {} fn finalize(&self) -> f64 { 0.0 } } };
    assert!(expand_aggregate(options(""), block).is_err(), "no name");
}
