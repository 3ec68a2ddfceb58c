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

use plwasm_contract::batch;
use plwasm_contract::names::{agg, AGGREGATE_SEPARATOR, SIGNATURE_SECTION};
use plwasm_contract::signature_line::{Kind, Returns, Volatility, WriteLine};
use plwasm_contract::types::{SqlType, TYPES};
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
    let mut volatility = Volatility::Immutable;
    let mut columns: Option<Vec<String>> = None;
    for option in &options {
        // `immutable`, `stable` or `volatile`: the signature line's own keywords.
        if let Meta::Path(path) = option {
            if let Some(chosen) = path.get_ident().and_then(|word| Volatility::from_keyword(&word.to_string())) {
                volatility = chosen;
                continue;
            }
        }
        match option {
            Meta::NameValue(nv) if nv.path.is_ident("columns") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => {
                    columns = Some(s.value().split(',').map(|c| c.trim().to_string()).collect())
                }
                other => return Err(syn::Error::new_spanned(other, "columns must be a string literal: \"a, b\"")),
            },
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => sql_name = s.value(),
                other => return Err(syn::Error::new_spanned(other, "name must be a string literal")),
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected `name = \"...\"`, `columns = \"a, b\"`, `immutable`, `stable` or `volatile`",
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
        sql_args.push(sql_argument(&name.ident, sql));
        arg_names.push(format_ident!("__plwasm_arg{}", arg_names.len()));
        arg_types.push((*typed.ty).clone());
    }
    let sql_ret = match &function.sig.output {
        ReturnType::Default => Declared::Value(SqlType::Void),
        ReturnType::Type(_, ty) => result_type(ty, columns.as_deref())?,
    };

    let export_name = rust_name.to_string();
    let table_columns;
    let returns = match &sql_ret {
        Declared::Value(ty) => Returns::Value(ty.sql_name()),
        Declared::SetOf(ty) => Returns::SetOf(ty.sql_name()),
        Declared::Table(columns) => {
            table_columns = named(columns);
            Returns::Table(&table_columns[..])
        }
    };
    let args = named(&sql_args);
    let line = WriteLine {
        sql_name: &sql_name,
        export: &export_name,
        args: &args,
        returns,
        kind: Kind::Function { strict: !any_nullable, volatility },
    }
    .to_string();
    let line_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let line_len = line.len();
    let nargs = arg_names.len();
    let indexes = 0..nargs;
    let section = SIGNATURE_SECTION;

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

            #[link_section = #section]
            #[used]
            static __PLWASM_SIGNATURE: [u8; #line_len] = *#line_bytes;
        };
    })
}

/// The SQL argument name of a Rust argument: without leading underscores (`arg` when
/// nothing is left).
fn sql_argument(name: &syn::Ident, sql: SqlType) -> (String, SqlType) {
    let text = name.to_string();
    let text = text.trim_start_matches('_');
    (if text.is_empty() { "arg" } else { text }.to_string(), sql)
}

/// What a function declares it returns.
enum Declared {
    Value(SqlType),
    SetOf(SqlType),
    Table(Vec<(String, SqlType)>),
}

/// The declared result of a function returning `ty`: a type, a set for `SetOf<T>`, or a
/// table for `Table<(A, B, ...)>` (column names from `columns`).
fn result_type(ty: &Type, columns: Option<&[String]>) -> syn::Result<Declared> {
    let value = || Ok(Declared::Value(sql_type(ty, true)?.0));
    let Type::Path(path) = ty else { return value() };
    let Some(segment) = path.path.segments.last() else { return value() };
    let inner = match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    match (segment.ident.to_string().as_str(), inner) {
        ("Result", Some(inner)) => result_type(inner, columns),
        ("SetOf", Some(inner)) => Ok(Declared::SetOf(sql_type(inner, false)?.0)),
        ("Table", Some(Type::Tuple(tuple))) => {
            let mut parts = Vec::new();
            for (i, element) in tuple.elems.iter().enumerate() {
                let name = match columns {
                    Some(names) => names.get(i).cloned().ok_or_else(|| {
                        syn::Error::new_spanned(tuple, "`columns` names fewer columns than the tuple has")
                    })?,
                    None => format!("column{}", i + 1),
                };
                parts.push((name, sql_type(element, false)?.0));
            }
            if columns.is_some_and(|names| names.len() != parts.len()) {
                return Err(syn::Error::new_spanned(tuple, "`columns` names more columns than the tuple has"));
            }
            Ok(Declared::Table(parts))
        }
        ("Table", _) => Err(syn::Error::new_spanned(ty, "Table takes a tuple: Table<(A, B)>")),
        _ => value(),
    }
}

