//! The reactor: one loop, owned by one thread at a time.
//!
//! A *pass* (one `iterate`, or one turn of `run`) does, in this order:
//! 1. ready work: continue system events whose held BEFORE phase completed, start "shutdown" after
//!    `stop`, the thread calls queued when the pass began, async callbacks, timers due (scheduled
//!    before this step reached the timers: a call scheduled by a thread call or an async callback
//!    just now runs in this pass, as in Twisted's runUntilCurrent; one scheduled by a timer
//!    callback waits for the next pass);
//! 2. one poll, for as long as nothing is ready (bounded by the earliest timer and the caller's wait);
//! 3. dispatch the collected events to their sources (host fd callbacks, internal sources);
//! 4. look at delivered signals;
//! 5. if nothing at all was dispatched so far, the ready work once more (what became due while polling).
//!
//! `run` fires "startup", runs passes until "shutdown" has finished (after `stop`) or `crash`, then —
//! if it ended with stop — closes the reactor to other threads and runs the thread calls it accepted.
//!
//! Ownership: the `Reactor` is the owner-only part of a reactor handle; `entry.rs` hands it out only
//! under an ownership claim. Interior mutability is never held across a host callback: every callback
//! is copied out of its `RefCell` before it is called, and registrations dropped while a callback runs
//! are released after it returns.

mod asyncs;
mod call_queue;
mod daemonize;
pub mod entry;
mod events;
mod faults;
mod host_fds;
mod registry;
pub mod shared;
pub(crate) mod signals;
mod state;
mod stats;
mod thread_calls;
mod timers;
pub(crate) mod wake;

pub use asyncs::{reactor_of as async_reactor_of, send as async_send};
pub use entry::{Claimed, REACTORS, ReactorEntry};
pub use faults::FaultPoint;
pub use host_fds::{Direction, FdHandler};
pub use registry::{Handler, Source};
pub use shared::{ReactorTask, Shared, ThreadCall};
pub use state::LoopState;

use crate::backend::{BackendKind, PollEvent, Poller, WakeTarget};
use crate::callback::{Callback, LogFn, UserData, call_log};
use crate::status::{Error, Result};
use crate::threadpool::ReactorPool;
use crate::time::{Clock, TimerQueue, monotonic_seconds};
use crate::types::{REACTOR_LOG_ERROR, reactor_stats_t, reactor_t};
use asyncs::AsyncEntry;
use events::SystemEvents;
use registry::Registry;
use shared::CallTaker;
use signals::SignalWatchers;
use state::Stage;
use stats::{Stats, bump};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io::Write;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// Options after validation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub backend: BackendKind,
    pub install_signal_handlers: bool,
    pub manual_clock: bool,
    pub thread_pool_max: usize,
}

pub struct Reactor {
    /// The C handle, passed to every callback (set once the handle exists).
    handle: Cell<usize>,
    pub shared: Arc<Shared>,
    /// The reactor's thread pool (thread-safe; created on first use, see `crate::threadpool`).
    pub pool: Arc<ReactorPool>,
    backend: RefCell<Box<dyn Poller>>,
    /// The backend's waker (replaced by `after_daemonize`).
    waker: Cell<WakeTarget>,
    /// Backends replaced by `after_daemonize`, kept open until the reactor is freed: another thread
    /// may still write to the old waker.
    retired_backends: RefCell<Vec<Box<dyn Poller>>>,
    clock: Clock,
    options: Options,
    state: Cell<LoopState>,
    /// This thread set AWAKE in the handshake word and has not cleared it since.
    awake: Cell<bool>,
    timers: RefCell<TimerQueue<Callback>>,
    sources: RefCell<Registry>,
    events: RefCell<SystemEvents>,
    asyncs: RefCell<Vec<AsyncEntry>>,
    signals: RefCell<SignalWatchers>,
    io_events: RefCell<Vec<PollEvent>>,
    io_cursor: Cell<usize>,
    /// Listening ports and stream transports (`crate::net`).
    pub(crate) net: RefCell<crate::net::Net>,
    /// `reactor_resolve` requests in progress (`crate::net::resolve`).
    pub(crate) resolves: RefCell<crate::net::resolve::Resolves>,
    /// Spawned children (`crate::process`).
    pub(crate) processes: RefCell<crate::process::Processes>,
    /// Network work for the next pass (`crate::net::later`).
    pub(crate) later: crate::net::later::LaterQueue,
    /// The reactor's end of its call queue (the one consumer).
    call_taker: RefCell<CallTaker>,
    /// Thread calls taken from the shared queue and not run yet (left over by a crash); else an
    /// empty buffer that keeps its capacity for the next take.
    call_batch: RefCell<Vec<ThreadCall>>,
    callback_depth: Cell<u32>,
    graveyard: RefCell<Vec<UserData>>,
    log: Cell<Option<(LogFn, usize)>>,
    fault: Cell<u32>,
    pub stats: Stats,
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

/// Restores the loop state when `run` or `iterate` returns, a panic included.
struct DriveGuard<'a> {
    reactor: &'a Reactor,
}

