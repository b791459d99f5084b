//! IReactorThreads at the C boundary: call_from_thread, async and remote handles.

use super::{guarded, on_owner, write_out};
use crate::callback::{Callback, UserData};
use crate::handles::{HandleTable, RemoteTable};
use crate::reactor::entry;
use crate::reactor::{Shared, ThreadCall, async_reactor_of, async_send};
use crate::status::{Error, to_status};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// What a `reactor_remote_t` holds: the reactor's shared part, whose gate refuses calls once the
/// reactor stopped for good or was freed.
struct RemoteHandle {
    shared: Arc<Shared>,
}

static REMOTES: RemoteTable<RemoteHandle> = HandleTable::new();

/// Queues `cb(r, ud)` to run on the reactor thread (FIFO per calling thread, exactly once). Calls queued
/// before `run` wait for it; a call accepted while a run is ending runs before that run returns. After
/// a run that ended with `reactor_stop`: `REACTOR_E_CLOSED`, and `ud` stays the caller's. Racing
/// `reactor_free` is safe: the call either gets in first (then `reactor_free` runs its release, or
/// returns `REACTOR_E_BUSY` while the call is in progress) or gets `REACTOR_E_INVALID`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_from_thread(
    r: *mut reactor_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    let Some(func) = cb else {
        return Error::Invalid.code();
    };
    // The call is built only once the queue has accepted it: a refused `ud` stays the caller's.
    guarded(|| {
        entry::queue_call(r, || {
            ThreadCall::Host(Callback {
                func,
                data: UserData::new(ud, release),
            })
        })
    })
}

/// Creates a coalescing wake-up: after `reactor_async_send`, `cb(r, ud)` runs at least once on the
/// reactor thread; sends before it runs coalesce into one call.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_async_new(
    r: *mut reactor_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_async_t,
) -> c_int {
    on_owner(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let handle = reactor.add_async(Callback {
            func,
            data: UserData::new(ud, release),
        })?;
        // SAFETY: `out` is non-NULL and writable (the caller's contract).
        unsafe { write_out(out, handle.cast()) };
        Ok(())
    })
}

/// Requests one run of the async's callback. No allocation, no lock: async-signal-safe. A send that
/// finds a run already pending is one atomic load. A closed or freed handle: `REACTOR_E_INVALID`.
///
/// Thread-safety: any thread, and signal handlers.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_async_send(a: *mut reactor_async_t) -> c_int {
    // No panic guard on purpose: this path must stay async-signal-safe, and it cannot panic.
    to_status(async_send(a.cast()))
}

/// Closes an async handle: its release runs and the handle becomes invalid.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_async_close(a: *mut reactor_async_t) -> c_int {
    let Some(reactor) = async_reactor_of(a.cast()) else {
        return Error::Invalid.code();
    };
    on_owner(reactor as *mut reactor_t, |reactor| {
        reactor.remove_async(a.cast())
    })
}

/// Creates a handle that can queue calls into the reactor from any thread and stays valid after the
/// reactor is freed (calls then return `REACTOR_E_CLOSED`). Free it with `reactor_remote_free`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_remote_new(
    r: *mut reactor_t,
    out: *mut *mut reactor_remote_t,
) -> c_int {
    on_owner(r, |reactor| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let handle = REMOTES.insert(Box::new(RemoteHandle {
            shared: reactor.shared.clone(),
        }))?;
        // SAFETY: `out` is non-NULL and writable (the caller's contract).
        unsafe { write_out(out, handle.cast()) };
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
    guarded(|| {
        let func = cb.ok_or(Error::Invalid)?;
        let remote = REMOTES.pin(h.cast()).ok_or(Error::Invalid)?;
        remote.shared.push_unpinned(|| {
            ThreadCall::Host(Callback {
                func,
                data: UserData::new(ud, release),
            })
        })
    })
}

/// Frees a remote handle; calls it queued earlier still run. NULL and stale handles are ignored.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remote_free(h: *mut reactor_remote_t) {
    guarded(|| {
        drop(REMOTES.remove(h.cast()));
        Ok(())
    });
}
