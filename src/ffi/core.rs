//! IReactorCore at the C boundary: versions, status strings, create/free, run/stop/crash/iterate,
//! logging, statistics, embedding and the fault-injection hook for tests.

use super::{
    check_struct_size, guarded, guarded_value, on_any_thread, on_owner, on_owner_adopting,
    read_owner, write_out, write_versioned,
};
use crate::backend::BackendKind;
use crate::callback::{Callback, UserData};
use crate::reactor::entry::{self, REACTORS};
use crate::reactor::{FaultPoint, Options};
use crate::status::{self, Error, Result};
use crate::types::*;
use std::os::raw::{c_char, c_int, c_uint, c_void};

const fn parse_version(text: &str) -> c_uint {
    let bytes = text.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as c_uint;
        i += 1;
    }
    value
}

const VERSION_MAJOR: c_uint = parse_version(env!("CARGO_PKG_VERSION_MAJOR"));
const VERSION_MINOR: c_uint = parse_version(env!("CARGO_PKG_VERSION_MINOR"));
const VERSION_PATCH: c_uint = parse_version(env!("CARGO_PKG_VERSION_PATCH"));

/// The library version as `(MAJOR << 16) | (MINOR << 8) | PATCH`, like `REACTOR_VERSION_HEX`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_version() -> c_uint {
    (VERSION_MAJOR << 16) | (VERSION_MINOR << 8) | VERSION_PATCH
}

/// The library version as "MAJOR.MINOR.PATCH" (static storage).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static description of a status code; never NULL, also for unknown codes.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_strerror(status: c_int) -> *const c_char {
    guarded_value(c"internal error".as_ptr(), || {
        status::strerror(status).as_ptr()
    })
}

/// The errno inside a `REACTOR_E_OS(errno)` status, or 0 for any other status.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_status_errno(status: c_int) -> c_int {
    status::status_errno(status)
}

/// The status for an OS error: `REACTOR_E_OS(errno)` as a function, for languages that cannot use the
/// macro (Swift, cgo). Values outside 1..=4095 give `REACTOR_E_OS(EIO)`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_status_from_errno(error_number: c_int) -> c_int {
    status::os_status(error_number)
}

fn default_options() -> reactor_options_t {
    reactor_options_t {
        struct_size: std::mem::size_of::<reactor_options_t>() as u32,
        backend: REACTOR_BACKEND_DEFAULT,
        install_signal_handlers: 1,
        manual_clock: 0,
        thread_pool_max: 10,
    }
}

/// Fills `o` with the defaults (and its `struct_size`). NULL is ignored.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_options_init(o: *mut reactor_options_t) {
    // SAFETY: the caller passes NULL or a writable struct.
    unsafe { write_out(o, default_options()) }
}

fn backend_from(choice: reactor_backend_t) -> Result<BackendKind> {
    match choice {
        REACTOR_BACKEND_EPOLL => Ok(BackendKind::Epoll),
        REACTOR_BACKEND_POLL => Ok(BackendKind::Poll),
        REACTOR_BACKEND_KQUEUE => Ok(BackendKind::Kqueue),
        REACTOR_BACKEND_DEFAULT => match std::env::var("REACTOR_BACKEND") {
            Ok(name) if !name.is_empty() => BackendKind::from_name(&name).ok_or(Error::Invalid),
            _ => Ok(BackendKind::platform_default()),
        },
        _ => Err(Error::Invalid),
    }
}

/// # Safety
/// `o` is NULL or points to a `reactor_options_t` of at least `o->struct_size` bytes.
unsafe fn read_options(o: *const reactor_options_t) -> Result<Options> {
    // SAFETY: the caller vouches for the struct.
    let raw = unsafe { super::read_versioned(o, Some(default_options)) }?;
    if raw.thread_pool_max == 0 {
        return Err(Error::Invalid);
    }
    Ok(Options {
        backend: backend_from(raw.backend)?,
        install_signal_handlers: raw.install_signal_handlers != 0,
        manual_clock: raw.manual_clock != 0,
        thread_pool_max: raw.thread_pool_max,
    })
}

