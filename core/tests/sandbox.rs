//! The sandbox against real wasmtime: limits, traps, interruption, and validation messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plwasm_core::engine::{new_engine, EngineSettings};
use plwasm_core::error::{PlWasmError, TrapKind};
use plwasm_core::limits::CallLimits;
use plwasm_core::sandbox::{InstanceHost, Sandbox};
use plwasm_core::types::{SqlSignature, SqlType};
use plwasm_core::{prepare_inline_function, wasmtime::Engine};

const MB: usize = 1024 * 1024;
const LIMITS: CallLimits = CallLimits { fuel: 10_000_000, max_memory: 64 * MB };

fn engine() -> Engine {
    new_engine(&EngineSettings::default()).unwrap()
}

fn sig(args: &[SqlType], ret: SqlType) -> SqlSignature {
    SqlSignature { args: args.to_vec(), ret, strict: true, set_of: None }
}

/// Prepares and instantiates `wat` as SQL function `name`.
fn sandbox(
    engine: &Engine,
    wat: &str,
    name: &str,
    signature: &SqlSignature,
    limits: CallLimits,
) -> Result<Sandbox, PlWasmError> {
    let prepared = prepare_inline_function(engine, wat, name, signature, 16 * MB, Some(limits.max_memory))?;
    Sandbox::instantiate(
        engine,
        &prepared.module,
        &prepared.export,
        prepared.abi,
        limits,
        &InstanceHost::standalone(512 * 1024),
    )
}

const ADD_ONE: &str = r#"(module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))"#;

#[test]
fn add_one_returns_42() {
    let engine = engine();
    let s = sig(&[SqlType::Int8], SqlType::Int8);
    let mut sb = sandbox(&engine, ADD_ONE, "add_one", &s, LIMITS).unwrap();
    assert_eq!(sb.call(&s, &[41], LIMITS).unwrap(), 42);
    assert_eq!(sb.call(&s, &[(-1i64) as u64], LIMITS).unwrap(), 0);
}

#[test]
fn export_directive_names_another_export() {
    let engine = engine();
    let s = sig(&[SqlType::Int8], SqlType::Int8);
    let body = format!("@export add_one\n{ADD_ONE}");
    let mut sb = sandbox(&engine, &body, "plus_one", &s, LIMITS).unwrap();
    assert_eq!(sb.call(&s, &[1], LIMITS).unwrap(), 2);
}

#[test]
fn missing_export_lists_what_is_there() {
    let engine = engine();
    let s = sig(&[SqlType::Int8], SqlType::Int8);
    let err = sandbox(&engine, ADD_ONE, "plus_one", &s, LIMITS).err().unwrap();
    assert_eq!(err, PlWasmError::MissingExport { export: "plus_one".into(), functions: vec!["add_one".into()] });
}

#[test]
fn signature_mismatch_shows_both_sides() {
    let engine = engine();
    let s = sig(&[SqlType::Int4], SqlType::Int8);
    let err = sandbox(&engine, ADD_ONE, "add_one", &s, LIMITS).err().unwrap();
    assert_eq!(
        err,
        PlWasmError::SignatureMismatch {
            export: "add_one".into(),
            sql: "add_one(integer) returns bigint".into(),
            expected: "(i32) -> i64".into(),
            actual: "(i64) -> i64".into(),
        }
    );
    assert_eq!(err.sqlstate().code(), "42P13");
}

#[test]
fn imports_are_refused() {
    let engine = engine();
    let wat = r#"(module (import "env" "clock" (func (result i64)))
                  (func (export "f") (result i64) call 0))"#;
    let err = sandbox(&engine, wat, "f", &sig(&[], SqlType::Int8), LIMITS).err().unwrap();
    assert_eq!(
        err,
        PlWasmError::ForbiddenImport { module: "env".into(), name: "clock".into(), kind: "function".into() }
    );
}

