//! ABI 1 against real wasmtime: frames, NULLs, arrays, guest raise/log, and hostile guests.

use plwasm_core::abi::Value;
use plwasm_core::engine::{new_engine, EngineSettings};
use plwasm_core::error::{PlWasmError, SqlState};
use plwasm_core::host::{LogLevel, MAX_LOG_MESSAGES};
use plwasm_core::limits::CallLimits;
use plwasm_core::sandbox::{InstanceHost, Sandbox};
use plwasm_core::types::{SqlSignature, SqlType};
use plwasm_core::{prepare_inline_function, wasmtime::Engine};

const MB: usize = 1024 * 1024;
const LIMITS: CallLimits = CallLimits { fuel: 10_000_000, max_memory: 64 * MB };

/// A small ABI 1 guest written by hand: a bump allocator and one export per case. With one
/// argument the result slot is at frame + 16 (flags), + 20 (len), + 24 (value).
const GUEST: &str = r#"(module
  (import "plwasm" "raise" (func $raise (param i32 i32 i32)))
  (import "plwasm" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "22023bad input")
  (data (i32.const 32) "XX000")
  (data (i32.const 40) "ok\ffno")
  (func (export "plwasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (block (loop
      (br_if 1 (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
      (br 0)))
    (local.get $p))
  (func (export "echo") (param $f i32)
    (i64.store offset=16 (local.get $f) (i64.load (local.get $f)))
    (i64.store offset=24 (local.get $f) (i64.load offset=8 (local.get $f))))
  (func (export "is_null") (param $f i32)
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (i32.and (i32.load (local.get $f)) (i32.const 1)))))
  (func (export "sum") (param $f i32) (local $p i32) (local $n i32) (local $acc f64)
    (local.set $n (i32.load offset=4 (local.get $f)))
    (local.set $p (i32.wrap_i64 (i64.load offset=8 (local.get $f))))
    (block (loop
      (br_if 1 (i32.eqz (local.get $n)))
      (local.set $acc (f64.add (local.get $acc) (f64.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br 0)))
    (f64.store offset=24 (local.get $f) (local.get $acc)))
  (func (export "fail") (param $f i32) (call $raise (i32.const 16) (i32.const 21) (i32.const 9)))
  (func (export "fail_reserved") (param $f i32) (call $raise (i32.const 32) (i32.const 21) (i32.const 9)))
  (func (export "fail_oob") (param $f i32) (call $raise (i32.const 65534) (i32.const 21) (i32.const 9)))
  (func (export "chatty") (param $f i32) (local $i i32)
    (block (loop
      (br_if 1 (i32.ge_u (local.get $i) (i32.load offset=8 (local.get $f))))
      (call $log (i32.const 3) (i32.const 21) (i32.const 9))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br 0)))
    (i32.store offset=16 (local.get $f) (i32.const 1)))
  (func (export "bad_level") (param $f i32) (call $log (i32.const 9) (i32.const 21) (i32.const 9)))
  (func (export "oob") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 100))
    (i64.store offset=24 (local.get $f) (i64.const 65500)))
  (func (export "huge") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const -1)))
  (func (export "not_utf8") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 5))
    (i64.store offset=24 (local.get $f) (i64.const 40))))"#;

fn engine() -> Engine {
    new_engine(&EngineSettings::default()).unwrap()
}

fn sig(args: &[SqlType], ret: SqlType) -> SqlSignature {
    SqlSignature { args: args.to_vec(), ret, strict: false, set_of: None }
}

fn guest(engine: &Engine, export: &str, signature: &SqlSignature, limits: CallLimits) -> Sandbox {
    let body = format!("@export {export}\n{GUEST}");
    let prepared = prepare_inline_function(engine, &body, "f", signature, 16 * MB, Some(limits.max_memory)).unwrap();
    assert_eq!(prepared.abi, 1);
    Sandbox::instantiate(engine, &prepared.module, &prepared.export, 1, limits, &InstanceHost::standalone(512 * 1024))
        .unwrap()
}

