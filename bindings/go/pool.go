package reactor

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// resultJob is the handle value of a CallInThreadWithCallback job. The work half runs on a pool
// thread and the done half on the reactor goroutine; the mutex orders the two for Go's memory model
// (the library's own hand-off is invisible to the race detector).
type resultJob struct {
	sink *errorSink
	work func() (any, error)
	done func(any, error)

	mu  sync.Mutex
	val any
	err error
}

func (j *resultJob) runWork() {
	var val any
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = j.sink.reportPanic("work", p) // also delivered to done
			}
		}()
		val, err = j.work()
	}()
	j.mu.Lock()
	j.val, j.err = val, err
	j.mu.Unlock()
}

func (j *resultJob) runDone() {
	j.mu.Lock()
	val, err := j.val, j.err
	j.mu.Unlock()
	defer j.sink.catch("done")
	j.done(val, err)
}

// CallInThread runs fn once on the reactor's thread pool (Twisted's callInThread). Any goroutine. Jobs
// queued before Run wait for it; the pool is stopped (queued jobs still run) during shutdown. A panic
// in fn is recovered on the pool thread and reported to the error handler. After a run that ended with
// Stop, or after Close: ErrClosed.
func (r *Reactor) CallInThread(fn func()) error {
	if fn == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "CallInThread"}
	}
	h := newHandle(&callback{sink: r.sink, fn: fn})
	rc := C.int(C.REACTOR_E_CLOSED)
	if r.gate.enter() {
		rc = C.goreactor_call_in_thread(r.c, C.uintptr_t(h))
		r.gate.leave()
	}
	if err := statusErr("CallInThread", rc); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// CallInThreadWithCallback runs work on the reactor's thread pool, then done(result, err) on the
// reactor goroutine (Twisted's callInThreadWithCallback / deferToThread). Any goroutine. A panic in work
// is recovered, reported, and passed to done as a *PanicError. If the reactor shuts down or is closed
// before done could run, done is not called. After a run that ended with Stop, or after Close:
// ErrClosed.
func (r *Reactor) CallInThreadWithCallback(work func() (any, error), done func(any, error)) error {
	if work == nil || done == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "CallInThreadWithCallback"}
	}
	h := newHandle(&resultJob{sink: r.sink, work: work, done: done})
	rc := C.int(C.REACTOR_E_CLOSED)
	if r.gate.enter() {
		rc = C.goreactor_call_in_thread_with_callback(r.c, C.uintptr_t(h))
		r.gate.leave()
	}
	if err := statusErr("CallInThreadWithCallback", rc); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// DeferToThread runs work on r's thread pool and passes its result to done on the reactor goroutine:
// the typed form of CallInThreadWithCallback.
func DeferToThread[T any](r *Reactor, work func() (T, error), done func(T, error)) error {
	if work == nil || done == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "DeferToThread"}
	}
	return r.CallInThreadWithCallback(
		func() (any, error) { return work() },
		func(v any, err error) {
			t, _ := v.(T)
			done(t, err)
		})
}

// SuggestThreadPoolSize sets the maximum size of the reactor's pool (1..1024); before the pool
// starts, the size it will start with. Reactor goroutine only.
func (r *Reactor) SuggestThreadPoolSize(max int) error {
	if max <= 0 {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "SuggestThreadPoolSize"}
	}
	if r.closed.Load() {
		return r.errClosed("SuggestThreadPoolSize")
	}
	return statusErr("SuggestThreadPoolSize", C.reactor_suggest_thread_pool_size(r.c, C.size_t(max)))
}

// ThreadPool returns the reactor's own pool (created on first use; its workers start when the reactor
// runs) for Submit, Resize and Stats. It is borrowed: Stop returns ErrBusy (the reactor stops it
// during shutdown), Close does nothing, and it is unusable after the reactor's Close (ErrClosed).
// Reactor goroutine only (elsewhere: ErrWrongThread).
func (r *Reactor) ThreadPool() (*ThreadPool, error) {
	if !r.gate.enter() {
		return nil, r.errClosed("ThreadPool")
	}
	defer r.gate.leave()
	p := C.reactor_get_thread_pool(r.c)
	if p == nil {
		if C.reactor_is_in_io_thread(r.c) != 1 {
			return nil, &Error{Status: int(C.REACTOR_E_WRONG_THREAD), Op: "ThreadPool"}
		}
		return nil, &Error{Status: int(C.REACTOR_E_INVALID), Op: "ThreadPool"}
	}
	return &ThreadPool{c: p, sink: r.sink, g: &r.gate, owner: r}, nil
}

