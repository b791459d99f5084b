//! IReactorTime and IDelayedCall at the C boundary.
//!
//! A `reactor_delayed_call_t` is a handle to the call's shared record (its state and time) plus its
//! reactor's handle. It outlives both the call and the reactor: after `reactor_free` it keeps
//! reporting what happened to its call (`ALREADY_CALLED`, `ALREADY_CANCELLED`, or `CLOSED` for a call
//! still pending at free), until the host releases it.

use super::{claimed, guarded, on_owner, read_owner, write_out};
use crate::callback::{Callback, UserData};
use crate::handles::{DelayedCallTable, HandleTable};
use crate::reactor::Reactor;
use crate::reactor::entry::{self, REACTORS};
use crate::status::{Error, Result, to_status};
use crate::time::{TimerRecord, TimerState};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// What a `reactor_delayed_call_t` handle holds.
struct DelayedCall {
    /// The reactor's handle: an opaque, table-checked token.
    reactor: usize,
    record: Arc<TimerRecord>,
}

static DELAYED_CALLS: DelayedCallTable<DelayedCall> = HandleTable::new();

/// The reactor token and record behind a handle, copied out (the handle may be released meanwhile).
fn delayed_call(c: *const reactor_delayed_call_t) -> Option<(*const reactor_t, Arc<TimerRecord>)> {
    DELAYED_CALLS.with(c.cast(), |call| {
        (call.reactor as *const reactor_t, call.record.clone())
    })
}

/// Runs `body` on the call's reactor (claimed). If the reactor is gone, the record tells what became
/// of the call.
fn on_delayed_call(
    c: *const reactor_delayed_call_t,
    body: impl FnOnce(&Reactor, &Arc<TimerRecord>) -> Result<()>,
) -> c_int {
    let Some((r, record)) = delayed_call(c) else {
        return Error::Invalid.code();
    };
    let result = match entry::claim(r, false) {
        Ok(claim) => claimed(&claim, |claim| body(entry::reactor(claim), &record)),
        Err(Error::Invalid) => match record.state() {
            TimerState::Called => Err(Error::AlreadyCalled),
            TimerState::Cancelled => Err(Error::AlreadyCancelled),
            TimerState::Pending | TimerState::Closed => Err(Error::Closed),
        },
        Err(e) => Err(e),
    };
    to_status(result)
}

/// Schedules `cb(r, ud)` after `delay_s` seconds (>= 0, finite). With `out`, a handle to cancel, reset or
/// delay it is written there; the handle stays valid until `reactor_delayed_call_release`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_call_later(
    r: *mut reactor_t,
    delay_s: f64,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_delayed_call_t,
) -> c_int {
    on_owner(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        if !delay_s.is_finite() || delay_s < 0.0 {
            return Err(Error::Invalid);
        }
        let record = if out.is_null() {
            None
        } else {
            let record = Arc::new(TimerRecord::new());
            let handle = DELAYED_CALLS.insert(Box::new(DelayedCall {
                reactor: r as usize,
                record: record.clone(),
            }))?;
            // SAFETY: `out` is non-NULL and writable (the caller's contract).
            unsafe { write_out(out, handle.cast()) };
            Some(record)
        };
        reactor.call_later(
            delay_s,
            Callback {
                func,
                data: UserData::new(ud, release),
            },
            record,
        );
        Ok(())
    })
}

/// Cancels a pending call (its release runs). `REACTOR_E_ALREADY_CANCELLED`, `REACTOR_E_ALREADY_CALLED`
/// (also from inside its own callback); after `reactor_free` those, or `REACTOR_E_CLOSED` for a call
/// that was still pending then.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_cancel(c: *mut reactor_delayed_call_t) -> c_int {
    on_delayed_call(c, |reactor, record| reactor.cancel_call(record))
}

/// Reschedules a pending call to `seconds_from_now` (>= 0, finite), in O(log n).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_reset(
    c: *mut reactor_delayed_call_t,
    seconds_from_now: f64,
) -> c_int {
    on_delayed_call(c, |reactor, record| {
        reactor.reset_call(record, seconds_from_now)
    })
}

/// Moves a pending call by `seconds_later` (negative moves it earlier, never before now).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_delay(
    c: *mut reactor_delayed_call_t,
    seconds_later: f64,
) -> c_int {
    on_delayed_call(c, |reactor, record| {
        reactor.delay_call(record, seconds_later)
    })
}

/// 1 while the call is pending (not run, not cancelled), else 0.
///
/// Thread-safety: reactor thread; other threads and bad handles get 0.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_active(c: *const reactor_delayed_call_t) -> c_int {
    let Some((r, record)) = delayed_call(c) else {
        return 0;
    };
    read_owner(r, 0, |_| (record.state() == TimerState::Pending) as c_int)
}

/// The time (on `reactor_seconds`' clock) the call is, or was last, scheduled for. NaN for bad handles
/// and foreign threads; still answers after the reactor was freed.
///
/// Thread-safety: reactor thread; other threads get NaN.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_get_time(c: *const reactor_delayed_call_t) -> f64 {
    let Some((r, record)) = delayed_call(c) else {
        return f64::NAN;
    };
    if REACTORS.pin(r.cast()).is_none() {
        return record.time();
    }
    read_owner(r, f64::NAN, |_| record.time())
}

/// Drops the caller's handle (the call itself stays scheduled). Releasing twice is harmless.
///
/// Thread-safety: any thread (garbage-collector finalizers run anywhere).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_release(c: *mut reactor_delayed_call_t) {
    guarded(|| {
        drop(DELAYED_CALLS.remove(c.cast()));
        Ok(())
    });
}

/// Number of pending (not cancelled, not run) delayed calls.
///
/// Thread-safety: reactor thread; other threads get 0.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_count(r: *const reactor_t) -> usize {
    read_owner(r, 0, |reactor| reactor.delayed_call_count())
}

/// The clock delayed calls use: CLOCK_MONOTONIC seconds, or the manual clock (starts at 0).
///
/// Thread-safety: reactor thread; other threads get NaN.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_seconds(r: *const reactor_t) -> f64 {
    read_owner(r, f64::NAN, |reactor| reactor.seconds())
}

/// Manual clock only (`REACTOR_E_UNSUPPORTED` otherwise): moves time forward by `seconds` (>= 0,
/// finite) and runs the calls that became due.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_clock_advance(r: *mut reactor_t, seconds: f64) -> c_int {
    on_owner(r, |reactor| reactor.clock_advance(seconds))
}