impl Drop for DriveGuard<'_> {
    fn drop(&mut self) {
        let reactor = self.reactor;
        reactor.prepare_to_block();
        if reactor.state.get().is_run() {
            reactor.unwatch_stop_signals();
        }
        reactor.state.set(reactor.state.get().after_run());
    }
}

/// Counts a host callback in progress; releases what was retired once the outermost one returns.
struct CallbackDepth<'a> {
    reactor: &'a Reactor,
}

impl Drop for CallbackDepth<'_> {
    fn drop(&mut self) {
        let reactor = self.reactor;
        reactor.callback_depth.set(reactor.callback_depth.get() - 1);
        if reactor.callback_depth.get() == 0 && !reactor.graveyard.borrow().is_empty() {
            let dead = std::mem::take(&mut *reactor.graveyard.borrow_mut());
            drop(dead);
        }
    }
}

impl Reactor {
    pub fn new(options: Options) -> Result<Reactor> {
        let backend = options.backend.create()?;
        let waker = backend.wake_target();
        let shared = Arc::new(Shared::new(waker));
        let call_taker = CallTaker::new(shared.clone()).ok_or(Error::Internal)?;
        Ok(Reactor {
            handle: Cell::new(0),
            pool: Arc::new(ReactorPool::new(shared.clone(), options.thread_pool_max)),
            shared,
            backend: RefCell::new(backend),
            waker: Cell::new(waker),
            retired_backends: RefCell::new(Vec::new()),

            clock: Clock::new(options.manual_clock),
            options,
            state: Cell::new(LoopState::Idle),
            awake: Cell::new(false),
            timers: RefCell::new(TimerQueue::default()),
            sources: RefCell::new(Registry::default()),
            events: RefCell::new(SystemEvents::default()),
            asyncs: RefCell::new(Vec::new()),
            signals: RefCell::new(SignalWatchers::default()),
            io_events: RefCell::new(Vec::new()),
            io_cursor: Cell::new(0),
            net: RefCell::new(Default::default()),
            resolves: RefCell::new(Default::default()),
            processes: RefCell::new(Default::default()),
            later: Default::default(),
            call_taker: RefCell::new(call_taker),
            call_batch: RefCell::new(Vec::new()),
            callback_depth: Cell::new(0),
            graveyard: RefCell::new(Vec::new()),
            log: Cell::new(None),
            fault: Cell::new(0),
            stats: Stats::default(),
        })
    }

    /// Records the C handle callbacks receive.
    pub(crate) fn set_handle(&self, handle: *mut reactor_t) {
        self.handle.set(handle as usize);
    }

    pub fn handle(&self) -> *mut reactor_t {
        self.handle.get() as *mut reactor_t
    }

    /// Where signal handlers write to wake this reactor.
    pub(crate) fn waker(&self) -> WakeTarget {
        self.waker.get()
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.borrow().name()
    }

    pub fn backend_fd(&self) -> c_int {
        self.backend.borrow().pollable_fd()
    }

    // ----- callbacks, release and logging -------------------------------------------------------

    /// Runs a host callback, keeping count and releasing what it dropped once it returns.
    pub(crate) fn invoke<R>(&self, call: impl FnOnce() -> R) -> R {
        self.callback_depth.set(self.callback_depth.get() + 1);
        bump(&self.stats.callbacks);
        let _depth = CallbackDepth { reactor: self };
        let result = call();
        self.fault(FaultPoint::AfterCallback);
        result
    }

    /// Drops a registration's user data: now, or after the running callback returns.
    pub(crate) fn retire(&self, data: UserData) {
        if self.callback_depth.get() > 0 && data.has_release() {
            self.graveyard.borrow_mut().push(data);
        } else {
            drop(data);
        }
    }

