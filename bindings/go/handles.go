package reactor

import (
	"fmt"
	"os"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Every Go value handed to the library (a callback, a trigger, a job) crosses as a runtime/cgo.Handle
// passed as the C user_data, and the library's release hook (goReactorRelease) deletes it exactly once:
// after the last call, on cancel or removal, or inside reactor_free / reactor_threadpool_free. The
// counter below tracks the handles currently owned by the library (plus the per-reactor log handle), so
// tests and users can check that nothing leaks.

var liveHandles atomic.Int64

// LiveHandles returns the number of cgo handles the binding has handed to libreactor and that have not
// been released yet, over all reactors and pools of the process. After every Reactor and ThreadPool is
// closed it is 0; a growing number means registrations that are never released.
func LiveHandles() int { return int(liveHandles.Load()) }

func newHandle(v any) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

// dropHandle deletes a handle: from the release hook, or when a call failed and the library did not
// take ownership of it.
func dropHandle(h cgo.Handle) {
	h.Delete()
	liveHandles.Add(-1)
}

// errorSink receives what goes wrong inside callbacks: recovered panics and trigger errors. It records
// panics and passes every error to the configured handler (default: print to stderr).
type errorSink struct {
	mu      sync.Mutex
	handler func(error)
	logger  func(LogLevel, string)
	panics  []*PanicError // the first maxRecordedPanics
	npanics uint64
}

const maxRecordedPanics = 64

// catch must be deferred directly (defer s.catch("...")) so that its recover() stops the panic.
func (s *errorSink) catch(where string) {
	if p := recover(); p != nil {
		s.reportPanic(where, p)
	}
}

func (s *errorSink) reportPanic(where string, p any) *PanicError {
	pe := &PanicError{Where: where, Value: p, Stack: debug.Stack()}
	s.mu.Lock()
	s.npanics++
	if len(s.panics) < maxRecordedPanics {
		s.panics = append(s.panics, pe)
	}
	s.mu.Unlock()
	s.report(pe)
	return pe
}

func (s *errorSink) report(err error) {
	s.mu.Lock()
	handler, logger := s.handler, s.logger
	s.mu.Unlock()
	// A panicking handler must not unwind through the library either.
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "reactor: error handler panicked: %v (while reporting: %v)\n", p, err)
		}
	}()
	switch {
	case handler != nil:
		handler(err)
	case logger != nil:
		logger(LogError, err.Error())
	default:
		fmt.Fprintf(os.Stderr, "%v\n", err)
		if pe, ok := err.(*PanicError); ok {
			os.Stderr.Write(pe.Stack)
		}
	}
}

func (s *errorSink) setHandler(h func(error)) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func (s *errorSink) recorded() ([]*PanicError, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*PanicError(nil), s.panics...), s.npanics
}

// strayPanic reports a panic that happened where no sink is known (e.g. a bad handle).
func strayPanic(where string) {
	if p := recover(); p != nil {
		fmt.Fprintf(os.Stderr, "reactor: panic in %s trampoline: %v\n%s", where, p, debug.Stack())
	}
}

// Handle payloads, one type per kind of C callback.
type callback struct {
	sink *errorSink
	fn   func()
}

type timerCallback struct {
	sink *errorSink
	fn   func()
	dc   *DelayedCall
}

type fdCallback struct {
	sink *errorSink
	fn   func(fd int, events Events)
}

type trigger struct {
	r     *Reactor
	event string
	phase Phase
	fn    func() error          // plain trigger
	held  func(complete func()) // BEFORE trigger that holds the event until complete() is called
}
