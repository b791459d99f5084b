//! The pool itself: shared state (`Inner`), the public `ThreadPool` handle, sizing, stop and stats.

use super::job::{Job, RunContext};
use super::sleep::Sleep;
use super::worker;
use crate::reactor::Shared;
use crate::status::{Error, Result};
use crate::sync::{Gate, Padded};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest `max_threads` accepted.
pub const MAX_THREADS: usize = crate::types::REACTOR_THREADPOOL_MAX_THREADS;
/// Idle workers above `min_threads` exit after this long without work.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Worker stack size: C work functions get what a main thread usually has.
const STACK_SIZE: usize = 8 << 20;

static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

/// A counters snapshot (`reactor_threadpool_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub workers: u64,
    pub idle: u64,
    pub queued: u64,
    pub completed: u64,
    pub stolen: u64,
}

/// What other workers may touch of one worker: its stealer and its counters (written only by it).
#[repr(align(128))]
pub(super) struct Slot {
    pub index: usize,
    pub stealer: Stealer<Job>,
    pub completed: AtomicU64,
    pub stolen: AtomicU64,
}

impl Slot {
    /// Single-writer increment (no locked instruction on the hot path).
    pub fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Control {
    /// Join handles of live workers, by slot index.
    handles: Vec<(usize, JoinHandle<()>)>,
    /// Handles of workers that left on their own (idle timeout, shrink), joined at the next chance.
    exited: Vec<JoinHandle<()>>,
    next_index: usize,
    retired_completed: u64,
    retired_stolen: u64,
}

pub(super) struct Inner {
    pub id: usize,
    pub injector: Injector<Job>,
    /// Submits in progress, so `stop` can wait for them to land; closed: the pool refuses new jobs.
    gate: Padded<Gate>,
    pub workers: AtomicUsize,
    pub min: AtomicUsize,
    pub max: AtomicUsize,
    /// Workers may be spawned (a reactor's pool waits for the reactor to run).
    started: AtomicBool,
    /// `stop` in progress: workers exit once they find no work.
    pub draining: AtomicBool,
    /// Workers looking for work: woken or new workers until they find some, and the one worker that
    /// spins before it parks. While any is searching, new jobs wake nobody (tokio's scheme): the
    /// searcher takes them, and once it finds work it wakes the next worker if more is queued.
    pub searching: Padded<AtomicUsize>,
    pub sleep: Sleep,
    pub slots: RwLock<Vec<Arc<Slot>>>,
    control: Mutex<Control>,
    /// Serializes stop, reopen and start.
    lifecycle: Mutex<()>,
    pub idle_timeout: Duration,
    /// Completed stops; constant during a worker's life (stop joins every worker before bumping it).
    epoch: AtomicU64,
    /// The reactor whose pool this is.
    pub context: Option<Arc<Shared>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks pool sizes: `max` in 1..=MAX_THREADS, `min` <= `max`.
pub fn check_sizes(min: usize, max: usize) -> Result<()> {
    if max == 0 || max > MAX_THREADS || min > max {
        Err(Error::Invalid)
    } else {
        Ok(())
    }
}

impl Inner {
    pub fn slots(&self) -> RwLockReadGuard<'_, Vec<Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn run_context(&self) -> RunContext<'_> {
        RunContext {
            epoch: self.epoch.load(Ordering::Acquire),
            reactor: self.context.as_deref(),
        }
    }

    fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Anything queued anywhere (for a worker about to park).
    pub fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.slots().iter().any(|s| !s.stealer.is_empty())
    }

    pub fn queued(&self) -> usize {
        self.injector.len() + self.slots().iter().map(|s| s.stealer.len()).sum::<usize>()
    }

    fn submit(self: &Arc<Self>, job: Job) -> std::result::Result<(), Job> {
        if !self.gate.enter() {
            return Err(job);
        }
        if let Err(job) = worker::push_local(self.id, job) {
            self.injector.push(job);
        }
        self.gate.leave();
        self.notify_work();
        Ok(())
    }

    /// After new work was queued: leave it to a searching worker, else wake a parked one, else start
    /// one more worker if the pool may grow. The woken or new worker counts as searching.
    pub fn notify_work(self: &Arc<Self>) {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::Relaxed) > 0 {
            return;
        }
        if self.sleep.idle() > 0 && self.sleep.wake_one(&self.searching) {
            return;
        }
        if self.started.load(Ordering::Relaxed)
            && self.workers.load(Ordering::Relaxed) < self.max.load(Ordering::Relaxed)
        {
            let _ = self.spawn_worker();
        }
    }