    /// A run ended with stop: the reactor is done for good.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.get() == LoopState::Finished
    }

    /// `reactor_crash` was called in the current run: the pass ends as soon as it can.
    pub(crate) fn is_crashing(&self) -> bool {
        self.state.get().is_crashing()
    }

    /// No more events are dispatched in this pass: a crash was requested, or a callback panicked
    /// (the reactor is poisoned).
    pub(crate) fn stops_dispatching(&self) -> bool {
        self.is_crashing() || self.shared.is_poisoned()
    }

    pub fn in_callback(&self) -> bool {
        self.callback_depth.get() > 0
    }

    pub fn set_log(&self, log: Option<(LogFn, *mut c_void)>) {
        self.log.set(log.map(|(f, ud)| (f, ud as usize)));
    }

    pub fn log(&self, level: c_int, message: &str) {
        match self.log.get() {
            Some((func, ud)) => {
                let text = CString::new(message.replace('\0', "?")).unwrap_or_default();
                call_log(func, ud as *mut c_void, level, &text);
            }
            None if level == REACTOR_LOG_ERROR => {
                // A closed stderr must not turn into a panic: write and ignore the outcome.
                let _ = writeln!(std::io::stderr(), "libreactor: error: {message}");
            }
            None => {}
        }
    }

    // ----- IReactorCore -------------------------------------------------------------------------

    fn update_run(&self, change: impl FnOnce(&mut state::Run)) {
        if let LoopState::Running(mut run) = self.state.get() {
            change(&mut run);
            self.state.set(LoopState::Running(run));
        }
    }

    fn is_driving(&self) -> bool {
        matches!(
            self.state.get(),
            LoopState::Running(_) | LoopState::Iterating
        ) || self.in_callback()
    }

    /// `reactor_run`. `close_to_others` is called once a run ended with stop: it must make sure no
    /// other thread can queue calls any more (the entry raises its "stopped" flag and drains pins).
    pub fn run(&self, close_to_others: impl FnOnce()) -> Result<()> {
        if self.is_driving() {
            return Err(Error::AlreadyRunning);
        }
        if self.state.get() == LoopState::Finished {
            return Err(Error::NotRestartable);
        }
        self.state.set(LoopState::new_run());
        let _exit = DriveGuard { reactor: self };
        self.watch_stop_signals();
        // A startup still held from a crashed run keeps waiting instead of firing again.
        let mut result = match self.fire_event(b"startup") {
            Err(Error::Busy) => Ok(()),
            other => other,
        };
        while result.is_ok() && !self.should_leave_loop() {
            result = self.pass(-1);
        }
        if self.state.get().after_run() == LoopState::Finished {
            close_to_others();
            self.drain_thread_calls();
            // Network work queued before the end (nothing more is accepted now).
            while !self.later.is_empty() && !self.is_crashing() {
                self.later.run_queued(self);
            }
        }
        if self.shared.is_poisoned() {
            return Err(Error::Internal);
        }
        result
    }

    pub fn stop(&self) -> Result<()> {
        match self.state.get().run() {
            Some(run) if run.stage == Stage::Active => {
                self.update_run(|run| run.stage = Stage::StopRequested);
                Ok(())
            }
            _ => Err(Error::NotRunning),
        }
    }

    pub fn crash(&self) -> Result<()> {
        if !self.state.get().is_run() {
            return Err(Error::NotRunning);
        }
        self.update_run(|run| run.crashing = true);
        Ok(())
    }

    pub fn iterate(&self, timeout: f64) -> Result<()> {
        if timeout.is_nan() {
            return Err(Error::Invalid);
        }
        if self.is_driving() {
            return Err(Error::AlreadyRunning);
        }
        if self.state.get() == LoopState::Finished {
            return Err(Error::NotRestartable);
        }
        let wait = if timeout < 0.0 { -1 } else { ceil_ms(timeout) };
        self.state.set(LoopState::Iterating);
        let _exit = DriveGuard { reactor: self };
        self.pass(wait)
    }

    pub fn is_running(&self) -> bool {
        self.state.get().is_started()
    }

    pub fn call_when_running(&self, callback: Callback) {
        if self.is_running() {
            self.invoke(|| callback.call(self.handle()));
            self.retire(callback.data);
        } else {
            self.add_when_running_trigger(callback);
        }
    }

    fn should_leave_loop(&self) -> bool {
        self.stops_dispatching()
            || self
                .state
                .get()
                .run()
                .is_some_and(|run| run.stage == Stage::Done)
    }

    // ----- the pass -----------------------------------------------------------------------------

    fn pass(&self, wait_ms: c_int) -> Result<()> {
        self.wake_up();
        self.fault(FaultPoint::NextPass);
        // The thread pool's workers start once the reactor runs or is iterated (one load afterwards).
        self.pool.start();
        bump(&self.stats.iterations);
        let callbacks_at_start = self.stats.callbacks.get();
        self.run_ready_work();
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
        self.check_children();
        if self.stats.callbacks.get() == callbacks_at_start {
            self.run_ready_work();
        }
        Ok(())
    }

    fn run_ready_work(&self) {
        self.continue_ready_events();
        if self
            .state
            .get()
            .run()
            .is_some_and(|run| run.stage == Stage::StopRequested)
        {
            self.update_run(|run| run.stage = Stage::ShuttingDown);
            if let Err(e) = self.fire_event(b"shutdown") {
                self.log(
                    REACTOR_LOG_ERROR,
                    &format!("could not fire shutdown: {e:?}"),
                );
            }
        }
        self.later.run_queued(self);
        self.run_thread_calls();
        self.run_asyncs();
        let cutoff = self.timers.borrow().next_seq();
        self.run_due_timers(cutoff);
    }

    fn has_ready_work(&self) -> bool {
        self.shared.has_work()
            || self.has_leftover_calls()
            || !self.later.is_empty()
            || self.events.borrow().has_ready()
            || self
                .state
                .get()
                .run()
                .is_some_and(|run| run.stage == Stage::StopRequested)
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
        if timeout != 0 {
            // From here on producers write the waker; work that arrived meanwhile means no sleep.
            self.prepare_to_block();
            if self.shared.has_work() {
                timeout = 0;
            }
        }
        let started = (timeout != 0).then(monotonic_seconds);
        let result = self.backend.borrow_mut().poll(&mut events, timeout);
        self.wake_up();
        bump(&self.stats.polls);
        if let Some(started) = started {
            let idle = &self.stats.idle_seconds;
            idle.set(idle.get() + (monotonic_seconds() - started).max(0.0));
        }
        if result? {
            bump(&self.stats.wakeups);
        }
        Ok(())
    }

    /// The waker handshake, reactor side (`wake`): producers skip the waker while this thread is awake.
    fn wake_up(&self) {
        if !self.awake.get() {
            self.shared.wake_up();
            self.awake.set(true);
        }
    }

    fn prepare_to_block(&self) {
        if self.awake.get() {
            self.shared.prepare_to_block();
            self.awake.set(false);
        }
    }

    fn dispatch_io(&self) {
        loop {
            if self.stops_dispatching() {
                return;
            }
            let index = self.io_cursor.get();
            let Some(event) = self.io_events.borrow().get(index).copied() else {
                return;
            };
            self.io_cursor.set(index + 1);
            self.dispatch_event(event);
        }
    }

    // ----- stats --------------------------------------------------------------------------------

    pub fn stats(&self) -> reactor_stats_t {
        self.stats
            .snapshot(self.sources.borrow().host_len(), self.timers.borrow().len())
    }
}

