//! The part of a reactor other threads may touch: the call_from_thread queue, the waker handshake,
//! the async-pending flag and the poisoned flag. Everything here is `Sync`.

use super::Reactor;
use super::call_queue::{self, CallQueue};
use super::wake;
use crate::backend::WakeTarget;
use crate::callback::Callback;
use crate::handles::{self, FLAG_BIT, QUEUED};
use crate::status::Error;
use crate::sync::Padded;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Work the reactor runs on its own thread for the library (not a host callback): e.g. the `done`
/// half of `reactor_call_in_thread_with_callback`. Dropping one without running it must release
/// whatever host data it carries (that is what `reactor_free` does with leftovers).
pub trait ReactorTask: Send {
    fn run(self: Box<Self>, reactor: &Reactor);
}

/// One entry of the call_from_thread queue.
pub enum ThreadCall {
    Host(Callback),
    Task(Box<dyn ReactorTask>),
}

/// Laid out (in this order) by who writes what: the read-mostly fields every any-thread call reads
/// share the first line; the async flag (written by senders) and the call queue's buffer (written by
/// producers and the reactor) have lines of their own, so no side's writes take away a line another
/// side only reads. The waker handshake and the queue's lock run on the reactor handle's state word
/// (`wake`, `call_queue`), bound at creation.
#[repr(C)]
pub struct Shared {
    poisoned: AtomicBool,
    waker: WakeTarget,
    /// The reactor handle's state word (never unmapped), where AWAKE, WAKE_PENDING, CALLS_LOCK and
    /// QUEUED live.
    word: AtomicPtr<AtomicU64>,
    /// The handle's generation when the word was bound: producers without a pin on the reactor
    /// (remote calls, pool completions; remote handles outlive the reactor) lock the queue only while
    /// the word still belongs to this reactor.
    generation: AtomicU32,
    async_pending: Padded<AtomicBool>,
    calls: Padded<CallQueue>,
}

/// Where the handshake runs before the reactor has a handle (nothing produces for it yet).
static UNBOUND: AtomicU64 = AtomicU64::new(0);

