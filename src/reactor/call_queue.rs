//! The call_from_thread queue: many producers, one consumer (the reactor thread).
//!
//! Producers take turns under a lock and write each call into the next slot of a ring; the reactor
//! reads the ring without the lock. The point is what each side does *not* touch. A producer writes
//! only its own cache lines (the lock word, the ring's tail, the slot) and reads the reactor's
//! position only when the ring looks full; the reactor writes only its position, and reads a slot's
//! stamp to learn that the slot holds a call. So while a producer floods the reactor, the reactor's
//! passes take nothing away from the producer except the slots it has to read anyway. A buffer that
//! the reactor swaps out under the lock (the previous design, and the peers' mutex-protected list)
//! moves the lock's and the buffer header's lines to the reactor on every take; with small batches
//! that is a large part of a flooding producer's cost (profiled: about half of its time in the queue
//! code went to waiting for those two lines, at about 10 calls per take). The ring also allocates nothing in steady state: with glibc, memory allocated
//! by producers and freed by the reactor serialises both sides on the producers' malloc arena.
//!
//! A slot's stamp says which position it holds: `(position + 1) << 1` for a call, the same with the
//! low bit set for an overflow marker. When the ring is full, a producer writes a marker into the one
//! slot kept free for it and appends to an overflow buffer (under the lock); later producers append
//! there too until the reactor, reaching the marker, takes the buffer under the lock. Order is kept
//! (ring, marker, overflow, ring again) and nothing is refused or lost; a ring that fills up only
//! costs a lock on the reactor side.
//!
//! The lock is not a mutex of its own but the CALLS_LOCK bit of the reactor handle's state word
//! (`crate::handles`), next to the waker handshake's bits (`super::wake`). So `reactor_call_from_thread`
//! is two read-modify-writes on one cache line: the compare-and-swap that checks the handle and sets
//! CALLS_LOCK (which also keeps the reactor alive: `reactor_free` waits for the bit), and the one that
//! clears it and reads AWAKE (the handshake). The lock is held for a push, by a producer that claimed
//! the wake-up while it writes the waker, and by the reactor while it takes an overflow buffer; never
//! while a call runs.

use super::shared::ThreadCall;
use super::wake::Word;
use crate::handles::{AWAKE, CALLS_LOCK, WAKE_PENDING};
use crate::sync::{Ordering, Padded, backoff};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize};

/// Slots per reactor (32 bytes each): room for the calls a flooding producer queues during one pass
/// many times over. More only costs memory; fewer makes the overflow path common.
const RING_SLOTS: usize = 256;

#[inline]
fn call_stamp(position: usize) -> usize {
    position.wrapping_add(1) << 1
}

#[inline]
fn marker_stamp(position: usize) -> usize {
    call_stamp(position) | 1
}

/// 32 bytes, aligned so that none straddles two cache lines.
#[repr(align(32))]
struct Slot {
    /// The stamp of what the slot holds (see the module comment); 0: never written.
    stamp: AtomicUsize,
    /// Initialised while `stamp` is a call stamp not yet taken.
    call: UnsafeCell<MaybeUninit<ThreadCall>>,
}

