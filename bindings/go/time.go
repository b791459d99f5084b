package reactor

/*
#include "shim.h"
*/
import "C"

import (
	"math"
	"sync/atomic"
	"time"
)

// liveDelayedCalls counts the reactor_delayed_call_t handles the binding holds.
var liveDelayedCalls atomic.Int64

type dcState uint8

const (
	dcPending dcState = iota
	dcCalled
	dcCancelled
	dcClosed // the reactor was closed before the call ran
)

// DelayedCall is a handle to a call scheduled with CallLater (Twisted's IDelayedCall). It stays valid
// whatever happened to the call: after it ran (also from inside its own callback), Cancel, Reset and
// Delay return ErrAlreadyCalled; after Cancel, ErrAlreadyCancelled; after the reactor's Close,
// ErrClosed. Its methods belong to the reactor goroutine (elsewhere: ErrWrongThread, false or NaN).
//
// The library's C handle is released deterministically by the call's release hook: when the call has
// run, when it is cancelled, or inside Close. The DelayedCall then answers from what the binding
// recorded, so it needs no finalizer and holding on to it costs no C resources.
type DelayedCall struct {
	r     *Reactor
	c     *C.reactor_delayed_call_t // nil once released
	state dcState
	when  float64 // the time the call is (or was last) scheduled for
}

// CallLater schedules fn to run on the reactor goroutine after d (>= 0; negative: ErrInvalid). Calls
// due at the same time run in the order they were scheduled; a call scheduled from a timer callback
// with d = 0 runs on the next pass. Reactor goroutine only.
func (r *Reactor) CallLater(d time.Duration, fn func()) (*DelayedCall, error) {
	if fn == nil {
		return nil, &Error{Status: int(C.REACTOR_E_INVALID), Op: "CallLater"}
	}
	if r.closed.Load() {
		return nil, r.errClosed("CallLater")
	}
	dc := &DelayedCall{r: r}
	h := newHandle(&timerCallback{sink: r.sink, fn: fn, dc: dc})
	var when C.double
	if err := statusErr("CallLater", C.goreactor_call_later(r.c, C.double(d.Seconds()), C.uintptr_t(h), &dc.c, &when)); err != nil {
		dropHandle(h)
		return nil, err
	}
	liveDelayedCalls.Add(1)
	dc.when = float64(when)
	return dc, nil
}

// finish runs in the release hook: the library dropped the call, so drop the C handle too.
func (d *DelayedCall) finish() {
	if d.c != nil {
		C.reactor_delayed_call_release(d.c)
		d.c = nil
		liveDelayedCalls.Add(-1)
	}
	if d.state == dcPending {
		d.state = dcClosed
	}
}

// check returns the error for a call that is not pending, or for a caller off the reactor goroutine.
func (d *DelayedCall) check(op string) error {
	status := C.REACTOR_OK
	switch {
	case d.r.closed.Load():
		status = C.REACTOR_E_CLOSED // as the library answers for a freed reactor
	case !d.r.onThread():
		status = C.REACTOR_E_WRONG_THREAD
	case d.state == dcCalled:
		status = C.REACTOR_E_ALREADY_CALLED
	case d.state == dcCancelled:
		status = C.REACTOR_E_ALREADY_CANCELLED
	case d.state == dcClosed:
		status = C.REACTOR_E_CLOSED
	default:
		return nil
	}
	return &Error{Status: int(status), Op: op}
}

// onThread reports whether the caller is on the reactor's OS thread (the reactor goroutine).
func (r *Reactor) onThread() bool {
	if !r.gate.enter() {
		return false
	}
	defer r.gate.leave()
	return C.reactor_is_in_io_thread(r.c) == 1
}

// Cancel cancels the pending call: its function is dropped without running.
func (d *DelayedCall) Cancel() error {
	if err := d.check("Cancel"); err != nil {
		return err
	}
	d.state = dcCancelled // the release hook runs inside the C call
	if err := statusErr("Cancel", C.reactor_delayed_call_cancel(d.c)); err != nil {
		d.state = dcPending
		return err
	}
	return nil
}

// Reset reschedules the pending call to run after d from now (>= 0), in O(log n).
func (d *DelayedCall) Reset(after time.Duration) error {
	if err := d.check("Reset"); err != nil {
		return err
	}
	var when C.double
	if err := statusErr("Reset", C.goreactor_delayed_call_reset(d.c, C.double(after.Seconds()), &when)); err != nil {
		return err
	}
	d.when = float64(when)
	return nil
}

// Delay moves the pending call by by (negative moves it earlier, never before now).
func (d *DelayedCall) Delay(by time.Duration) error {
	if err := d.check("Delay"); err != nil {
		return err
	}
	var when C.double
	if err := statusErr("Delay", C.goreactor_delayed_call_delay(d.c, C.double(by.Seconds()), &when)); err != nil {
		return err
	}
	d.when = float64(when)
	return nil
}

// Active reports whether the call is still pending (neither run nor cancelled). False on other
// goroutines.
func (d *DelayedCall) Active() bool {
	return d.state == dcPending && d.r.onThread()
}

// Time returns when the call is (or was last) scheduled, in seconds on the reactor's clock (see
// Reactor.Seconds). NaN on other goroutines; after the reactor's Close, the last scheduled time.
func (d *DelayedCall) Time() float64 {
	if !d.r.closed.Load() && !d.r.onThread() {
		return math.NaN()
	}
	return d.when
}

// Seconds returns the clock delayed calls use: CLOCK_MONOTONIC seconds, or the manual clock (starting
// at 0). NaN on other goroutines.
func (r *Reactor) Seconds() float64 {
	if r.closed.Load() {
		return math.NaN()
	}
	return float64(C.reactor_seconds(r.c))
}

// Advance moves the manual clock forward by d and runs the calls that became due (WithManualClock
// only; otherwise ErrUnsupported). Reactor goroutine only.
func (r *Reactor) Advance(d time.Duration) error {
	if r.closed.Load() {
		return r.errClosed("Advance")
	}
	return statusErr("Advance", C.reactor_clock_advance(r.c, C.double(d.Seconds())))
}

// DelayedCallCount returns the number of pending delayed calls. Reactor goroutine only (others get 0).
func (r *Reactor) DelayedCallCount() int {
	if r.closed.Load() {
		return 0
	}
	return int(C.reactor_delayed_call_count(r.c))
}