/// Creates a reactor owned by the calling thread. `o` NULL = defaults; `REACTOR_BACKEND` in the
/// environment overrides `REACTOR_BACKEND_DEFAULT` (unknown name: `REACTOR_E_INVALID`).
///
/// Thread-safety: any thread (the new reactor belongs to it until it is first run).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_new(
    o: *const reactor_options_t,
    out: *mut *mut reactor_t,
) -> c_int {
    guarded(|| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: forwarded caller contract.
        let options = unsafe { read_options(o)? };
        let handle = entry::create(options)?;
        // SAFETY: `out` is non-NULL and writable (the caller's contract).
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Frees a reactor nobody is using; every pending registration's release runs inside (no other
/// callback). NULL is OK; a freed or unknown handle gives `REACTOR_E_INVALID`; while any call on the
/// reactor is in progress — `run`, `iterate`, a callback, or a call from another thread —
/// `REACTOR_E_BUSY`. Afterwards every function on the handle returns `REACTOR_E_INVALID`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_free(r: *mut reactor_t) -> c_int {
    if r.is_null() {
        return status::to_status(Ok(()));
    }
    guarded(|| {
        // Between the daemonize hooks the reactor is not to be touched (API.md §8.4).
        if REACTORS.with(r.cast(), |entry| entry.shared.is_daemonizing()) == Some(true) {
            return Err(Error::Busy);
        }
        entry::free(r)
    })
}

/// Prepares the reactor for the host to fork and `setsid` (Twisted's IReactorDaemonize, API.md §8.4;
/// twistd calls it before the reactor runs). Until `reactor_after_daemonize`, every other call on the
/// reactor returns `REACTOR_E_BUSY` (calls queued from other threads wait and run afterwards).
/// Refused with `REACTOR_E_BUSY` inside `run`/`iterate` or a callback, when already called, and while
/// the reactor's thread pool has threads (a forked child would not have them: daemonize before the
/// first `reactor_call_in_thread`).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_before_daemonize(r: *mut reactor_t) -> c_int {
    on_owner(r, |reactor| reactor.before_daemonize())
}

/// After `reactor_before_daemonize` (and the host's fork/setsid), in whichever process calls it: a
/// fresh kernel poller and waker of the same backend, with every registration (host fds, the
/// library's sockets) re-added; timers, thread calls and system event triggers carry on. A host fd
/// closed in between loses its registration (its release runs). Without `reactor_before_daemonize` →
/// `REACTOR_E_INVALID`. The old poller and waker stay open until `reactor_free` (another thread may
/// still write to the old waker), so a host that forks for other reasons need not call these: only the
/// process that keeps using the reactor must, and only that one.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_after_daemonize(r: *mut reactor_t) -> c_int {
    let result = entry::claim(r, false).and_then(|claim| {
        super::claimed_daemonizing(&claim, |claim| {
            let reactor = entry::reactor(claim);
            reactor.after_daemonize()?;
            claim.set_backend_fd(reactor.backend_fd());
            Ok(())
        })
    });
    status::to_status(result)
}

/// Fires startup and runs the loop until `reactor_stop` (then shutdown) or `reactor_crash`.
/// Errors: `REACTOR_E_ALREADY_RUNNING` (inside a callback), `REACTOR_E_NOT_RESTARTABLE` (after a run
/// ended by stop), `REACTOR_E_BUSY` (another thread is inside a call on it).
///
/// Thread-safety: the owner; or any thread while the reactor is idle (not inside `run`, `iterate` or
/// any other call), which then becomes its owner. Racing threads: exactly one wins.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_run(r: *mut reactor_t) -> c_int {
    on_owner_adopting(r, |claim| {
        entry::reactor(claim).run(|| entry::close_to_other_threads(claim))
    })
}

/// Asks a running reactor to stop: shutdown triggers run on the loop's next pass, then `run` returns.
/// `REACTOR_E_NOT_RUNNING` if not running or already stopping.
///
/// Thread-safety: reactor thread only (use `reactor_call_from_thread` from others).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_stop(r: *mut reactor_t) -> c_int {
    on_owner(r, |reactor| reactor.stop())
}

/// Ends `run` once the current callback returns, without shutdown triggers; `run` may be called again.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_crash(r: *mut reactor_t) -> c_int {
    on_owner(r, |reactor| reactor.crash())
}

/// One pass of the loop without `run`: due timers and thread calls, one poll of at most `timeout_s`
/// seconds (< 0: until something is dispatched), dispatch. Fires no system events.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_iterate(r: *mut reactor_t, timeout_s: f64) -> c_int {
    on_owner(r, |reactor| reactor.iterate(timeout_s))
}

