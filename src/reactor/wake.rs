//! The waker handshake: when must a thread that queued work for the reactor write its waker?
//!
//! Writing the waker costs a system call, so producers skip it while the reactor thread is inside a
//! pass (AWAKE): it looks at its queues before it sleeps. The danger is the reactor deciding to sleep
//! just as a producer decides not to wake it. Both sides meet on one word, the reactor handle's state
//! word (`crate::handles`), with read-modify-writes only, so the word's modification order decides:
//!
//! - producer: publish the work, then a release read-modify-write of the word that reads AWAKE;
//! - reactor:  clear AWAKE with a read-modify-write, then read the queues (`prepare_to_block`).
//!
//! If the producer's RMW comes first, the reactor's clearing RMW reads from it (every change to the
//! word is an RMW, so release sequences carry through), synchronises with it and sees the work; if the
//! reactor's comes first, the producer reads AWAKE clear and writes the waker. No fence is needed.
//! Producers of the call queue publish a call with the release store of its slot's stamp and use the
//! unlock of the queue's lock, which lives in the same word, as that RMW
//! (`call_queue::unlock_published`); the reactor reads the ring's next stamp after its clearing RMW.
//! So a call costs no extra atomic at all; async sends use `publish`.
//! WAKE_PENDING coalesces writes: once one producer claimed the wake-up, others skip it until the
//! reactor next prepares to sleep. The loom model at the bottom checks this for every interleaving.

use crate::handles::{AWAKE, WAKE_PENDING};
use crate::sync::Ordering;

/// The operations the handshake needs on the word: std's `AtomicU64`, or loom's in the model.
pub trait Word {
    fn load(&self, order: Ordering) -> u64;
    fn compare_exchange_weak(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    fn fetch_or(&self, bits: u64, order: Ordering) -> u64;
    fn fetch_and(&self, bits: u64, order: Ordering) -> u64;
    fn fetch_add(&self, value: u64, order: Ordering) -> u64;
}

macro_rules! word_for {
    ($atomic:ty) => {
        impl Word for $atomic {
            #[inline(always)]
            fn load(&self, order: Ordering) -> u64 {
                <$atomic>::load(self, order)
            }
            #[inline(always)]
            fn compare_exchange_weak(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                <$atomic>::compare_exchange_weak(self, current, new, success, failure)
            }
            #[inline(always)]
            fn fetch_or(&self, bits: u64, order: Ordering) -> u64 {
                <$atomic>::fetch_or(self, bits, order)
            }
            #[inline(always)]
            fn fetch_and(&self, bits: u64, order: Ordering) -> u64 {
                <$atomic>::fetch_and(self, bits, order)
            }
            #[inline(always)]
            fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
                <$atomic>::fetch_add(self, value, order)
            }
        }
    };
}

word_for!(std::sync::atomic::AtomicU64);
#[cfg(loom)]
word_for!(loom::sync::atomic::AtomicU64);

/// Producer side, the reactor not awake: claims the wake-up. True if the caller must write the
/// waker (no other producer has since the reactor's last pass began).
#[inline]
fn claim_wake<W: Word>(word: &W) -> bool {
    word.fetch_or(WAKE_PENDING, Ordering::AcqRel) & WAKE_PENDING == 0
}

/// Producer side without a pin on the reactor, after publishing work: the release read-modify-write
/// that orders the work before the reactor's next look at its queues. True if the caller must write
/// the waker.
#[inline]
pub fn publish<W: Word>(word: &W) -> bool {
    let state = word.fetch_add(0, Ordering::AcqRel);
    state & AWAKE == 0 && claim_wake(word)
}

/// Reactor side: it woke up (entered a pass, or returned from its poll) after `prepare_to_block`.
/// The reactor remembers that it is awake (it is the only writer of AWAKE), so a busy loop makes no
/// write, and no read, of the word between its sleeps: the word's cache line stays with the
/// producers that pin the reactor.
#[inline]
pub fn wake_up<W: Word>(word: &W) {
    word.fetch_or(AWAKE, Ordering::AcqRel);
}

/// Reactor side, right before a blocking poll (or when it leaves the loop): from here on producers
/// write the waker. The caller must look at its queues after this and not block if they hold work.
/// WAKE_PENDING is cleared in the same step: a claim made while the reactor was awake (a producer
/// that read a stale AWAKE) may have had its token drained by a poll that did not sleep, so no claim
/// may outlive the moment the reactor decides to sleep.
#[inline]
pub fn prepare_to_block<W: Word>(word: &W) {
    word.fetch_and(!(AWAKE | WAKE_PENDING), Ordering::AcqRel);
}