impl Shared {
    pub fn new(waker: WakeTarget) -> Shared {
        Shared {
            poisoned: AtomicBool::new(false),
            word: AtomicPtr::new(&UNBOUND as *const AtomicU64 as *mut AtomicU64),
            async_pending: Padded(AtomicBool::new(false)),
            calls: Padded(CallQueue::default()),
            generation: AtomicU32::new(0),
            waker,
        }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    /// Binds the waker handshake to the reactor handle's state word (at creation, before anyone else
    /// can reach the reactor).
    pub fn bind_word(&self, word: &'static AtomicU64) {
        let state = word.load(Ordering::Acquire);
        self.generation
            .store(handles::generation_of(state), Ordering::Relaxed);
        self.word.store(
            word as *const AtomicU64 as *mut AtomicU64,
            Ordering::Release,
        );
    }

    /// The handshake word.
    #[inline]
    pub fn word(&self) -> &AtomicU64 {
        // SAFETY: points to `UNBOUND` or to a slot's state word; both live as long as the process.
        unsafe { &*self.word.load(Ordering::Acquire) }
    }

    /// After publishing work without holding a pin on the reactor: wakes the reactor thread unless it
    /// is awake or a wake-up is already on its way. Async-signal-safe.
    #[inline]
    pub fn wake(&self) {
        if wake::publish(self.word()) {
            self.waker.wake();
        }
    }

    /// Writes the waker unconditionally (`reactor_wake_up`, and callers that claimed the wake-up).
    #[inline]
    pub fn force_wake(&self) {
        self.waker.wake();
    }

    /// Reactor side of the handshake (see `wake`; the reactor tracks whether it is awake).
    pub fn wake_up(&self) {
        wake::wake_up(self.word());
    }

    pub fn prepare_to_block(&self) {
        wake::prepare_to_block(self.word());
    }

    /// Queues a call from a thread that holds the queue's lock, then releases the lock, waking the
    /// reactor if needed (see `call_queue::unlock_published`; a producer that claimed the wake-up
    /// writes the waker while it still holds the lock, which keeps the reactor and its waker's fd
    /// alive). Refused, and the lock released, with `Error::Closed` once the queue is closed (the
    /// reactor is freed) and with `Error::Internal` on a poisoned reactor; a refused call is handed
    /// back.
    ///
    /// # Safety
    /// The caller holds CALLS_LOCK in this reactor's state word (`word()`), taken while the word was
    /// this reactor's: through its live handle, or with its generation checked (`push_unpinned`).
    #[inline]
    pub unsafe fn push_locked(
        &self,
        call: ThreadCall,
    ) -> std::result::Result<(), (Error, ThreadCall)> {
        let word = self.word();
        let refused = if self.calls.is_closed() {
            Some(Error::Closed)
        } else if self.is_poisoned() {
            Some(Error::Internal)
        } else {
            None
        };
        if let Some(error) = refused {
            call_queue::unlock(word);
            return Err((error, call));
        }
        // SAFETY: the caller holds the lock, and the queue is open.
        unsafe { self.calls.push_locked(call) };
        if call_queue::unlock_published(word) {
            self.force_wake();
            call_queue::unlock(word);
        }
        Ok(())
    }

    /// Queues work for the reactor thread from a thread that holds no pin on it (`reactor_remote_call`,
    /// a pool worker's completion). Refused with `Error::Closed` once a run ended with stop and once
    /// the reactor is freed (atomically with respect to both: the lock is taken in the same
    /// compare-and-swap that checks them, and both wait for the lock), with `Error::Internal` on a
    /// poisoned reactor. A refused call is handed back.
    pub fn push_unpinned(&self, call: ThreadCall) -> std::result::Result<(), (Error, ThreadCall)> {
        let generation = self.generation.load(Ordering::Relaxed);
        // While the reactor is being freed (closing) its pool is joined, and the completions of the
        // last jobs are still accepted; `close_calls` then refuses the rest.
        let locked = call_queue::lock(self.word(), |state| {
            if !handles::is_live_generation(state, generation) || state & FLAG_BIT != 0 {
                Err(())
            } else {
                Ok(())
            }
        });
        if locked.is_err() {
            return Err((Error::Closed, call));
        }
        // SAFETY: we hold the lock, taken with this reactor's generation checked; should the word
        // be another reactor's (a generation that wrapped around), the queue is closed and refuses.
        unsafe { self.push_locked(call) }
    }

    /// When the reactor is freed, while its slot is closing and before the word can be reused:
    /// refuses every later producer. What is queued stays for `take_closed_calls`.
    pub fn close_calls(&self) {
        self.calls.close(self.word());
    }

    /// From `Drop for Reactor`: the calls left in the queue, which `close_calls` closed (or closes
    /// now, for a reactor that never got a handle).
    pub fn take_closed_calls(&self) -> Vec<ThreadCall> {
        if !self.calls.is_closed() {
            self.close_calls();
        }
        // SAFETY: closed (above, or by this thread in `reactor_free`), and only the thread dropping
        // the reactor takes from a closed queue.
        unsafe { self.calls.take_closed() }
    }

    /// Makes the reactor thread look at its async handles on its next pass (no wake-up: it is awake).
    pub fn mark_async_pending(&self) {
        self.async_pending.store(true, Ordering::Release);
    }

    /// An async send: flag, then wake. Async-signal-safe.
    #[inline]
    pub fn signal_async(&self) {
        self.async_pending.store(true, Ordering::Release);
        self.wake();
    }

    pub fn take_async_pending(&self) -> bool {
        self.async_pending.load(Ordering::Relaxed)
            && self.async_pending.swap(false, Ordering::AcqRel)
    }

    pub fn has_work(&self) -> bool {
        self.word().load(Ordering::Acquire) & QUEUED != 0
            || self.async_pending.load(Ordering::Relaxed)
    }

    /// Reactor thread: exchanges every queued call (oldest first) with the reactor's empty `spare`
    /// buffer (O(1) under the queue's lock; nothing locked when nothing is queued).
    pub fn take_calls(&self, spare: &mut Vec<ThreadCall>) {
        let word = self.word();
        if call_queue::lock_if_queued(word) {
            // SAFETY: we hold the lock of our own, live reactor (the caller is its thread).
            unsafe { self.calls.swap_locked(spare) };
            call_queue::unlock_taken(word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{Callback, UserData};
    use crate::handles::{AWAKE, CALLS_LOCK, live_state_for_tests};
    use crate::types::reactor_t;
    use std::os::raw::c_void;

    unsafe extern "C" fn nothing(_: *mut reactor_t, _: *mut c_void) {}

    fn call() -> ThreadCall {
        ThreadCall::Host(Callback {
            func: nothing,
            data: UserData::new(std::ptr::null_mut(), None),
        })
    }

    fn word_of_live_reactor(generation: u32) -> &'static AtomicU64 {
        Box::leak(Box::new(AtomicU64::new(
            live_state_for_tests(generation) | AWAKE,
        )))
    }

    #[test]
    fn a_closed_queue_refuses_remote_calls_even_through_a_reused_slot() {
        let word = word_of_live_reactor(5);
        let shared = Shared::new(WakeTarget::from_bits(-1));
        shared.bind_word(word);
        assert!(shared.push_unpinned(call()).is_ok());
        shared.close_calls();
        // The slot was vacated and reused since, and its generation wrapped around to ours: the
        // word looks like ours again, but the queue must stay closed.
        assert!(matches!(
            shared.push_unpinned(call()),
            Err((Error::Closed, _))
        ));
        assert_eq!(word.load(Ordering::Relaxed) & CALLS_LOCK, 0, "unlocked");
        assert_eq!(
            shared.take_closed_calls().len(),
            1,
            "the call accepted before"
        );
    }

    #[test]
    fn remote_calls_are_refused_for_another_generation_and_after_the_stop_flag() {
        let word = word_of_live_reactor(5);
        let shared = Shared::new(WakeTarget::from_bits(-1));
        shared.bind_word(word);
        word.store(live_state_for_tests(6) | AWAKE, Ordering::Relaxed);
        assert!(matches!(
            shared.push_unpinned(call()),
            Err((Error::Closed, _))
        ));
        word.store(
            live_state_for_tests(5) | AWAKE | FLAG_BIT,
            Ordering::Relaxed,
        );
        assert!(matches!(
            shared.push_unpinned(call()),
            Err((Error::Closed, _))
        ));
        word.store(live_state_for_tests(5) | AWAKE, Ordering::Relaxed);
        shared.poison();
        assert!(matches!(
            shared.push_unpinned(call()),
            Err((Error::Internal, _))
        ));
        assert_eq!(word.load(Ordering::Relaxed) & (CALLS_LOCK | QUEUED), 0);
        assert!(shared.take_closed_calls().is_empty());
    }
}
