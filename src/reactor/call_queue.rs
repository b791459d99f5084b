//! The call_from_thread queue: many producers, one consumer (the reactor thread).
//!
//! Producers append to a buffer; the reactor swaps it for an empty one of its own once per pass. This
//! is the peers' design (libuv, libev and libevent hosts use a locked list plus a wake-up) and it
//! beats a lock-free segmented queue here for one reason: it allocates nothing in steady state. Both
//! buffers keep their capacity, whereas a segmented queue allocates segments on producer threads and
//! frees them on the reactor thread; with glibc that cross-thread traffic serialises producers and the
//! reactor on the producers' malloc arena (measured: futex waits in `free` of the segments, and 2x
//! slower floods when the host's own callbacks allocate and free too).
//!
//! The lock is not a mutex of its own but the CALLS_LOCK bit of the reactor handle's state word
//! (`crate::handles`), next to QUEUED ("the buffer may hold calls") and the waker handshake's bits
//! (`super::wake`). So `reactor_call_from_thread` is two read-modify-writes on one cache line: the
//! compare-and-swap that checks the handle and sets CALLS_LOCK (which also keeps the reactor alive:
//! `reactor_free` waits for the bit), and the one that clears it, sets QUEUED and reads AWAKE (the
//! handshake). A separate pin and mutex cost two more atomics and a second contended line per call.
//! The lock is held for a push or a swap, and by a producer that claimed the wake-up while it writes
//! the waker; never while a call runs.

use super::shared::ThreadCall;
use super::wake::Word;
use crate::handles::{AWAKE, CALLS_LOCK, QUEUED, WAKE_PENDING};
use crate::sync::{Ordering, backoff};
use std::cell::UnsafeCell;
use std::sync::atomic::AtomicBool;

#[derive(Default)]
pub struct CallQueue {
    /// Touched only by the holder of CALLS_LOCK in the word of the reactor this queue belongs to, or,
    /// once `closed`, by the thread that closed it.
    buffer: UnsafeCell<Vec<ThreadCall>>,
    /// Set under the lock when the reactor is freed (`close`). Producers check it under the lock: a
    /// producer without a pin may by then hold another reactor's word (a slot reused after a
    /// generation wrapped).
    closed: AtomicBool,
}

// SAFETY: `buffer` is reached only under the lock protocol above (one thread at a time, with
// acquire/release ordering through the word or, after `close`, by the closing thread alone); the calls
// in it are `Send`.
unsafe impl Sync for CallQueue {}

impl CallQueue {
    /// Appends a call.
    ///
    /// # Safety
    /// The caller holds CALLS_LOCK in the word of this queue's reactor and the queue is not closed.
    pub unsafe fn push_locked(&self, call: ThreadCall) {
        // SAFETY: the lock makes this thread the only one touching the buffer (caller's contract).
        unsafe { (*self.buffer.get()).push(call) }
    }

    /// Exchanges the queued calls (oldest first) with `spare`, an empty buffer of the reactor's: O(1),
    /// and both buffers keep their capacity.
    ///
    /// # Safety
    /// The caller holds CALLS_LOCK in the word of this queue's reactor.
    pub unsafe fn swap_locked(&self, spare: &mut Vec<ThreadCall>) {
        debug_assert!(spare.is_empty());
        // SAFETY: as in `push_locked`.
        unsafe { std::ptr::swap(self.buffer.get(), spare) }
    }

    /// Whether the reactor was freed (read under the lock).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the queue for good (the reactor is being freed, and `word` is still its own): taken
    /// under the lock, so a push in progress finishes first and every later producer sees it.
    pub fn close<W: Word>(&self, word: &W) {
        let _ = lock(word, |_| Ok::<(), ()>(()));
        self.closed.store(true, Ordering::SeqCst);
        // SeqCst, as the producers' locking compare-and-swap and their `is_closed`: in the single total
        // order this unlock comes before the lock of any producer that gets it later (a later
        // modification of the same word), so that producer sees the close even through a word
        // reused in between (a slot whose generation wrapped around to ours).
        word.fetch_and(!CALLS_LOCK, Ordering::SeqCst);
    }

    /// Takes what is left in a closed queue, without the lock: the word may be another reactor's by
    /// now, and no producer pushes into a closed queue.
    ///
    /// # Safety
    /// The queue is closed, by this thread (or with a happens-before to it), and no other thread
    /// takes from it (the thread that is dropping the reactor).
    pub unsafe fn take_closed(&self) -> Vec<ThreadCall> {
        debug_assert!(self.is_closed());
        // SAFETY: closed queues are only touched by the caller (contract above).
        unsafe { std::mem::take(&mut *self.buffer.get()) }
    }
}

/// Takes CALLS_LOCK if `accept` agrees with the state word, waiting while another thread holds it.
/// Returns `accept`'s refusal otherwise.
#[inline]
pub fn lock<W: Word, E>(word: &W, accept: impl Fn(u64) -> Result<(), E>) -> Result<(), E> {
    let mut state = word.load(Ordering::Relaxed);
    let mut round = 0;
    loop {
        accept(state)?;
        if state & CALLS_LOCK != 0 {
            backoff(&mut round);
            state = word.load(Ordering::Relaxed);
            continue;
        }
        match word.compare_exchange_weak(
            state,
            state | CALLS_LOCK,
            Ordering::SeqCst,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(()),
            Err(now) => state = now,
        }
    }
}

