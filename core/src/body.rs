//! Decoding a function body (`prosrc`) into a wasm binary.
//!
//! A body is zero or more directive lines followed by one whole module:
//!
//! ```text
//! my_module                        -- a module stored with plwasm.install_module, or
//! my_module:my_export              -- ... naming the export; otherwise:
//! @export add_one                 -- optional: call this export instead of the function's name
//! (module (func (export "add_one") ...))   -- WebAssembly text, or
//! \x0061736d01000000...            -- the binary as hex (bytea's escape form), or
//! AGFzbQEAAAA...                   -- the binary as base64
//! ```

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{PlWasmError, Result};

/// A decoded body: the binary, its content hash, and the export it names (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBody {
    pub wasm: Vec<u8>,
    /// SHA-256 of `wasm`: the key of the compiled-module cache.
    pub hash: [u8; 32],
    /// Set by an `@export name` directive.
    pub export: Option<String>,
    /// [`text_key`] of the module text it was decoded from.
    pub text_key: [u8; 32],
}

/// How the module was written; reported in messages and useful to tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Text,
    Hex,
    Base64,
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Source text may be larger than the binary it encodes (hex doubles it, WAT is wordier).
/// Bounding the text before parsing keeps a huge body from costing a huge parse.
const SOURCE_TO_BINARY_RATIO: usize = 8;

/// What a function body names: a module of its own, or one stored in `plwasm.module_store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Inline(DecodedBody),
    Stored { module: String, export: Option<String> },
}

/// The longest module name (PostgreSQL's identifier length).
pub const MAX_MODULE_NAME: usize = 63;

/// Base64 of any wasm binary starts with this (the encoding of `\0asm`).
const BASE64_MAGIC: &str = "AGFzbQ";

/// Whether `name` can name a stored module: an identifier of at most 63 ASCII letters,
/// digits and underscores, not starting with a digit, and not readable as base64 wasm.
pub fn is_module_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_MODULE_NAME
        && !name.starts_with(BASE64_MAGIC)
}

/// Reads a body: `module` or `module:export` refers to a stored module; anything else is
/// decoded as an inline module (see [`decode_body`]).
pub fn parse_body(source: &str, max_module_size: usize) -> Result<Body> {
    match stored_reference(source) {
        Some(stored) => stored,
        None => decode_body(source, max_module_size).map(Body::Inline),
    }
}

/// A body naming a stored module (`module` or `module:export`), checked; `None` for an inline
/// body.
fn stored_reference(source: &str) -> Option<Result<Body>> {
    let trimmed = source.trim();
    let (module, export) = match trimmed.split_once(':') {
        Some((module, export)) => (module, Some(export)),
        None => (trimmed, None),
    };
    if !is_module_name(module) {
        return None;
    }
    Some(match export {
        Some(export) if export.is_empty() || export.chars().any(char::is_whitespace) => {
            Err(PlWasmError::BadDirective {
                line: trimmed.to_string(),
                reason: "an export name after \":\" must be non-empty and without spaces".into(),
            })
        }
        _ => Ok(Body::Stored { module: module.to_string(), export: export.map(str::to_string) }),
    })
}

/// Checks a binary about to be stored as a module: size and magic. Compilation and import
/// checks follow in [`crate::validate`].
pub fn check_stored_binary(wasm: &[u8], max_module_size: usize) -> Result<[u8; 32]> {
    if wasm.len() > max_module_size {
        return Err(PlWasmError::ModuleTooLarge { size: wasm.len(), limit: max_module_size });
    }
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(PlWasmError::NotWasm);
    }
    Ok(content_hash(wasm))
}

/// The SHA-256 of a wasm binary: the key of compiled modules, in memory and on disk.
pub fn content_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// Decodes `source` into a wasm binary no larger than `max_module_size` bytes.
pub fn decode_body(source: &str, max_module_size: usize) -> Result<DecodedBody> {
    let source_limit = max_module_size.saturating_mul(SOURCE_TO_BINARY_RATIO);
    if source.len() > source_limit {
        return Err(PlWasmError::ModuleTooLarge { size: source.len(), limit: source_limit });
    }
    let (export, module_text) = split_directives(source)?;
    let (wasm, _encoding) = decode_module(module_text)?;
    if wasm.len() > max_module_size {
        return Err(PlWasmError::ModuleTooLarge { size: wasm.len(), limit: max_module_size });
    }
    let hash = content_hash(&wasm);
    Ok(DecodedBody { wasm, hash, export, text_key: text_key(module_text) })
}

/// Names a module text (WebAssembly text, hex or base64, directives left off): a new
/// session that finds what the text decoded to in the code cache skips decoding it again
/// (parsing even a small WAT module there costs about 0.2 ms of cold code). The SHA-256 of
/// the text after a prefix naming plwasm's release, so a release with another decoder never
/// reads an older release's record, and no module binary's [`content_hash`] equals it.
pub fn text_key(module_text: &str) -> [u8; 32] {
    const DOMAIN: &str = concat!("plwasm ", env!("CARGO_PKG_VERSION"), " inline module text\0");
    Sha256::new().chain_update(DOMAIN).chain_update(module_text.trim()).finalize().into()
}

