//! Host signal handlers at the C boundary (API.md §8.2).

use super::{on_owner, write_out};
use crate::callback::UserData;
use crate::status::Error;
use crate::types::*;
use std::os::raw::{c_int, c_void};

/// Calls `cb(r, signum, ud)` on the reactor thread, on a pass after `signum` is delivered (never in
/// signal context; deliveries before it runs may coalesce into one call). Handlers of one signal run
/// in the order added; every reactor with a handler for the signal gets it. The disposition is
/// installed with the first handler of the signal (any reactor) and the previous one restored when
/// the last goes. A handler for SIGINT or SIGTERM replaces the built-in stop of
/// `install_signal_handlers` for this reactor. `cb` NULL, SIGKILL, SIGSTOP, the synchronous fault
/// signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL), signals the C library reserves and numbers outside
/// 1..NSIG-1: `REACTOR_E_INVALID`, and `ud` stays the caller's. The handler's id goes to `out_id`
/// (may be NULL).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_add_signal_handler(
    r: *mut reactor_t,
    signum: c_int,
    cb: reactor_signal_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out_id: *mut u64,
) -> c_int {
    on_owner(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        let id = reactor.add_signal_handler(signum, func, UserData::new(ud, release))?;
        // SAFETY: `out_id` is NULL or writable (the caller's contract).
        unsafe { write_out(out_id, id) };
        Ok(())
    })
}

/// Removes a signal handler: its release runs inside the call, or, when the handler removes itself
/// from its own callback, after that callback returns. It is not called again. Unknown or removed
/// id: `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remove_signal_handler(r: *mut reactor_t, id: u64) -> c_int {
    on_owner(r, |reactor| reactor.remove_signal_handler(id))
}
