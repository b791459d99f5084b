//! IReactorThreads at the C boundary: call_from_thread, wake-ups, async and remote handles.

use super::{guard, on_reactor, reactor_ref, write_out};
use crate::callback::{Callback, UserData};
use crate::handles::HandleTable;
use crate::reactor::{Reactor, Shared, async_reactor_of, async_send};
use crate::status::{Error, REACTOR_E_INVALID, REACTOR_OK};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

struct RemoteHandle {
    shared: Arc<Shared>,
}

static REMOTES: HandleTable<RemoteHandle> = HandleTable::new();

/// Queues `cb(r, ud)` to run on the reactor thread (FIFO per calling thread, exactly once). Calls queued
/// before `run` wait for it. After a run that ended with `reactor_stop`: `REACTOR_E_CLOSED`, and `ud`
/// stays the caller's. Must not race `reactor_free` (use a remote handle for that).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_from_thread(
    r: *mut reactor_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    guard(|| {
        let reactor = reactor_ref(r).ok_or(Error::Invalid)?;
        let func = cb.ok_or(Error::Invalid)?;
        Reactor::call_from_thread(
            &reactor.shared,
            Callback {
                func,
                data: UserData::new(ud, release),
            },
        )
        .map_err(|refused| {
            refused.data.into_raw();
            Error::Closed
        })
    })
}

/// Wakes the reactor's poll (coalesced with other pending wake-ups).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_wake_up(r: *mut reactor_t) -> c_int {
    match reactor_ref(r) {
        Some(reactor) => {
            reactor.shared.waker.wake();
            REACTOR_OK
        }
        None => REACTOR_E_INVALID,
    }
}

/// 1 if the calling thread owns the reactor (the creator until the first run, then the running thread).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_is_in_io_thread(r: *const reactor_t) -> c_int {
    reactor_ref(r).is_some_and(|reactor| reactor.shared.is_owner()) as c_int
}

/// Creates a coalescing wake-up: after `reactor_async_send`, `cb(r, ud)` runs at least once on the
/// reactor thread; sends before it runs coalesce into one call.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_async_new(
    r: *mut reactor_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_async_t,
) -> c_int {
    on_reactor(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let handle = reactor.add_async(Callback {
            func,
            data: UserData::new(ud, release),
        })?;
        write_out(out, handle.cast());
        Ok(())
    })
}

/// Requests one run of the async's callback. No allocation, no lock: async-signal-safe.
/// Must not race `reactor_async_close` or `reactor_free`.
///
/// Thread-safety: any thread, and signal handlers.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_async_send(a: *mut reactor_async_t) -> c_int {
    // No panic guard on purpose: this path must stay async-signal-safe, and it cannot panic.
    match async_send(a.cast()) {
        Ok(()) => REACTOR_OK,
        Err(_) => REACTOR_E_INVALID,
    }
}

/// Closes an async handle: its release runs and the handle becomes invalid.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_async_close(a: *mut reactor_async_t) -> c_int {
    let Some(reactor) = async_reactor_of(a.cast()) else {
        return REACTOR_E_INVALID;
    };
    on_reactor(reactor as *mut reactor_t, |reactor| {
        reactor.remove_async(a.cast())
    })
}

/// Creates a handle that can queue calls into the reactor from any thread and stays valid after the
/// reactor is freed (calls then return `REACTOR_E_CLOSED`). Free it with `reactor_remote_free`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remote_new(r: *mut reactor_t, out: *mut *mut reactor_remote_t) -> c_int {
    on_reactor(r, |reactor| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let handle = REMOTES.insert(Box::new(RemoteHandle {
            shared: reactor.shared.clone(),
        }))?;
        write_out(out, handle.cast());
        Ok(())
    })
}

/// Like `reactor_call_from_thread`, but safe against a concurrent `reactor_free`: once the reactor is
/// freed (or a run ended with stop) it returns `REACTOR_E_CLOSED` and `ud` stays the caller's.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remote_call(
    h: *mut reactor_remote_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    guard(|| {
        let remote = REMOTES.get(h.cast()).ok_or(Error::Invalid)?;
        let func = cb.ok_or(Error::Invalid)?;
        // SAFETY: live entry; a remote must not race its own free (API contract).
        let shared = &unsafe { remote.as_ref() }.shared;
        shared
            .push_call_if_open(Callback {
                func,
                data: UserData::new(ud, release),
            })
            .map_err(|refused| {
                refused.data.into_raw();
                Error::Closed
            })
    })
}

/// Frees a remote handle; calls it queued earlier still run. NULL and stale handles are ignored.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remote_free(h: *mut reactor_remote_t) {
    guard(|| {
        drop(REMOTES.remove(h.cast()));
        Ok(())
    });
}