#[test]
fn malformed_binary_reports_its_offset() {
    let engine = engine();
    let err = sandbox(&engine, "\\x0061736d01000000ff", "f", &sig(&[], SqlType::Int8), LIMITS).err().unwrap();
    match err {
        PlWasmError::InvalidModule { message } => assert!(message.contains("offset"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn initial_memory_over_the_cap_is_refused_at_definition() {
    let engine = engine();
    // 2000 pages = 125MB, over a 64MB cap; the memory is not even exported.
    let wat = r#"(module (memory 2000) (func (export "f") (result i32) i32.const 1))"#;
    let err = sandbox(&engine, wat, "f", &sig(&[], SqlType::Int4), LIMITS).err().unwrap();
    assert_eq!(err, PlWasmError::InitialMemoryTooLarge { bytes: 2000 * 65536, limit: 64 * MB as u64 });
}

#[test]
fn initial_memory_over_a_lowered_cap_fails_instantiation() {
    let engine = engine();
    let wat = r#"(module (memory 20) (func (export "f") (result i32) i32.const 1))"#;
    let s = sig(&[], SqlType::Int4);
    let prepared = prepare_inline_function(&engine, wat, "f", &s, 16 * MB, None).unwrap();
    let tight = CallLimits { fuel: 1000, max_memory: MB };
    let err = Sandbox::instantiate(&engine, &prepared.module, "f", 0, tight, &InstanceHost::standalone(512 * 1024))
        .err()
        .unwrap();
    assert_eq!(err, PlWasmError::MemoryLimit { requested: 20 * 65536, limit: MB as u64 });
}

#[test]
fn fuel_runs_out_on_an_endless_loop() {
    let engine = engine();
    let wat = r#"(module (func (export "spin") (result i32) (loop br 0) i32.const 0))"#;
    let s = sig(&[], SqlType::Int4);
    let limits = CallLimits { fuel: 100_000, max_memory: MB };
    let mut sb = sandbox(&engine, wat, "spin", &s, limits).unwrap();
    assert_eq!(sb.call(&s, &[], limits).unwrap_err(), PlWasmError::FuelExhausted { limit: 100_000 });
}

#[test]
fn fuel_is_refilled_for_every_call() {
    let engine = engine();
    let s = sig(&[SqlType::Int8], SqlType::Int8);
    let limits = CallLimits { fuel: 50, max_memory: MB };
    let mut sb = sandbox(&engine, ADD_ONE, "add_one", &s, limits).unwrap();
    for i in 0..1000 {
        assert_eq!(sb.call(&s, &[i], limits).unwrap(), i + 1);
    }
    assert!(sb.fuel_used() > 0 && sb.fuel_used() < 50, "{}", sb.fuel_used());
}

#[test]
fn memory_grow_past_the_cap_is_an_error() {
    let engine = engine();
    // Grows by 100 pages (6.25MB) per call, starting at 1 page, under an 8MB cap.
    let wat = r#"(module (memory 1)
        (func (export "grow") (result i32) i32.const 100 memory.grow))"#;
    let s = sig(&[], SqlType::Int4);
    // Growth costs 64 fuel units a page: enough fuel that the memory cap is what stops it.
    let limits = CallLimits { fuel: 100_000, max_memory: 8 * MB };
    let mut sb = sandbox(&engine, wat, "grow", &s, limits).unwrap();
    assert_eq!(sb.call(&s, &[], limits).unwrap(), 1, "first grow returns the old size in pages");
    let err = sb.call(&s, &[], limits).unwrap_err();
    assert_eq!(err, PlWasmError::MemoryLimit { requested: 201 * 65536, limit: 8 * MB as u64 });
    assert_eq!(err.sqlstate().code(), "54000");
}

#[test]
fn infinite_recursion_is_a_stack_overflow_error() {
    let engine = engine();
    let wat = r#"(module (func $down (export "down") (param i64) (result i64)
        local.get 0 i64.const 1 i64.add call $down))"#;
    let s = sig(&[SqlType::Int8], SqlType::Int8);
    let limits = CallLimits { fuel: 0, max_memory: MB };
    let mut sb = sandbox(&engine, wat, "down", &s, limits).unwrap();
    let err = sb.call(&s, &[0], limits).unwrap_err();
    assert_eq!(err, PlWasmError::StackOverflow { limit: 512 * 1024 });
    assert_eq!(err.sqlstate().code(), "54001");
}

#[test]
fn traps_map_to_fitting_sqlstates_with_a_backtrace() {
    let engine = engine();
    let wat = r#"(module
        (func $inner (param i32) (result i32) i32.const 1 local.get 0 i32.div_s)
        (func (export "div") (param i32) (result i32) local.get 0 call $inner))"#;
    let s = sig(&[SqlType::Int4], SqlType::Int4);
    let mut sb = sandbox(&engine, wat, "div", &s, LIMITS).unwrap();
    assert_eq!(sb.call(&s, &[1], LIMITS).unwrap(), 1);
    let err = sb.call(&s, &[0], LIMITS).unwrap_err();
    match &err {
        PlWasmError::Trap { kind: TrapKind::IntegerDivisionByZero, backtrace: Some(bt) } => {
            assert!(bt.contains("inner"), "{bt}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.sqlstate().code(), "22012");

    let unreachable = r#"(module (func (export "boom") (result i32) unreachable))"#;
    let s = sig(&[], SqlType::Int4);
    let mut sb = sandbox(&engine, unreachable, "boom", &s, LIMITS).unwrap();
    let err = sb.call(&s, &[], LIMITS).unwrap_err();
    assert!(matches!(err, PlWasmError::Trap { kind: TrapKind::Unreachable, .. }), "{err:?}");
    assert_eq!(err.sqlstate().code(), "38000");

    let oob = r#"(module (memory 1) (func (export "peek") (result i32) i32.const 70000 i32.load))"#;
    let mut sb = sandbox(&engine, oob, "peek", &s, LIMITS).unwrap();
    let err = sb.call(&s, &[], LIMITS).unwrap_err();
    assert!(matches!(err, PlWasmError::Trap { kind: TrapKind::MemoryOutOfBounds, .. }), "{err:?}");
}

static STOP: AtomicBool = AtomicBool::new(false);

fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

#[test]
fn epoch_ticks_stop_an_unmetered_loop_when_asked() {
    let engine = engine();
    let wat = r#"(module (func (export "spin") (result i32) (loop br 0) i32.const 0))"#;
    let s = sig(&[], SqlType::Int4);
    let limits = CallLimits { fuel: 0, max_memory: MB };
    let prepared = prepare_inline_function(&engine, wat, "spin", &s, 16 * MB, Some(MB)).unwrap();
    let mut sb = Sandbox::instantiate(
        &engine,
        &prepared.module,
        "spin",
        0,
        limits,
        &InstanceHost { interrupt: stop_requested, ..InstanceHost::standalone(512 * 1024) },
    )
    .unwrap();

    let ticker_engine = engine.clone();
    let ticker = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
            if start.elapsed() > Duration::from_millis(200) {
                STOP.store(true, Ordering::Relaxed);
            }
            ticker_engine.increment_epoch();
        }
    });
    let start = Instant::now();
    let err = sb.call(&s, &[], limits).unwrap_err();
    assert_eq!(err, PlWasmError::Interrupted);
    // Ticks before the stop request let it run on; the stop lands within a tick or two.
    assert!(start.elapsed() >= Duration::from_millis(190), "{:?}", start.elapsed());
    drop(ticker);
}

