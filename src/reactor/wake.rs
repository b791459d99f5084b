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
//! A producer that holds a pin on the reactor (`reactor_call_from_thread`) uses its unpin as that
//! RMW when the reactor is awake, so a call costs no extra atomic at all; others use `publish`.
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

/// Producer side, holding `pin` (a pin's unit in the word) after publishing work: if the reactor is
/// awake, drops the pin in the compare-and-swap that sees it awake and returns true (nothing else
/// to do). Returns false, pin kept, if it is not awake: see `claim_wake`.
#[inline]
pub fn unpin_if_awake<W: Word>(word: &W, pin: u64) -> bool {
    let mut state = word.load(Ordering::Relaxed);
    while state & AWAKE != 0 {
        match word.compare_exchange_weak(state, state - pin, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => state = now,
        }
    }
    false
}

/// Producer side, the reactor not awake: claims the wake-up. True if the caller must write the
/// waker (no other producer has since the reactor's last pass began).
#[inline]
pub fn claim_wake<W: Word>(word: &W) -> bool {
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
    use crate::handles::PIN;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64, AtomicUsize};

    /// The reactor's state word, its queue and its waker, reduced to counters.
    #[derive(Default)]
    struct Model {
        word: AtomicU64,
        queued: AtomicUsize,
        /// Wake-ups written and not yet consumed (an eventfd's counter).
        waker_tokens: AtomicUsize,
    }

    impl Model {
        fn publish_work(&self) {
            // As weak as the real queue's push (a release store).
            self.queued.fetch_add(1, Ordering::Release);
        }

        /// `reactor_call_from_thread`: pin, publish, then unpin-or-wake.
        fn produce_pinned(&self) {
            self.word.fetch_add(PIN, Ordering::Acquire);
            self.publish_work();
            if !unpin_if_awake(&self.word, PIN) {
                if claim_wake(&self.word) {
                    self.waker_tokens.fetch_add(1, Ordering::SeqCst);
                }
                self.word.fetch_sub(PIN, Ordering::Release);
            }
        }

        /// A remote call or an async send: publish, then `publish` the word.
        fn produce_unpinned(&self) {
            self.publish_work();
            if publish(&self.word) {
                self.waker_tokens.fetch_add(1, Ordering::SeqCst);
            }
        }

        /// One pass of the reactor as `Reactor::pass` runs it (`awake`: the reactor's own memory of
        /// whether it is awake). With `may_block` false it polls without sleeping, as after a pass
        /// that ran callbacks (draining any wake-up token, and staying awake); else it prepares to
        /// block. Returns true if it would block.
        fn pass(&self, awake: &mut bool, may_block: bool) -> bool {
            if !*awake {
                wake_up(&self.word);
                *awake = true;
            }
            self.queued.swap(0, Ordering::Acquire);
            if !may_block {
                self.waker_tokens.swap(0, Ordering::SeqCst);
                return false;
            }
            prepare_to_block(&self.word);
            *awake = false;
            if self.queued.load(Ordering::Relaxed) != 0 {
                return false;
            }
            // Blocking: the poll returns at once if a wake-up token is there (and consumes it).
            self.waker_tokens.swap(0, Ordering::SeqCst) == 0
        }
    }

    /// No lost wake-up: whenever the reactor would block, every published item has been seen, or a
    /// producer that has not finished yet will still write the waker. The reactor's passes alternate
    /// between polls that cannot sleep (they drain tokens and keep it awake) and ones that can.
    fn check(pinned: usize, unpinned: usize, passes: usize) {
        loom::model(move || {
            let model = Arc::new(Model::default());
            let mut threads = Vec::new();
            for i in 0..pinned + unpinned {
                let model = model.clone();
                threads.push(loom::thread::spawn(move || {
                    if i < pinned {
                        model.produce_pinned()
                    } else {
                        model.produce_unpinned()
                    }
                }));
            }
            let mut blocked = false;
            let mut awake = false;
            for pass in 0..passes {
                if model.pass(&mut awake, pass % 2 == 1) {
                    blocked = true;
                    break;
                }
            }
            for t in threads {
                t.join().unwrap();
            }
            // The reactor sleeps in its poll. Work still queued then must come with a wake-up token
            // (the poll returns and the next pass takes it); otherwise it is a lost wake-up.
            let left = model.queued.load(Ordering::SeqCst);
            let tokens = model.waker_tokens.load(Ordering::SeqCst);
            assert!(
                !(blocked && left != 0 && tokens == 0),
                "lost wake-up: {left} queued, no token"
            );
            // Pins are balanced whatever path the producers took.
            assert_eq!(
                model.word.load(Ordering::SeqCst) & !(AWAKE | WAKE_PENDING),
                0
            );
        });
    }

    #[test]
    fn a_pinned_producer_never_loses_a_wake_up() {
        check(1, 0, 4);
    }

    #[test]
    fn an_unpinned_producer_never_loses_a_wake_up() {
        check(0, 1, 4);
    }

    #[test]
    fn two_pinned_producers_never_lose_a_wake_up() {
        check(2, 0, 2);
    }

    #[test]
    fn mixed_producers_never_lose_a_wake_up() {
        check(1, 1, 2);
    }
}
