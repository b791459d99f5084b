//! The reactor: one loop, owned by one thread.
//!
//! A *pass* (one `iterate`, or one turn of `run`):
//! 1. ready work: continue system events whose BEFORE phase completed, start shutdown after `stop`,
//!    the thread calls queued when the pass began, async callbacks, timers due (scheduled before the pass);
//! 2. one poll, for as long as nothing is ready (bounded by the earliest timer and the caller's wait);
//! 3. dispatch the collected I/O events;
//! 4. if nothing at all was dispatched so far, the ready work once more (what became due while polling).
//!
//! Interior mutability, never held across a host callback: every callback is copied out of its `RefCell`
//! before it is called, and registrations dropped while a callback runs are released after it returns.

mod asyncs;
mod events;
mod fdset;
pub use fdset::{Direction, FdHandler};
pub mod shared;
mod signals;
mod stats;

pub use asyncs::{reactor_of as async_reactor_of, send as async_send};
pub use shared::{Gate, Shared};

use crate::backend::{BackendKind, Interest, PollEvent, Poller};
use crate::callback::{Callback, LogFn, UserData, call_log};
use crate::status::{Error, Result};
use crate::threadpool::ReactorPool;
use crate::time::{Clock, TimerQueue, TimerRecord, monotonic_seconds};
use crate::types::{REACTOR_LOG_ERROR, reactor_stats_t, reactor_t};
use asyncs::AsyncEntry;
use events::SystemEvents;
use fdset::FdSet;
use signals::SignalWatch;
use stats::{Stats, bump};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// Tag of the internal waker registration; user registrations never get it.
const WAKER_TAG: u32 = u32::MAX;

/// Options after validation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub backend: BackendKind,
    pub install_signal_handlers: bool,
    pub manual_clock: bool,
    pub thread_pool_max: usize,
}

pub struct Reactor {
    pub shared: Arc<Shared>,
    /// The C handle, passed to every callback.
    handle: Cell<*mut reactor_t>,
    backend: RefCell<Box<dyn Poller>>,
    backend_name: &'static str,
    backend_fd: c_int,
    clock: Clock,
    options: Options,
    timers: RefCell<TimerQueue<Callback>>,
    fds: RefCell<FdSet>,
    events: RefCell<SystemEvents>,
    asyncs: RefCell<Vec<AsyncEntry>>,
    io_events: RefCell<Vec<PollEvent>>,
    io_cursor: Cell<usize>,

    /// A run ended through `stop`: the reactor cannot run or iterate again.
    finished_for_good: Cell<bool>,
    in_run: Cell<bool>,
    in_iterate: Cell<bool>,
    /// Twisted's `running`: true from DURING-startup until DURING-shutdown.
    running: Cell<bool>,
    stop_requested: Cell<bool>,
    shutdown_started: Cell<bool>,
    run_finished: Cell<bool>,
    crash_requested: Cell<bool>,
    signals_seen: Cell<u64>,

    callback_depth: Cell<u32>,
    /// Nesting of C API calls on the owner thread (a release hook may call `reactor_free`).
    api_depth: Cell<u32>,
    graveyard: RefCell<Vec<UserData>>,
    log: Cell<Option<(LogFn, *mut c_void)>>,
    pub stats: Stats,
    /// The reactor's thread pool (thread-safe; created on first use, see `crate::threadpool`).
    pub pool: ReactorPool,
}

fn ceil_ms(seconds: f64) -> c_int {
    if seconds <= 0.0 {
        0
    } else {
        let ms = (seconds * 1000.0).ceil();
        if ms >= c_int::MAX as f64 {
            c_int::MAX
        } else {
            ms as c_int
        }
    }
}

/// The shorter of two poll timeouts, where -1 means forever.
fn min_timeout(a: c_int, b: c_int) -> c_int {
    match (a, b) {
        (-1, x) | (x, -1) => x,
        (a, b) => a.min(b),
    }
}

impl Reactor {
    pub fn new(options: Options) -> Result<Reactor> {
        let mut backend = options.backend.create()?;
        let shared = Arc::new(Shared::new()?);
        backend.add(
            shared.waker.read_fd(),
            WAKER_TAG,
            Interest {
                read: true,
                write: false,
            },
        )?;
        Ok(Reactor {
            backend_name: backend.name(),
            backend_fd: backend.pollable_fd(),
            backend: RefCell::new(backend),
            pool: ReactorPool::new(shared.clone(), options.thread_pool_max),
            shared,
            handle: Cell::new(std::ptr::null_mut()),
            clock: Clock::new(options.manual_clock),
            options,
            timers: RefCell::new(TimerQueue::default()),
            fds: RefCell::new(FdSet::default()),
            events: RefCell::new(SystemEvents::default()),
            asyncs: RefCell::new(Vec::new()),
            io_events: RefCell::new(Vec::new()),
            io_cursor: Cell::new(0),
            finished_for_good: Cell::new(false),
            in_run: Cell::new(false),
            in_iterate: Cell::new(false),
            running: Cell::new(false),
            stop_requested: Cell::new(false),
            shutdown_started: Cell::new(false),
            run_finished: Cell::new(false),
            crash_requested: Cell::new(false),
            signals_seen: Cell::new(0),
            callback_depth: Cell::new(0),
            api_depth: Cell::new(0),
            graveyard: RefCell::new(Vec::new()),
            log: Cell::new(None),
            stats: Stats::default(),
        })
    }

