//! Atomics for the code that `loom` model-checks (the waker handshake): std's normally, loom's when
//! built with `RUSTFLAGS="--cfg loom"` (see `scripts/loom.sh`).

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, Ordering, fence};
