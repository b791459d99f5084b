//! Signals, process-wide: one handler for every signal the library watches, shared by all reactors.
//!
//! The handler only counts the delivery (per signal, plus one counter for "any") and writes the wakers
//! of the reactors that watch signals: async-signal-safe. Each reactor compares the "any" counter on
//! every pass (one load) and, when it moved, looks at the signals it watches. A signal's disposition
//! is installed when its first watcher appears and the previous one restored when its last goes
//! (`SignalWatch` is that registration). Today the watchers are the built-in SIGINT/SIGTERM stop of
//! `install_signal_handlers`; host handlers (API.md §8.2) will be watchers of the same kind.

use super::Reactor;
use crate::backend::WakeTarget;
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
}

const STOP_SIGNALS: [c_int; 2] = [libc::SIGINT, libc::SIGTERM];

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

    /// One load per pass; acts on deliveries since the last look.
    pub(super) fn check_signals(&self) {
        let any = any_delivered();
        let stop = {
            let mut watchers = self.signals.borrow_mut();
            if watchers.any_seen == any {
                return;
            }
            watchers.any_seen = any;
            let mut stop = false;
            for (signal, seen) in &mut watchers.stop_on {
                let now = delivered(*signal);
                if now != *seen {
                    *seen = now;
                    stop = true;
                }
            }
            stop
        };
        if stop && self.stop().is_ok() {
            self.log(REACTOR_LOG_INFO, "SIGINT/SIGTERM received: stopping");
        }
    }
}