    /// Records the C handle callbacks receive.
    pub fn set_handle(&self, handle: *mut reactor_t) {
        self.handle.set(handle);
    }

    pub fn handle(&self) -> *mut reactor_t {
        self.handle.get()
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    pub fn backend_fd(&self) -> c_int {
        self.backend_fd
    }

    // ----- callbacks, release and logging -------------------------------------------------------

    /// Runs a host callback, keeping count and releasing what it dropped once it returns.
    fn invoke<R>(&self, call: impl FnOnce() -> R) -> R {
        self.callback_depth.set(self.callback_depth.get() + 1);
        bump(&self.stats.callbacks);
        let result = call();
        self.callback_depth.set(self.callback_depth.get() - 1);
        if self.callback_depth.get() == 0 && !self.graveyard.borrow().is_empty() {
            let dead = std::mem::take(&mut *self.graveyard.borrow_mut());
            drop(dead);
        }
        result
    }

    /// Drops a registration's user data: now, or after the running callback returns.
    fn retire(&self, data: UserData) {
        if self.callback_depth.get() > 0 {
            self.graveyard.borrow_mut().push(data);
        } else {
            drop(data);
        }
    }

    pub fn in_callback(&self) -> bool {
        self.callback_depth.get() > 0
    }

    pub fn enter_api(&self) {
        self.api_depth.set(self.api_depth.get() + 1);
    }

    pub fn leave_api(&self) {
        self.api_depth.set(self.api_depth.get() - 1);
    }

    /// True while an API call or callback of this reactor is on the calling (owner) thread's stack.
    pub fn in_use_here(&self) -> bool {
        self.api_depth.get() > 0 || self.callback_depth.get() > 0 || self.shared.is_active()
    }

    pub fn set_log(&self, log: Option<(LogFn, *mut c_void)>) {
        self.log.set(log);
    }

    pub fn log(&self, level: c_int, message: &str) {
        match self.log.get() {
            Some((func, ud)) => {
                let text = CString::new(message.replace('\0', "?")).unwrap_or_default();
                call_log(func, ud, level, &text);
            }
            None if level == REACTOR_LOG_ERROR => eprintln!("libreactor: error: {message}"),
            None => {}
        }
    }

    /// Marks the reactor active (not freeable) around entry points that run callbacks outside a loop.
    fn while_active<R>(&self, body: impl FnOnce() -> R) -> R {
        let was_active = self.shared.set_active(true);
        let result = body();
        self.shared.set_active(was_active);
        result
    }

    // ----- IReactorCore -------------------------------------------------------------------------

    fn is_driving(&self) -> bool {
        self.in_run.get() || self.in_iterate.get() || self.in_callback()
    }

    pub fn run(&self) -> Result<()> {
        if self.is_driving() {
            return Err(Error::AlreadyRunning);
        }
        if self.finished_for_good.get() {
            return Err(Error::NotRestartable);
        }
        self.shared.adopt_current_thread();
        let was_active = self.shared.set_active(true);
        self.in_run.set(true);
        self.stop_requested.set(false);
        self.shutdown_started.set(false);
        self.run_finished.set(false);
        self.crash_requested.set(false);
        let signal_watch = self
            .options
            .install_signal_handlers
            .then(|| SignalWatch::start(self.shared.waker.write_fd()));
        self.signals_seen.set(signals::received());

        // A startup still held from a crashed run keeps waiting instead of firing again.
        let mut result = match self.fire_event(b"startup") {
            Err(Error::Busy) => Ok(()),
            other => other,
        };
        while result.is_ok() && !self.should_leave_loop() {
            result = self.pass(-1);
        }

        self.in_run.set(false);
        self.shared.set_awake(false);
        self.running.set(false);
        if self.run_finished.get() {
            self.finished_for_good.set(true);
            self.shared.close_gate(Gate::Stopped);
        }
        self.crash_requested.set(false);
        drop(signal_watch);
        self.shared.set_active(was_active);
        if self.shared.is_poisoned() {
            return Err(Error::Internal);
        }
        result
    }

    pub fn stop(&self) -> Result<()> {
        if !self.in_run.get() || self.stop_requested.get() || self.shutdown_started.get() {
            return Err(Error::NotRunning);
        }
        self.stop_requested.set(true);
        Ok(())
    }

    pub fn crash(&self) -> Result<()> {
        if !self.in_run.get() {
            return Err(Error::NotRunning);
        }
        self.crash_requested.set(true);
        Ok(())
    }

    pub fn iterate(&self, timeout: f64) -> Result<()> {
        if timeout.is_nan() {
            return Err(Error::Invalid);
        }
        if self.is_driving() {
            return Err(Error::AlreadyRunning);
        }
        if self.finished_for_good.get() {
            return Err(Error::NotRestartable);
        }
        let wait = if timeout < 0.0 { -1 } else { ceil_ms(timeout) };
        self.in_iterate.set(true);
        let result = self.while_active(|| self.pass(wait));
        self.in_iterate.set(false);
        result
    }

    pub fn is_running(&self) -> bool {
        self.running.get()
    }

    pub fn call_when_running(&self, callback: Callback) {
        if self.running.get() {
            self.while_active(|| self.invoke(|| callback.call(self.handle())));
            self.retire(callback.data);
        } else {
            self.add_when_running_trigger(callback);
        }
    }

    fn should_leave_loop(&self) -> bool {
        self.crash_requested.get()
            || self.shared.is_poisoned()
            || (self.in_run.get() && self.run_finished.get())
    }

    // ----- the pass -----------------------------------------------------------------------------

    fn pass(&self, wait_ms: c_int) -> Result<()> {
        self.shared.set_awake(true);
        let result = self.pass_inner(wait_ms);
        if !self.in_run.get() {
            // Between iterates a host may block on the backend fd: producers must write the waker.
            self.shared.set_awake(false);
        }
        result
    }

    fn pass_inner(&self, wait_ms: c_int) -> Result<()> {
        // The thread pool's workers start once the reactor runs or is iterated (one load afterwards).
        self.pool.start();
        bump(&self.stats.iterations);
        let callbacks_at_start = self.stats.callbacks.get();
        let cutoff = self.timers.borrow().next_seq();
        self.run_ready_work(cutoff);
        if self.should_leave_loop() {
            return Ok(());
        }
        if !self.has_leftover_io() {
            let timeout = if self.stats.callbacks.get() > callbacks_at_start {
                0
            } else {
                min_timeout(wait_ms, self.poll_timeout_ms())
            };
            self.poll_backend(timeout)?;
        }
        self.dispatch_io();
        if self.should_leave_loop() {
            return Ok(());
        }
        self.check_signals();
        if self.stats.callbacks.get() == callbacks_at_start {
            self.run_ready_work(cutoff);
        }
        Ok(())
    }

    fn run_ready_work(&self, cutoff: u64) {
        self.shared.begin_pass();
        self.continue_ready_events();
        if self.in_run.get() && self.stop_requested.get() && !self.shutdown_started.get() {
            self.shutdown_started.set(true);
            if let Err(e) = self.fire_event(b"shutdown") {
                self.log(
                    REACTOR_LOG_ERROR,
                    &format!("could not fire shutdown: {e:?}"),
                );
            }
        }
        self.run_thread_calls();
        self.run_asyncs();
        self.run_due_timers(cutoff);
    }

    fn has_ready_work(&self) -> bool {
        self.shared.has_work()
            || self.events.borrow().has_ready()
            || (self.in_run.get() && self.stop_requested.get() && !self.shutdown_started.get())
            || self.has_leftover_io()
    }

    fn has_leftover_io(&self) -> bool {
        self.io_cursor.get() < self.io_events.borrow().len()
    }

    /// Milliseconds the poller may sleep: 0 if work is ready, -1 if nothing is scheduled.
    pub fn poll_timeout_ms(&self) -> c_int {
        if self.has_ready_work() {
            return 0;
        }
        let Some(deadline) = self.timers.borrow().earliest() else {
            return -1;
        };
        let now = self.clock.now();
        if self.clock.is_manual() {
            if deadline <= now { 0 } else { -1 }
        } else {
            ceil_ms(deadline - now)
        }
    }

    fn poll_backend(&self, mut timeout: c_int) -> Result<()> {
        let mut events = self.io_events.borrow_mut();
        events.clear();
        self.io_cursor.set(0);
        if timeout != 0 && self.shared.prepare_to_block() {
            timeout = 0;
        }
        let started = (timeout != 0).then(monotonic_seconds);
        let result = self.backend.borrow_mut().poll(&mut events, timeout);
        self.shared.set_awake(true);
        bump(&self.stats.polls);
        if let Some(started) = started {
            let idle = &self.stats.idle_seconds;
            idle.set(idle.get() + (monotonic_seconds() - started).max(0.0));
        }
        result
    }

    fn dispatch_io(&self) {
        loop {
            if self.crash_requested.get() || self.shared.is_poisoned() {
                return;
            }
            let index = self.io_cursor.get();
            let Some(event) = self.io_events.borrow().get(index).copied() else {
                return;
            };
            self.io_cursor.set(index + 1);
            if event.tag == WAKER_TAG && event.fd == self.shared.waker.read_fd() {
                self.shared.waker.drain();
                bump(&self.stats.wakeups);
            } else {
                self.dispatch_fd_event(event);
            }
        }
    }

    fn check_signals(&self) {
        if !self.options.install_signal_handlers || !self.in_run.get() {
            return;
        }
        let received = signals::received();
        if received != self.signals_seen.get() {
            self.signals_seen.set(received);
            if self.stop().is_ok() {
                self.log(
                    crate::types::REACTOR_LOG_INFO,
                    "SIGINT/SIGTERM received: stopping",
                );
            }
        }
    }

    fn run_thread_calls(&self) {
        let batch = self.shared.queued_calls();
        for _ in 0..batch {
            if self.crash_requested.get() {
                return;
            }
            let Some(call) = self.shared.steal_call() else {
                return;
            };
            bump(&self.stats.thread_calls);
            self.invoke(|| call.call(self.handle()));
            self.retire(call.data);
        }
    }

    // ----- IReactorTime -------------------------------------------------------------------------

    pub fn seconds(&self) -> f64 {
        self.clock.now()
    }

    /// Schedules `callback` after `delay` seconds (validated by the caller: finite, >= 0).
    pub fn call_later(&self, delay: f64, callback: Callback, record: Option<Arc<TimerRecord>>) {
        let deadline = self.clock.now() + delay;
        self.timers
            .borrow_mut()
            .schedule(deadline, callback, record);
    }

    pub fn cancel_call(&self, record: &Arc<TimerRecord>) -> Result<()> {
        let callback = self.timers.borrow_mut().cancel(record)?;
        self.retire(callback.data);
        Ok(())
    }

    pub fn reset_call(&self, record: &Arc<TimerRecord>, seconds_from_now: f64) -> Result<()> {
        if !seconds_from_now.is_finite() || seconds_from_now < 0.0 {
            return Err(Error::Invalid);
        }
        let deadline = self.clock.now() + seconds_from_now;
        self.timers.borrow_mut().reschedule(record, deadline)
    }

    pub fn delay_call(&self, record: &Arc<TimerRecord>, seconds_later: f64) -> Result<()> {
        if !seconds_later.is_finite() {
            return Err(Error::Invalid);
        }
        let deadline = (record.time() + seconds_later).max(self.clock.now());
        self.timers.borrow_mut().reschedule(record, deadline)
    }

    pub fn delayed_call_count(&self) -> usize {
        self.timers.borrow().len()
    }

    pub fn clock_advance(&self, seconds: f64) -> Result<()> {
        if !self.clock.is_manual() {
            return Err(Error::Unsupported);
        }
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(Error::Invalid);
        }
        self.clock.advance(seconds);
        let cutoff = self.timers.borrow().next_seq();
        self.while_active(|| self.run_due_timers(cutoff));
        Ok(())
    }

