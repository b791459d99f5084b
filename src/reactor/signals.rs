//! Signals, process-wide: one handler for every signal the library watches, shared by all reactors.
//!
//! The handler only counts the delivery (per signal, plus one counter for "any") and writes the wakers
//! of the reactors that watch signals: async-signal-safe. Each reactor compares the "any" counter on
//! every pass (one load) and, when it moved, looks at the signals it watches. A signal's disposition
//! is installed when its first watcher appears and the previous one restored when its last goes
//! (`SignalWatch` is that registration). The watchers are the built-in SIGINT/SIGTERM stop of
//! `install_signal_handlers` (while `run` is active) and the host's handlers of API.md §8.2
//! (`reactor_add_signal_handler`), one watch per reactor for the set of signals it has handlers for.

use super::Reactor;
use crate::backend::WakeTarget;
use crate::callback::{SignalFn, UserData, call_signal};
use crate::status::{Error, Result};
use crate::types::REACTOR_LOG_INFO;
use std::os::raw::c_int;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Signal numbers 1..MAX_SIGNAL are supported (covers Linux's 64 and the BSDs' 32/128-free range).
const MAX_SIGNAL: usize = 65;
const MAX_WATCHERS: usize = 64;
const NO_TARGET: i64 = i64::MIN;

static DELIVERED: [AtomicU64; MAX_SIGNAL] = [const { AtomicU64::new(0) }; MAX_SIGNAL];
static ANY_DELIVERED: AtomicU64 = AtomicU64::new(0);
static WAKE_TARGETS: [AtomicI64; MAX_WATCHERS] =
    [const { AtomicI64::new(NO_TARGET) }; MAX_WATCHERS];
/// Handlers between their first and last access to `WAKE_TARGETS`.
static HANDLERS_RUNNING: AtomicUsize = AtomicUsize::new(0);

struct Installed {
    /// Watchers per signal, and the disposition to restore when it drops to 0.
    users: [usize; MAX_SIGNAL],
    previous: [Option<libc::sigaction>; MAX_SIGNAL],
}

// SAFETY: sigaction structs are plain data.
unsafe impl Send for Installed {}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    users: [0; MAX_SIGNAL],
    previous: [None; MAX_SIGNAL],
});

extern "C" fn on_signal(signal: c_int) {
    HANDLERS_RUNNING.fetch_add(1, Ordering::SeqCst);
    // SAFETY: errno is thread-local; saved and restored so the interrupted code sees no change.
    let saved_errno = unsafe { *errno_location() };
    if let Some(counter) = DELIVERED.get(signal as usize) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    ANY_DELIVERED.fetch_add(1, Ordering::SeqCst);
    for slot in &WAKE_TARGETS {
        let bits = slot.load(Ordering::SeqCst);
        if bits != NO_TARGET {
            WakeTarget::from_bits(bits).wake();
        }
    }
    // SAFETY: as above.
    unsafe { *errno_location() = saved_errno };
    HANDLERS_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}

/// Deliveries of `signal` since the process started.
pub fn delivered(signal: c_int) -> u64 {
    DELIVERED
        .get(signal as usize)
        .map_or(0, |c| c.load(Ordering::SeqCst))
}

/// Deliveries of any watched signal since the process started.
pub fn any_delivered() -> u64 {
    ANY_DELIVERED.load(Ordering::SeqCst)
}

/// A registration: these signals are handled and this waker is written on every delivery. Dropping
/// it unregisters and restores dispositions nobody else needs.
pub struct SignalWatch {
    signals: Vec<c_int>,
    slot: Option<usize>,
}

