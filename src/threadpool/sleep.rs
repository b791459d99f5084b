//! Parking for idle workers: a Mutex + Condvar, with a lock-free count of parked workers so the submit
//! path pays one atomic load when nobody sleeps.
//!
//! Protocol (no lost wake-ups): a worker takes the lock, counts itself idle, then re-checks for work
//! (`recheck`) before it waits; a submitter pushes its job, issues a SeqCst fence, and only then reads the
//! idle count. Either the worker's re-check sees the job, or the submitter sees the worker and wakes it
//! under the lock. A wake-up hands out a *token* and uncounts the worker itself, so a burst of submits
//! wakes each sleeper once instead of signalling the same one again and again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    /// Wake-ups handed out and not yet taken by a parked worker.
    tokens: usize,
    /// Bumped to make every parked worker re-evaluate (stop, shrink).
    kicks: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// A wake-up token: the waker counted this worker as searching.
    Token,
    /// The re-check found something to do; the worker did not sleep.
    Work,
    /// `kick_all`: re-evaluate (the pool is stopping or shrinking).
    Kick,
    TimedOut,
}

#[derive(Default)]
pub(super) struct Sleep {
    /// Parked workers that no wake-up has claimed yet. Changed under `state`, read without it.
    idle: crate::sync::Padded<AtomicUsize>,
    state: Mutex<State>,
    cv: Condvar,
}

impl Sleep {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    /// Wakes one parked worker, counting it in `searching`; false if none was parked.
    pub fn wake_one(&self, searching: &AtomicUsize) -> bool {
        let mut state = self.lock();
        if self.idle.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.idle.fetch_sub(1, Ordering::Relaxed);
        searching.fetch_add(1, Ordering::SeqCst);
        state.tokens += 1;
        drop(state);
        self.cv.notify_one();
        true
    }

    /// Makes every parked worker re-evaluate its situation.
    pub fn kick_all(&self) {
        let mut state = self.lock();
        state.kicks = state.kicks.wrapping_add(1);
        drop(state);
        self.cv.notify_all();
    }

    /// Parks the calling worker until it is woken, kicked or `timeout` passes. `recheck` runs under the
    /// lock once the worker counts as idle: if it returns true there is something to do and the worker
    /// does not sleep.
    pub fn park(&self, timeout: Duration, recheck: impl Fn() -> bool) -> Wake {
        let mut state = self.lock();
        self.idle.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `Inner::notify_work` (after the job was queued).
        std::sync::atomic::fence(Ordering::SeqCst);
        if recheck() {
            self.idle.fetch_sub(1, Ordering::Relaxed);
            return Wake::Work;
        }
        let kicks = state.kicks;
        let deadline = Instant::now() + timeout;
        loop {
            if state.tokens > 0 {
                state.tokens -= 1;
                return Wake::Token;
            }
            if state.kicks != kicks {
                self.idle.fetch_sub(1, Ordering::Relaxed);
                return Wake::Kick;
            }
            let now = Instant::now();
            if now >= deadline {
                self.idle.fetch_sub(1, Ordering::Relaxed);
                return Wake::TimedOut;
            }
            state = self
                .cv
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
