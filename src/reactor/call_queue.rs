//! The call_from_thread queue: many producers, one consumer (the reactor thread).
//!
//! Producers append under a mutex; the reactor takes everything queued in one step per pass. This is
//! the peers' design (libuv, libev and libevent hosts use a locked list plus a wake-up) and it beats a
//! lock-free segmented queue here for one reason: it allocates nothing in steady state. Both buffers
//! keep their capacity, whereas a segmented queue allocates segments on producer threads and frees them
//! on the reactor thread; with glibc that cross-thread traffic serialises producers and the reactor on
//! the producers' malloc arena lock (measured: futex waits in `free` of the segments, and 2x slower
//! floods when the host's own callbacks allocate and free too). The lock is held for a push, or for a
//! swap of the two buffers, never while a call runs.

use super::shared::ThreadCall;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub struct CallQueue {
    incoming: Mutex<Vec<ThreadCall>>,
    /// `incoming.len()`, readable without the lock (the wake handshake's "is there work?").
    queued: AtomicUsize,
}

impl CallQueue {
    fn lock(&self) -> MutexGuard<'_, Vec<ThreadCall>> {
        // Nothing panics while the lock is held, but a poisoned lock must not stop the queue.
        self.incoming.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, call: ThreadCall) {
        let mut incoming = self.lock();
        incoming.push(call);
        self.queued.store(incoming.len(), Ordering::Release);
    }

    pub fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Exchanges the queued calls (oldest first) with `spare`, an empty buffer of the reactor's: an
    /// O(1) step under the lock, and both buffers keep their capacity.
    pub fn take_all(&self, spare: &mut Vec<ThreadCall>) {
        debug_assert!(spare.is_empty());
        if self.is_empty() {
            return;
        }
        let mut incoming = self.lock();
        std::mem::swap(&mut *incoming, spare);
        self.queued.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{Callback, UserData};
    use crate::types::reactor_t;
    use std::os::raw::c_void;

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
        let mut seen = [0usize; PRODUCERS];
        let mut batch = Vec::new();
        std::thread::scope(|scope| {
            for p in 0..PRODUCERS {
                let queue = &queue;
                scope.spawn(move || {
                    for i in 0..EACH {
                        queue.push(call(p * EACH + i));
                    }
                });
            }
            let mut total = 0;
            while total < PRODUCERS * EACH {
                queue.take_all(&mut batch);
                for c in batch.drain(..) {
                    let t = tag(&c);
                    let (p, i) = (t / EACH, t % EACH);
                    assert_eq!(seen[p], i, "producer {p} out of order");
                    seen[p] += 1;
                    total += 1;
                }
            }
        });
        assert!(queue.is_empty());
    }
}
