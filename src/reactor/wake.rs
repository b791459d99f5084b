//! The waker handshake: when must a thread that queued work for the reactor write its waker?
//!
//! Writing the waker costs a system call, so producers skip it while the reactor thread is inside a
//! pass (`awake`): it looks at its queues before it blocks. The danger is the reactor deciding to block
//! just as a producer decides not to wake it. The pairing is Dekker's:
//!
//! - producer: publish the work; SeqCst fence; read `awake`;
//! - reactor:  clear `awake`; SeqCst fence; read the queues (`prepare_to_block`, then `has_work`).
//!
//! With the two fences, at least one side sees the other's write: either the producer sees a reactor
//! about to block (and writes the waker), or the reactor sees the work (and does not block).
//! `wake_pending` coalesces writes: once one producer wrote the waker, others skip it until the
//! reactor begins its next pass. The loom model at the bottom checks this for every interleaving.

use crate::sync::{AtomicBool, Ordering, fence};

pub struct WakeHandshake {
    /// The reactor thread is inside a pass and will look at its queues before it blocks.
    awake: AtomicBool,
    /// A producer wrote (or is writing) the waker since the reactor's last `begin_pass`.
    wake_pending: AtomicBool,
}

impl Default for WakeHandshake {
    fn default() -> Self {
        WakeHandshake {
            awake: AtomicBool::new(false),
            wake_pending: AtomicBool::new(false),
        }
    }
}

impl WakeHandshake {
    /// Producer side, after publishing work: true if the caller must write the waker.
    /// Lock-free and async-signal-safe.
    #[inline]
    pub fn needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.awake.load(Ordering::Relaxed) {
            return false;
        }
        !self.wake_pending.load(Ordering::Relaxed)
            && !self.wake_pending.swap(true, Ordering::AcqRel)
    }

    /// The reactor thread entered (true) or left (false) a pass. (Stores only on a change: a store of
    /// the same value would still take the cache line away from the producers that read it.)
    pub fn set_awake(&self, awake: bool) {
        if self.awake.load(Ordering::Relaxed) != awake {
            self.awake.store(awake, Ordering::SeqCst);
        }
    }

    /// Reactor side, before it looks at its queues in a pass: later producers must wake it again.
    pub fn begin_pass(&self) {
        if self.wake_pending.load(Ordering::Relaxed) {
            self.wake_pending.store(false, Ordering::Relaxed);
            fence(Ordering::SeqCst);
        }
    }

    /// Reactor side, right before a blocking poll: from here on producers write the waker. The caller
    /// must look at its queues after this and not block if they hold work.
    pub fn prepare_to_block(&self) {
        self.set_awake(false);
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_model` (scripts/loom.sh).
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;

    /// The reactor's queues and its waker, reduced to counters.
    #[derive(Default)]
    struct Model {
        handshake: WakeHandshake,
        queued: AtomicUsize,
        /// Wake-ups written and not yet consumed (an eventfd's counter).
        waker_tokens: AtomicUsize,
    }

    impl Model {
        fn produce(&self) {
            // As weak as the real queue's push (a release store); the handshake's fences do the rest.
            self.queued.fetch_add(1, Ordering::Release);
            if self.handshake.needs_wake() {
                self.waker_tokens.fetch_add(1, Ordering::SeqCst);
            }
        }

        /// One pass of the reactor as `Reactor::pass` runs it; returns true if it would block.
        fn pass(&self, processed: &mut usize) -> bool {
            self.handshake.set_awake(true);
            self.handshake.begin_pass();
            *processed += self.queued.swap(0, Ordering::Acquire);
            self.handshake.prepare_to_block();
            if self.queued.load(Ordering::Relaxed) != 0 {
                return false;
            }
            // Blocking: the poll returns at once if a wake-up token is there (and consumes it).
            self.waker_tokens.swap(0, Ordering::SeqCst) == 0
        }
    }

    /// No lost wake-up: whenever the reactor would block, every published item has been seen, or a
    /// producer that has not finished yet will still write the waker.
    fn check(producers: usize, passes: usize) {
        loom::model(move || {
            let model = Arc::new(Model::default());
            let threads: Vec<_> = (0..producers)
                .map(|_| {
                    let model = model.clone();
                    loom::thread::spawn(move || model.produce())
                })
                .collect();
            let mut processed = 0;
            let mut blocked = false;
            for _ in 0..passes {
                if model.pass(&mut processed) {
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
        });
    }

    #[test]
    fn one_producer_never_loses_a_wake_up() {
        check(1, 3);
    }

    #[test]
    fn two_producers_never_lose_a_wake_up() {
        check(2, 3);
    }
}
