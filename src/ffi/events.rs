//! System event triggers at the C boundary.

use super::{on_owner, write_out};
use crate::callback::UserData;
use crate::status::{Error, Result};
use crate::types::*;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

/// # Safety
/// `event` is NULL or a NUL-terminated string that outlives `'a`.
unsafe fn event_name<'a>(event: *const c_char) -> Result<&'a [u8]> {
    if event.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: a NUL-terminated string (the caller's contract); NULL was checked.
    Ok(unsafe { CStr::from_ptr(event) }.to_bytes())
}

/// Adds a one-shot trigger for `event` ("startup", "shutdown" or any name) in `phase`; its id goes to
/// `out_id` (may be NULL). A BEFORE trigger returning `REACTOR_PENDING` holds the event until
/// `reactor_trigger_complete(r, id)`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_add_system_event_trigger(
    r: *mut reactor_t,
    phase: reactor_phase_t,
    event: *const c_char,
    trigger: reactor_trigger_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out_id: *mut u64,
) -> c_int {
    on_owner(r, |reactor| {
        let phase = match phase {
            REACTOR_PHASE_BEFORE | REACTOR_PHASE_DURING | REACTOR_PHASE_AFTER => phase as usize,
            _ => return Err(Error::Invalid),
        };
        // SAFETY: the caller passes a NUL-terminated string (or NULL, refused).
        let name = unsafe { event_name(event)? };
        let func = trigger.ok_or(Error::Invalid)?;
        let id = reactor.add_system_event_trigger(phase, name, func, UserData::new(ud, release));
        // SAFETY: `out_id` is NULL or writable (the caller's contract).
        unsafe { write_out(out_id, id) };
        Ok(())
    })
}

/// Removes a trigger that has not run yet (its release runs). Unknown or already-run id:
/// `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remove_system_event_trigger(r: *mut reactor_t, id: u64) -> c_int {
    on_owner(r, |reactor| reactor.remove_system_event_trigger(id))
}

/// Fires `event`: its triggers run before this returns, unless a BEFORE trigger holds it (then DURING
/// and AFTER run on the loop's pass after the last completion). Firing an event that is still firing,
/// or "startup"/"shutdown" inside `run`, gives `REACTOR_E_BUSY`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_fire_system_event(
    r: *mut reactor_t,
    event: *const c_char,
) -> c_int {
    // SAFETY: the caller passes a NUL-terminated string (or NULL, refused).
    on_owner(r, |reactor| {
        reactor.fire_system_event(unsafe { event_name(event)? })
    })
}

/// Completes a BEFORE trigger that returned `REACTOR_PENDING`. Not pending: `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_trigger_complete(r: *mut reactor_t, trigger_id: u64) -> c_int {
    on_owner(r, |reactor| reactor.trigger_complete(trigger_id))
}

/// Like `reactor_trigger_complete`, but when `trigger_id` was the last BEFORE trigger holding its
/// event, the event's DURING and AFTER triggers run before this returns, as Twisted continues an event
/// inside the callback of the Deferred that held it. For "startup" and "shutdown" inside `run` the
/// rest still runs on the loop's next pass (the loop's own state changes with them). Not pending:
/// `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_trigger_complete_now(r: *mut reactor_t, trigger_id: u64) -> c_int {
    on_owner(r, |reactor| reactor.trigger_complete_now(trigger_id))
}
