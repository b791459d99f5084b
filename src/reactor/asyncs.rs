//! Coalescing async wake-ups (libuv's uv_async, libev's ev_async): `send` from any thread (or a signal
//! handler) sets a flag and wakes the loop at most once; the loop runs the callback once per batch.
//!
//! The handle table holds the sending side (`AsyncShared`) directly, so a send is a table check plus
//! one load of the pending flag; the reactor keeps the callback and finds the flag through the handle.

use super::Reactor;
use super::shared::Shared;
use crate::callback::{Callback, call_plain};
use crate::handles::HandleTable;
use crate::status::{Error, Result};
use std::os::raw::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The sending side of an async handle. Its pending flag is the table slot's `aux` word, so a send
/// that finds it already set touches one cache line.
pub struct AsyncShared {
    reactor: Arc<Shared>,
    /// The reactor's C handle (an opaque token), for `reactor_async_close`'s thread check.
    pub reactor_handle: usize,
}

/// Every open async handle. Entries are removed only on their reactor's thread, by
/// `reactor_async_close` or `reactor_free`.
pub static ASYNC_HANDLES: HandleTable<AsyncShared> = HandleTable::new();

/// The live sending side behind `handle`.
fn lookup<'a>(handle: *const c_void) -> Option<&'a AsyncShared> {
    // SAFETY: the table only returns live entries, and an entry is freed only by close/free, which
    // API.md forbids racing with a send or with the reactor's own use.
    ASYNC_HANDLES.get(handle).map(|p| unsafe { &*p.as_ptr() })
}

/// The handle's pending flag (the slot's aux word), if the handle is live.
fn pending_flag<'a>(handle: *const c_void) -> Option<&'a AtomicU32> {
    ASYNC_HANDLES.live_slot(handle).map(|slot| &slot.aux)
}

/// `reactor_async_send`: no allocation, no lock, safe from any thread and from signal handlers.
pub fn send(handle: *const c_void) -> Result<()> {
    let pending = pending_flag(handle).ok_or(Error::Invalid)?;
    if pending.load(Ordering::Relaxed) == 0 && pending.swap(1, Ordering::AcqRel) == 0 {
        lookup(handle).ok_or(Error::Invalid)?.reactor.signal_async();
    }
    Ok(())
}

/// The reactor handle an async belongs to.
pub fn reactor_of(handle: *const c_void) -> Option<usize> {
    lookup(handle).map(|a| a.reactor_handle)
}

pub struct AsyncEntry {
    handle: usize,
    callback: Callback,
}

impl Reactor {
    /// Creates an async handle for this reactor and returns it.
    pub fn add_async(&self, callback: Callback) -> Result<*mut c_void> {
        let sender = AsyncShared {
            reactor: self.shared.clone(),
            reactor_handle: self.handle() as usize,
        };
        let handle = match ASYNC_HANDLES.insert(Box::new(sender)) {
            Ok(handle) => handle,
            Err(e) => {
                callback.data.into_raw(); // not ours: the host keeps it
                return Err(e);
            }
        };
        self.asyncs.borrow_mut().push(AsyncEntry {
            handle: handle as usize,
            callback,
        });
        Ok(handle)
    }

    /// Closes an async handle; its release runs (after the current callback, if any).
    pub fn remove_async(&self, handle: *const c_void) -> Result<()> {
        let removed = {
            let mut asyncs = self.asyncs.borrow_mut();
            let position = asyncs
                .iter()
                .position(|a| a.handle == handle as usize)
                .ok_or(Error::Invalid)?;
            asyncs.swap_remove(position)
        };
        drop(ASYNC_HANDLES.remove(handle));
        self.retire(removed.callback.data);
        Ok(())
    }

    /// Invalidates every async handle of this reactor (`reactor_free`); callbacks are released with it.
    pub fn close_all_asyncs(&self) {
        for entry in self.asyncs.borrow().iter() {
            drop(ASYNC_HANDLES.remove(entry.handle as *const c_void));
        }
    }

    pub(super) fn run_asyncs(&self) {
        if !self.shared.take_async_pending() {
            return;
        }
        let mut index = 0;
        while !self.crash_requested.get() {
            let due = {
                let asyncs = self.asyncs.borrow();
                let Some(entry) = asyncs.get(index) else {
                    break;
                };
                let fired = pending_flag(entry.handle as *const c_void)
                    .is_some_and(|pending| pending.swap(0, Ordering::AcqRel) != 0);
                fired.then(|| (entry.callback.func, entry.callback.data.ptr()))
            };
            if let Some((func, ud)) = due {
                self.invoke(|| call_plain(func, self.handle(), ud));
            }
            index += 1;
        }
        // A callback may have closed handles (moving others behind the cursor), or a crash cut the scan
        // short: whatever is still pending is looked at on the next pass.
        let still_pending = self.asyncs.borrow().iter().any(|entry| {
            pending_flag(entry.handle as *const c_void)
                .is_some_and(|p| p.load(Ordering::Acquire) != 0)
        });
        if still_pending {
            self.shared.mark_async_pending();
        }
    }
}
