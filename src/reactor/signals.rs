//! SIGINT/SIGTERM handling for reactors created with `install_signal_handlers`.
//!
//! Signals are process-wide: every running reactor that asked for handlers stops on SIGINT/SIGTERM.
//! The handler only bumps a counter and writes to the registered reactors' wakers (async-signal-safe);
//! each reactor notices the counter change on its next pass and calls `stop`. The previous dispositions
//! come back when the last such reactor returns from `run`.

use super::shared::write_wakeup;
use std::os::raw::c_int;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

const MAX_WATCHERS: usize = 64;
const SIGNALS: [c_int; 2] = [libc::SIGINT, libc::SIGTERM];

static RECEIVED: AtomicU64 = AtomicU64::new(0);
static WAKE_FDS: [AtomicI32; MAX_WATCHERS] = [const { AtomicI32::new(-1) }; MAX_WATCHERS];
static HANDLERS_RUNNING: AtomicUsize = AtomicUsize::new(0);

struct Installed {
    watchers: usize,
    previous: Vec<(c_int, libc::sigaction)>,
}

// SAFETY: sigaction structs are plain data.
unsafe impl Send for Installed {}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    watchers: 0,
    previous: Vec::new(),
});

extern "C" fn on_signal(_signal: c_int) {
    HANDLERS_RUNNING.fetch_add(1, Ordering::SeqCst);
    // SAFETY: errno is thread-local; saved and restored so the interrupted code sees no change.
    let saved_errno = unsafe { *errno_location() };
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    for slot in &WAKE_FDS {
        let fd = slot.load(Ordering::SeqCst);
        if fd >= 0 {
            write_wakeup(fd);
        }
    }
    // SAFETY: as above.
    unsafe { *errno_location() = saved_errno };
    HANDLERS_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(target_os = "linux")]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(not(target_os = "linux"))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}

/// How many SIGINT/SIGTERM the process has received since start.
pub fn received() -> u64 {
    RECEIVED.load(Ordering::SeqCst)
}

/// A running reactor's registration; dropping it unregisters (and restores dispositions if last).
pub struct SignalWatch {
    slot: Option<usize>,
}

impl SignalWatch {
    pub fn start(wake_fd: c_int) -> SignalWatch {
        let Ok(mut installed) = INSTALLED.lock() else {
            return SignalWatch { slot: None };
        };
        if installed.watchers == 0 {
            installed.previous = SIGNALS
                .iter()
                .filter_map(|&sig| install(sig).map(|old| (sig, old)))
                .collect();
        }
        installed.watchers += 1;
        let slot = WAKE_FDS.iter().position(|s| {
            s.compare_exchange(-1, wake_fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        SignalWatch { slot }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        let Ok(mut installed) = INSTALLED.lock() else {
            return;
        };
        if let Some(slot) = self.slot {
            WAKE_FDS[slot].store(-1, Ordering::SeqCst);
        }
        // A handler that already loaded our fd may still be writing to it; the fd stays open until the
        // reactor is freed, but wait anyway so nothing writes after `run` returned.
        while HANDLERS_RUNNING.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        installed.watchers -= 1;
        if installed.watchers == 0 {
            for (sig, old) in installed.previous.drain(..) {
                // SAFETY: restoring a disposition sigaction gave us.
                unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
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
