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