/// Asks for the cache line of `slot` in writable state ahead of time. The reactor read that line one
/// lap ago, so writing it costs a transfer back; with the request in flight while the producer's host
/// prepares its next call, the write (and the unlocking compare-and-swap, which waits for it) no
/// longer stalls on it. Measured: +5% calls/s in the closure flood. Only a hint: no effect on
/// correctness, and a no-op where the instruction is unknown.
#[inline(always)]
fn prefetch_for_write(slot: &Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` reads nothing architecturally and cannot fault; the address is valid.
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) slot as *const Slot,
            options(nostack, readonly, preserves_flags)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

/// The producers' side, touched only under the lock.
struct ProducerSide {
    /// The position the next call (or marker) goes to.
    tail: usize,
    /// A value of the reactor's `head` read earlier (never ahead of it): room is checked against
    /// it, and `head` is read again only when the ring looks full.
    head_seen: usize,
    /// Calls queued since the ring filled up, until the reactor takes them (non-empty: every new
    /// call goes here, to keep the order).
    overflow: Vec<ThreadCall>,
}

struct ProducerLine {
    side: UnsafeCell<ProducerSide>,
    /// Set under the lock when the reactor is freed (`close`). Producers check it under the lock: a
    /// producer without a pin may by then hold another reactor's word (a slot reused after a
    /// generation wrapped).
    closed: AtomicBool,
}

pub struct CallQueue {
    slots: Box<[Slot]>,
    /// Ensures one consumer: `CallTaker::new` succeeds once per queue.
    has_taker: AtomicBool,
    producers: Padded<ProducerLine>,
    /// The position the reactor takes next. Written by the one consumer; read by producers when the
    /// ring looks full.
    head: Padded<AtomicUsize>,
}

// SAFETY: `ProducerSide` is reached only by the holder of CALLS_LOCK in the word of this queue's
// reactor (acquire/release through the word) or, once `closed`, by the thread that closed it. A slot's
// call is written by a producer before the release store of its stamp and read by the one consumer
// (`CallTaker`) after an acquire load of that stamp; it is written again only after the consumer's
// release store of `head` past it, which the producer reads with acquire. The calls are `Send`.
unsafe impl Sync for CallQueue {}

impl Default for CallQueue {
    fn default() -> CallQueue {
        CallQueue::with_slots(RING_SLOTS)
    }
}

impl CallQueue {
    /// A queue whose ring has `slots` slots (a power of two, at least 2; tests use small ones to
    /// exercise the overflow path).
    pub fn with_slots(slots: usize) -> CallQueue {
        assert!(slots.is_power_of_two() && slots >= 2);
        CallQueue {
            slots: (0..slots)
                .map(|_| Slot {
                    stamp: AtomicUsize::new(0),
                    call: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            has_taker: AtomicBool::new(false),
            producers: Padded(ProducerLine {
                side: UnsafeCell::new(ProducerSide {
                    tail: 0,
                    head_seen: 0,
                    overflow: Vec::new(),
                }),
                closed: AtomicBool::new(false),
            }),
            head: Padded(AtomicUsize::new(0)),
        }
    }

    #[inline]
    fn slot(&self, position: usize) -> &Slot {
        &self.slots[position & (self.slots.len() - 1)]
    }

    /// Appends a call.
    ///
    /// # Safety
    /// The caller holds CALLS_LOCK in the word of this queue's reactor and the queue is not closed.
    #[inline(always)]
    pub unsafe fn push_locked(&self, call: ThreadCall) {
        // SAFETY: the lock makes this thread the only one touching the producers' side.
        let side = unsafe { &mut *self.producers.side.get() };
        let tail = side.tail;
        if side.overflow.is_empty() && self.has_room_for_a_call(side) {
            let slot = self.slot(tail);
            // SAFETY: the slot is free: the consumer has moved past its previous position (our
            // acquire read of `head`, or an earlier one), and no other producer writes (the lock).
            unsafe { (*slot.call.get()).write(call) };
            slot.stamp.store(call_stamp(tail), Ordering::Release);
            side.tail = tail.wrapping_add(1);
            prefetch_for_write(self.slot(tail.wrapping_add(2)));
            return;
        }
        if side.overflow.is_empty() {
            // The ring is full but for the slot kept for this marker: the calls from here on are in
            // the overflow buffer, which the reactor takes when it reaches the marker.
            self.slot(tail)
                .stamp
                .store(marker_stamp(tail), Ordering::Release);
            side.tail = tail.wrapping_add(1);
        }
        side.overflow.push(call);
    }

    /// True if the slot at `tail` may take a call: calls use all slots but one, which stays free for
    /// an overflow marker.
    #[inline(always)]
    fn has_room_for_a_call(&self, side: &mut ProducerSide) -> bool {
        let calls_max = self.slots.len() - 1;
        if side.tail.wrapping_sub(side.head_seen) < calls_max {
            return true;
        }
        side.head_seen = self.head.load(Ordering::Acquire);
        side.tail.wrapping_sub(side.head_seen) < calls_max
    }

    /// Whether the ring holds a call or marker the consumer has not taken (any thread may ask; the
    /// reactor asks after `wake::prepare_to_block`, see `super::wake`).
    #[inline]
    pub fn has_pending(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        self.slot(head).stamp.load(Ordering::Acquire) | 1 == marker_stamp(head)
    }

    /// Whether the reactor was freed (read under the lock).
    pub fn is_closed(&self) -> bool {
        self.producers.closed.load(Ordering::SeqCst)
    }

    /// Closes the queue for good (the reactor is being freed, and `word` is still its own): taken
    /// under the lock, so a push in progress finishes first and every later producer sees it.
    pub fn close<W: Word>(&self, word: &W) {
        let _ = lock(word, |_| Ok::<(), ()>(()));
        self.producers.closed.store(true, Ordering::SeqCst);
        // SeqCst, as the producers' locking compare-and-swap and their `is_closed`: in the single total
        // order this unlock comes before the lock of any producer that gets it later (a later
        // modification of the same word), so that producer sees the close even through a word
        // reused in between (a slot whose generation wrapped around to ours).
        word.fetch_and(!CALLS_LOCK, Ordering::SeqCst);
    }

    /// Makes the caller this queue's one consumer: true the first time only (`CallTaker::new`).
    pub fn claim_consumer(&self) -> bool {
        !self.has_taker.swap(true, Ordering::Relaxed)
    }

    /// The consumer's take: appends every call published in the ring (oldest first) to `into`, up
    /// to an overflow marker; then, holding the lock in `word`, the overflow buffer. Calls queued
    /// after the overflow buffer wait for the next take.
    ///
    /// # Safety
    /// The caller is this queue's one consumer (it claimed it with `claim_consumer`), `word` is the
    /// word of this queue's reactor, and the queue is not closed.
    pub unsafe fn take<W: Word>(&self, word: &W, into: &mut Vec<ThreadCall>) {
        debug_assert!(!self.is_closed());
        // SAFETY: the caller is the one consumer.
        if unsafe { self.take_ring(into) } {
            let _ = lock(word, |_| Ok::<(), ()>(()));
            // SAFETY: we hold the lock.
            unsafe { self.take_overflow(into) };
            unlock(word);
        }
    }

    /// Takes everything left in a closed queue, without the lock: the word may be another reactor's
    /// by now, and no producer pushes into a closed queue.
    ///
    /// # Safety
    /// The caller is this queue's one consumer, and the queue is closed by this thread (or with a
    /// happens-before to its close).
    pub unsafe fn take_closed(&self) -> Vec<ThreadCall> {
        debug_assert!(self.is_closed());
        let mut calls = Vec::new();
        // SAFETY: the one consumer; the producers' side is no one else's once closed.
        while unsafe { self.take_ring(&mut calls) } {
            unsafe { self.take_overflow(&mut calls) };
        }
        calls
    }

    /// Appends the calls published in the ring from `head` on to `into`. Returns true if it stopped at
    /// an overflow marker (consumed, and `head` published past it), false at a slot not yet written.
    ///
    /// # Safety
    /// Only one thread at a time takes from this queue.
    unsafe fn take_ring(&self, into: &mut Vec<ThreadCall>) -> bool {
        let start = self.head.load(Ordering::Relaxed);
        let mut head = start;
        let mut at_marker = false;
        loop {
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == call_stamp(head) {
                // SAFETY: the stamp (acquire) says a producer initialised the call for this
                // position; it is ours to move out and is not read again (the slot's next use has
                // another stamp).
                into.push(unsafe { (*slot.call.get()).assume_init_read() });
            } else if stamp == marker_stamp(head) {
                at_marker = true;
            } else {
                break;
            }
            head = head.wrapping_add(1);
            if at_marker {
                break;
            }
        }
        if head != start {
            // Frees the slots for the producers (they read `head` with acquire), before a marker's
            // overflow buffer is taken so that producers resuming the ring find room.
            self.head.store(head, Ordering::Release);
        }
        at_marker
    }

    /// Moves the overflow buffer's calls to `into` (the buffer keeps its capacity).
    ///
    /// # Safety
    /// The caller holds the lock, or the queue is closed and the caller is the one consumer.
    unsafe fn take_overflow(&self, into: &mut Vec<ThreadCall>) {
        // SAFETY: exclusive access to the producers' side (caller's contract).
        into.append(unsafe { &mut (*self.producers.side.get()).overflow });
    }
}

impl Drop for CallQueue {
    fn drop(&mut self) {
        // Calls never taken (a queue dropped without a reactor, or with its calls left in it) are
        // dropped like any others: their releases run.
        self.producers.closed.store(true, Ordering::Relaxed);
        // SAFETY: `&mut self`: no other thread is here, and the queue is closed.
        drop(unsafe { self.take_closed() });
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

/// Releases the lock without the handshake (a refused push, a producer that has written the waker,
/// or the reactor after taking an overflow buffer).
#[inline]
pub fn unlock<W: Word>(word: &W) {
    word.fetch_and(!CALLS_LOCK, Ordering::Release);
}

/// Producer side, after a push under the lock: one read-modify-write that releases the lock and
/// reads AWAKE (the waker handshake, see `super::wake`). Returns false if that is all: the reactor is
/// awake and looks at the queue before it sleeps, or a wake-up is already claimed. Returns true if
/// this producer claimed the wake-up (WAKE_PENDING) instead, still holding the lock, which keeps the
/// reactor and its waker alive: the caller writes the waker, then calls `unlock`.
#[inline]
pub fn unlock_published<W: Word>(word: &W) -> bool {
    let mut state = word.load(Ordering::Relaxed);
    loop {
        let (new, must_wake) = if state & (AWAKE | WAKE_PENDING) != 0 {
            (state & !CALLS_LOCK, false)
        } else {
            (state | WAKE_PENDING, true)
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

    fn tags(calls: &[ThreadCall]) -> Vec<usize> {
        calls.iter().map(tag).collect()
    }

    /// A producer's whole push: lock, push, the publishing unlock.
    fn push(queue: &CallQueue, word: &AtomicU64, tag: usize) {
        lock(word, |_| Ok::<(), ()>(())).unwrap();
        // SAFETY: we hold the lock, and the queue is open.
        unsafe { queue.push_locked(call(tag)) };
        assert!(!unlock_published(word), "the reactor is awake");
    }

    fn take(queue: &CallQueue, word: &AtomicU64) -> Vec<usize> {
        let mut batch = Vec::new();
        // SAFETY: the tests claim the consumer and take from one thread.
        unsafe { queue.take(word, &mut batch) };
        tags(&batch)
    }

    #[test]
    fn slots_are_32_bytes_and_never_straddle_a_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        assert_eq!(std::mem::align_of::<Slot>(), 32);
    }

    #[test]
    fn one_consumer_only() {
        let queue = CallQueue::default();
        assert!(queue.claim_consumer());
        assert!(!queue.claim_consumer());
    }

    #[test]
    fn a_full_ring_overflows_in_order_and_the_ring_is_used_again_afterwards() {
        let queue = CallQueue::with_slots(4);
        let word = AtomicU64::new(AWAKE);
        assert!(queue.claim_consumer());
        assert!(!queue.has_pending());
        for i in 0..10 {
            push(&queue, &word, i);
        }
        assert!(queue.has_pending());
        // Three calls fit (one slot stays free for the marker); the marker hands over the rest.
        assert_eq!(take(&queue, &word), (0..10).collect::<Vec<_>>());
        assert!(!queue.has_pending());
        assert_eq!(word.load(Ordering::Relaxed), AWAKE, "unlocked");
        // SAFETY: single-threaded test, lock not held by anyone: read the producers' side.
        assert!(unsafe { (*queue.producers.side.get()).overflow.is_empty() });
        for round in 0..5 {
            push(&queue, &word, 100 + round);
            push(&queue, &word, 200 + round);
            assert_eq!(take(&queue, &word), vec![100 + round, 200 + round]);
        }
        // SAFETY: as above.
        let capacity = unsafe { (*queue.producers.side.get()).overflow.capacity() };
        assert!(capacity >= 7, "the overflow buffer keeps its capacity");
    }

    #[test]
    fn a_take_stops_after_the_overflow_buffer() {
        let queue = CallQueue::with_slots(2);
        let word = AtomicU64::new(AWAKE);
        assert!(queue.claim_consumer());
        push(&queue, &word, 1); // the ring's one call slot
        push(&queue, &word, 2); // marker, then the overflow buffer
        assert_eq!(take(&queue, &word), vec![1, 2]);
        push(&queue, &word, 3); // the ring again
        push(&queue, &word, 4); // a new marker
        push(&queue, &word, 5);
        assert_eq!(take(&queue, &word), vec![3, 4, 5]);
        assert_eq!(take(&queue, &word), Vec::<usize>::new());
    }

    #[test]
    fn a_closed_queue_hands_over_ring_and_overflow_and_refuses_nothing_it_accepted() {
        let queue = CallQueue::with_slots(4);
        let word = AtomicU64::new(AWAKE);
        assert!(queue.claim_consumer());
        for i in 0..3 {
            push(&queue, &word, i);
        }
        assert_eq!(take(&queue, &word), vec![0, 1, 2]);
        for i in 3..12 {
            push(&queue, &word, i);
        }
        queue.close(&word);
        assert!(queue.is_closed());
        assert_eq!(word.load(Ordering::Relaxed), AWAKE, "unlocked");
        // SAFETY: closed by this thread, the one consumer.
        let rest = unsafe { queue.take_closed() };
        assert_eq!(tags(&rest), (3..12).collect::<Vec<_>>());
    }

    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count_release(_: *mut c_void) {
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn dropping_a_queue_releases_the_calls_left_in_ring_and_overflow() {
        let queue = CallQueue::with_slots(4);
        let word = AtomicU64::new(AWAKE);
        for i in 0..9 {
            lock(&word, |_| Ok::<(), ()>(())).unwrap();
            let call = ThreadCall::Host(Callback {
                func: nothing,
                data: UserData::new(i as *mut c_void, Some(count_release)),
            });
            // SAFETY: we hold the lock.
            unsafe { queue.push_locked(call) };
            unlock_published(&word);
        }
        let before = RELEASED.load(Ordering::SeqCst);
        drop(queue);
        assert_eq!(RELEASED.load(Ordering::SeqCst) - before, 9);
    }

    /// Many producers against the consumer, with a ring small enough that it overflows all the time
    /// and one large enough that it never does: per-producer order holds and nothing is lost.
    fn producers_against_the_consumer(slots: usize) {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        let queue = CallQueue::with_slots(slots);
        assert!(queue.claim_consumer());
        // The reactor is awake throughout, so no producer claims a wake-up.
        let word = AtomicU64::new(AWAKE);
        let mut seen = [0usize; PRODUCERS];
        let mut batch = Vec::new();
        std::thread::scope(|scope| {
            for p in 0..PRODUCERS {
                let (queue, word) = (&queue, &word);
                scope.spawn(move || {
                    for i in 0..EACH {
                        push(queue, word, p * EACH + i);
                    }
                });
            }
            let mut total = 0;
            while total < PRODUCERS * EACH {
                // SAFETY: this thread is the one consumer.
                unsafe { queue.take(&word, &mut batch) };
                for c in batch.drain(..) {
                    let t = tag(&c);
                    let (p, i) = (t / EACH, t % EACH);
                    assert_eq!(seen[p], i, "producer {p} out of order");
                    seen[p] += 1;
                    total += 1;
                }
            }
        });
        assert!(!queue.has_pending());
        assert_eq!(word.load(Ordering::Relaxed), AWAKE, "unlocked");
    }

    #[test]
    fn producers_racing_the_consumer_through_a_ring_that_overflows() {
        producers_against_the_consumer(4);
    }

    #[test]
    fn producers_racing_the_consumer_through_a_ring_that_does_not() {
        producers_against_the_consumer(1 << 16);
    }

    #[test]
    fn the_first_producer_after_the_reactor_sleeps_claims_the_wake_up_and_keeps_the_lock() {
        let word = AtomicU64::new(0);
        lock(&word, |_| Ok::<(), ()>(())).unwrap();
        assert!(unlock_published(&word), "asleep: this producer wakes it");
        assert_eq!(word.load(Ordering::Relaxed), CALLS_LOCK | WAKE_PENDING);
        unlock(&word);
        lock(&word, |_| Ok::<(), ()>(())).unwrap();
        assert!(!unlock_published(&word), "claimed already: no second write");
        assert_eq!(word.load(Ordering::Relaxed), WAKE_PENDING);
    }
}
