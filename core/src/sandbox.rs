//! One instance of a module in its own store, with its limits, ready to be called.
//!
//! The extension keeps one [`Sandbox`] per (function, user) in a backend and calls its
//! export once per row. After any trap the sandbox is dropped and the next call
//! instantiates afresh, so a guest left half-updated by a trap never runs again.

use wasmtime::{Engine, Func, Instance, Linker, Memory, Module, Store, Trap, TypedFunc, UpdateDeadline, WasmBacktrace};

use crate::abi::{
    self, Value, ALLOC_EXPORT, FREE_EXPORT, MAX_KEPT_ARG_BUFFER, MEMORY_EXPORT, MIN_ARG_BUFFER, SLOT_SIZE,
};
use crate::error::{PlWasmError, Result, TrapKind};
use crate::host::{self, HostState, LogQueue};
use crate::limits::{CallLimits, GuestLimiter, SessionBudget};
use crate::types::SqlSignature;

/// Says whether the host wants the running guest stopped (cancel, timeout, terminate).
/// A plain function pointer: it runs inside wasm and must not fail or block.
pub type InterruptCheck = fn() -> bool;

/// What the embedding gives every instance: the wasm stack the engine was made with, how to
/// ask whether the host wants a guest stopped, and the memory budget of the process.
#[derive(Clone)]
pub struct InstanceHost {
    pub stack_limit: usize,
    pub interrupt: InterruptCheck,
    pub budget: SessionBudget,
}

impl InstanceHost {
    /// For tests and tools: never interrupted, no shared budget.
    #[cfg(any(test, feature = "testing"))]
    pub fn standalone(stack_limit: usize) -> InstanceHost {
        InstanceHost { stack_limit, interrupt: || false, budget: SessionBudget::unlimited() }
    }
}

/// An instantiated module and the export a SQL function calls.
pub struct Sandbox {
    store: Store<HostState>,
    instance: Instance,
    func: Func,
    /// ABI 1 only: the guest's memory, allocator and argument buffer.
    frames: Option<FrameAbi>,
    /// Kept so a fresh instance of the same module can be made after a trap.
    fuel_limit: u64,
    /// Whether the engine meters fuel. plwasm's always does; an engine made without it (a
    /// benchmark of metering's cost) runs the same calls without refuelling.
    fuel_metered: bool,
    stack_limit: usize,
    /// ABI 1: the guest memory as last looked up, for the extension's per-row path.
    memory_view: Option<MemoryView>,
}

/// Where an instance's linear memory is and a length it has at least. The engine never moves
/// a memory and a memory never shrinks, so a view stays true for the instance's life except
/// that the memory may since have grown: [`Sandbox::refresh_memory_view`] looks again. Plain
/// numbers here; the extension, which may use raw pointers, turns them into a slice while no
/// wasm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryView {
    pub base: usize,
    pub len: usize,
}

/// What an ABI 1 call needs besides the export.
struct FrameAbi {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    /// The guest's `plwasm_free`, if it exports one.
    free: Option<TypedFunc<(i32, i32), ()>>,
    entry: TypedFunc<i32, ()>,
    /// The argument buffer from `plwasm_alloc`: (address, size). Reused across calls and
    /// replaced by a larger one (the old one is left to the guest) when a call needs more.
    buffer: Option<(usize, usize)>,
}

/// The error wasmtime hands back when the deadline callback stops a guest.
#[derive(Debug)]
struct InterruptRequested;

impl std::fmt::Display for InterruptRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by the host")
    }
}

impl std::error::Error for InterruptRequested {}