/// `#[plwasm_guest::aggregate(name = "...")]` on an `impl` block of a `Default` state type:
/// `accumulate(&mut self, args...)` and `finalize(&self) -> T` make an aggregate;
/// `merge(&mut self, other: &Self)` makes it parallel (and distributable); its flat form is
/// `serialize(&self) -> Vec<u8>` with `deserialize(bytes: &[u8]) -> Self` (or
/// `Result<Self, Error>`) when the block has them, else the state's `plwasm_guest::State`
/// (`#[derive(State)]`);
/// `retract(&mut self, args...)` makes it a moving aggregate for window frames.
/// A row with NULL in a non-`Option` argument is skipped, like a STRICT aggregate.
#[proc_macro_attribute]
pub fn aggregate(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr with Punctuated::<Meta, Token![,]>::parse_terminated);
    let block = parse_macro_input!(item as syn::ItemImpl);
    match expand_aggregate(options, block) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_aggregate(
    options: Punctuated<Meta, Token![,]>,
    block: syn::ItemImpl,
) -> syn::Result<proc_macro2::TokenStream> {
    let mut sql_name: Option<String> = None;
    for option in &options {
        match option {
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => sql_name = Some(s.value()),
                other => return Err(syn::Error::new_spanned(other, "name must be a string literal")),
            },
            other => return Err(syn::Error::new_spanned(other, "expected `name = \"...\"`")),
        }
    }
    let Some(sql_name) = sql_name else {
        return Err(syn::Error::new_spanned(
            &block.self_ty,
            "give the aggregate's SQL name: #[aggregate(name = \"...\")]",
        ));
    };
    let state = &block.self_ty;
    let method = |name: &str| {
        block.items.iter().find_map(|item| match item {
            syn::ImplItem::Fn(f) if f.sig.ident == name => Some(f.clone()),
            _ => None,
        })
    };
    let accumulate = method("accumulate")
        .ok_or_else(|| syn::Error::new_spanned(state, "an aggregate needs fn accumulate(&mut self, ...)"))?;
    let finalize = method("finalize")
        .ok_or_else(|| syn::Error::new_spanned(state, "an aggregate needs fn finalize(&self) -> T"))?;
    let merge = method("merge");
    let serialize = method("serialize");
    let deserialize = method("deserialize");
    let retract = method("retract");
    let parallel = merge.is_some();
    if serialize.is_some() != deserialize.is_some() {
        return Err(syn::Error::new_spanned(
            state,
            "write both serialize(&self) -> Vec<u8> and deserialize(&[u8]) -> Self, or neither (then the state \
             type must implement plwasm_guest::State, e.g. with #[derive(State)])",
        ));
    }

    let mut sql_args = Vec::new();
    let mut arg_types = Vec::new();
    let mut is_bytes = Vec::new();
    for input in accumulate.sig.inputs.iter().skip(1) {
        let FnArg::Typed(typed) = input else { continue };
        let Pat::Ident(name) = &*typed.pat else {
            return Err(syn::Error::new_spanned(&typed.pat, "use a plain argument name"));
        };
        let (sql, _) = sql_type(&typed.ty, false)?;
        if !batch::is_row_type(sql) {
            return Err(syn::Error::new_spanned(
                &typed.ty,
                "aggregate arguments must be fixed-width types, text (&str) or bytea (&[u8])",
            ));
        }
        sql_args.push(sql_argument(&name.ident, sql));
        is_bytes.push(batch::in_payload(sql));
        arg_types.push((*typed.ty).clone());
    }
    if arg_types.is_empty() {
        return Err(syn::Error::new_spanned(&accumulate.sig, "accumulate takes at least one argument"));
    }
    let sql_ret = match &finalize.sig.output {
        ReturnType::Default => return Err(syn::Error::new_spanned(&finalize.sig, "finalize must return a value")),
        ReturnType::Type(_, ty) => sql_type(ty, true)?.0,
    };
    let args = named(&sql_args);
    let line = WriteLine {
        sql_name: &sql_name,
        export: &sql_name,
        args: &args,
        returns: Returns::Value(sql_ret.sql_name()),
        kind: Kind::Aggregate { merge: parallel, retract: retract.is_some() },
    }
    .to_string();
    let line_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let line_len = line.len();
    let nargs = arg_types.len();
    let arg_names: Vec<_> = (0..nargs).map(|i| format_ident!("__plwasm_arg{i}")).collect();
    let indexes = 0..nargs;
    let section = SIGNATURE_SECTION;
    let export = |suffix: &str| format!("{sql_name}{AGGREGATE_SEPARATOR}{suffix}");
    let (e_new, e_acc, e_fin, e_free) =
        (export(agg::NEW), export(agg::ACCUMULATE), export(agg::FINALIZE), export(agg::FREE));
    let rows = |method: &syn::Ident| {
        let (arg_names, arg_types, indexes) = (arg_names.clone(), arg_types.clone(), indexes.clone());
        quote! {
            ::plwasm_guest::__private::agg_rows::<#state>(address, count, #nargs, &[#(#is_bytes),*], |state, slots| {
                #(
                    let #arg_names: #arg_types = match ::plwasm_guest::__private::FromSlot::from_slot(&slots[#indexes]) {
                        Ok(value) => value,
                        Err(_) => return,
                    };
                )*
                state.#method(#(#arg_names),*);
            });
        }
    };
    let accumulate_rows = rows(&format_ident!("accumulate"));
    let mut extra = quote! {};
    if retract.is_some() {
        let e_ret = export(agg::RETRACT);
        let retract_rows = rows(&format_ident!("retract"));
        extra.extend(quote! {
            #[export_name = #e_ret]
            extern "C" fn __plwasm_retract(address: i32, count: i32) { #retract_rows }
        });
    }
    if parallel {
        let e_merge = export(agg::MERGE);
        extra.extend(quote! {
            #[export_name = #e_merge]
            extern "C" fn __plwasm_merge(into: i32, from: i32) {
                // SAFETY: both handles are live states of this aggregate, and distinct.
                let (into, from) = unsafe {
                    (::plwasm_guest::__private::agg_state::<#state>(into as u64),
                     ::plwasm_guest::__private::agg_state::<#state>(from as u64))
                };
                into.merge(from);
            }
        });
    }
    // Every aggregate can be made flat (parallel plans, copies, other nodes): with its own
    // serialize/deserialize, or through the state type's plwasm_guest::State.
    let (to_bytes, from_bytes) = if serialize.is_some() {
        (quote! { state.serialize() }, quote! { <#state>::deserialize(bytes) })
    } else {
        (
            quote! { <#state as ::plwasm_guest::State>::to_bytes(state) },
            quote! { <#state as ::plwasm_guest::State>::from_bytes(bytes) },
        )
    };
    let (e_ser, e_de) = (export(agg::SERIALIZE), export(agg::DESERIALIZE));
    extra.extend(quote! {
        #[export_name = #e_ser]
        extern "C" fn __plwasm_serialize(frame: u32) {
            ::plwasm_guest::__private::call(frame, 1, |args, result| {
                // SAFETY: argument 0 is a live state of this aggregate.
                let state = unsafe { ::plwasm_guest::__private::agg_state::<#state>(args[0].value) };
                ::plwasm_guest::__private::IntoSlot::into_slot(#to_bytes, result);
            })
        }
        #[export_name = #e_de]
        extern "C" fn __plwasm_deserialize(frame: u32) {
            ::plwasm_guest::__private::call(frame, 1, |args, result| {
                let bytes: &[u8] = match ::plwasm_guest::__private::FromSlot::from_slot(&args[0]) {
                    Ok(bytes) => bytes,
                    Err(_) => &[],
                };
                let state = ::plwasm_guest::__private::IntoState::into_state(#from_bytes);
                result.flags = 0;
                result.value = ::plwasm_guest::__private::agg_adopt::<#state>(state);
            })
        }
    });

    Ok(quote! {
        #block

        const _: () = {
            #[export_name = #e_new]
            extern "C" fn __plwasm_new() -> i32 {
                ::plwasm_guest::__private::agg_new::<#state>()
            }
            #[export_name = #e_free]
            extern "C" fn __plwasm_free(handle: i32) {
                ::plwasm_guest::__private::agg_free::<#state>(handle)
            }
            #[export_name = #e_acc]
            extern "C" fn __plwasm_accumulate(address: i32, count: i32) { #accumulate_rows }
            #[export_name = #e_fin]
            extern "C" fn __plwasm_finalize(frame: u32) {
                ::plwasm_guest::__private::call(frame, 1, |args, result| {
                    // SAFETY: argument 0 is a live state of this aggregate.
                    let state = unsafe { ::plwasm_guest::__private::agg_state::<#state>(args[0].value) };
                    ::plwasm_guest::__private::IntoSlot::into_slot(state.finalize(), result);
                })
            }
            #extra

            #[link_section = #section]
            #[used]
            static __PLWASM_SIGNATURE: [u8; #line_len] = *#line_bytes;
        };
    })
}

/// `#[derive(State)]`: a state's flat form, field by field in declaration order (each field's
/// type implements `plwasm_guest::Field`). What a parallel plan, a copy or another node gets
/// of an aggregate's state when the aggregate writes no serialize/deserialize of its own.
#[proc_macro_derive(State)]
pub fn derive_state(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    match expand_state(input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_state(input: syn::DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&input.generics, "State cannot be derived for generic types"));
    }
    let syn::Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(name, "State can be derived for structs only"));
    };
    let (puts, build) = match &data.fields {
        syn::Fields::Named(fields) => {
            let names: Vec<_> = fields.named.iter().filter_map(|f| f.ident.clone()).collect();
            (
                quote! { #( ::plwasm_guest::Field::put(&self.#names, &mut out); )* },
                quote! { #name { #( #names: ::plwasm_guest::Field::take(&mut input)?, )* } },
            )
        }
        syn::Fields::Unnamed(fields) => {
            let indexes: Vec<syn::Index> = (0..fields.unnamed.len()).map(syn::Index::from).collect();
            let takes = indexes.iter().map(|_| quote! { ::plwasm_guest::Field::take(&mut input)? });
            (quote! { #( ::plwasm_guest::Field::put(&self.#indexes, &mut out); )* }, quote! { #name ( #(#takes),* ) })
        }
        syn::Fields::Unit => (quote! {}, quote! { #name }),
    };
    Ok(quote! {
        impl ::plwasm_guest::State for #name {
            fn to_bytes(&self) -> ::std::vec::Vec<u8> {
                let mut out = ::std::vec::Vec::new();
                #puts
                out
            }
            fn from_bytes(bytes: &[u8]) -> ::std::result::Result<Self, ::plwasm_guest::Error> {
                let mut input = bytes;
                let state = #build;
                ::plwasm_guest::__private::finish_state(input)?;
                Ok(state)
            }
        }
    })
}

/// The Rust types the SDK maps, for the error an unsupported type gets: from the contract's
/// type table.
fn supported_rust_types() -> String {
    let mut names: Vec<String> = Vec::new();
    for info in &TYPES {
        for rust in info.rust {
            names.push(if *rust == "str" { "&str".to_string() } else { rust.to_string() });
        }
    }
    let elements: Vec<&str> = TYPES.iter().filter_map(|info| info.rust_element).collect();
    format!(
        "plwasm has no SQL type for this Rust type; use {}, &[T] or Vec<T> for T in {}, or an Option of one of them",
        names.join(", "),
        elements.join(", ")
    )
}

/// The SQL type of a Rust type, and whether it is an `Option` (nullable). `None` for `()`
/// as a result (void).
fn sql_type(ty: &Type, is_result: bool) -> syn::Result<(SqlType, bool)> {
    let unsupported = || syn::Error::new_spanned(ty, supported_rust_types());
    match ty {
        Type::Reference(reference) => match &*reference.elem {
            Type::Path(path) if path.path.get_ident().is_some() => {
                let name = path.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                // Only `&str` is a reference by name; `&String` is not a type the SDK reads.
                match SqlType::from_rust_name(&name).filter(|_| name == "str") {
                    Some(ty) => Ok((ty, false)),
                    None => Err(unsupported()),
                }
            }
            Type::Slice(slice) => Ok((slice_type(&slice.elem).ok_or_else(unsupported)?, false)),
            _ => Err(unsupported()),
        },
        Type::Tuple(tuple) if tuple.elems.is_empty() && is_result => Ok((SqlType::Void, false)),
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
            match name.as_str() {
                "Vec" => Ok((slice_type(first_generic().ok_or_else(unsupported)?).ok_or_else(unsupported)?, false)),
                "Option" => Ok((sql_type(first_generic().ok_or_else(unsupported)?, is_result)?.0, true)),
                "Result" if is_result => sql_type(first_generic().ok_or_else(unsupported)?, true),
                // `str` is only ever behind a reference.
                "str" => Err(unsupported()),
                other => Ok((SqlType::from_rust_name(other).ok_or_else(unsupported)?, false)),
            }
        }
        _ => Err(unsupported()),
    }
}

/// The SQL type of `[T]` / `Vec<T>`: bytea or a numeric array.
fn slice_type(element: &Type) -> Option<SqlType> {
    let Type::Path(path) = element else { return None };
    SqlType::from_rust_element(&path.path.get_ident()?.to_string())
}

/// `name type` items for a signature line, from `(name, type)` pairs.
fn named<'a>(items: &'a [(String, SqlType)]) -> Vec<(&'a str, &'a str)> {
    items.iter().map(|(name, ty)| (name.as_str(), ty.sql_name())).collect()
}

#[cfg(test)]
mod tests;
