package reactor

import (
	"runtime"
	"sync/atomic"
	"time"
)

// gate orders a C object's any-thread functions before its free, so that Go callers get ErrClosed,
// never a status about a handle that is already gone (libreactor itself keeps such races safe: a call
// racing reactor_free gets in first or returns REACTOR_E_INVALID, and the free returns
// REACTOR_E_BUSY while a call is inside). Users enter and leave around each C call; close makes new
// entries fail at once and
// waits for the calls already inside, which are short and never block. Unlike a RWMutex, a closed or
// closing gate never blocks a caller: a pool job calling CallFromThread while Close joins the pool
// gets ErrClosed instead of deadlocking.
type gate struct {
	state atomic.Int64 // closingBit | number of callers inside
}

const closingBit = int64(1) << 62

// enter returns false once the gate is closing or closed.
func (g *gate) enter() bool {
	if g.state.Add(1)&closingBit != 0 {
		g.state.Add(-1)
		return false
	}
	return true
}

func (g *gate) leave() { g.state.Add(-1) }

// close marks the gate closing and waits until no caller is inside. It returns false if the gate was
// already closing or closed.
func (g *gate) close() bool {
	for {
		s := g.state.Load()
		if s&closingBit != 0 {
			return false
		}
		if g.state.CompareAndSwap(s, s|closingBit) {
			break
		}
	}
	for spins := 0; g.state.Load() != closingBit; spins++ {
		if spins < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(10 * time.Microsecond)
		}
	}
	return true
}

// reopen undoes close (when freeing failed, e.g. ErrBusy).
func (g *gate) reopen() { g.state.Add(-closingBit) }
