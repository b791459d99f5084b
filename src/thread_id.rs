//! A cheap, never-reused identifier for the calling thread (0 is never handed out).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// The calling thread's id. Threads are numbered on first use.
pub fn current() -> u64 {
    CURRENT.with(|id| {
        let mut value = id.get();
        if value == 0 {
            value = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            id.set(value);
        }
        value
    })
}
