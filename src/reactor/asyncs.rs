//! Coalescing async wake-ups (libuv's uv_async, libev's ev_async): `send` from any thread (or a signal
//! handler) sets a flag and wakes the loop at most once; the loop runs the callback once per batch.

use super::Reactor;
use super::shared::Shared;
use crate::callback::Callback;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The part of an async handle the sending side touches.
pub struct AsyncShared {
    pending: AtomicBool,
    reactor: Arc<Shared>,
}

impl AsyncShared {
    pub fn new(reactor: Arc<Shared>) -> AsyncShared {
        AsyncShared {
            pending: AtomicBool::new(false),
            reactor,
        }
    }

    /// No allocation, no lock: safe from any thread and from signal handlers.
    pub fn send(&self) {
        if !self.pending.load(Ordering::Relaxed) && !self.pending.swap(true, Ordering::AcqRel) {
            self.reactor.signal_async();
        }
    }
}

pub struct AsyncEntry {
    /// The C handle, so `reactor_free` can invalidate it.
    handle: usize,
    inner: Arc<AsyncShared>,
    callback: Callback,
}

impl Reactor {
    pub fn add_async(&self, handle: usize, inner: Arc<AsyncShared>, callback: Callback) {
        self.asyncs.borrow_mut().push(AsyncEntry {
            handle,
            inner,
            callback,
        });
    }

    /// The C handles of every open async (for `reactor_free`).
    pub fn async_handles(&self) -> Vec<usize> {
        self.asyncs.borrow().iter().map(|a| a.handle).collect()
    }

    /// Unregisters an async handle; its release runs (after the current callback, if any).
    pub fn remove_async(&self, inner: &Arc<AsyncShared>) {
        let removed = {
            let mut asyncs = self.asyncs.borrow_mut();
            let position = asyncs.iter().position(|a| Arc::ptr_eq(&a.inner, inner));
            position.map(|p| asyncs.swap_remove(p))
        };
        if let Some(entry) = removed {
            self.retire(entry.callback.data);
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
                entry
                    .inner
                    .pending
                    .swap(false, Ordering::AcqRel)
                    .then(|| (entry.callback.func, entry.callback.data.ptr()))
            };
            if let Some((func, ud)) = due {
                self.invoke(|| crate::callback::call_plain(func, self.handle(), ud));
            }
            index += 1;
        }
        // A callback may have closed handles (moving others behind the cursor), or a crash cut the scan
        // short: whatever is still pending is looked at on the next pass.
        if self
            .asyncs
            .borrow()
            .iter()
            .any(|a| a.inner.pending.load(Ordering::Acquire))
        {
            self.shared.mark_async_pending();
        }
    }
}