#[cfg(all(test, loom))]
mod loom_model {
    //! `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_model` (scripts/loom.sh).
    use super::*;
    use crate::handles::CALLS_LOCK;
    use crate::reactor::call_queue;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64, AtomicUsize};

    /// The reactor's state word, its call ring and async flag, and its waker, reduced to counters.
    #[derive(Default)]
    struct Model {
        word: AtomicU64,
        /// Calls published in the ring: producers bump it under CALLS_LOCK with a release store,
        /// as they store a slot's stamp; the reactor reads it without the lock (acquire), as it
        /// reads stamps.
        published: AtomicUsize,
        /// Async sends not yet seen by the reactor.
        asyncs: AtomicUsize,
        /// Wake-ups written and not yet consumed (an eventfd's counter).
        waker_tokens: AtomicUsize,
    }

    impl Model {
        /// `reactor_call_from_thread` / a remote call: lock, publish, then the unlock that is the
        /// handshake (and, if this producer claimed the wake-up, the waker write before the plain
        /// unlock).
        fn produce_call(&self) {
            call_queue::lock(&self.word, |_| Ok::<(), ()>(())).unwrap();
            let published = self.published.load(Ordering::Relaxed);
            self.published.store(published + 1, Ordering::Release);
            if call_queue::unlock_published(&self.word) {
                self.waker_tokens.fetch_add(1, Ordering::SeqCst);
                call_queue::unlock(&self.word);
            }
        }

        /// An async send: flag, then `publish` the word.
        fn produce_async(&self) {
            self.asyncs.fetch_add(1, Ordering::Release);
            if publish(&self.word) {
                self.waker_tokens.fetch_add(1, Ordering::SeqCst);
            }
        }

        /// One pass of the reactor as `Reactor::pass` runs it (`awake`: the reactor's own memory of
        /// whether it is awake; `taken`: how many calls it took from the ring). With `may_block`
        /// false it polls without sleeping, as after a pass that ran callbacks (draining any wake-up
        /// token, and staying awake); else it prepares to block. Returns true if it would block.
        fn pass(&self, awake: &mut bool, taken: &mut usize, may_block: bool) -> bool {
            if !*awake {
                wake_up(&self.word);
                *awake = true;
            }
            // `CallTaker::take`: no lock, and no write to the word.
            *taken = self.published.load(Ordering::Acquire);
            self.asyncs.swap(0, Ordering::Acquire);
            if !may_block {
                self.waker_tokens.swap(0, Ordering::SeqCst);
                return false;
            }
            prepare_to_block(&self.word);
            *awake = false;
            // `Shared::has_work`: a published slot past the reactor's position, or an async send.
            if self.published.load(Ordering::Acquire) != *taken
                || self.asyncs.load(Ordering::Relaxed) != 0
            {
                return false;
            }
            // Blocking: the poll returns at once if a wake-up token is there (and consumes it).
            self.waker_tokens.swap(0, Ordering::SeqCst) == 0
        }
    }

    /// No lost wake-up: whenever the reactor would block, every published item has been seen, or a
    /// producer that has not finished yet will still write the waker. The reactor's passes alternate
    /// between polls that cannot sleep (they drain tokens and keep it awake) and ones that can.
    fn check(callers: usize, senders: usize, passes: usize) {
        let mut builder = loom::model::Builder::new();
        // Threads waiting for the queue's lock spin (yielding), which takes more branches than
        // loom's default allows.
        builder.max_branches = 100_000;
        if callers >= 2 {
            // Two callers spinning on the lock explode the search beyond 2 preemptions (hours);
            // one caller (with the reactor's lock spin) runs with LOOM_MAX_PREEMPTIONS (3).
            builder.preemption_bound = Some(2);
        }
        builder.check(move || {
            let model = Arc::new(Model::default());
            let mut threads = Vec::new();
            for i in 0..callers + senders {
                let model = model.clone();
                threads.push(loom::thread::spawn(move || {
                    if i < callers {
                        model.produce_call()
                    } else {
                        model.produce_async()
                    }
                }));
            }
            let mut blocked = false;
            let mut awake = false;
            let mut taken = 0;
            for pass in 0..passes {
                if model.pass(&mut awake, &mut taken, pass % 2 == 1) {
                    blocked = true;
                    break;
                }
            }
            for t in threads {
                t.join().unwrap();
            }
            // The reactor sleeps in its poll. Work still queued then must come with a wake-up token
            // (the poll returns and the next pass takes it); otherwise it is a lost wake-up.
            let left = model.published.load(Ordering::SeqCst) - taken
                + model.asyncs.load(Ordering::SeqCst);
            let tokens = model.waker_tokens.load(Ordering::SeqCst);
            assert!(
                !(blocked && left != 0 && tokens == 0),
                "lost wake-up: {left} queued, no token"
            );
            // The lock is released whatever path the producers took.
            assert_eq!(model.word.load(Ordering::SeqCst) & CALLS_LOCK, 0);
        });
    }

    #[test]
    fn a_caller_never_loses_a_wake_up() {
        check(1, 0, 4);
    }

    #[test]
    fn an_async_sender_never_loses_a_wake_up() {
        check(0, 1, 4);
    }

    #[test]
    fn two_callers_never_lose_a_wake_up() {
        check(2, 0, 2);
    }

    #[test]
    fn a_caller_and_a_sender_never_lose_a_wake_up() {
        check(1, 1, 2);
    }
}