/// Calls and copies the result out (as the extension does).
fn call(sb: &mut Sandbox, s: &SqlSignature, args: &[Value<'_>]) -> Result<Option<Vec<u8>>, PlWasmError> {
    sb.call_frame(s, args, LIMITS, |result| match result {
        Value::Null => None,
        Value::Fixed(bits) => Some(bits.to_le_bytes().to_vec()),
        Value::Bytes(bytes) | Value::Array { bytes, .. } => Some(bytes.to_vec()),
    })
}

#[test]
fn text_and_bytes_round_trip() {
    let engine = engine();
    let s = sig(&[SqlType::Text], SqlType::Text);
    let mut sb = guest(&engine, "echo", &s, LIMITS);
    assert_eq!(call(&mut sb, &s, &[Value::Bytes("grüße".as_bytes())]).unwrap().unwrap(), "grüße".as_bytes());
    assert_eq!(call(&mut sb, &s, &[Value::Bytes(b"")]).unwrap().unwrap(), b"");
    // A NULL argument echoes back as a NULL result.
    assert_eq!(call(&mut sb, &s, &[Value::Null]).unwrap(), None);
    // A large argument makes the host ask for a larger buffer; memory grows past one page.
    let big = vec![b'x'; 300_000];
    assert_eq!(call(&mut sb, &s, &[Value::Bytes(&big)]).unwrap().unwrap(), big);
}

#[test]
fn nulls_are_flagged() {
    let engine = engine();
    let s = sig(&[SqlType::Int4], SqlType::Bool);
    let mut sb = guest(&engine, "is_null", &s, LIMITS);
    assert_eq!(call(&mut sb, &s, &[Value::Null]).unwrap().unwrap()[0], 1);
    assert_eq!(call(&mut sb, &s, &[Value::Fixed(7)]).unwrap().unwrap()[0], 0);
}

#[test]
fn float8_arrays_arrive_aligned_and_in_order() {
    let engine = engine();
    let s = sig(&[SqlType::Float8Array], SqlType::Float8);
    let mut sb = guest(&engine, "sum", &s, LIMITS);
    let values = [1.5f64, 2.25, -0.75];
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let out = call(&mut sb, &s, &[Value::Array { bytes: &bytes, count: 3 }]).unwrap().unwrap();
    assert_eq!(f64::from_le_bytes(out.try_into().unwrap()), 3.0);
}

#[test]
fn guests_raise_errors_with_their_sqlstate() {
    let engine = engine();
    let s = sig(&[SqlType::Int4], SqlType::Int4);
    let err = call(&mut guest(&engine, "fail", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert_eq!(
        err,
        PlWasmError::GuestRaised { sqlstate: SqlState::Guest(*b"22023"), message: "bad input".into(), refused: None }
    );
    let err = call(&mut guest(&engine, "fail_reserved", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert_eq!(err.sqlstate().code(), "38000");
    assert!(matches!(err, PlWasmError::GuestRaised { refused: Some(ref why), .. } if why.contains("XX000")));
    let err = call(&mut guest(&engine, "fail_oob", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert!(matches!(err, PlWasmError::AbiViolation { .. }), "{err:?}");
}

#[test]
fn logs_are_queued_and_capped() {
    let engine = engine();
    let s = sig(&[SqlType::Int4], SqlType::Int4);
    let mut sb = guest(&engine, "chatty", &s, LIMITS);
    assert_eq!(call(&mut sb, &s, &[Value::Fixed(2)]).unwrap(), None);
    let logs = sb.take_logs();
    assert_eq!(logs.messages, vec![(LogLevel::Notice, "bad input".to_string()); 2]);
    assert!(sb.take_logs().is_empty());
    call(&mut sb, &s, &[Value::Fixed(MAX_LOG_MESSAGES as u64 + 5)]).unwrap();
    let logs = sb.take_logs();
    assert_eq!((logs.messages.len(), logs.dropped), (MAX_LOG_MESSAGES, 5));
    let err = call(&mut guest(&engine, "bad_level", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert!(matches!(err, PlWasmError::AbiViolation { .. }));
}

#[test]
fn hostile_results_are_refused() {
    let engine = engine();
    let s = sig(&[SqlType::Int4], SqlType::Text);
    let err = call(&mut guest(&engine, "oob", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert_eq!(err.sqlstate().code(), "38000");
    assert!(err.to_string().contains("past the end of the module's 65536-byte memory"), "{err}");
    let err = call(&mut guest(&engine, "huge", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert!(matches!(err, PlWasmError::ResultTooLarge { .. }), "{err:?}");
    let err = call(&mut guest(&engine, "not_utf8", &s, LIMITS), &s, &[Value::Fixed(0)]).unwrap_err();
    assert_eq!(err.sqlstate().code(), "22021");
    // The same bytes are fine as bytea.
    let b = sig(&[SqlType::Int4], SqlType::Bytea);
    let out = call(&mut guest(&engine, "not_utf8", &b, LIMITS), &b, &[Value::Fixed(0)]).unwrap().unwrap();
    assert_eq!(out, b"ok\xffno");
}

#[test]
fn oversized_arguments_are_refused_before_any_copy() {
    let engine = engine();
    let tight = CallLimits { fuel: 1_000_000, max_memory: 128 * 1024 };
    let s = sig(&[SqlType::Bytea], SqlType::Bytea);
    let mut sb = guest(&engine, "echo", &s, tight);
    let big = vec![0u8; 200_000];
    let err = sb.call_frame(&s, &[Value::Bytes(&big)], tight, |_| ()).unwrap_err();
    assert!(matches!(err, PlWasmError::ArgumentsTooLarge { limit: 131072, .. }), "{err:?}");
    // Under the cap, but the guest's memory cannot grow enough: the memory limit, named.
    let medium = vec![0u8; 130_000];
    let err = sb.call_frame(&s, &[Value::Bytes(&medium)], tight, |_| ()).unwrap_err();
    assert!(matches!(err, PlWasmError::MemoryLimit { .. }), "{err:?}");
}