/// For an inline body: its `@export` directive and the [`text_key`] of its module, without
/// decoding the module; `None` for a stored module's name, a body over the size bound, or
/// directives [`decode_body`] would refuse (it reports them).
pub fn inline_text_key(source: &str, max_module_size: usize) -> Option<(Option<String>, [u8; 32])> {
    if source.len() > max_module_size.saturating_mul(SOURCE_TO_BINARY_RATIO) {
        return None;
    }
    if stored_reference(source).is_some() {
        return None;
    }
    let (export, module_text) = split_directives(source).ok()?;
    Some((export, text_key(module_text)))
}

/// Splits leading `@directive` lines from the module text.
fn split_directives(source: &str) -> Result<(Option<String>, &str)> {
    let mut export = None;
    let mut rest = source;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with('@') {
            return Ok((export, trimmed));
        }
        let (line, after) = match trimmed.find('\n') {
            Some(end) => (&trimmed[..end], &trimmed[end + 1..]),
            None => (trimmed, ""),
        };
        let line = line.trim_end();
        let mut words = line.split_whitespace();
        let directive = words.next().unwrap_or_default();
        let bad = |reason: &str| PlWasmError::BadDirective { line: line.to_string(), reason: reason.to_string() };
        match directive {
            "@export" => {
                let name = words.next().ok_or_else(|| bad("@export needs an export name"))?;
                if words.next().is_some() {
                    return Err(bad("@export takes exactly one name"));
                }
                if export.is_some() {
                    return Err(bad("@export given twice"));
                }
                export = Some(name.trim_matches('"').to_string());
            }
            _ => return Err(bad(&format!("unknown directive \"{directive}\""))),
        }
        rest = after;
    }
}

fn decode_module(text: &str) -> Result<(Vec<u8>, Encoding)> {
    let text = text.trim();
    if text.is_empty() {
        return Err(PlWasmError::EmptyBody);
    }
    if text.starts_with('(') || text.starts_with(";;") {
        let wasm = wat::parse_str(text).map_err(|err| PlWasmError::WatSyntax { message: err.to_string() })?;
        return Ok((wasm, Encoding::Text));
    }
    if let Some(hex_digits) = text.strip_prefix("\\x") {
        let compact: String = hex_digits.chars().filter(|c| !c.is_whitespace()).collect();
        let wasm = hex::decode(&compact)
            .map_err(|err| PlWasmError::BadEncoding { encoding: "hex", message: err.to_string() })?;
        return check_magic(wasm).map(|w| (w, Encoding::Hex));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
        return Err(PlWasmError::UnrecognizedBody);
    }
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|err| PlWasmError::BadEncoding { encoding: "base64", message: err.to_string() })?;
    check_magic(wasm).map(|w| (w, Encoding::Base64))
}

