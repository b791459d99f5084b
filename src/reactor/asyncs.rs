//! Coalescing async wake-ups (libuv's uv_async, libev's ev_async): `send` from any thread (or a signal
//! handler) raises the handle's pending flag and wakes the loop at most once; the loop runs the
//! callback once per batch of sends.
//!
//! The pending flag is the FLAG bit of the handle's slot state word, so a send that finds it raised
//! (a wake-up is already on its way) is one load of that word, like libuv's. The send that raises it
//! also pins the handle while it wakes the reactor, so `reactor_async_close` and `reactor_free` (which
//! remove the handle, waiting for pins) never pull the reactor's shared state from under it.

use super::Reactor;
use super::shared::Shared;
use crate::callback::{Callback, call_plain};
use crate::handles::{AsyncTable, HandleTable};
use crate::status::{Error, Result};
use std::os::raw::c_void;
use std::sync::Arc;

/// The sending side of an async handle.
pub struct AsyncSender {
    reactor: Arc<Shared>,
    /// The reactor's C handle (an opaque token), for `reactor_async_close`'s thread check.
    pub reactor_handle: usize,
}

/// Every open async handle. Entries are removed only on their reactor's thread, by
/// `reactor_async_close` or `reactor_free`.
pub static ASYNC_HANDLES: AsyncTable<AsyncSender> = HandleTable::new();

/// `reactor_async_send`: no allocation, no lock: safe from any thread and from signal handlers.
/// A send that finds the flag raised (a wake-up is already on its way) is one load.
#[inline(always)]
pub fn send(handle: *const c_void) -> Result<()> {
    if ASYNC_HANDLES.flag_is_set(handle) {
        return Ok(());
    }
    raise_and_wake(handle)
}

/// The send that raises the flag: pin the handle, wake the reactor.
#[cold]
#[inline(never)]
fn raise_and_wake(handle: *const c_void) -> Result<()> {
    if let Some(sender) = ASYNC_HANDLES.raise_flag(handle)? {
        sender.reactor.signal_async();
    }
    Ok(())
}

/// The reactor handle an async belongs to.
pub fn reactor_of(handle: *const c_void) -> Option<usize> {
    ASYNC_HANDLES.with(handle, |sender| sender.reactor_handle)
}

pub struct AsyncEntry {
    handle: usize,
    callback: Callback,
}

impl Reactor {
    /// Creates an async handle for this reactor and returns it. On error the host keeps its data.
    pub fn add_async(&self, callback: Callback) -> Result<*mut c_void> {
        let sender = AsyncSender {
            reactor: self.shared.clone(),
            reactor_handle: self.handle() as usize,
        };
        let handle = match ASYNC_HANDLES.insert(Box::new(sender)) {
            Ok(handle) => handle,
            Err(e) => {
                callback.data.into_raw();
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

    /// Invalidates every async handle of this reactor (teardown); the callbacks are released later,
    /// with the reactor.
    pub(super) fn close_all_asyncs(&self) -> Vec<Callback> {
        let entries = std::mem::take(&mut *self.asyncs.borrow_mut());
        entries
            .into_iter()
            .map(|entry| {
                drop(ASYNC_HANDLES.remove(entry.handle as *const c_void));
                entry.callback
            })
            .collect()
    }

    pub(super) fn run_asyncs(&self) {
        if !self.shared.take_async_pending() {
            return;
        }
        let mut index = 0;
        while !self.state.get().is_crashing() {
            let due = {
                let asyncs = self.asyncs.borrow();
                let Some(entry) = asyncs.get(index) else {
                    break;
                };
                ASYNC_HANDLES
                    .take_flag(entry.handle as *const c_void)
                    .then(|| (entry.callback.func, entry.callback.data.ptr()))
            };
            if let Some((func, ud)) = due {
                self.invoke(|| call_plain(func, self.handle(), ud));
            }
            index += 1;
        }
        // A callback may have closed handles (moving others behind the cursor), or a crash cut the scan
        // short: whatever is still pending is looked at on the next pass.
        let still_pending = self
            .asyncs
            .borrow()
            .iter()
            .any(|entry| ASYNC_HANDLES.flag_is_set(entry.handle as *const c_void));
        if still_pending {
            self.shared.mark_async_pending();
        }
    }
}
