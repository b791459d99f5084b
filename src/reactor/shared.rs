//! The part of a reactor other threads may touch: the call_from_thread queue, the waker handshake,
//! the async-pending flag and the poisoned flag. Everything here is `Sync`.

use super::Reactor;
use super::call_queue::{self, CallQueue};
use super::wake;
use crate::backend::WakeTarget;
use crate::callback::Callback;
use crate::handles::{self, FLAG_BIT};
use crate::status::Error;
use crate::sync::Padded;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

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
/// share the first line; the async flag (written by senders) and the call queue's producer and
/// consumer sides have lines of their own, so no side's writes take away a line another side only
/// reads. The waker handshake and the queue's lock run on the reactor handle's state word
/// (`wake`, `call_queue`), bound at creation.
#[repr(C)]
pub struct Shared {
    poisoned: AtomicBool,
    /// The waker's `WakeTarget::to_bits` (replaced by `reactor_after_daemonize`).
    waker: AtomicI64,
    /// Between `reactor_before_daemonize` and `reactor_after_daemonize`: calls are refused (BUSY).
    daemonizing: AtomicBool,
    /// The reactor handle's state word (never unmapped), where AWAKE, WAKE_PENDING and CALLS_LOCK
    /// live.
    word: AtomicPtr<AtomicU64>,
    /// The handle's generation when the word was bound: producers without a pin on the reactor
    /// (remote calls, pool completions; remote handles outlive the reactor) lock the queue only while
    /// the word still belongs to this reactor.
    generation: AtomicU32,
    async_pending: Padded<AtomicBool>,
    calls: CallQueue,
}

/// Where the handshake runs before the reactor has a handle (nothing produces for it yet).
static UNBOUND: AtomicU64 = AtomicU64::new(0);

impl Shared {
    pub fn new(waker: WakeTarget) -> Shared {
        Shared {
            poisoned: AtomicBool::new(false),
            word: AtomicPtr::new(&UNBOUND as *const AtomicU64 as *mut AtomicU64),
            async_pending: Padded(AtomicBool::new(false)),
            calls: CallQueue::default(),
            generation: AtomicU32::new(0),
            waker: AtomicI64::new(waker.to_bits()),
            daemonizing: AtomicBool::new(false),
        }
    }

    fn waker(&self) -> WakeTarget {
        WakeTarget::from_bits(self.waker.load(Ordering::Acquire))
    }

    /// A new waker (after daemonize). Producers that read the old one keep writing to it until they
    /// see this one: the old one stays open (the reactor keeps the retired backend until freed).
    pub fn set_waker(&self, waker: WakeTarget) {
        self.waker.store(waker.to_bits(), Ordering::Release);
    }

    pub fn is_daemonizing(&self) -> bool {
        self.daemonizing.load(Ordering::Acquire)
    }

    pub fn set_daemonizing(&self, on: bool) {
        self.daemonizing.store(on, Ordering::Release);
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
            self.waker().wake();
        }
    }

    /// Writes the waker unconditionally (`reactor_wake_up`, and callers that claimed the wake-up).
    #[inline]
    pub fn force_wake(&self) {
        self.waker().wake();
    }

    /// Reactor side of the handshake (see `wake`; the reactor tracks whether it is awake).
    pub fn wake_up(&self) {
        wake::wake_up(self.word());
    }

    pub fn prepare_to_block(&self) {
        wake::prepare_to_block(self.word());
    }

    /// Queues the call `make` builds from a thread that holds the queue's lock, then releases the
    /// lock, waking the reactor if needed (see `call_queue::unlock_published`; a producer that claimed
    /// the wake-up writes the waker while it still holds the lock, which keeps the reactor and its
    /// waker's fd alive). Refused, and the lock released, with `Error::Closed` once the queue is
    /// closed (the reactor is freed) and with `Error::Internal` on a poisoned reactor. `make` runs
    /// only once the call is accepted, so a refused call was never built (its data stays the
    /// caller's) and an accepted one is built in its slot.
    ///
    /// # Safety
    /// The caller holds CALLS_LOCK in this reactor's state word (`word()`), taken while the word was
    /// this reactor's: through its live handle, or with its generation checked (`push_unpinned`).
    #[inline(always)]
    pub unsafe fn push_locked(&self, make: impl FnOnce() -> ThreadCall) -> Result<(), Error> {
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
            return Err(error);
        }
        // SAFETY: the caller holds the lock, and the queue is open.
        unsafe { self.calls.push_locked(make()) };
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
    /// poisoned reactor. `make` runs only if the call is accepted (else it is dropped unused).
    pub fn push_unpinned(&self, make: impl FnOnce() -> ThreadCall) -> Result<(), Error> {
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
            return Err(Error::Closed);
        }
        // SAFETY: we hold the lock, taken with this reactor's generation checked; should the word
        // be another reactor's (a generation that wrapped around), the queue is closed and refuses.
        unsafe { self.push_locked(make) }
    }

    /// When the reactor is freed, while its slot is closing and before the word can be reused:
    /// refuses every later producer. What is queued stays for `take_closed_calls`.
    pub fn close_calls(&self) {
        self.calls.close(self.word());
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

    /// Whether calls from other threads wait in the ring (the reactor's quiet-pass check).
    #[inline]
    pub fn has_calls(&self) -> bool {
        self.calls.has_pending()
    }

    /// Whether calls or async sends wait for the reactor (it asks after `prepare_to_block`).
    pub fn has_work(&self) -> bool {
        self.has_calls() || self.async_pending.load(Ordering::Relaxed)
    }
}

