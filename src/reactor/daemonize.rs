//! IReactorDaemonize (API.md §8.4): between `before_daemonize` and `after_daemonize` the host may
//! fork and setsid; `after_daemonize`, in whichever process calls it, gives the reactor a fresh kernel
//! poller and waker with every registration re-added. Every backend recreates: kqueue descriptors do
//! not survive fork, and an epoll instance (or an eventfd waker) shared with the other process would
//! let each process's changes and wake-ups reach the other.
//!
//! In between, other calls on the reactor are refused with `REACTOR_E_BUSY` (the FFI's owner-thread
//! entry and `reactor_free` check the flag in `Shared`); calls queued from other threads are kept and
//! run afterwards.

use super::Reactor;
use crate::status::{Error, Result};
use crate::types::REACTOR_LOG_WARN;

impl Reactor {
    /// `reactor_before_daemonize`. Refused (`Error::Busy`) inside `run`/`iterate` or a callback, and
    /// while the reactor's thread pool has threads (a forked child would not have them); twice →
    /// `Error::Busy` too (the second call is an "other call in between").
    pub fn before_daemonize(&self) -> Result<()> {
        if self.is_driving() || self.shared.is_daemonizing() {
            return Err(Error::Busy);
        }
        if self.pool_has_threads() {
            return Err(Error::Busy);
        }
        self.shared.set_daemonizing(true);
        Ok(())
    }

    fn pool_has_threads(&self) -> bool {
        self.pool.get().is_some_and(|pool| pool.stats().workers > 0)
    }

    /// `reactor_after_daemonize`: a new poller and waker of the same kind, every registration re-added
    /// (a host fd closed in between is dropped, its release runs), then calls are accepted again.
    /// Without `before_daemonize` → `Error::Invalid`.
    pub fn after_daemonize(&self) -> Result<()> {
        if !self.shared.is_daemonizing() {
            return Err(Error::Invalid);
        }
        let kind = self.options.backend;
        let mut fresh = kind.create()?;
        let registrations = self.sources.borrow().registrations();
        let mut lost = Vec::new();
        for (fd, token, interest) in registrations {
            if fresh.add(fd, token, interest).is_err() {
                lost.push(token);
            }
        }
        let waker = fresh.wake_target();
        let old = std::mem::replace(&mut *self.backend.borrow_mut(), fresh);
        self.retired_backends.borrow_mut().push(old);
        self.waker.set(waker);
        self.shared.set_waker(waker);
        self.shared.set_daemonizing(false);
        for token in lost {
            self.log(
                REACTOR_LOG_WARN,
                "after_daemonize: a registered fd was closed meanwhile; its registration is dropped",
            );
            self.drop_source(token);
        }
        // Work other threads queued in between (their wake-ups went to the old waker).
        self.shared.force_wake();
        Ok(())
    }
}
