//! A reactor handle: what the handle table holds, and the only ways to reach the owner-only part.
//!
//! The table holds a `ReactorEntry`: the `Sync` part other threads use (shared queue and waker, the
//! thread pool, backend facts) and the owner-only `Reactor`, wrapped so that it can be reached only
//! through an ownership claim (`Claimed`, see `crate::handles::owner`). Claims exclude each other
//! across threads and exclude `reactor_free`, so the `Reactor`'s `Cell`s and `RefCell`s are only ever
//! touched by one thread at a time, with acquire/release ordering at every hand-over.

use super::shared::{Shared, ThreadCall};
use super::{Options, Reactor};
use crate::handles::{self, HandleTable, OwnerGuard, Pinned, ReactorTable};
use crate::status::{Error, Result};
use crate::sync::Padded;
use crate::thread_id;
use crate::threadpool::ReactorPool;
use crate::types::reactor_t;
use std::os::raw::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// The owner-only part of a reactor.
struct OwnerOnly(Reactor);

// SAFETY: the `Reactor` inside is reached only through `reactor(&Claimed)`, and a claim exists only
// on the owner thread (outer and nested claims) while no other thread holds one: ownership changes
// (adoption) and freeing require that nobody at all is inside a call, and each hand-over is an
// acquire/release pair on the slot's state word. So the value is used by one thread at a time, like a
// `Mutex`'s contents. Its thread-confined parts (`Rc`s of internal sources, `Cell`s) never leave it:
// callbacks receive only the opaque handle, and the whole object moves between threads as one.
unsafe impl Send for OwnerOnly {}
// SAFETY: as above: shared references to `OwnerOnly` hand out nothing without a claim.
unsafe impl Sync for OwnerOnly {}

/// The fields other threads read come first; the owner-only part, whose `Cell`s the reactor thread
/// writes all the time, starts on a cache line of its own.
#[repr(C)]
pub struct ReactorEntry {
    pub shared: Arc<Shared>,
    pub pool: Arc<ReactorPool>,
    backend_name: &'static str,
    /// Readable from any thread; replaced by `reactor_after_daemonize`.
    backend_fd: AtomicI32,
    core: Padded<OwnerOnly>,
}

impl ReactorEntry {
    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    pub fn backend_fd(&self) -> c_int {
        self.backend_fd.load(Ordering::Acquire)
    }

    /// After the owner replaced its backend (`reactor_after_daemonize`).
    pub fn set_backend_fd(&self, fd: c_int) {
        self.backend_fd.store(fd, Ordering::Release);
    }
}

pub static REACTORS: ReactorTable<ReactorEntry> = HandleTable::new();

/// An ownership claim on a reactor (held by the calling thread, or by an outer frame on its stack).
pub type Claimed<'a> = OwnerGuard<'a, ReactorEntry>;

/// The owner-only part of a claimed reactor.
pub fn reactor<'a>(claim: &'a Claimed<'_>) -> &'a Reactor {
    &claim.core.0.0
}

/// Creates a reactor owned by the calling thread and returns its handle.
pub fn create(options: Options) -> Result<*mut reactor_t> {
    let reactor = Reactor::new(options)?;
    let entry = ReactorEntry {
        shared: reactor.shared.clone(),
        pool: reactor.pool.clone(),
        backend_name: reactor.backend_name(),
        backend_fd: AtomicI32::new(reactor.backend_fd()),
        core: Padded(OwnerOnly(reactor)),
    };
    let me = thread_id::current();
    let handle = REACTORS.insert_owned(Box::new(entry), me)?;
    let claim = REACTORS.claim(handle, me, false)?;
    self::reactor(&claim).set_handle(handle.cast());
    let pin = REACTORS.pin(handle).ok_or(Error::Internal)?;
    claim.shared.bind_word(pin.state_word());
    Ok(handle.cast())
}

/// Claims `r` for the calling thread (`adopt`: take it over if idle, for `reactor_run`).
pub fn claim<'a>(r: *const reactor_t, adopt: bool) -> Result<Claimed<'a>> {
    REACTORS.claim(r.cast(), thread_id::current(), adopt)
}

/// Pins `r` for a call from any thread.
pub fn pin<'a>(r: *const reactor_t) -> Result<Pinned<'a, ReactorEntry>> {
    REACTORS.pin_with(r.cast(), |_| Ok(()))
}

/// Pins `r` for a call that queues work for its thread: `Error::Closed` once a run ended with stop
/// (the flag `close_to_other_threads` raises).
pub fn pin_open<'a>(r: *const reactor_t) -> Result<Pinned<'a, ReactorEntry>> {
    REACTORS.pin_with(r.cast(), refuse_after_stop)
}

/// `reactor_call_from_thread`: queues the call `make` builds for the reactor's thread and wakes it if
/// needed; `Error::Closed` once a run ended with stop. `make` runs only once the call is accepted. One
/// compare-and-swap checks the handle and the stop and locks the queue, which also keeps the reactor
/// alive (`free` waits for the lock); the unlock is the waker handshake (`call_queue`).
#[inline(always)]
pub fn queue_call(r: *const reactor_t, make: impl FnOnce() -> ThreadCall) -> Result<()> {
    let locked = REACTORS.lock_with(r.cast(), handles::CALLS_LOCK, refuse_after_stop)?;
    // SAFETY: `locked` holds CALLS_LOCK in this reactor's word, taken through its live handle.
    unsafe { locked.shared.push_locked(make) }
}

fn refuse_after_stop(state: u64) -> Result<()> {
    if state & handles::FLAG_BIT != 0 {
        Err(Error::Closed)
    } else {
        Ok(())
    }
}

/// From the owner, when a run ended with stop: refuse work from other threads from now on, and wait
/// for the callers that got in before (so everything they queued is there to drain).
pub fn close_to_other_threads(claim: &Claimed<'_>) {
    REACTORS.raise_flag_and_drain(claim, handles::CALLS_LOCK);
}

/// True if the calling thread owns `r`.
pub fn is_owner(r: *const reactor_t) -> bool {
    REACTORS.is_owned_by(r.cast(), thread_id::current())
}

/// `reactor_free`: succeeds only when nobody is inside any call on the reactor (else `Error::Busy`).
/// The handle is invalid from here on; the reactor's teardown (releases) runs on this thread.
pub fn free(r: *mut reactor_t) -> Result<()> {
    // Once the slot is closing: producers holding the queue's lock finish; the pool is stopped (the
    // completions of its last jobs still queue); then the queue closes, all while the state word is
    // still this reactor's. The releases of what is left run in `Drop for Reactor`, on this thread.
    let entry = REACTORS.remove_unclaimed_with(r.cast(), handles::CALLS_LOCK, |entry| {
        entry.pool.shutdown(true);
        entry.shared.close_calls();
    })?;
    drop(entry);
    Ok(())
}
