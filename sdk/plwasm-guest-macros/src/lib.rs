//! `#[plwasm_guest::export]`: turns a plain Rust function into a plwasm ABI 1 export and
//! records its SQL signature in the module's `plwasm.signatures` custom section.
//!
//! ```ignore
//! #[plwasm_guest::export]
//! fn slugify(s: &str) -> String { ... }
//!
//! #[plwasm_guest::export(name = "vector_dot", stable)]
//! fn dot(a: &[f64], b: &[f64]) -> Option<f64> { ... }
//! ```
//!
//! Argument names become SQL argument names. A function with any `Option` argument is
//! `CALLED ON NULL INPUT` (a NULL for a non-`Option` argument then yields NULL); otherwise it
//! is `STRICT`. Functions are `IMMUTABLE` unless marked `stable` or `volatile`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, FnArg, GenericArgument, ItemFn, Meta, Pat, PathArguments, ReturnType, Token, Type};

#[proc_macro_attribute]
pub fn export(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr with Punctuated::<Meta, Token![,]>::parse_terminated);
    let function = parse_macro_input!(item as ItemFn);
    match expand(options, function) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(options: Punctuated<Meta, Token![,]>, function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let rust_name = function.sig.ident.clone();
    let mut sql_name = rust_name.to_string();
    let mut volatility = "immutable";
    for option in &options {
        match option {
            Meta::Path(path) if path.is_ident("immutable") => volatility = "immutable",
            Meta::Path(path) if path.is_ident("stable") => volatility = "stable",
            Meta::Path(path) if path.is_ident("volatile") => volatility = "volatile",
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => sql_name = s.value(),
                other => return Err(syn::Error::new_spanned(other, "name must be a string literal")),
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected `name = \"...\"`, `immutable`, `stable` or `volatile`",
                ))
            }
        }
    }
    if !function.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&function.sig.generics, "exported functions cannot be generic"));
    }

    let mut arg_names = Vec::new();
    let mut arg_types = Vec::new();
    let mut sql_args = Vec::new();
    let mut any_nullable = false;
    for input in &function.sig.inputs {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new_spanned(input, "exported functions cannot take self"));
        };
        let Pat::Ident(name) = &*typed.pat else {
            return Err(syn::Error::new_spanned(&typed.pat, "use a plain argument name"));
        };
        let (sql, nullable) = sql_type(&typed.ty, false)?;
        any_nullable |= nullable;
        let name_text = name.ident.to_string();
        let name_text = name_text.trim_start_matches('_');
        sql_args.push(format!("{} {sql}", if name_text.is_empty() { "arg" } else { name_text }));
        arg_names.push(format_ident!("__plwasm_arg{}", arg_names.len()));
        arg_types.push((*typed.ty).clone());
    }
    let sql_ret = match &function.sig.output {
        ReturnType::Default => "void".to_string(),
        ReturnType::Type(_, ty) => sql_type(ty, true)?.0,
    };

    let export_name = rust_name.to_string();
    let line = format!(
        "{sql_name}\t{export_name}\t{}\t{sql_ret}\t{}\t{volatility}\n",
        sql_args.join(", "),
        if any_nullable { "called" } else { "strict" }
    );
    let line_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let line_len = line.len();
    let nargs = arg_names.len();
    let indexes = 0..nargs;

    Ok(quote! {
        #function

        const _: () = {
            #[export_name = #export_name]
            extern "C" fn __plwasm_export(frame: u32) {
                ::plwasm_guest::__private::call(frame, #nargs, |args, result| {
                    #(
                        let #arg_names: #arg_types = match ::plwasm_guest::__private::FromSlot::from_slot(&args[#indexes]) {
                            Ok(value) => value,
                            Err(missing) => return missing.into_result(result),
                        };
                    )*
                    ::plwasm_guest::__private::IntoSlot::into_slot(#rust_name(#(#arg_names),*), result);
                })
            }

            #[link_section = "plwasm.signatures"]
            #[used]
            static __PLWASM_SIGNATURE: [u8; #line_len] = *#line_bytes;
        };
    })
}

/// The SQL type of a Rust type, and whether it is an `Option` (nullable).
fn sql_type(ty: &Type, is_result: bool) -> syn::Result<(String, bool)> {
    let unsupported = || {
        syn::Error::new_spanned(
            ty,
            "plwasm has no SQL type for this Rust type; use bool, i16, i32, i64, f32, f64, &str, String, \
             &[u8], Vec<u8>, &[i32|i64|f32|f64], Vec<i32|i64|f32|f64>, Jsonb<&str|String>, Date, Timestamp, \
             TimestampTz, or an Option of one of them",
        )
    };
    match ty {
        Type::Reference(reference) => match &*reference.elem {
            Type::Path(path) if path.path.is_ident("str") => Ok(("text".into(), false)),
            Type::Slice(slice) => Ok((slice_type(&slice.elem).ok_or_else(unsupported)?, false)),
            _ => Err(unsupported()),
        },
        Type::Tuple(tuple) if tuple.elems.is_empty() && is_result => Ok(("void".into(), false)),
        Type::Paren(inner) => sql_type(&inner.elem, is_result),
        Type::Path(path) => {
            let segment = path.path.segments.last().ok_or_else(unsupported)?;
            let first_generic = || match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                }),
                _ => None,
            };
            let name = segment.ident.to_string();
            let simple = match name.as_str() {
                "bool" => "boolean",
                "i16" => "smallint",
                "i32" => "integer",
                "i64" => "bigint",
                "f32" => "real",
                "f64" => "double precision",
                "String" => "text",
                "Date" => "date",
                "Timestamp" => "timestamp",
                "TimestampTz" => "timestamptz",
                "Jsonb" => "jsonb",
                "Vec" => {
                    return Ok((slice_type(first_generic().ok_or_else(unsupported)?).ok_or_else(unsupported)?, false))
                }
                "Option" => return Ok((sql_type(first_generic().ok_or_else(unsupported)?, is_result)?.0, true)),
                "Result" if is_result => return sql_type(first_generic().ok_or_else(unsupported)?, true),
                _ => return Err(unsupported()),
            };
            Ok((simple.into(), false))
        }
        _ => Err(unsupported()),
    }
}

/// `bytea` or a numeric array type for `[T]` / `Vec<T>`.
fn slice_type(element: &Type) -> Option<String> {
    let Type::Path(path) = element else { return None };
    let name = path.path.get_ident()?.to_string();
    Some(
        match name.as_str() {
            "u8" => "bytea",
            "i32" => "integer[]",
            "i64" => "bigint[]",
            "f32" => "real[]",
            "f64" => "double precision[]",
            _ => return None,
        }
        .into(),
    )
}
