//! Query cancel, `statement_timeout` and `pg_terminate_backend()` for running wasm.
//!
//! PostgreSQL's signal handlers only set flags (`InterruptPending`, `QueryCancelPending`,
//! `ProcDiePending`); the code that runs must look at them. Wasm cannot, so:
//!
//! 1. A ticker thread advances wasmtime's epoch every [`TICK`] while a transaction that
//!    called wasm is open (it parks otherwise, so idle backends cost nothing).
//! 2. Each tick makes running wasm call its store's deadline callback, which reads the flags
//!    ([`interrupt_requested`]) and, if PostgreSQL wants to stop, ends the call with an error.
//! 3. Back outside wasm, [`let_postgres_interrupt`] lets PostgreSQL process the interrupt and raise
//!    its own error (57014 for cancel/timeout, FATAL for terminate). No PostgreSQL error is
//!    ever raised while wasm frames are on the stack.
//!
//! The ticker, and the helper that compiles large modules (`compile`), are the only threads
//! plwasm starts. They are spawned with every signal blocked, so the kernel always delivers
//! PostgreSQL's signals to the backend's main thread, and they never call into PostgreSQL.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use pgrx::pg_sys;
use plwasm_core::error::PlWasmError;
use plwasm_core::wasmtime::Engine;

/// How often the epoch advances while wasm may run: the bound on cancel latency.
const TICK: Duration = Duration::from_millis(10);

/// True while the ticker should tick. Cleared at transaction end.
static TICKING: AtomicBool = AtomicBool::new(false);
static TICKER: OnceLock<Thread> = OnceLock::new();

/// Makes sure the epoch advances during the coming wasm call. One relaxed load per call
/// once ticking; the first call in a transaction wakes the ticker.
#[inline]
pub fn ensure_ticking(engine: &Engine) -> Result<(), PlWasmError> {
    if TICKING.load(Ordering::Relaxed) {
        return Ok(());
    }
    start_ticking(engine)
}

/// Whether the epoch is advancing (the fast path only runs when it is).
#[inline]
pub fn is_ticking() -> bool {
    TICKING.load(Ordering::Relaxed)
}

#[cold]
fn start_ticking(engine: &Engine) -> Result<(), PlWasmError> {
    let ticker = match TICKER.get() {
        Some(thread) => thread,
        None => {
            let thread = spawn_ticker(engine.clone())?;
            // SAFETY: registering a transaction callback is what PostgreSQL provides it for;
            // the callback is a plain function that only stores to an atomic, and this runs
            // once per backend (guarded by TICKER).
            unsafe { pg_sys::RegisterXactCallback(Some(stop_ticking_at_xact_end), std::ptr::null_mut()) };
            TICKER.get_or_init(|| thread)
        }
    };
    TICKING.store(true, Ordering::Release);
    ticker.unpark();
    Ok(())
}

fn spawn_ticker(engine: Engine) -> Result<Thread, PlWasmError> {
    spawn_with_signals_blocked("plwasm-epoch", 64 * 1024, move || loop {
        if TICKING.load(Ordering::Acquire) {
            std::thread::sleep(TICK);
            engine.increment_epoch();
        } else {
            std::thread::park();
        }
    })
    .map(|handle| handle.thread().clone())
}

/// Starts a helper thread with every signal blocked, so the kernel keeps delivering
/// PostgreSQL's signals to the backend's main thread. `f` must never call into PostgreSQL.
pub fn spawn_with_signals_blocked<T: Send + 'static>(
    name: &str,
    stack_size: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, PlWasmError> {
    // A new thread inherits the spawning thread's signal mask: block everything around the
    // spawn so the thread starts (and stays) with all signals blocked.
    // SAFETY: sigset_t is plain data that sigfillset/pthread_sigmask initialise; the old mask
    // is restored on every path below before returning.
    let old_mask = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let spawned = std::thread::Builder::new().name(name.into()).stack_size(stack_size).spawn(f);
    // SAFETY: restores the mask saved above; old_mask was filled by pthread_sigmask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    spawned.map_err(|err| PlWasmError::Internal { message: format!("cannot start the {name} thread: {err}") })
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn stop_ticking_at_xact_end(_event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    // Any transaction event (commit, abort, prepare, their parallel forms) ends the window in
    // which wasm can run for this transaction; the next call restarts the ticker.
    TICKING.store(false, Ordering::Release);
}

/// Read inside wasm on every tick: does PostgreSQL want this backend to stop what it does?
pub fn interrupt_requested() -> bool {
    // SAFETY: these are sig_atomic_t flags written by PostgreSQL's signal handlers on this
    // same thread; volatile reads of plain integers, no references are kept.
    unsafe {
        std::ptr::read_volatile(&raw const pg_sys::InterruptPending) != 0
            && (std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0
                || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0)
    }
}

/// After wasm or a compile stopped because of an interrupt: lets PostgreSQL raise its own
/// error (cancel, statement timeout, terminate), which also clears the pending request so
/// that it cannot hit the next statement. Returns if PostgreSQL declines (interrupts held
/// off); the caller then raises plwasm's own 57014.
#[cold]
pub fn let_postgres_interrupt() {
    pg_sys::check_for_interrupts!();
}