/// The reactor thread's end of its call queue: the one consumer the ring allows (`CallQueue::take`
/// runs without a lock), so there is exactly one per queue and taking needs `&mut`.
pub struct CallTaker {
    shared: Arc<Shared>,
}

impl CallTaker {
    /// The taker of `shared`'s queue; `None` if it has one already.
    pub fn new(shared: Arc<Shared>) -> Option<CallTaker> {
        shared
            .calls
            .claim_consumer()
            .then_some(CallTaker { shared })
    }

    /// Appends every queued call (oldest first) to `into`. Lock-free unless the ring overflowed.
    pub fn take(&mut self, into: &mut Vec<ThreadCall>) {
        // SAFETY: this taker is the queue's one consumer (`new`) and `&mut self` keeps it to one
        // thread at a time. The queue is open and the word is our reactor's: the taker lives in the
        // reactor, which takes only while it lives (`reactor_free` closes the queue once no thread is
        // inside the reactor, and the reactor's drop uses `take_closed`).
        unsafe { self.shared.calls.take(self.shared.word(), into) }
    }

    /// From `Drop for Reactor`: the calls left in the queue, which `close_calls` closed (or closes
    /// now, for a reactor that never got a handle).
    pub fn take_closed(&mut self) -> Vec<ThreadCall> {
        if !self.shared.calls.is_closed() {
            self.shared.close_calls();
        }
        // SAFETY: the one consumer; closed above, or by `reactor_free` on this thread, before the
        // reactor is dropped.
        unsafe { self.shared.calls.take_closed() }
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
        assert!(shared.push_unpinned(call).is_ok());
        shared.close_calls();
        // The slot was vacated and reused since, and its generation wrapped around to ours: the
        // word looks like ours again, but the queue must stay closed.
        assert!(matches!(shared.push_unpinned(call), Err(Error::Closed)));
        assert_eq!(word.load(Ordering::Relaxed) & CALLS_LOCK, 0, "unlocked");
        let mut taker = CallTaker::new(Arc::new(shared)).unwrap();
        assert_eq!(taker.take_closed().len(), 1, "the call accepted before");
    }

    #[test]
    fn remote_calls_are_refused_for_another_generation_and_after_the_stop_flag() {
        let word = word_of_live_reactor(5);
        let shared = Shared::new(WakeTarget::from_bits(-1));
        shared.bind_word(word);
        word.store(live_state_for_tests(6) | AWAKE, Ordering::Relaxed);
        assert!(matches!(shared.push_unpinned(call), Err(Error::Closed)));
        word.store(
            live_state_for_tests(5) | AWAKE | FLAG_BIT,
            Ordering::Relaxed,
        );
        assert!(matches!(shared.push_unpinned(call), Err(Error::Closed)));
        word.store(live_state_for_tests(5) | AWAKE, Ordering::Relaxed);
        shared.poison();
        assert!(matches!(shared.push_unpinned(call), Err(Error::Internal)));
        assert_eq!(word.load(Ordering::Relaxed) & CALLS_LOCK, 0);
        let mut taker = CallTaker::new(Arc::new(shared)).unwrap();
        assert!(CallTaker::new(taker.shared.clone()).is_none(), "one taker");
        assert!(taker.take_closed().is_empty());
    }
}