impl SignalWatch {
    pub fn start(signals: &[c_int], wake: WakeTarget) -> SignalWatch {
        let mut watch = SignalWatch {
            signals: Vec::new(),
            slot: None,
        };
        let Ok(mut installed) = INSTALLED.lock() else {
            return watch;
        };
        for &signal in signals {
            let index = signal as usize;
            if index == 0 || index >= MAX_SIGNAL {
                continue;
            }
            if installed.users[index] == 0 {
                match install(signal) {
                    Some(old) => installed.previous[index] = Some(old),
                    None => continue,
                }
            }
            installed.users[index] += 1;
            watch.signals.push(signal);
        }
        watch.slot = WAKE_TARGETS.iter().position(|s| {
            s.compare_exchange(
                NO_TARGET,
                wake.to_bits(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        });
        watch
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        let Ok(mut installed) = INSTALLED.lock() else {
            return;
        };
        if let Some(slot) = self.slot {
            WAKE_TARGETS[slot].store(NO_TARGET, Ordering::SeqCst);
        }
        // A handler that already loaded our target may still be writing to it; wait so nothing writes
        // to the waker after this returns (it is closed when the reactor is freed).
        while HANDLERS_RUNNING.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        for &signal in &self.signals {
            let index = signal as usize;
            installed.users[index] -= 1;
            if installed.users[index] == 0 {
                if let Some(old) = installed.previous[index].take() {
                    // SAFETY: restoring a disposition sigaction gave us.
                    unsafe { libc::sigaction(signal, &old, std::ptr::null_mut()) };
                }
            }
        }
    }
}

fn install(signal: c_int) -> Option<libc::sigaction> {
    // SAFETY: zeroed sigaction structs are valid; fields are set before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, &action, &mut old) == 0).then_some(old)
    }
}

/// What a reactor does about the signals it watches.
#[derive(Default)]
pub struct SignalWatchers {
    /// `any_delivered()` when this reactor last looked.
    any_seen: u64,
    /// The built-in SIGINT/SIGTERM stop while `run` is active: each signal and its count when seen.
    stop_on: Vec<(c_int, u64)>,
    registration: Option<SignalWatch>,
    /// The host's handlers, in the order added.
    handlers: Vec<HostHandler>,
    /// Per signal with handlers: its delivery count when last dispatched.
    host_seen: Vec<(c_int, u64)>,
    /// The watch for exactly the signals in `host_seen`.
    host_registration: Option<SignalWatch>,
    next_id: u64,
    /// The handler being called, and whether it removed itself meanwhile.
    running: Option<(u64, bool)>,
    /// The data of a handler that removed itself, released after its callback returns.
    deferred: Option<UserData>,
}

struct HostHandler {
    id: u64,
    signal: c_int,
    func: SignalFn,
    data: UserData,
}

impl SignalWatchers {
    fn has_host_handler(&self, signal: c_int) -> bool {
        self.host_seen.iter().any(|&(s, _)| s == signal)
    }

    /// A watch for exactly the signals in `host_seen` (none if empty); returns the old one, to drop
    /// after: the new watch takes its signals before the old one lets go, so no disposition flips
    /// back in between.
    fn rewatch(&mut self, wake: WakeTarget) -> Option<SignalWatch> {
        let signals: Vec<c_int> = self.host_seen.iter().map(|&(s, _)| s).collect();
        let watch = (!signals.is_empty()).then(|| SignalWatch::start(&signals, wake));
        std::mem::replace(&mut self.host_registration, watch)
    }

    /// Every host handler's data, for reactor teardown (the watch goes with `self`).
    pub fn take_host_handlers(&mut self) -> Vec<UserData> {
        self.host_seen.clear();
        self.host_registration = None;
        let mut all: Vec<UserData> = self.handlers.drain(..).map(|h| h.data).collect();
        all.extend(self.deferred.take());
        all
    }
}

const STOP_SIGNALS: [c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Whether a host may handle `signal` (API.md §8.2, §8.6): a catchable signal that is not a
/// synchronous fault and not one the C library reserves for itself.
fn valid_host_signal(signal: c_int) -> bool {
    if signal < 1 || signal as usize >= MAX_SIGNAL.min(libc_nsig()) {
        return false;
    }
    let refused = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
    ];
    !refused.contains(&signal) && !reserved_by_libc(signal)
}

/// A signal number a process may be sent (API.md §8.6): 1..NSIG-1, not one the C library keeps.
pub(crate) fn valid_signal_number(signal: c_int) -> bool {
    signal >= 1 && (signal as usize) < MAX_SIGNAL.min(libc_nsig()) && !reserved_by_libc(signal)
}

#[cfg(target_os = "linux")]
fn libc_nsig() -> usize {
    65
}

#[cfg(not(target_os = "linux"))]
fn libc_nsig() -> usize {
    32
}

/// glibc keeps the first two real-time signals (32 and 33) for its threads and timers; SIGRTMIN is
/// above them.
#[cfg(target_os = "linux")]
fn reserved_by_libc(signal: c_int) -> bool {
    signal >= 32 && signal < libc::SIGRTMIN()
}

#[cfg(not(target_os = "linux"))]
fn reserved_by_libc(_signal: c_int) -> bool {
    false
}

impl Reactor {
    /// `run` starts: with `install_signal_handlers`, SIGINT/SIGTERM stop this reactor until it returns.
    pub(super) fn watch_stop_signals(&self) {
        if !self.options.install_signal_handlers {
            return;
        }
        let mut watchers = self.signals.borrow_mut();
        watchers.any_seen = any_delivered();
        watchers.stop_on = STOP_SIGNALS.iter().map(|&s| (s, delivered(s))).collect();
        watchers.registration = Some(SignalWatch::start(&STOP_SIGNALS, self.waker.get()));
    }