impl Sandbox {
    /// Instantiates `module` (running its start function, if any, under `limits`) and
    /// looks up `export`, which the validator has already checked.
    pub fn instantiate(
        engine: &Engine,
        module: &Module,
        export: &str,
        abi: u32,
        limits: CallLimits,
        host: &InstanceHost,
    ) -> Result<Sandbox> {
        let (stack_limit, interrupt) = (host.stack_limit, host.interrupt);
        let limiter = GuestLimiter::new(limits.max_memory, host.budget.clone());
        let mut store = Store::new(engine, HostState::new(limiter));
        store.limiter(|state| &mut state.limiter);
        let fuel_metered = store.get_fuel().is_ok();
        if fuel_metered {
            store.set_fuel(limits.store_fuel()).map_err(internal)?;
        }
        // The deadline is one tick away; the callback decides whether a tick means "stop".
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if interrupt() {
                Err(wasmtime::Error::new(InterruptRequested))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        let instance = if abi == 0 {
            Instance::new(&mut store, module, &[])
        } else {
            let mut linker = Linker::new(engine);
            host::add_to_linker(&mut linker).map_err(internal)?;
            linker.instantiate(&mut store, module)
        }
        .map_err(|err| classify(err, limits.fuel, stack_limit, true))?;
        let vanished = |name: &str| PlWasmError::Internal { message: format!("export \"{name}\" vanished") };
        let func = instance.get_func(&mut store, export).ok_or_else(|| vanished(export))?;
        let frames = if abi == 0 {
            None
        } else {
            // The validator checked these exports and their types.
            let memory = instance.get_memory(&mut store, MEMORY_EXPORT).ok_or_else(|| vanished(MEMORY_EXPORT))?;
            let alloc = instance.get_typed_func::<i32, i32>(&mut store, ALLOC_EXPORT).map_err(internal)?;
            let entry = func.typed::<i32, ()>(&store).map_err(internal)?;
            let free = match instance.get_func(&mut store, FREE_EXPORT) {
                Some(free) => Some(free.typed::<(i32, i32), ()>(&store).map_err(internal)?),
                None => None,
            };
            Some(FrameAbi { memory, alloc, free, entry, buffer: None })
        };
        Ok(Sandbox {
            store,
            instance,
            func,
            frames,
            fuel_limit: limits.fuel,
            fuel_metered,
            stack_limit,
            memory_view: None,
        })
    }

    /// An ABI 1 call: writes `args` into a frame (one copy each), calls the export, checks the
    /// result slot and hands the result, still in guest memory, to `finish`, which copies it
    /// out. Messages the guest logged stay queued for [`Sandbox::take_logs`], also on error.
    pub fn call_frame<R>(
        &mut self,
        signature: &SqlSignature,
        args: &[Value<'_>],
        limits: CallLimits,
        finish: impl FnOnce(Value<'_>) -> R,
    ) -> Result<R> {
        self.checked_frame_call(None, signature, args, limits, finish)
    }

    /// A frame call's first step (the per-row path in the extension then writes the frame
    /// itself, through a [`MemoryView`]): applies `limits`, clears the log queue and returns
    /// the address of an argument buffer of at least `needed` bytes.
    #[inline]
    pub fn begin_frame_call(&mut self, needed: usize, limits: CallLimits) -> Result<usize> {
        self.arm(limits)?;
        if self.has_logs() {
            self.store.data_mut().logs = LogQueue::default();
        }
        self.argument_buffer(needed, limits.max_memory)
    }

    /// Calls the function's own `(frame) -> ()` export on the frame at `frame`. Once the
    /// result is read, [`Sandbox::give_back_large_buffer`] must follow.
    #[inline]
    pub fn call_frame_entry(&mut self, frame: usize) -> Result<()> {
        let frames = self.frames.as_ref().ok_or_else(not_abi1)?;
        frames.entry.call(&mut self.store, frame as i32).map_err(|err| self.classify_call_error(err))
    }

    /// The guest memory as last looked up (looking it up the first time); an error for ABI 0.
    #[inline]
    pub fn memory_view(&mut self) -> Result<MemoryView> {
        match self.memory_view {
            Some(view) => Ok(view),
            None => self.refresh_memory_view(),
        }
    }

    /// Looks the guest memory up again (it may have grown).
    pub fn refresh_memory_view(&mut self) -> Result<MemoryView> {
        let memory = self.frames.as_ref().ok_or_else(not_abi1)?.memory;
        let view = MemoryView { base: memory.data_ptr(&self.store) as usize, len: memory.data_size(&self.store) };
        self.memory_view = Some(view);
        Ok(view)
    }

    /// Whether the guest logged messages during the last call.
    #[inline]
    pub fn has_logs(&self) -> bool {
        !self.store.data().logs.is_empty()
    }

    /// [`Sandbox::call_frame`] for another `(frame) -> ()` export of the module.
    pub fn call_frame_with<R>(
        &mut self,
        entry: &TypedFunc<i32, ()>,
        signature: &SqlSignature,
        args: &[Value<'_>],
        limits: CallLimits,
        finish: impl FnOnce(Value<'_>) -> R,
    ) -> Result<R> {
        self.checked_frame_call(Some(entry), signature, args, limits, finish)
    }

    /// A frame call whose result slot is read and checked as a value of `signature.ret`.
    fn checked_frame_call<R>(
        &mut self,
        entry: Option<&TypedFunc<i32, ()>>,
        signature: &SqlSignature,
        args: &[Value<'_>],
        limits: CallLimits,
        finish: impl FnOnce(Value<'_>) -> R,
    ) -> Result<R> {
        let ret = signature.ret;
        self.frame_call(entry, signature, args, limits, |memory, slot| abi::read_result(memory, slot, ret).map(finish))?
    }

    /// A frame call of the function's own export whose result slot `finish` reads itself: it
    /// gets the guest's memory and the slot's address (set-returning functions).
    pub fn call_frame_raw<R>(
        &mut self,
        signature: &SqlSignature,
        args: &[Value<'_>],
        limits: CallLimits,
        finish: impl FnOnce(&[u8], usize) -> R,
    ) -> Result<R> {
        self.frame_call(None, signature, args, limits, finish)
    }

    /// The frame call itself, of `entry` or (borrowed in place: cloning a typed function
    /// clones its registered type) the function's own export.
    fn frame_call<R>(
        &mut self,
        entry: Option<&TypedFunc<i32, ()>>,
        signature: &SqlSignature,
        args: &[Value<'_>],
        limits: CallLimits,
        finish: impl FnOnce(&[u8], usize) -> R,
    ) -> Result<R> {
        let layout = abi::layout(args);
        let frame = self.begin_frame_call(layout.total, limits)?;
        let memory = self.frames.as_ref().ok_or_else(not_abi1)?.memory;
        abi::write_frame(memory.data_mut(&mut self.store), frame, signature, args, &layout)?;
        let called = match entry {
            Some(entry) => entry.call(&mut self.store, frame as i32),
            None => self.frames.as_ref().ok_or_else(not_abi1)?.entry.call(&mut self.store, frame as i32),
        };
        if let Err(err) = called {
            return Err(self.classify_call_error(err));
        }
        let result_slot = frame + SLOT_SIZE * args.len();
        let result = finish(memory.data(&self.store), result_slot);
        self.give_back_large_buffer()?;
        Ok(result)
    }

    /// Hands an argument buffer past [`MAX_KEPT_ARG_BUFFER`] back to a guest that exports
    /// `plwasm_free`, so one large argument (a flat aggregate state) does not keep its room
    /// in the guest's memory for good.
    #[inline]
    pub fn give_back_large_buffer(&mut self) -> Result<()> {
        let Some(frames) = self.frames.as_mut() else { return Ok(()) };
        let Some((address, size)) = frames.buffer.filter(|&(_, size)| size > MAX_KEPT_ARG_BUFFER) else {
            return Ok(());
        };
        let Some(free) = frames.free.clone() else { return Ok(()) };
        frames.buffer = None;
        free.call(&mut self.store, (address as i32, size as i32)).map_err(|err| self.classify_call_error(err))
    }

    /// Copies `words` (little-endian) and then `tail` into the argument buffer and calls
    /// `func(address, count)`.
    pub fn call_with_words(
        &mut self,
        func: &TypedFunc<(i32, i32), ()>,
        words: &[u64],
        tail: &[u8],
        count: i32,
        limits: CallLimits,
    ) -> Result<()> {
        self.arm(limits)?;
        let bytes = words.len() * 8 + tail.len();
        let address = self.argument_buffer(bytes, limits.max_memory)?;
        let memory = self.frames.as_ref().ok_or_else(not_abi1)?.memory;
        let target = &mut memory.data_mut(&mut self.store)[address..address + bytes];
        let (rows, payload) = target.split_at_mut(words.len() * 8);
        for (chunk, word) in rows.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        payload.copy_from_slice(tail);
        if let Err(err) = func.call(&mut self.store, (address as i32, count)) {
            return Err(self.classify_call_error(err));
        }
        self.give_back_large_buffer()
    }

    /// A typed call of another export, with this sandbox's limits.
    pub fn call_typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        func: &TypedFunc<P, R>,
        params: P,
        limits: CallLimits,
    ) -> Result<R> {
        self.arm(limits)?;
        func.call(&mut self.store, params).map_err(|err| self.classify_call_error(err))
    }

    /// The export `name` as a typed function, `None` if there is no such function export.
    pub fn typed_export<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> Result<Option<TypedFunc<P, R>>> {
        match self.instance.get_func(&mut self.store, name) {
            None => Ok(None),
            Some(func) => func.typed::<P, R>(&self.store).map(Some).map_err(internal),
        }
    }

    /// The address of an argument buffer of at least `needed` bytes, asking the guest for a
    /// larger one (doubling, at least [`MIN_ARG_BUFFER`]) when the current one is too small.
    /// Arguments that could never fit in `max_memory` are refused before anything is copied.
    fn argument_buffer(&mut self, needed: usize, max_memory: usize) -> Result<usize> {
        if needed > max_memory {
            return Err(PlWasmError::ArgumentsTooLarge { bytes: needed as u64, limit: max_memory as u64 });
        }
        let frames = self.frames.as_mut().ok_or_else(not_abi1)?;
        if let Some((address, size)) = frames.buffer {
            if size >= needed {
                return Ok(address);
            }
        }
        // Doubling keeps the number of abandoned buffers logarithmic; the cap at a quarter of
        // the memory limit keeps the rounding from failing a call whose exact size would fit.
        let rounded = needed.max(MIN_ARG_BUFFER).checked_next_power_of_two().unwrap_or(needed);
        let size = rounded.min(max_memory / 4).max(needed);
        let memory = frames.memory;
        let address = match frames.alloc.call(&mut self.store, size as i32) {
            Ok(address) => address as u32 as usize,
            Err(err) => return Err(self.classify_call_error(err)),
        };
        let memory_size = memory.data_size(&self.store);
        if address == 0 || address % 8 != 0 || address.checked_add(size).is_none_or(|end| end > memory_size) {
            return Err(PlWasmError::AbiViolation {
                what: format!(
                    "plwasm_alloc({size}) returned address {address}, which is not an 8-aligned block inside the module's {memory_size}-byte memory"
                ),
            });
        }
        if let Some(frames) = self.frames.as_mut() {
            frames.buffer = Some((address, size));
        }
        Ok(address)
    }

    /// The messages the guest queued with `plwasm.log` since the last take.
    pub fn take_logs(&mut self) -> LogQueue {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// Refills fuel and applies the current memory cap; called before every call.
    #[inline]
    pub fn arm(&mut self, limits: CallLimits) -> Result<()> {
        self.fuel_limit = limits.fuel;
        self.store.data_mut().limiter.max_memory = limits.max_memory;
        if !self.fuel_metered {
            return Ok(());
        }
        self.store.set_fuel(limits.store_fuel()).map_err(internal)
    }

    /// Bytes of linear memory the instance has (0 for an ABI 0 instance, whose memory the
    /// host never looks at).
    pub fn memory_size(&self) -> usize {
        self.frames.as_ref().map_or(0, |frames| frames.memory.data_size(&self.store))
    }

    /// The store and export, for the extension's unchecked fast call.
    #[inline]
    pub fn parts(&mut self) -> (&mut Store<HostState>, Func) {
        (&mut self.store, self.func)
    }

    /// Turns an error from a call into plwasm's error, using this sandbox's limits.
    pub fn classify_call_error(&self, err: wasmtime::Error) -> PlWasmError {
        classify(err, self.fuel_limit, self.stack_limit, false)
    }
}

fn not_abi1() -> PlWasmError {
    PlWasmError::Internal { message: "not an ABI 1 instance".into() }
}

fn internal(err: wasmtime::Error) -> PlWasmError {
    PlWasmError::Internal { message: format!("{err:#}") }
}

/// Maps what wasmtime reports to plwasm's error.
fn classify(err: wasmtime::Error, fuel_limit: u64, stack_limit: usize, instantiating: bool) -> PlWasmError {
    if let Some(ours) = err.downcast_ref::<PlWasmError>() {
        return ours.clone();
    }
    if err.downcast_ref::<InterruptRequested>().is_some() {
        return PlWasmError::Interrupted;
    }
    let backtrace = err.downcast_ref::<WasmBacktrace>().and_then(describe_backtrace);
    let kind = match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return PlWasmError::FuelExhausted { limit: fuel_limit },
        Some(Trap::StackOverflow) => return PlWasmError::StackOverflow { limit: stack_limit },
        Some(Trap::Interrupt) => return PlWasmError::Interrupted,
        Some(Trap::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(Trap::MemoryOutOfBounds) => TrapKind::MemoryOutOfBounds,
        Some(Trap::TableOutOfBounds) => TrapKind::TableOutOfBounds,
        Some(Trap::IndirectCallToNull) => TrapKind::IndirectCallToNull,
        Some(Trap::BadSignature) => TrapKind::BadSignature,
        Some(Trap::IntegerDivisionByZero) => TrapKind::IntegerDivisionByZero,
        Some(Trap::IntegerOverflow) => TrapKind::IntegerOverflow,
        Some(Trap::BadConversionToInteger) => TrapKind::BadConversionToInteger,
        Some(other) => TrapKind::Other(other.to_string()),
        None if instantiating => return PlWasmError::Instantiate { message: format!("{err:#}") },
        None => TrapKind::Other(format!("{err:#}")),
    };
    PlWasmError::Trap { kind, backtrace }
}

/// `inner <- outer <- add_one`, innermost first, using the name section where present.
fn describe_backtrace(bt: &WasmBacktrace) -> Option<String> {
    let frames: Vec<String> = bt
        .frames()
        .iter()
        .map(|frame| match frame.func_name() {
            Some(name) => name.to_string(),
            None => format!("func[{}]", frame.func_index()),
        })
        .collect();
    (!frames.is_empty()).then(|| frames.join(" <- "))
}

/// Helpers only tests, examples and benchmarks use (the `testing` feature).
#[cfg(any(test, feature = "testing"))]
mod testing {
    use wasmtime::{Val, ValRaw};

    use super::Sandbox;
    use crate::error::Result;
    use crate::limits::CallLimits;
    use crate::types::{DatumConversion, SqlSignature, SqlType};

    impl Sandbox {
        /// A checked call with SQL-typed arguments, for tests and benchmarks (the extension makes
        /// raw calls).
        pub fn call(&mut self, signature: &SqlSignature, args: &[u64], limits: CallLimits) -> Result<u64> {
            self.arm(limits)?;
            let params: Vec<Val> = signature
                .args
                .iter()
                .zip(args)
                .map(|(ty, bits)| ty.datum_to_wasm(*bits).map(|raw| raw_to_val(*ty, raw)))
                .collect::<Result<_>>()?;
            let mut results = vec![Val::I32(0); signature.wasm_results().len()];
            if let Err(err) = self.func.call(&mut self.store, &params, &mut results) {
                return Err(self.classify_call_error(err));
            }
            match results.first() {
                None => Ok(0),
                Some(val) => signature.ret.wasm_to_datum(val_to_raw(val)),
            }
        }

        /// Fuel consumed by the last call (for tests and benchmarks).
        pub fn fuel_used(&self) -> u64 {
            let left = self.store.get_fuel().unwrap_or(0);
            CallLimits { fuel: self.fuel_limit, max_memory: 0 }.store_fuel().saturating_sub(left)
        }
    }

    fn raw_to_val(ty: SqlType, raw: ValRaw) -> Val {
        match ty.wasm_type() {
            Some(crate::types::WasmType::I32) => Val::I32(raw.get_i32()),
            Some(crate::types::WasmType::I64) => Val::I64(raw.get_i64()),
            Some(crate::types::WasmType::F32) => Val::F32(raw.get_f32()),
            Some(crate::types::WasmType::F64) | None => Val::F64(raw.get_f64()),
        }
    }

    fn val_to_raw(val: &Val) -> ValRaw {
        match val {
            Val::I32(v) => ValRaw::i32(*v),
            Val::I64(v) => ValRaw::i64(*v),
            Val::F32(v) => ValRaw::f32(*v),
            Val::F64(v) => ValRaw::f64(*v),
            _ => ValRaw::i64(0),
        }
    }
}