impl Drop for Reactor {
    /// `reactor_free`: every registration still held is released, on the freeing thread; no callback
    /// runs. The handle is already invalid, so releases that call back into the library get INVALID.
    fn drop(&mut self) {
        // The thread pool first (`reactor_free` has stopped it already, before closing the queue;
        // this covers a reactor that never got a handle): queued jobs run, workers are joined;
        // completions they queued are released below without running.
        self.pool.shutdown(true);
        let asyncs = self.close_all_asyncs();
        let leftover = std::mem::take(self.call_batch.get_mut());
        drop(leftover);
        let queued = self.call_taker.get_mut().take_closed();
        drop(queued);
        let resolves = self.take_resolves();
        drop(resolves);
        let later = self.later.take_all();
        drop(later);
        // Network objects after the registry let go of them: each closes and releases on its drop.
        let net = self.net.get_mut().take_all();
        drop(net);
        // Children are no longer watched (their pids are the host's to wait for); the SIGCHLD
        // watch goes last, after every pipe and pidfd.
        let (processes, sigchld) = self.processes.get_mut().take_all();
        for process in &processes {
            // Out of the backend before their fds close (the numbers may be reused at once).
            process.unregister_all(self);
        }
        drop(processes);
        let timers = self.timers.get_mut().close_all();
        drop(timers);
        let sources = self.take_all_sources();
        drop(sources);
        let triggers = self.events.get_mut().take_all();
        drop(triggers);
        let signal_handlers = self.signals.get_mut().take_host_handlers();
        drop(signal_handlers);
        drop(sigchld);
        drop(asyncs);
        let graveyard = std::mem::take(self.graveyard.get_mut());
        drop(graveyard);
    }
}