    fn run_due_timers(&self, cutoff: u64) {
        let now = self.clock.now();
        loop {
            if self.crash_requested.get() {
                return;
            }
            let due = self.timers.borrow_mut().pop_due(now, cutoff);
            let Some(callback) = due else { return };
            bump(&self.stats.timers_fired);
            self.invoke(|| callback.call(self.handle()));
            self.retire(callback.data);
        }
    }

    // ----- IReactorThreads (reactor side) -------------------------------------------------------

    /// Queues a call from any thread; refused once a run ended with `stop` or the reactor is freed.
    pub fn call_from_thread(
        shared: &Shared,
        callback: Callback,
    ) -> std::result::Result<(), Callback> {
        if shared.gate() != Gate::Open {
            return Err(callback);
        }
        shared.push_call(callback);
        Ok(())
    }

    // ----- stats --------------------------------------------------------------------------------

    pub fn stats(&self) -> reactor_stats_t {
        self.stats
            .snapshot(self.fds.borrow().len(), self.timers.borrow().len())
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // Stop the thread pool first: queued jobs run, workers are joined; completions they queued
        // are released below without running.
        self.pool.shutdown(true);
        // Refuse remote calls first, then release everything still registered, on this thread.
        self.shared.close_gate(Gate::Freed);
        while let Some(call) = self.shared.steal_call() {
            drop(call);
        }
        let timers = self.timers.get_mut().drain();
        drop(timers);
        let fds = self.fds.get_mut().take_all();
        drop(fds);
        let triggers = self.events.get_mut().take_all();
        drop(triggers);
        let asyncs = std::mem::take(self.asyncs.get_mut());
        drop(asyncs);
        let graveyard = std::mem::take(self.graveyard.get_mut());
        drop(graveyard);
    }
}