fn check_magic(wasm: Vec<u8>) -> Result<Vec<u8>> {
    if wasm.starts_with(WASM_MAGIC) {
        Ok(wasm)
    } else {
        Err(PlWasmError::NotWasm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD_ONE_WAT: &str =
        r#"(module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))"#;

    #[test]
    fn the_text_key_of_a_body_is_the_one_its_decoding_records() {
        let body = format!("@export add_one\n  {ADD_ONE_WAT}  \n");
        let decoded = decode_body(&body, 1 << 20).unwrap();
        assert_eq!(inline_text_key(&body, 1 << 20), Some((Some("add_one".to_string()), decoded.text_key)));
        // Directives and surrounding white space are not part of the module text.
        assert_eq!(inline_text_key(ADD_ONE_WAT, 1 << 20), Some((None, decoded.text_key)));
        let hex_body = format!("\\x{}", hex::encode(&decoded.wasm));
        assert_ne!(inline_text_key(&hex_body, 1 << 20).unwrap().1, decoded.text_key, "another text");
        assert_ne!(decoded.text_key, decoded.hash, "a text key is not the binary's hash");
        assert_eq!(inline_text_key("my_module:add_one", 1 << 20), None, "a stored module");
        assert_eq!(inline_text_key("my_module", 1 << 20), None, "a stored module");
        assert_eq!(inline_text_key(&format!("@bogus\n{ADD_ONE_WAT}"), 1 << 20), None, "decoding reports it");
        assert_eq!(inline_text_key(ADD_ONE_WAT, 8), None, "over the size bound: decoding reports it");
    }

    #[test]
    fn text_hex_and_base64_decode_to_the_same_binary() {
        let text = decode_body(ADD_ONE_WAT, 1 << 20).unwrap();
        let hex_body = format!("\\x{}", hex::encode(&text.wasm));
        let b64_body = base64::engine::general_purpose::STANDARD.encode(&text.wasm);
        let from_hex = decode_body(&hex_body, 1 << 20).unwrap();
        let from_b64 = decode_body(&format!("\n  {b64_body}\n"), 1 << 20).unwrap();
        let binary = |d: &DecodedBody| (d.wasm.clone(), d.hash, d.export.clone());
        assert_eq!(binary(&text), binary(&from_hex));
        assert_eq!(binary(&text), binary(&from_b64));
        assert!(text.wasm.starts_with(WASM_MAGIC));
    }

    #[test]
    fn export_directive_is_read_and_stripped() {
        let body = format!("\n  @export add_one\n{ADD_ONE_WAT}");
        let decoded = decode_body(&body, 1 << 20).unwrap();
        assert_eq!(decoded.export.as_deref(), Some("add_one"));
    }

    #[test]
    fn bad_directives_are_refused() {
        let unknown = decode_body("@abi 7\n(module)", 1024).unwrap_err();
        assert!(matches!(unknown, PlWasmError::BadDirective { .. }));
        let empty = decode_body("@export\n(module)", 1024).unwrap_err();
        assert!(matches!(empty, PlWasmError::BadDirective { .. }));
        let twice = decode_body("@export a\n@export b\n(module)", 1024).unwrap_err();
        assert!(matches!(twice, PlWasmError::BadDirective { .. }));
    }

    #[test]
    fn wat_errors_carry_the_position() {
        let err = decode_body("(module\n  (func (result i32) i32.const))", 1024).unwrap_err();
        match err {
            PlWasmError::WatSyntax { message } => assert!(message.contains(":2:"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_wasm_bytes_and_garbage_are_refused() {
        assert_eq!(decode_body("\\x00112233", 1024).unwrap_err(), PlWasmError::NotWasm);
        assert!(matches!(decode_body("\\xzz", 1024).unwrap_err(), PlWasmError::BadEncoding { encoding: "hex", .. }));
        assert_eq!(decode_body("select 1;", 1024).unwrap_err(), PlWasmError::UnrecognizedBody);
        assert_eq!(decode_body("  \n ", 1024).unwrap_err(), PlWasmError::EmptyBody);
        assert_eq!(decode_body("aGVsbG8=", 1024).unwrap_err(), PlWasmError::NotWasm);
    }

    #[test]
    fn size_cap_applies_to_binary_and_to_source() {
        let err = decode_body(ADD_ONE_WAT, 16).unwrap_err();
        assert!(matches!(err, PlWasmError::ModuleTooLarge { limit: 16, .. }), "{err:?}");
        let huge = format!("(module) ;; {}", "x".repeat(10_000));
        let err = decode_body(&huge, 100).unwrap_err();
        assert!(matches!(err, PlWasmError::ModuleTooLarge { limit: 800, .. }), "{err:?}");
    }

    #[test]
    fn module_references_are_told_from_inline_modules() {
        assert_eq!(
            parse_body(" text_utils\n", 1024).unwrap(),
            Body::Stored { module: "text_utils".into(), export: None }
        );
        assert_eq!(
            parse_body("text_utils:slugify", 1024).unwrap(),
            Body::Stored { module: "text_utils".into(), export: Some("slugify".into()) }
        );
        assert!(matches!(parse_body(ADD_ONE_WAT, 1024).unwrap(), Body::Inline(_)));
        // Base64 wasm always starts with AGFzbQ, so it is never read as a module name.
        let b64 = base64::engine::general_purpose::STANDARD.encode(wat::parse_str(ADD_ONE_WAT).unwrap());
        assert!(matches!(parse_body(&b64, 1024).unwrap(), Body::Inline(_)));
        assert!(matches!(parse_body("m:", 1024), Err(PlWasmError::BadDirective { .. })));
        assert!(!is_module_name("1abc"));
        assert!(!is_module_name(&"x".repeat(64)));
        assert!(is_module_name(&"x".repeat(63)));
        assert!(!is_module_name("has-dash"));
    }

    #[test]
    fn stored_binaries_are_checked_and_hashed() {
        let wasm = wat::parse_str(ADD_ONE_WAT).unwrap();
        let hash = check_stored_binary(&wasm, 1024).unwrap();
        assert_eq!(hash, decode_body(ADD_ONE_WAT, 1024).unwrap().hash);
        assert_eq!(check_stored_binary(b"nope", 1024), Err(PlWasmError::NotWasm));
        assert!(matches!(check_stored_binary(&wasm, 8), Err(PlWasmError::ModuleTooLarge { .. })));
    }

    #[test]
    fn identical_modules_hash_alike() {
        let a = decode_body(ADD_ONE_WAT, 1 << 20).unwrap();
        let b = decode_body(&format!("  {ADD_ONE_WAT}  "), 1 << 20).unwrap();
        assert_eq!(a.hash, b.hash);
    }
}