    /// Starts one worker if the limits allow; Ok(false) if they do not.
    fn spawn_worker(self: &Arc<Self>) -> std::io::Result<bool> {
        #[cfg(test)]
        if tests_support::SPAWNS_FAIL.with(|fail| fail.get()) {
            return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
        }
        let mut control = lock(&self.control);
        if self.is_closed() && !self.draining.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let max = self.max.load(Ordering::Relaxed);
        if self
            .workers
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |w| {
                (w < max).then_some(w + 1)
            })
            .is_err()
        {
            return Ok(false);
        }
        // The new worker starts out searching.
        self.searching.fetch_add(1, Ordering::SeqCst);
        for handle in control.exited.drain(..) {
            let _ = handle.join();
        }
        let index = control.next_index;
        control.next_index += 1;
        let deque = Worker::new_fifo();
        let slot = Arc::new(Slot {
            index,
            stealer: deque.stealer(),
            completed: AtomicU64::new(0),
            stolen: AtomicU64::new(0),
        });
        self.slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot.clone());
        let inner = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("reactor-pool-{index}"))
            .stack_size(STACK_SIZE)
            .spawn(move || worker::main(inner, slot, deque));
        match spawned {
            Ok(handle) => {
                control.handles.push((index, handle));
                Ok(true)
            }
            Err(e) => {
                self.slots
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|s| s.index != index);
                self.workers.fetch_sub(1, Ordering::SeqCst);
                self.searching.fetch_sub(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Starts workers up to `min`, and for queued jobs up to `max` (at most `max` spawns per call).
    fn grow(self: &Arc<Self>) -> std::io::Result<()> {
        let mut wanted = self.queued();
        for _ in 0..self.max.load(Ordering::Relaxed) {
            let workers = self.workers.load(Ordering::Relaxed);
            let below_min = workers < self.min.load(Ordering::Relaxed);
            if !below_min && wanted == 0 {
                break;
            }
            if !self.spawn_worker()? {
                break;
            }
            wanted = wanted.saturating_sub(1);
        }
        Ok(())
    }

    /// A worker leaves if the pool has more than `limit` workers; true if it must exit now.
    pub fn try_retire(&self, limit: usize) -> bool {
        self.workers
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |w| {
                (w > limit).then(|| w - 1)
            })
            .is_ok()
    }

    /// Bookkeeping of a worker that exits (it already uncounted itself with `try_retire`).
    pub fn worker_exited(&self, slot: &Slot) {
        let mut control = lock(&self.control);
        self.slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s.index != slot.index);
        control.retired_completed += slot.completed.load(Ordering::Relaxed);
        control.retired_stolen += slot.stolen.load(Ordering::Relaxed);
        if let Some(position) = control.handles.iter().position(|(i, _)| *i == slot.index) {
            let (_, handle) = control.handles.swap_remove(position);
            control.exited.push(handle);
        }
    }

    fn join_all(&self) {
        loop {
            let handles: Vec<JoinHandle<()>> = {
                let mut control = lock(&self.control);
                let mut all: Vec<_> = control.handles.drain(..).map(|(_, h)| h).collect();
                all.append(&mut control.exited);
                all
            };
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
    }

    fn stats(&self) -> PoolStats {
        let (mut completed, mut stolen) = {
            let control = lock(&self.control);
            (control.retired_completed, control.retired_stolen)
        };
        for slot in self.slots().iter() {
            completed += slot.completed.load(Ordering::Relaxed);
            stolen += slot.stolen.load(Ordering::Relaxed);
        }
        PoolStats {
            workers: self.workers.load(Ordering::Relaxed) as u64,
            idle: self.sleep.idle() as u64,
            queued: self.queued() as u64,
            completed,
            stolen,
        }
    }
}

/// A work-stealing thread pool: a global injector for jobs from outside, one FIFO deque per worker
/// (fed by batches from the injector and by jobs that submit jobs), stealing between workers.
/// Dropping it stops it (every queued job runs) and joins its workers.
pub struct ThreadPool {
    inner: Arc<Inner>,
}

impl ThreadPool {
    /// A pool with `min..=max` workers; `start` = spawn the `min` workers now (else at `start()`).
    pub fn new(min: usize, max: usize, start: bool) -> Result<ThreadPool> {
        Self::build(min, max, start, None, IDLE_TIMEOUT)
    }

    /// A reactor's pool: tasks can queue completions on the reactor's thread.
    pub fn for_reactor(max: usize, reactor: Arc<Shared>) -> Result<ThreadPool> {
        Self::build(0, max, false, Some(reactor), IDLE_TIMEOUT)
    }

    pub(super) fn build(
        min: usize,
        max: usize,
        start: bool,
        context: Option<Arc<Shared>>,
        idle_timeout: Duration,
    ) -> Result<ThreadPool> {
        check_sizes(min, max)?;
        let pool = ThreadPool {
            inner: Arc::new(Inner {
                id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
                injector: Injector::new(),
                gate: Padded(Gate::new()),
                workers: AtomicUsize::new(0),
                min: AtomicUsize::new(min),
                max: AtomicUsize::new(max),
                started: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                searching: Padded(AtomicUsize::new(0)),
                sleep: Sleep::default(),
                slots: RwLock::new(Vec::new()),
                control: Mutex::new(Control::default()),
                lifecycle: Mutex::new(()),
                idle_timeout,
                epoch: AtomicU64::new(0),
                context,
            }),
        };
        if start {
            pool.start()?;
        }
        Ok(pool)
    }