// ThreadPool is a pool of worker threads running Go functions: a standalone pool (NewThreadPool) or
// the reactor's pool, borrowed (Reactor.ThreadPool). Every method is safe from any goroutine. Work
// stealing spreads jobs over the workers; a job may submit more jobs.
type ThreadPool struct {
	c     *C.reactor_threadpool_t
	sink  *errorSink
	g     *gate    // the pool's own gate, or the owning reactor's
	owner *Reactor // non-nil for the reactor's borrowed pool
	own   gate
}

// NewThreadPool creates a pool of min..max workers (1 <= max <= 1024, min <= max). min workers start
// now; more start as jobs arrive, up to max; workers above min exit after 5 s without work. A panic in
// a job is recovered on its worker and reported to the pool's error handler (SetErrorHandler; default:
// print to stderr). Close the pool when done with it.
func NewThreadPool(min, max int) (*ThreadPool, error) {
	if min < 0 || max <= 0 {
		return nil, &Error{Status: int(C.REACTOR_E_INVALID), Op: "NewThreadPool"}
	}
	p := &ThreadPool{sink: &errorSink{}}
	p.g = &p.own
	if err := statusErr("NewThreadPool", C.reactor_threadpool_new(C.size_t(min), C.size_t(max), &p.c)); err != nil {
		return nil, err
	}
	return p, nil
}

// Submit queues fn to run once on a pool thread. After Stop or Close: ErrClosed.
func (p *ThreadPool) Submit(fn func()) error {
	if fn == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "Submit"}
	}
	h := newHandle(&callback{sink: p.sink, fn: fn})
	rc := C.int(C.REACTOR_E_CLOSED)
	if p.g.enter() {
		rc = C.goreactor_threadpool_submit(p.c, C.uintptr_t(h))
		p.g.leave()
	}
	if err := statusErr("Submit", rc); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// Resize changes the pool's sizes while it runs (same rules as NewThreadPool).
func (p *ThreadPool) Resize(min, max int) error {
	if min < 0 || max <= 0 {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "Resize"}
	}
	if !p.g.enter() {
		return &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Resize"}
	}
	defer p.g.leave()
	return statusErr("Resize", C.reactor_threadpool_resize(p.c, C.size_t(min), C.size_t(max)))
}

// PoolStats are a pool's counters. Completed and Stolen never decrease; the others are current values.
type PoolStats struct {
	Workers, Idle, Queued, Completed, Stolen uint64
}

// Stats returns the pool's counters.
func (p *ThreadPool) Stats() (PoolStats, error) {
	if !p.g.enter() {
		return PoolStats{}, &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Stats"}
	}
	defer p.g.leave()
	var s C.reactor_threadpool_stats_t
	s.struct_size = C.uint32_t(unsafe.Sizeof(s))
	if err := statusErr("Stats", C.reactor_threadpool_stats(p.c, &s)); err != nil {
		return PoolStats{}, err
	}
	return PoolStats{Workers: uint64(s.workers), Idle: uint64(s.idle), Queued: uint64(s.queued),
		Completed: uint64(s.completed), Stolen: uint64(s.stolen)}, nil
}

// Stop refuses new jobs (ErrClosed), runs every queued job and joins the workers before it returns.
// Stopping a stopped pool is fine. From one of the pool's own jobs, or on the reactor's pool: ErrBusy.
func (p *ThreadPool) Stop() error {
	if !p.g.enter() {
		return &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Stop"}
	}
	defer p.g.leave()
	return statusErr("Stop", C.reactor_threadpool_stop(p.c))
}

// Close stops the pool if needed (queued jobs run, workers are joined; every job's handle is released)
// and frees it. On the reactor's borrowed pool it does nothing. A second Close returns ErrClosed.
// Called from one of the pool's own jobs, the workers finish the queue and exit on their own.
func (p *ThreadPool) Close() error {
	if p.owner != nil {
		return nil
	}
	// Stop first, outside the gate: jobs still running may call Submit (refused once stopped) while
	// the workers are joined. From a job the stop is ErrBusy and the free below lets the workers wind
	// down by themselves.
	if !p.g.enter() {
		return &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Close"}
	}
	C.reactor_threadpool_stop(p.c)
	p.g.leave()
	if !p.g.close() {
		return &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Close"}
	}
	C.reactor_threadpool_free(p.c)
	runtime.KeepAlive(p)
	return nil
}

// SetErrorHandler sets the handler for panics recovered in the pool's jobs (nil: print to stderr). For
// the reactor's pool it is the reactor's handler.
func (p *ThreadPool) SetErrorHandler(h func(error)) { p.sink.setHandler(h) }

// Panics returns the panics recovered in the pool's jobs (at most the first 64) and their number.
func (p *ThreadPool) Panics() ([]*PanicError, uint64) { return p.sink.recorded() }