/// 1 from DURING-startup until DURING-shutdown, else 0 (also for bad handles and foreign threads).
///
/// Thread-safety: reactor thread; other threads get 0.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_is_running(r: *const reactor_t) -> c_int {
    read_owner(r, 0, |reactor| reactor.is_running() as c_int)
}

/// Calls `cb` at once if running, else when the reactor has started (an AFTER-startup trigger).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_when_running(
    r: *mut reactor_t,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    on_owner(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        reactor.call_when_running(Callback {
            func,
            data: UserData::new(ud, release),
        });
        Ok(())
    })
}

/// "epoll", "poll" or "kqueue"; "invalid" for a bad handle. Static storage.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_backend_name(r: *const reactor_t) -> *const c_char {
    let name = REACTORS
        .with(r.cast(), |entry| entry.backend_name())
        .unwrap_or("invalid");
    match name {
        "epoll" => c"epoll",
        "poll" => c"poll",
        "kqueue" => c"kqueue",
        _ => c"invalid",
    }
    .as_ptr()
}

/// Routes the reactor's log messages to `fn` (NULL restores the default: errors to stderr).
/// `ud` is borrowed, not owned: it must outlive the registration.
///
/// Thread-safety: reactor thread only; calls from other threads are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_set_log_fn(r: *mut reactor_t, log_fn: reactor_log_fn, ud: *mut c_void) {
    on_owner(r, |reactor| {
        reactor.set_log(log_fn.map(|f| (f, ud)));
        Ok(())
    });
}

/// Copies loop statistics into `out`. Set `out->struct_size` first; a larger struct than this
/// library knows must have its unknown trailing bytes zero (else `REACTOR_E_UNSUPPORTED`, nothing
/// written); they stay zero.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_stats(r: *const reactor_t, out: *mut reactor_stats_t) -> c_int {
    on_owner(r, |reactor| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: the caller's struct has `struct_size` bytes.
        let size = unsafe { check_struct_size(out)? };
        // SAFETY: as above; checked size.
        unsafe { write_versioned(out, reactor.stats(), size) };
        Ok(())
    })
}

/// A pollable fd (epoll) that becomes readable when the reactor has I/O, timers aside; -1 for backends
/// without one (poll) and for bad handles. Use with `reactor_backend_timeout_ms` and `reactor_iterate(r, 0)`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_backend_fd(r: *const reactor_t) -> c_int {
    REACTORS
        .with(r.cast(), |entry| entry.backend_fd())
        .unwrap_or(-1)
}

/// How long a host loop may sleep before calling `reactor_iterate(r, 0)`: -1 = no timer pending,
/// 0 = work is ready, else milliseconds to the earliest call (rounded up, clamped to INT_MAX).
/// Manual clock: 0 when a call is due, else -1.
///
/// Thread-safety: reactor thread; other threads get -1.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_backend_timeout_ms(r: *mut reactor_t) -> c_int {
    read_owner(r, -1, |reactor| reactor.poll_timeout_ms())
}

/// For tests of hosts and bindings: arms a one-shot internal panic at `point` —
/// `REACTOR_TEST_PANIC_NEXT_PASS` (the start of the next pass of `run`/`iterate`),
/// `REACTOR_TEST_PANIC_AFTER_CALLBACK` (right after the next host callback returns) or
/// `REACTOR_TEST_PANIC_IN_CALL` (inside the next reactor-thread call). The panic is caught at the C
/// boundary like any internal failure: the call in progress returns `REACTOR_E_INTERNAL`, the reactor
/// is poisoned (later calls return `REACTOR_E_INTERNAL`) and `reactor_free` still frees it and runs
/// every release. Unknown points: `REACTOR_E_INVALID`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_test_inject_panic(r: *mut reactor_t, point: u32) -> c_int {
    on_owner(r, |reactor| {
        reactor.arm_fault(FaultPoint::from_raw(point).ok_or(Error::Invalid)?);
        Ok(())
    })
}

/// Wakes the reactor's poll (coalesced with other pending wake-ups).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_wake_up(r: *mut reactor_t) -> c_int {
    on_any_thread(r, false, |entry| {
        entry.shared.force_wake();
        Ok(())
    })
}

/// 1 if the calling thread owns the reactor (the creator until the first run, then the running thread).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_is_in_io_thread(r: *const reactor_t) -> c_int {
    entry::is_owner(r) as c_int
}