    /// `run` returns: the dispositions come back when no other reactor needs them.
    pub(super) fn unwatch_stop_signals(&self) {
        let registration = {
            let mut watchers = self.signals.borrow_mut();
            watchers.stop_on.clear();
            watchers.registration.take()
        };
        drop(registration);
    }

    /// `reactor_add_signal_handler`: on error `data` goes back to the host unreleased.
    pub fn add_signal_handler(&self, signal: c_int, func: SignalFn, data: UserData) -> Result<u64> {
        if !valid_host_signal(signal) {
            data.into_raw();
            return Err(Error::Invalid);
        }
        let (id, old_registration) = {
            let mut watchers = self.signals.borrow_mut();
            watchers.next_id += 1;
            let id = watchers.next_id;
            watchers.handlers.push(HostHandler {
                id,
                signal,
                func,
                data,
            });
            let mut old = None;
            if !watchers.has_host_handler(signal) {
                if watchers.host_seen.is_empty() {
                    watchers.any_seen = any_delivered();
                }
                watchers.host_seen.push((signal, delivered(signal)));
                old = watchers.rewatch(self.waker.get());
            }
            (id, old)
        };
        drop(old_registration);
        Ok(id)
    }

    /// `reactor_remove_signal_handler`: releases now, unless the handler is removing itself from its
    /// own callback (then after it returns).
    pub fn remove_signal_handler(&self, id: u64) -> Result<()> {
        let (removed, old_registration) = {
            let mut watchers = self.signals.borrow_mut();
            let position = watchers
                .handlers
                .iter()
                .position(|h| h.id == id)
                .ok_or(Error::NotFound)?;
            let handler = watchers.handlers.remove(position);
            let signal = handler.signal;
            let mut old = None;
            if !watchers.handlers.iter().any(|h| h.signal == signal) {
                watchers.host_seen.retain(|&(s, _)| s != signal);
                old = watchers.rewatch(self.waker.get());
            }
            let removed = if matches!(watchers.running, Some((running, _)) if running == id) {
                // Its own callback is on the stack: released once it returns.
                watchers.running = Some((id, true));
                watchers.deferred = Some(handler.data);
                None
            } else {
                Some(handler.data)
            };
            (removed, old)
        };
        drop(old_registration);
        drop(removed);
        Ok(())
    }

    /// One load per pass; acts on deliveries since the last look.
    pub(super) fn check_signals(&self) {
        let any = any_delivered();
        let (stop, host_signals) = {
            let mut watchers = self.signals.borrow_mut();
            if watchers.any_seen == any {
                return;
            }
            watchers.any_seen = any;
            let mut stop = false;
            let watchers = &mut *watchers;
            for (signal, seen) in &mut watchers.stop_on {
                let now = delivered(*signal);
                if now != *seen {
                    *seen = now;
                    // A host handler for the signal replaces the built-in stop (API.md §8.6).
                    if !watchers.host_seen.iter().any(|&(s, _)| s == *signal) {
                        stop = true;
                    }
                }
            }
            let mut host_signals = Vec::new();
            for (signal, seen) in &mut watchers.host_seen {
                let now = delivered(*signal);
                if now != *seen {
                    *seen = now;
                    host_signals.push(*signal);
                }
            }
            (stop, host_signals)
        };
        for signal in host_signals {
            self.dispatch_signal(signal);
        }
        if stop && self.stop().is_ok() {
            self.log(REACTOR_LOG_INFO, "SIGINT/SIGTERM received: stopping");
        }
    }

    /// Calls the handlers of `signal` that exist now, in the order added (one added meanwhile
    /// misses this delivery; one removed meanwhile is not called).
    fn dispatch_signal(&self, signal: c_int) {
        let ids: Vec<u64> = self
            .signals
            .borrow()
            .handlers
            .iter()
            .filter(|h| h.signal == signal)
            .map(|h| h.id)
            .collect();
        for id in ids {
            let call = {
                let mut watchers = self.signals.borrow_mut();
                let found = watchers
                    .handlers
                    .iter()
                    .find(|h| h.id == id)
                    .map(|h| (h.func, h.data.ptr()));
                if found.is_some() {
                    watchers.running = Some((id, false));
                }
                found
            };
            let Some((func, ud)) = call else { continue };
            self.invoke(|| call_signal(func, self.handle(), signal, ud));
            let deferred = {
                let mut watchers = self.signals.borrow_mut();
                watchers.running = None;
                watchers.deferred.take()
            };
            drop(deferred);
            if self.is_crashing() {
                return;
            }
        }
    }
}
