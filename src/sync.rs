//! Synchronisation helpers: the atomics of the code that `loom` model-checks (the waker handshake) —
//! std's normally, loom's when built with `RUSTFLAGS="--cfg loom"` (see `scripts/loom.sh`) — and
//! cache-line padding.

#[cfg(loom)]
pub use loom::sync::atomic::Ordering;
#[cfg(not(loom))]
pub use std::sync::atomic::Ordering;

/// Keeps a hot atomic on a cache line of its own (no false sharing between the threads that write it
/// and those that only read their neighbours). 128 bytes: adjacent-line prefetch pairs lines on x86.
#[repr(align(128))]
#[derive(Default)]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Waits a little for a short critical section of another thread to end: spins first, then yields
/// so that a preempted holder gets the CPU back.
pub fn backoff(round: &mut u32) {
    *round += 1;
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    if *round < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Counts the callers inside a short section and can be closed: `close` refuses new callers and
/// waits for those inside, so everything they submitted is there afterwards (the thread pool's
/// submits pass one).
pub struct Gate(std::sync::atomic::AtomicUsize);

const GATE_CLOSED: usize = 1 << (usize::BITS - 1);

impl Gate {
    pub const fn new() -> Gate {
        Gate(std::sync::atomic::AtomicUsize::new(0))
    }

    /// Enters unless the gate is closed (then false); the caller must `leave` after its section.
    #[inline]
    pub fn enter(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.0.fetch_add(1, Ordering::SeqCst) & GATE_CLOSED != 0 {
            self.0.fetch_sub(1, Ordering::Release);
            return false;
        }
        true
    }

    #[inline]
    pub fn leave(&self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) & GATE_CLOSED != 0
    }

    /// Refuses new callers and waits until those inside have left.
    pub fn close(&self) {
        use std::sync::atomic::Ordering;
        self.0.fetch_or(GATE_CLOSED, Ordering::SeqCst);
        let mut round = 0;
        while self.0.load(Ordering::SeqCst) != GATE_CLOSED {
            backoff(&mut round);
        }
    }

    /// Admits callers again after `close`.
    pub fn reopen(&self) {
        self.0
            .fetch_and(!GATE_CLOSED, std::sync::atomic::Ordering::SeqCst);
    }
}
