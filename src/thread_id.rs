//! A small number for the calling thread, stored in a reactor's ownership word.
//!
//! Ids are 32 bits and recycled: a thread's id goes back to a free list when the thread exits, so a
//! process that creates threads forever never runs out. Recycling is sound for ownership: a reactor
//! whose owner thread exited may be "owned" by the next thread that gets the same id, but the exiting
//! thread's last use of the reactor happens-before the id reaches the free list (a mutex), and that
//! happens-before the new thread's first use — exactly the hand-over that adoption gives.
//!
//! 0 is never handed out: it is what a thread gets while its thread-locals are being destroyed, and
//! it owns nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_ID: AtomicU32 = AtomicU32::new(1);
static FREE_IDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

struct ThreadId(u32);

impl ThreadId {
    fn allocate() -> ThreadId {
        let recycled = FREE_IDS.lock().ok().and_then(|mut free| free.pop());
        ThreadId(recycled.unwrap_or_else(|| NEXT_ID.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for ThreadId {
    fn drop(&mut self) {
        if let Ok(mut free) = FREE_IDS.lock() {
            free.push(self.0);
        }
    }
}

thread_local! {
    static CURRENT: ThreadId = ThreadId::allocate();
}

/// The calling thread's id (never 0, except during thread-local destruction).
#[inline]
pub fn current() -> u32 {
    CURRENT.try_with(|id| id.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_among_live_threads_and_recycled() {
        let main = current();
        assert_ne!(main, 0);
        assert_eq!(main, current(), "stable within a thread");
        let other = std::thread::spawn(current).join().unwrap();
        assert_ne!(other, main);
        // The exited thread's id is free again: some later thread gets it.
        let ids: Vec<u32> = (0..4)
            .map(|_| std::thread::spawn(current).join().unwrap())
            .collect();
        assert!(ids.iter().all(|&id| id != main && id != 0));
    }
}