/// Reactor side: takes the lock if the queue may hold calls (QUEUED); false, without locking, if not.
#[inline]
pub fn lock_if_queued<W: Word>(word: &W) -> bool {
    lock(
        word,
        |state| {
            if state & QUEUED == 0 { Err(()) } else { Ok(()) }
        },
    )
    .is_ok()
}

/// Releases the lock without publishing anything (a refused push, or the reactor closing the queue).
#[inline]
pub fn unlock<W: Word>(word: &W) {
    word.fetch_and(!CALLS_LOCK, Ordering::Release);
}

/// Reactor side, after swapping the buffer out: releases the lock, and the buffer is empty.
#[inline]
pub fn unlock_taken<W: Word>(word: &W) {
    word.fetch_and(!(CALLS_LOCK | QUEUED), Ordering::Release);
}

/// Producer side, after a push under the lock: one read-modify-write that releases the lock, sets
/// QUEUED and reads AWAKE (the waker handshake, see `super::wake`). Returns false if that is all: the
/// reactor is awake and looks at the queue before it sleeps, or a wake-up is already claimed. Returns
/// true if this producer claimed the wake-up (WAKE_PENDING) instead, still holding the lock, which
/// keeps the reactor and its waker alive: the caller writes the waker, then calls `unlock`.
#[inline]
pub fn unlock_published<W: Word>(word: &W) -> bool {
    let mut state = word.load(Ordering::Relaxed);
    loop {
        let (new, must_wake) = if state & (AWAKE | WAKE_PENDING) != 0 {
            ((state & !CALLS_LOCK) | QUEUED, false)
        } else {
            (state | QUEUED | WAKE_PENDING, true)
        };
        match word.compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return must_wake,
            Err(now) => state = now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{Callback, UserData};
    use crate::types::reactor_t;
    use std::os::raw::c_void;
    use std::sync::atomic::AtomicU64;

    unsafe extern "C" fn nothing(_: *mut reactor_t, _: *mut c_void) {}

    fn call(tag: usize) -> ThreadCall {
        ThreadCall::Host(Callback {
            func: nothing,
            data: UserData::new(tag as *mut c_void, None),
        })
    }

    fn tag(call: &ThreadCall) -> usize {
        match call {
            ThreadCall::Host(c) => c.data.ptr() as usize,
            ThreadCall::Task(_) => usize::MAX,
        }
    }

    #[test]
    fn each_producer_stays_in_order_and_nothing_is_lost() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        let queue = CallQueue::default();
        // The reactor is awake throughout, so no producer claims a wake-up.
        let word = AtomicU64::new(AWAKE);
        let mut seen = [0usize; PRODUCERS];
        let mut batch = Vec::new();
        std::thread::scope(|scope| {
            for p in 0..PRODUCERS {
                let (queue, word) = (&queue, &word);
                scope.spawn(move || {
                    for i in 0..EACH {
                        lock(word, |_| Ok::<(), ()>(())).unwrap();
                        // SAFETY: we hold the lock.
                        unsafe { queue.push_locked(call(p * EACH + i)) };
                        assert!(!unlock_published(word));
                    }
                });
            }
            let mut total = 0;
            while total < PRODUCERS * EACH {
                if lock_if_queued(&word) {
                    // SAFETY: we hold the lock.
                    unsafe { queue.swap_locked(&mut batch) };
                    unlock_taken(&word);
                }
                for c in batch.drain(..) {
                    let t = tag(&c);
                    let (p, i) = (t / EACH, t % EACH);
                    assert_eq!(seen[p], i, "producer {p} out of order");
                    seen[p] += 1;
                    total += 1;
                }
            }
        });
        assert_eq!(
            word.load(Ordering::Relaxed),
            AWAKE,
            "unlocked, nothing queued"
        );
    }

    #[test]
    fn the_first_producer_after_the_reactor_sleeps_claims_the_wake_up_and_keeps_the_lock() {
        let word = AtomicU64::new(0);
        lock(&word, |_| Ok::<(), ()>(())).unwrap();
        assert!(unlock_published(&word), "asleep: this producer wakes it");
        assert_eq!(
            word.load(Ordering::Relaxed),
            CALLS_LOCK | QUEUED | WAKE_PENDING
        );
        unlock(&word);
        lock(&word, |_| Ok::<(), ()>(())).unwrap();
        assert!(!unlock_published(&word), "claimed already: no second write");
        assert_eq!(word.load(Ordering::Relaxed), QUEUED | WAKE_PENDING);
        assert!(lock_if_queued(&word));
        unlock_taken(&word);
        assert!(!lock_if_queued(&word), "nothing queued: no lock taken");
        assert_eq!(word.load(Ordering::Relaxed), WAKE_PENDING);
    }
}
