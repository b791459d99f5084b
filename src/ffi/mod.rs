//! The C boundary: every `extern "C"` function of `reactor.h`, and nothing else.
//!
//! Each function resolves its handle through a generation-checked table (so stale or made-up handles
//! get `REACTOR_E_INVALID`), checks the calling thread, validates arguments *before* taking ownership of
//! user data, and runs the body under `catch_unwind` so a Rust panic never crosses into C: it poisons
//! the reactor and returns `REACTOR_E_INTERNAL`.

mod core;
mod events;
mod fd;
mod pool;
mod threads;
mod time;

use crate::handles::HandleTable;
use crate::reactor::Reactor;
use crate::status::{
    Error, REACTOR_E_INTERNAL, REACTOR_E_INVALID, REACTOR_E_WRONG_THREAD, REACTOR_OK, Result,
};
use crate::types::reactor_t;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) static REACTORS: HandleTable<Reactor> = HandleTable::new();

/// The reactor behind a handle, if the handle is live.
///
/// Safety of the returned reference: the object lives until `reactor_free` removes it, and API.md
/// forbids racing `reactor_free` with other calls. Foreign threads only read the thread-safe parts
/// (`Reactor::shared` and fields that never change after creation).
fn reactor_ref<'a>(r: *const reactor_t) -> Option<&'a Reactor> {
    // SAFETY: see above; the table only returns pointers of live, boxed reactors.
    REACTORS.get(r.cast()).map(|p| unsafe { &*p.as_ptr() })
}

fn status(result: Result<()>) -> c_int {
    match result {
        Ok(()) => REACTOR_OK,
        Err(e) => e.code(),
    }
}

/// Runs `body` with panics turned into `REACTOR_E_INTERNAL` (for functions without a reactor).
fn guard(body: impl FnOnce() -> Result<()>) -> c_int {
    catch_unwind(AssertUnwindSafe(body))
        .map(status)
        .unwrap_or(REACTOR_E_INTERNAL)
}

/// Whether a call from another thread may make the calling thread the reactor's owner (`reactor_run`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Adopt {
    No,
    IfIdle,
}

/// The common path of a reactor-thread function: handle, thread, poison, panic guard.
fn on_reactor_or(
    r: *const reactor_t,
    missing: c_int,
    adopt: Adopt,
    body: impl FnOnce(&Reactor) -> Result<()>,
) -> c_int {
    let Some(reactor) = reactor_ref(r) else {
        return missing;
    };
    let may_adopt = adopt == Adopt::IfIdle && !reactor.shared.is_active();
    if !reactor.shared.is_owner() && !may_adopt {
        return REACTOR_E_WRONG_THREAD;
    }
    if reactor.shared.is_poisoned() {
        return REACTOR_E_INTERNAL;
    }
    reactor.enter_api();
    let outcome = catch_unwind(AssertUnwindSafe(|| body(reactor)));
    reactor.leave_api();
    match outcome {
        Ok(result) => status(result),
        Err(_) => {
            reactor.shared.poison();
            REACTOR_E_INTERNAL
        }
    }
}

fn on_reactor(r: *const reactor_t, body: impl FnOnce(&Reactor) -> Result<()>) -> c_int {
    on_reactor_or(r, REACTOR_E_INVALID, Adopt::No, body)
}

/// A getter that cannot return a status: `neutral` for bad handles, foreign threads and panics.
fn read_reactor<T>(r: *const reactor_t, neutral: T, body: impl FnOnce(&Reactor) -> T) -> T {
    match reactor_ref(r) {
        Some(reactor) if reactor.shared.is_owner() && !reactor.shared.is_poisoned() => {
            catch_unwind(AssertUnwindSafe(|| body(reactor))).unwrap_or(neutral)
        }
        _ => neutral,
    }
}

/// Writes `value` through `out` if it is not NULL.
fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: the caller passed a writable pointer (API contract); NULL was checked.
        unsafe { out.write(value) }
    }
}

/// Copies `values` into the caller's array (up to `cap`) and the total into `out_count`.
fn write_list(values: &[c_int], out: *mut c_int, cap: usize, out_count: *mut usize) {
    if !out.is_null() {
        for (i, value) in values.iter().take(cap).enumerate() {
            // SAFETY: `out` has room for `cap` ints (API contract); i < cap.
            unsafe { out.add(i).write(*value) }
        }
    }
    write_out(out_count, values.len());
}

/// `out_count` is required (without it a caller cannot tell a truncated list); `out` only if `cap` > 0.
fn check_list_args(out: *mut c_int, cap: usize, out_count: *mut usize) -> Result<()> {
    if (out.is_null() && cap > 0) || out_count.is_null() {
        Err(Error::Invalid)
    } else {
        Ok(())
    }
}