#[test]
fn a_fresh_sandbox_works_after_a_trap() {
    let engine = engine();
    let wat = r#"(module (global $n (mut i32) (i32.const 0))
        (func (export "count") (param i32) (result i32)
          global.get $n i32.const 1 i32.add global.set $n
          local.get 0 (if (then unreachable))
          global.get $n))"#;
    let s = sig(&[SqlType::Bool], SqlType::Int4);
    let mut sb = sandbox(&engine, wat, "count", &s, LIMITS).unwrap();
    assert_eq!(sb.call(&s, &[0], LIMITS).unwrap(), 1);
    assert!(sb.call(&s, &[1], LIMITS).is_err());
    let mut fresh = sandbox(&engine, wat, "count", &s, LIMITS).unwrap();
    assert_eq!(fresh.call(&s, &[0], LIMITS).unwrap(), 1, "state starts over");
}

#[test]
fn every_supported_type_crosses_the_boundary() {
    let engine = engine();
    let cases: &[(SqlType, &str, u64, u64)] = &[
        (SqlType::Bool, "i32", 1, 1),
        (SqlType::Int2, "i32", (-5i64) as u64, (-5i64) as u64),
        (SqlType::Int4, "i32", 7, 7),
        (SqlType::Float4, "f32", 1.25f32.to_bits() as u64, 1.25f32.to_bits() as u64),
        (SqlType::Float8, "f64", 2.5f64.to_bits(), 2.5f64.to_bits()),
        (SqlType::Date, "i32", 0, 0),
        (SqlType::Timestamp, "i64", 123, 123),
        (SqlType::TimestampTz, "i64", 456, 456),
    ];
    for (ty, wasm_ty, input, expected) in cases {
        let wat = format!(r#"(module (func (export "id") (param {wasm_ty}) (result {wasm_ty}) local.get 0))"#);
        let s = sig(&[*ty], *ty);
        let mut sb = sandbox(&engine, &wat, "id", &s, LIMITS).unwrap();
        assert_eq!(sb.call(&s, &[*input], LIMITS).unwrap(), *expected, "{ty:?}");
    }
}

#[test]
fn bulk_memory_and_growth_cost_fuel_by_size() {
    let engine = engine();
    // One memory.fill of 16MB is one instruction but 16M bytes: over a 10M budget.
    let fill = r#"(module (memory 256)
        (func (export "fill") (result i32)
          (memory.fill (i32.const 0) (i32.const 1) (i32.const 16777216)) (i32.const 1)))"#;
    let mut sandbox = sandbox(&engine, fill, "fill", &sig(&[], SqlType::Int4), LIMITS).unwrap();
    let err = sandbox.call(&sig(&[], SqlType::Int4), &[], LIMITS).unwrap_err();
    assert!(matches!(err, PlWasmError::FuelExhausted { .. }), "{err:?}");
    // A small fill costs about its size.
    let small = r#"(module (memory 1)
        (func (export "small") (result i32)
          (memory.fill (i32.const 0) (i32.const 1) (i32.const 40000)) (i32.const 1)))"#;
    let mut sandbox = sandbox_or_panic(&engine, small, "small");
    sandbox.call(&sig(&[], SqlType::Int4), &[], LIMITS).unwrap();
    let used = sandbox.fuel_used();
    assert!((40_000..41_000).contains(&used), "{used}");
    // memory.grow costs per page.
    let grow = r#"(module (memory 1)
        (func (export "grow") (result i32) (memory.grow (i32.const 100))))"#;
    let mut sandbox = sandbox_or_panic(&engine, grow, "grow");
    sandbox.call(&sig(&[], SqlType::Int4), &[], LIMITS).unwrap();
    assert!(sandbox.fuel_used() >= 6_400, "{}", sandbox.fuel_used());
}

fn sandbox_or_panic(engine: &Engine, wat: &str, name: &str) -> Sandbox {
    sandbox(engine, wat, name, &sig(&[], SqlType::Int4), LIMITS).unwrap()
}
