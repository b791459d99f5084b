//! IReactorCore at the C boundary: versions, status strings, create/free, run/stop/crash/iterate,
//! logging, statistics and embedding.

use super::{
    Adopt, REACTORS, guard, on_reactor, on_reactor_or, reactor_ref, read_reactor, write_out,
};
use crate::backend::BackendKind;
use crate::callback::{Callback, UserData};
use crate::reactor::{Options, Reactor};
use crate::status::{self, Error, REACTOR_E_INVALID, Result};
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
/// Largest versioned struct we accept (the kernel's extensible-struct rule caps at a page too).
const MAX_STRUCT_SIZE: usize = 4096;

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
    status::strerror(status).as_ptr()
}

/// The errno inside a `REACTOR_E_OS(errno)` status, or 0 for any other status.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_status_errno(status: c_int) -> c_int {
    status::status_errno(status)
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
    write_out(o, default_options());
}

/// Checks a versioned struct's `struct_size`: at least the first released size, and any bytes beyond
/// what this library knows must be zero (else `REACTOR_E_UNSUPPORTED`).
///
/// # Safety
/// `base` points to at least `size` readable bytes when `size` is in range.
unsafe fn check_struct_size(base: *const u8, size: usize, known: usize) -> Result<()> {
    if size < known || size > MAX_STRUCT_SIZE {
        return Err(Error::Invalid);
    }
    // SAFETY: the caller vouches for `size` bytes.
    let tail = unsafe { std::slice::from_raw_parts(base.add(known), size - known) };
    if tail.iter().any(|&b| b != 0) {
        Err(Error::Unsupported)
    } else {
        Ok(())
    }
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
    let raw = if o.is_null() {
        default_options()
    } else {
        // SAFETY: struct_size is the first field; the caller vouches for the struct.
        let size = unsafe { (*o).struct_size } as usize;
        // SAFETY: as above.
        unsafe { check_struct_size(o.cast(), size, std::mem::size_of::<reactor_options_t>())? };
        // SAFETY: at least our size is readable (checked above).
        unsafe { o.read() }
    };
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
    guard(|| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: forwarded caller contract.
        let options = unsafe { read_options(o)? };
        let handle = REACTORS
            .insert(Box::new(Reactor::new(options)?))?
            .cast::<reactor_t>();
        reactor_ref(handle)
            .ok_or(Error::Internal)?
            .set_handle(handle);
        write_out(out, handle);
        Ok(())
    })
}

/// Frees a reactor that is not running; every pending registration's release runs inside. NULL is OK;
/// a freed or unknown handle gives `REACTOR_E_INVALID`; inside `run`/`iterate` or a callback, `REACTOR_E_BUSY`.
///
/// Thread-safety: any thread, while the reactor is not running (must not race other calls on it).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_free(r: *mut reactor_t) -> c_int {
    if r.is_null() {
        return status::REACTOR_OK;
    }
    guard(|| {
        let reactor = reactor_ref(r).ok_or(Error::Invalid)?;
        if reactor.shared.is_active() || (reactor.shared.is_owner() && reactor.in_use_here()) {
            return Err(Error::Busy);
        }
        reactor.close_all_asyncs();
        let reactor = REACTORS.remove(r.cast()).ok_or(Error::Invalid)?;
        drop(reactor);
        Ok(())
    })
}

/// Fires startup and runs the loop until `reactor_stop` (then shutdown) or `reactor_crash`.
/// Errors: `REACTOR_E_ALREADY_RUNNING` (inside a callback), `REACTOR_E_NOT_RESTARTABLE` (after a run
/// ended by stop). The calling thread becomes the reactor's thread.
///
/// Thread-safety: any thread while the reactor is idle; it then belongs to this thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_run(r: *mut reactor_t) -> c_int {
    on_reactor_or(r, REACTOR_E_INVALID, Adopt::IfIdle, |reactor| reactor.run())
}

/// Asks a running reactor to stop: shutdown triggers run on the loop's next pass, then `run` returns.
/// `REACTOR_E_NOT_RUNNING` if not running or already stopping.
///
/// Thread-safety: reactor thread only (use `reactor_call_from_thread` from others).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_stop(r: *mut reactor_t) -> c_int {
    on_reactor(r, |reactor| reactor.stop())
}

/// Ends `run` once the current callback returns, without shutdown triggers; `run` may be called again.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_crash(r: *mut reactor_t) -> c_int {
    on_reactor(r, |reactor| reactor.crash())
}

/// One pass of the loop without `run`: due timers and thread calls, one poll of at most `timeout_s`
/// seconds (< 0: until something is dispatched), dispatch. Fires no system events.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_iterate(r: *mut reactor_t, timeout_s: f64) -> c_int {
    on_reactor(r, |reactor| reactor.iterate(timeout_s))
}

/// 1 from DURING-startup until DURING-shutdown, else 0 (also for bad handles and foreign threads).
///
/// Thread-safety: reactor thread; other threads get 0.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_is_running(r: *const reactor_t) -> c_int {
    read_reactor(r, 0, |reactor| reactor.is_running() as c_int)
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
    on_reactor(r, |reactor| {
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
    let name = match reactor_ref(r).map(|reactor| reactor.backend_name()) {
        Some("epoll") => c"epoll",
        Some("poll") => c"poll",
        Some("kqueue") => c"kqueue",
        _ => c"invalid",
    };
    name.as_ptr()
}

/// Routes the reactor's log messages to `fn` (NULL restores the default: errors to stderr).
/// `ud` is borrowed, not owned: it must outlive the registration.
///
/// Thread-safety: reactor thread only; calls from other threads are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_set_log_fn(r: *mut reactor_t, log_fn: reactor_log_fn, ud: *mut c_void) {
    on_reactor(r, |reactor| {
        reactor.set_log(log_fn.map(|f| (f, ud)));
        Ok(())
    });
}

/// Copies loop statistics into `out` (set `out->struct_size` first; bytes past what this library
/// knows are zeroed).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_stats(r: *const reactor_t, out: *mut reactor_stats_t) -> c_int {
    on_reactor(r, |reactor| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let known = std::mem::size_of::<reactor_stats_t>();
        // SAFETY: struct_size is the first field of the caller's struct.
        let size = unsafe { (*out).struct_size } as usize;
        if size < known || size > 4096 {
            return Err(Error::Invalid);
        }
        let mut stats = reactor.stats();
        stats.struct_size = size as u32;
        // SAFETY: the caller's struct has `size` >= `known` writable bytes.
        unsafe {
            out.write(stats);
            std::ptr::write_bytes(out.cast::<u8>().add(known), 0, size - known);
        }
        Ok(())
    })
}

/// A pollable fd (epoll) that becomes readable when the reactor has I/O, timers aside; -1 for backends
/// without one (poll) and for bad handles. Use with `reactor_backend_timeout_ms` and `reactor_iterate(r, 0)`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_backend_fd(r: *const reactor_t) -> c_int {
    reactor_ref(r)
        .map(|reactor| reactor.backend_fd())
        .unwrap_or(-1)
}

/// How long a host loop may sleep before calling `reactor_iterate(r, 0)`: -1 = no timer pending,
/// 0 = work is ready, else milliseconds to the earliest call (rounded up, clamped to INT_MAX).
/// Manual clock: 0 when a call is due, else -1.
///
/// Thread-safety: reactor thread; other threads get -1.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_backend_timeout_ms(r: *mut reactor_t) -> c_int {
    read_reactor(r, -1, |reactor| reactor.poll_timeout_ms())
}
