//! A reactor's own pool (Twisted's `reactor.getThreadPool()`): created on first use with the reactor's
//! `thread_pool_max` (or the size `suggest_size` set), its workers start only once the reactor runs or
//! is iterated, and it is stopped (queued jobs run, workers joined) during the reactor's shutdown and at
//! `reactor_free`. After a "shutdown" fired by hand the next job reopens it; after a run ended with
//! `stop` it refuses jobs.

use super::job::Job;
use super::pool::{MAX_THREADS, ThreadPool, check_sizes};
use crate::reactor::Shared;
use crate::status::{Error, Result};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The reactor has never run or iterated: jobs wait.
const IDLE: u8 = 0;
/// The reactor runs (or ran): workers start on demand.
const STARTED: u8 = 1;
/// DURING-shutdown of a run, or `reactor_free`: the pool refuses jobs.
const SHUT: u8 = 2;

pub struct ReactorPool {
    shared: Arc<Shared>,
    pool: OnceLock<Arc<ThreadPool>>,
    max: AtomicUsize,
    phase: AtomicU8,
    /// Serializes creation, start and shutdown (never held while workers are joined).
    lifecycle: Mutex<()>,
    /// The borrowed C handle (`reactor_get_thread_pool`), 0 until asked for, and how to invalidate it
    /// when the reactor goes.
    handle: AtomicUsize,
    forget_handle: OnceLock<fn(usize)>,
}

impl ReactorPool {
    pub fn new(shared: Arc<Shared>, max: usize) -> ReactorPool {
        ReactorPool {
            shared,
            pool: OnceLock::new(),
            max: AtomicUsize::new(max.clamp(1, MAX_THREADS)),
            phase: AtomicU8::new(IDLE),
            lifecycle: Mutex::new(()),
            handle: AtomicUsize::new(0),
            forget_handle: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool if it was created.
    pub fn get(&self) -> Option<&Arc<ThreadPool>> {
        self.pool.get()
    }

    /// The pool, created on first use (any thread).
    pub fn get_or_create(&self) -> Result<&Arc<ThreadPool>> {
        if let Some(pool) = self.pool.get() {
            return Ok(pool);
        }
        let _lifecycle = self.lock();
        if let Some(pool) = self.pool.get() {
            return Ok(pool);
        }
        let pool = ThreadPool::for_reactor(self.max.load(Ordering::Relaxed), self.shared.clone())?;
        match self.phase.load(Ordering::Relaxed) {
            STARTED => pool.start()?,
            SHUT => pool.stop()?,
            _ => {}
        }
        let _ = self.pool.set(Arc::new(pool));
        self.pool.get().ok_or(Error::Internal)
    }

    /// Queues a job on the pool (created first with `get_or_create`); gives it back if the pool is shut.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Job> {
        let Some(pool) = self.pool.get() else {
            return Err(job);
        };
        match pool.submit(job) {
            Ok(()) => Ok(()),
            // Stopped by a "shutdown" fired by hand: reopen, unless the reactor is done for good or the
            // caller is one of the workers being stopped (it must not wait for its own join).
            Err(job) if pool.is_own_worker() => Err(job),
            Err(job) => {
                let _lifecycle = self.lock();
                if self.phase.load(Ordering::Relaxed) == SHUT {
                    return Err(job);
                }
                pool.reopen();
                pool.submit(job)
            }
        }
    }

    /// `reactor_suggest_thread_pool_size`: the maximum now, or the size the pool will start with.
    pub fn suggest_size(&self, max: usize) -> Result<()> {
        check_sizes(0, max)?;
        let _lifecycle = self.lock();
        self.max.store(max, Ordering::Relaxed);
        if let Some(pool) = self.pool.get() {
            let (min, _) = pool.limits();
            pool.set_limits(min.min(max), max);
        }
        Ok(())
    }

    /// The reactor runs a pass: let the workers start (cheap after the first call).
    #[inline]
    pub fn start(&self) {
        if self.phase.load(Ordering::Relaxed) != STARTED {
            self.start_workers();
        }
    }

    #[inline(never)]
    fn start_workers(&self) {
        let _lifecycle = self.lock();
        self.phase.store(STARTED, Ordering::Relaxed);
        if let Some(pool) = self.pool.get() {
            pool.reopen();
            let _ = pool.start();
        }
    }

    /// Stops the pool: queued jobs run, workers are joined. `for_good`: the reactor's run is ending
    /// (or it is being freed), so later jobs are refused until it runs again.
    pub fn shutdown(&self, for_good: bool) {
        {
            let _lifecycle = self.lock();
            if for_good {
                self.phase.store(SHUT, Ordering::Relaxed);
            }
        }
        if let Some(pool) = self.pool.get() {
            pool.stop_or_detach();
        }
    }

    /// Completed stops of the pool; a completion queued in an earlier epoch is not delivered.
    pub fn epoch(&self) -> u64 {
        self.pool.get().map_or(0, |pool| pool.epoch())
    }

    pub fn handle(&self) -> usize {
        self.handle.load(Ordering::Acquire)
    }

    /// Records the borrowed C handle; `forget` invalidates it when the reactor is dropped.
    pub fn set_handle(&self, handle: usize, forget: fn(usize)) {
        let _ = self.forget_handle.set(forget);
        self.handle.store(handle, Ordering::Release);
    }
}

impl Drop for ReactorPool {
    fn drop(&mut self) {
        let handle = self.handle.swap(0, Ordering::AcqRel);
        if let (true, Some(forget)) = (handle != 0, self.forget_handle.get()) {
            forget(handle);
        }
    }
}
