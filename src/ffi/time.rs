//! IReactorTime and IDelayedCall at the C boundary.

use super::{Adopt, guard, on_reactor, on_reactor_or, reactor_ref, read_reactor, write_out};
use crate::callback::{Callback, UserData};
use crate::handles::HandleTable;
use crate::status::{Error, REACTOR_E_CLOSED};
use crate::time::{TimerRecord, TimerState};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// What a `reactor_delayed_call_t` handle holds: the call's shared record and its reactor's handle.
struct DelayedCall {
    reactor: *mut reactor_t,
    record: Arc<TimerRecord>,
}

// SAFETY: `reactor` is an opaque, table-checked token, never dereferenced directly.
unsafe impl Send for DelayedCall {}

static DELAYED_CALLS: HandleTable<DelayedCall> = HandleTable::new();

/// The reactor token and record behind a handle, copied out so the handle may be released meanwhile.
fn delayed_call(c: *const reactor_delayed_call_t) -> Option<(*mut reactor_t, Arc<TimerRecord>)> {
    let call = DELAYED_CALLS.get(c.cast())?;
    // SAFETY: live entry (checked by the table); handles must not race their own release.
    let call = unsafe { call.as_ref() };
    Some((call.reactor, call.record.clone()))
}

/// Schedules `cb(r, ud)` after `delay_s` seconds (>= 0, finite). With `out`, a handle to cancel, reset or
/// delay it is written there; the handle stays valid until `reactor_delayed_call_release`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_later(
    r: *mut reactor_t,
    delay_s: f64,
    cb: reactor_cb_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_delayed_call_t,
) -> c_int {
    on_reactor(r, |reactor| {
        let func = cb.ok_or(Error::Invalid)?;
        if !delay_s.is_finite() || delay_s < 0.0 {
            return Err(Error::Invalid);
        }
        let record = if out.is_null() {
            None
        } else {
            let record = Arc::new(TimerRecord::new());
            let handle = DELAYED_CALLS.insert(Box::new(DelayedCall {
                reactor: r,
                record: record.clone(),
            }))?;
            write_out(out, handle.cast());
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

fn on_delayed_call(
    c: *const reactor_delayed_call_t,
    body: impl FnOnce(&crate::reactor::Reactor, &Arc<TimerRecord>) -> crate::status::Result<()>,
) -> c_int {
    let Some((reactor, record)) = delayed_call(c) else {
        return Error::Invalid.code();
    };
    on_reactor_or(reactor, REACTOR_E_CLOSED, Adopt::No, |reactor| {
        body(reactor, &record)
    })
}

/// Cancels a pending call (its release runs). `REACTOR_E_ALREADY_CANCELLED`, `REACTOR_E_ALREADY_CALLED`
/// (also from inside its own callback), `REACTOR_E_CLOSED` if the reactor was freed.
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
    let Some((reactor, record)) = delayed_call(c) else {
        return 0;
    };
    read_reactor(reactor, 0, |_| {
        (record.state() == TimerState::Pending) as c_int
    })
}

/// The time (on `reactor_seconds`' clock) the call is, or was last, scheduled for. NaN for bad handles
/// and foreign threads; still answers after the reactor was freed.
///
/// Thread-safety: reactor thread; other threads get NaN.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_get_time(c: *const reactor_delayed_call_t) -> f64 {
    let Some((reactor, record)) = delayed_call(c) else {
        return f64::NAN;
    };
    if reactor_ref(reactor).is_none() {
        return record.time();
    }
    read_reactor(reactor, f64::NAN, |_| record.time())
}

/// Drops the caller's handle (the call itself stays scheduled). Releasing twice is harmless.
///
/// Thread-safety: any thread (garbage-collector finalizers run anywhere).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_release(c: *mut reactor_delayed_call_t) {
    guard(|| {
        drop(DELAYED_CALLS.remove(c.cast()));
        Ok(())
    });
}

/// Number of pending (not cancelled, not run) delayed calls.
///
/// Thread-safety: reactor thread; other threads get 0.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_delayed_call_count(r: *const reactor_t) -> usize {
    read_reactor(r, 0, |reactor| reactor.delayed_call_count())
}

/// The clock delayed calls use: CLOCK_MONOTONIC seconds, or the manual clock (starts at 0).
///
/// Thread-safety: reactor thread; other threads get NaN.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_seconds(r: *const reactor_t) -> f64 {
    read_reactor(r, f64::NAN, |reactor| reactor.seconds())
}

/// Manual clock only (`REACTOR_E_UNSUPPORTED` otherwise): moves time forward by `seconds` (>= 0,
/// finite) and runs the calls that became due.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_clock_advance(r: *mut reactor_t, seconds: f64) -> c_int {
    on_reactor(r, |reactor| reactor.clock_advance(seconds))
}