    /// Queues a job (any thread; from one of this pool's jobs it goes to that worker's own deque).
    /// A stopped pool gives the job back.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Job> {
        self.inner.submit(job)
    }

    /// Lets workers start: `min` of them now, more as jobs arrive (up to `max`).
    pub fn start(&self) -> Result<()> {
        let _lifecycle = lock(&self.inner.lifecycle);
        self.inner.started.store(true, Ordering::SeqCst);
        if self.inner.is_closed() {
            return Ok(());
        }
        self.inner.grow().map_err(Error::from)
    }

    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// New limits while running: growing starts workers for queued jobs, shrinking makes surplus
    /// workers exit after their current job. A stopped pool: `Error::Closed`.
    pub fn resize(&self, min: usize, max: usize) -> Result<()> {
        check_sizes(min, max)?;
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        self.set_limits(min, max);
        Ok(())
    }

    /// Like `resize`, also on a stopped pool (the limits then apply when it reopens).
    pub(crate) fn set_limits(&self, min: usize, max: usize) {
        let inner = &self.inner;
        let shrinking = max < inner.max.load(Ordering::Relaxed);
        inner.min.store(min, Ordering::Relaxed);
        inner.max.store(max, Ordering::SeqCst);
        if shrinking {
            inner.sleep.kick_all();
        }
        if inner.started.load(Ordering::Relaxed) && !inner.is_closed() {
            let _ = inner.grow();
        }
    }

    pub fn limits(&self) -> (usize, usize) {
        (
            self.inner.min.load(Ordering::Relaxed),
            self.inner.max.load(Ordering::Relaxed),
        )
    }

    pub fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// How many times the pool was stopped.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// True on the threads of this pool's workers.
    pub fn is_own_worker(&self) -> bool {
        worker::is_worker_of(self.inner.id)
    }

    /// Refuses new jobs, runs every queued job, joins every worker. From one of the pool's own jobs:
    /// `Error::Busy` (a worker cannot join itself). Stopping a stopped pool is a no-op.
    pub fn stop(&self) -> Result<()> {
        let inner = &self.inner;
        if self.is_own_worker() {
            return Err(Error::Busy);
        }
        let (leftovers, epoch) = {
            let _lifecycle = lock(&inner.lifecycle);
            inner.gate.close();
            {
                let _control = lock(&inner.control);
                inner.draining.store(true, Ordering::SeqCst);
            }
            // Queued jobs need workers, also in a pool that never started or whose workers retired.
            // (Counted in spawns, not live workers: a worker that finds the queue empty exits at once.)
            let wanted = inner.injector.len().min(inner.max.load(Ordering::Relaxed));
            let mut spawns = wanted.saturating_sub(inner.workers.load(Ordering::SeqCst));
            while spawns > 0 && !inner.injector.is_empty() {
                if !matches!(inner.spawn_worker(), Ok(true)) {
                    break;
                }
                spawns -= 1;
            }
            inner.sleep.kick_all();
            inner.join_all();
            {
                let _control = lock(&inner.control);
                inner.draining.store(false, Ordering::SeqCst);
            }
            let mut leftovers = Vec::new();
            loop {
                match inner.injector.steal() {
                    Steal::Success(job) => leftovers.push(job),
                    Steal::Retry => continue,
                    Steal::Empty => break,
                }
            }
            (leftovers, inner.epoch.fetch_add(1, Ordering::AcqRel))
        };
        // Only if no worker could be started at all: run what is left here, in the epoch the stop
        // ended, and outside the lifecycle lock (a job may submit to this pool, which reopens it).
        let cx = RunContext {
            epoch,
            reactor: inner.context.as_deref(),
        };
        for job in leftovers {
            worker::execute(job, &cx);
        }
        Ok(())
    }

    /// `stop`, or from one of the pool's own jobs: refuse new jobs and let the workers finish the queue
    /// and exit on their own (they cannot be joined from among themselves).
    pub fn stop_or_detach(&self) {
        if self.stop().is_err() {
            let inner = &self.inner;
            inner.gate.close();
            inner.draining.store(true, Ordering::SeqCst);
            inner.sleep.kick_all();
        }
    }

    /// Accepts jobs again after a completed `stop` (the reactor's pool after a "shutdown" fired by hand).
    pub(crate) fn reopen(&self) {
        let inner = &self.inner;
        let _lifecycle = lock(&inner.lifecycle);
        if inner.is_closed() && !inner.draining.load(Ordering::SeqCst) {
            inner.gate.reopen();
            if inner.started.load(Ordering::Relaxed) {
                let _ = inner.grow();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.stop_or_detach();
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    thread_local! {
        /// Makes `spawn_worker` fail on this thread (as when the system is out of threads).
        pub static SPAWNS_FAIL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
}
