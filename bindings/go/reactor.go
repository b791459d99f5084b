package reactor

/*
#cgo pkg-config: reactor
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Backend selects the poller (REACTOR_BACKEND_*). BackendDefault honours the REACTOR_BACKEND
// environment variable (epoll|poll|kqueue).
type Backend int

const (
	BackendDefault Backend = 0
	BackendEpoll   Backend = 1
	BackendPoll    Backend = 2
	BackendKqueue  Backend = 3
)

func (b Backend) String() string {
	switch b {
	case BackendDefault:
		return "default"
	case BackendEpoll:
		return "epoll"
	case BackendPoll:
		return "poll"
	case BackendKqueue:
		return "kqueue"
	}
	return "backend(" + itoa(int(b)) + ")"
}

// LogLevel is the level of a library log message (REACTOR_LOG_*).
type LogLevel int

const (
	LogError LogLevel = 1
	LogWarn  LogLevel = 2
	LogInfo  LogLevel = 3
)

func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	}
	return "level(" + itoa(int(l)) + ")"
}

type config struct {
	backend        Backend
	manualClock    bool
	signalHandlers bool
	poolMax        int
	errorHandler   func(error)
	logger         func(LogLevel, string)
}

// Option configures New.
type Option func(*config)

// WithBackend selects the poller. The default is BackendDefault (epoll on Linux, kqueue on BSD/macOS,
// overridable with REACTOR_BACKEND).
func WithBackend(b Backend) Option { return func(c *config) { c.backend = b } }

// WithManualClock makes time advance only through Advance (for tests): Seconds starts at 0.
func WithManualClock() Option { return func(c *config) { c.manualClock = true } }

// WithSignalHandlers makes SIGINT and SIGTERM stop the reactor (shutdown triggers run) while Run is
// active. Default false. The binding implements this with os/signal rather than the library's own
// handlers, which would replace the Go runtime's handlers.
func WithSignalHandlers(on bool) Option { return func(c *config) { c.signalHandlers = on } }

// WithThreadPoolSize sets the maximum size of the reactor's thread pool (default 10; 0 is invalid).
func WithThreadPoolSize(n int) Option { return func(c *config) { c.poolMax = n } }

// WithErrorHandler receives recovered callback panics (*PanicError) and trigger errors
// (*TriggerError). It runs on the goroutine where the failure happened: the reactor goroutine, or a
// pool thread for CallInThread work, so it must be safe for concurrent use. Default: print to stderr
// (or to the WithLogger function, when one is set).
func WithErrorHandler(h func(error)) Option { return func(c *config) { c.errorHandler = h } }

// WithLogger routes the library's log messages (e.g. a trigger that failed in C, a REACTOR_PENDING
// returned outside a BEFORE phase) to fn. Default: the library prints errors to stderr.
func WithLogger(fn func(level LogLevel, msg string)) Option { return func(c *config) { c.logger = fn } }

// Reactor is a libreactor event loop. See the package documentation for the threading rules: a Reactor
// belongs to the goroutine that called New, which New locks to its OS thread.
type Reactor struct {
	c       *C.reactor_t
	sink    *errorSink
	signals bool

	// gate guards the C reactor against being freed while another goroutine is inside one of the
	// any-thread functions (CallFromThread, WakeUp, CallInThread, ...).
	gate    gate
	closed  atomic.Bool  // set once Close has freed the C reactor
	driving atomic.Int32 // > 0 while Run or Iterate is active
	logH    cgo.Handle   // the log hook's user data (borrowed by the library until Close)
	hasLogH bool

	owner  uintptr // pthread_self() of the creating goroutine's (locked) OS thread
	locked bool    // New's runtime.LockOSThread is still held
}

// New creates a reactor owned by the calling goroutine. New locks that goroutine to its OS thread
// (runtime.LockOSThread) because libreactor binds a reactor to an OS thread; Close, called from the same
// goroutine, unlocks it. Call Run, Iterate and the other reactor-goroutine methods from this goroutine
// (or from callbacks, which run on it); other goroutines use CallFromThread.
func New(opts ...Option) (*Reactor, error) {
	cfg := config{poolMax: 10}
	for _, o := range opts {
		o(&cfg)
	}
	var o C.reactor_options_t
	C.reactor_options_init(&o)
	o.backend = C.reactor_backend_t(cfg.backend)
	o.install_signal_handlers = 0
	if cfg.manualClock {
		o.manual_clock = 1
	}
	if cfg.poolMax < 0 {
		return nil, &Error{Status: int(C.REACTOR_E_INVALID), Op: "New"}
	}
	o.thread_pool_max = C.size_t(cfg.poolMax)

	runtime.LockOSThread()
	r := &Reactor{
		sink:    &errorSink{handler: cfg.errorHandler, logger: cfg.logger},
		signals: cfg.signalHandlers,
	}
	if err := statusErr("New", C.reactor_new(&o, &r.c)); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	r.owner = uintptr(C.goreactor_thread_self())
	r.locked = true
	if cfg.logger != nil {
		r.logH = newHandle(r.sink)
		r.hasLogH = true
		C.goreactor_set_log(r.c, C.uintptr_t(r.logH))
	}
	return r, nil
}

// Close frees the reactor: every pending registration is released (its cgo handle deleted, the C
// handles of pending delayed calls released), and the creating goroutine's OS-thread lock is undone
// when Close runs on that goroutine. It may be called from any goroutine, but not while Run or Iterate
// is active (ErrBusy). A second Close returns ErrClosed.
func (r *Reactor) Close() error {
	if r.driving.Load() > 0 {
		// Checked first so that calls from other goroutines are not refused while Close fails.
		return &Error{Status: int(C.REACTOR_E_BUSY), Op: "Close"}
	}
	if !r.gate.close() {
		return &Error{Status: int(C.REACTOR_E_CLOSED), Op: "Close"}
	}
	// The pool's workers are joined inside; a job that calls CallFromThread meanwhile gets ErrClosed.
	if err := statusErr("Close", C.reactor_free(r.c)); err != nil {
		r.gate.reopen()
		return err
	}
	r.closed.Store(true)

	if r.hasLogH {
		r.hasLogH = false
		dropHandle(r.logH)
	}
	if r.locked && uintptr(C.goreactor_thread_self()) == r.owner {
		r.locked = false
		runtime.UnlockOSThread()
	}
	return nil
}

func (r *Reactor) errClosed(op string) error {
	return &Error{Status: int(C.REACTOR_E_CLOSED), Op: op}
}

// Run fires the startup event and runs the loop until Stop (shutdown triggers run, then Run returns
// nil) or Crash. It must be called on the reactor's goroutine (ErrWrongThread otherwise); it keeps that
// goroutine locked to its OS thread while it runs. After a Stop the reactor cannot run again
// (ErrNotRestartable); after a Crash it can.
func (r *Reactor) Run() error {
	if r.closed.Load() {
		return r.errClosed("Run")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The library would accept a run from any idle thread and move the reactor there; the binding keeps
	// the reactor on its goroutine, so every other method keeps working after Run returns.
	if C.reactor_is_in_io_thread(r.c) != 1 {
		return &Error{Status: int(C.REACTOR_E_WRONG_THREAD), Op: "Run"}
	}
	if r.signals {
		stop := r.watchSignals()
		defer stop()
	}
	r.driving.Add(1)
	defer r.driving.Add(-1)
	return statusErr("Run", C.reactor_run(r.c))
}

// watchSignals stops the reactor on SIGINT/SIGTERM until the returned function is called.
func (r *Reactor) watchSignals() func() {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for {
			select {
			case <-ch:
				_ = r.CallFromThread(func() { _ = r.Stop() })
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// Stop asks a running reactor to stop: shutdown triggers run on the loop's next pass, then Run
// returns. ErrNotRunning if it is not running or already stopping. Reactor goroutine only (from
// elsewhere: r.CallFromThread(func() { r.Stop() })).
func (r *Reactor) Stop() error {
	if r.closed.Load() {
		return r.errClosed("Stop")
	}
	return statusErr("Stop", C.reactor_stop(r.c))
}

// Crash ends Run once the current callback returns, without shutdown triggers; Run may be called
// again. Reactor goroutine only.
func (r *Reactor) Crash() error {
	if r.closed.Load() {
		return r.errClosed("Crash")
	}
	return statusErr("Crash", C.reactor_crash(r.c))
}

// Iterate runs one pass of the loop without Run: due timers and thread calls, one poll of at most
// timeout (a negative timeout waits until something is dispatched), dispatch. It fires no system
// events. Reactor goroutine only.
func (r *Reactor) Iterate(timeout time.Duration) error {
	if r.closed.Load() {
		return r.errClosed("Iterate")
	}
	t := -1.0
	if timeout >= 0 {
		t = timeout.Seconds()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.driving.Add(1)
	defer r.driving.Add(-1)
	return statusErr("Iterate", C.reactor_iterate(r.c, C.double(t)))
}

// IsRunning follows Twisted: false before startup has finished and from DURING-shutdown on. Other
// goroutines always get false.
func (r *Reactor) IsRunning() bool {
	if r.closed.Load() {
		return false
	}
	return C.reactor_is_running(r.c) == 1
}

// InIOThread reports whether the caller runs on the reactor's OS thread, i.e. is the reactor's
// goroutine or one of its callbacks.
func (r *Reactor) InIOThread() bool {
	if !r.gate.enter() {
		return false
	}
	defer r.gate.leave()
	return C.reactor_is_in_io_thread(r.c) == 1
}

// BackendName returns "epoll", "poll" or "kqueue" (any goroutine).
func (r *Reactor) BackendName() string {
	if !r.gate.enter() {
		return "closed"
	}
	defer r.gate.leave()
	return C.GoString(C.reactor_backend_name(r.c))
}

// CallWhenRunning calls fn at once if the reactor is running, else when it has started (an
// AFTER-startup trigger). Reactor goroutine only.
func (r *Reactor) CallWhenRunning(fn func()) error {
	if fn == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "CallWhenRunning"}
	}
	if r.closed.Load() {
		return r.errClosed("CallWhenRunning")
	}
	h := newHandle(&callback{sink: r.sink, fn: fn})
	if err := statusErr("CallWhenRunning", C.goreactor_call_when_running(r.c, C.uintptr_t(h))); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// Stats are the loop's counters (reactor_stats).
type Stats struct {
	Iterations, Polls, Wakeups, Callbacks, TimersFired, ThreadCalls uint64
	FDsRegistered, TimersPending, BackendCtlCalls                   uint64
	Idle                                                            time.Duration // time blocked in the poller
}

// Stats returns the loop's statistics. Reactor goroutine only.
func (r *Reactor) Stats() (Stats, error) {
	if r.closed.Load() {
		return Stats{}, r.errClosed("Stats")
	}
	var s C.reactor_stats_t
	s.struct_size = C.uint32_t(unsafe.Sizeof(s))
	if err := statusErr("Stats", C.reactor_stats(r.c, &s)); err != nil {
		return Stats{}, err
	}
	return Stats{
		Iterations: uint64(s.iterations), Polls: uint64(s.polls), Wakeups: uint64(s.wakeups),
		Callbacks: uint64(s.callbacks), TimersFired: uint64(s.timers_fired),
		ThreadCalls: uint64(s.thread_calls), FDsRegistered: uint64(s.fds_registered),
		TimersPending: uint64(s.timers_pending), BackendCtlCalls: uint64(s.backend_ctl_calls),
		Idle: time.Duration(float64(s.idle_seconds) * float64(time.Second)),
	}, nil
}

// Panics returns the recovered callback panics recorded so far (at most the first 64) and their total
// number. Any goroutine.
func (r *Reactor) Panics() ([]*PanicError, uint64) { return r.sink.recorded() }

// SetErrorHandler replaces the handler given with WithErrorHandler (nil: print to stderr). Any goroutine.
func (r *Reactor) SetErrorHandler(h func(error)) { r.sink.setHandler(h) }

// ---- threads -------------------------------------------------------------------------------------

// CallFromThread queues fn to run on the reactor goroutine; safe from any goroutine. Calls from one
// goroutine run in order, each exactly once. Calls queued before Run wait for it (Iterate also runs
// them). After a run that ended with Stop, or after Close: ErrClosed.
func (r *Reactor) CallFromThread(fn func()) error {
	if fn == nil {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: "CallFromThread"}
	}
	h := newHandle(&callback{sink: r.sink, fn: fn})
	rc := C.int(C.REACTOR_E_CLOSED)
	if r.gate.enter() {
		rc = C.goreactor_call_from_thread(r.c, C.uintptr_t(h))
		r.gate.leave()
	}
	if err := statusErr("CallFromThread", rc); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// WakeUp wakes the reactor's poll (coalesced). Any goroutine.
func (r *Reactor) WakeUp() error {
	if !r.gate.enter() {
		return r.errClosed("WakeUp")
	}
	defer r.gate.leave()
	return statusErr("WakeUp", C.reactor_wake_up(r.c))
}

// ---- system events ------------------------------------------------------------------------------

// Phase is the phase of a system event trigger.
type Phase int

const (
	Before Phase = 0
	During Phase = 1
	After  Phase = 2
)

func (p Phase) String() string {
	switch p {
	case Before:
		return "before"
	case During:
		return "during"
	case After:
		return "after"
	}
	return "phase(" + itoa(int(p)) + ")"
}

// TriggerID identifies a system event trigger.
type TriggerID uint64

// fire runs on the reactor goroutine, inside the library's trigger callback.
func (t *trigger) fire(id TriggerID) (status C.int) {
	defer func() {
		if p := recover(); p != nil {
			// Not holding: a panicking trigger must not hang the event (e.g. shutdown) forever.
			t.r.sink.reportPanic("trigger", p)
			status = C.REACTOR_OK
		}
	}()
	if t.held != nil {
		r := t.r
		var once sync.Once
		t.held(func() { once.Do(func() { r.completeTrigger(id) }) })
		return C.REACTOR_PENDING
	}
	if err := t.fn(); err != nil {
		// Reported here with the Go error text; the library is told OK so it does not log it twice.
		t.r.sink.report(&TriggerError{Event: t.event, Phase: t.phase, ID: id, Err: err})
	}
	return C.REACTOR_OK
}

// completeTrigger completes a held trigger from any goroutine (off the reactor goroutine it marshals
// through CallFromThread).
func (r *Reactor) completeTrigger(id TriggerID) {
	report := func(err error) {
		if err != nil && !isStatus(err, C.REACTOR_E_NOT_FOUND) && !isStatus(err, C.REACTOR_E_CLOSED) {
			r.sink.report(err)
		}
	}
	if r.InIOThread() {
		report(r.CompleteTrigger(id))
		return
	}
	report(r.CallFromThread(func() { report(r.CompleteTrigger(id)) }))
}

func isStatus(err error, status C.int) bool {
	e, ok := err.(*Error)
	return ok && e.Status == int(status)
}

// AddSystemEventTrigger adds a one-shot trigger for event ("startup", "shutdown" or any name) in
// phase. A non-nil error from fn is passed to the error handler as a *TriggerError; the other triggers
// still run. Reactor goroutine only.
func (r *Reactor) AddSystemEventTrigger(phase Phase, event string, fn func() error) (TriggerID, error) {
	if fn == nil {
		return 0, &Error{Status: int(C.REACTOR_E_INVALID), Op: "AddSystemEventTrigger"}
	}
	return r.addTrigger("AddSystemEventTrigger", &trigger{r: r, event: event, phase: phase, fn: fn})
}

// AddBeforeTriggerWithCompletion adds a one-shot BEFORE trigger for event that holds the event: fn
// receives a complete function, and the DURING phase starts only after complete has been called (for
// every such trigger). complete may be called later, from any goroutine, and more than once (only the
// first call counts); calling it inside fn does not hold the event. This is how a program drains its
// connections before shutdown. If fn panics, the event is not held. Reactor goroutine only.
func (r *Reactor) AddBeforeTriggerWithCompletion(event string, fn func(complete func())) (TriggerID, error) {
	if fn == nil {
		return 0, &Error{Status: int(C.REACTOR_E_INVALID), Op: "AddBeforeTriggerWithCompletion"}
	}
	return r.addTrigger("AddBeforeTriggerWithCompletion", &trigger{r: r, event: event, phase: Before, held: fn})
}

func (r *Reactor) addTrigger(op string, t *trigger) (TriggerID, error) {
	if r.closed.Load() {
		return 0, r.errClosed(op)
	}
	cevent := C.CString(t.event)
	defer C.free(unsafe.Pointer(cevent))
	h := newHandle(t)
	var id C.uint64_t
	if err := statusErr(op, C.goreactor_add_trigger(r.c, C.int(t.phase), cevent, C.uintptr_t(h), &id)); err != nil {
		dropHandle(h)
		return 0, err
	}
	return TriggerID(id), nil
}

// RemoveSystemEventTrigger removes a trigger that has not run yet. ErrNotFound otherwise. Reactor
// goroutine only.
func (r *Reactor) RemoveSystemEventTrigger(id TriggerID) error {
	if r.closed.Load() {
		return r.errClosed("RemoveSystemEventTrigger")
	}
	return statusErr("RemoveSystemEventTrigger", C.reactor_remove_system_event_trigger(r.c, C.uint64_t(id)))
}

// FireSystemEvent fires event: its triggers run before this returns, unless a BEFORE trigger holds
// it. "startup"/"shutdown" while Run is active, or an event that is still firing: ErrBusy. Reactor
// goroutine only.
func (r *Reactor) FireSystemEvent(event string) error {
	if r.closed.Load() {
		return r.errClosed("FireSystemEvent")
	}
	cevent := C.CString(event)
	defer C.free(unsafe.Pointer(cevent))
	return statusErr("FireSystemEvent", C.reactor_fire_system_event(r.c, cevent))
}

// CompleteTrigger completes a held BEFORE trigger by id (the low-level form of the complete
// function). ErrNotFound if it is not pending. Reactor goroutine only.
func (r *Reactor) CompleteTrigger(id TriggerID) error {
	if r.closed.Load() {
		return r.errClosed("CompleteTrigger")
	}
	return statusErr("CompleteTrigger", C.reactor_trigger_complete(r.c, C.uint64_t(id)))
}

// ---- file descriptors ---------------------------------------------------------------------------

// Events is a mask of readiness bits passed to fd callbacks.
type Events uint32

const (
	Readable Events = 1
	Writable Events = 2
	HangUp   Events = 4
	Failed   Events = 8  // REACTOR_ERROR: an error condition on the fd
	Shutdown Events = 16 // the reactor is shutting down; the registration is removed
)

func (e Events) String() string {
	if e == 0 {
		return "0"
	}
	s := ""
	for _, b := range []struct {
		bit  Events
		name string
	}{{Readable, "readable"}, {Writable, "writable"}, {HangUp, "hangup"}, {Failed, "error"}, {Shutdown, "shutdown"}} {
		if e&b.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += b.name
			e &^= b.bit
		}
	}
	if e != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + itox(uint32(e))
	}
	return s
}

// AddReader calls fn(fd, events) on the reactor goroutine whenever fd is readable (events: Readable
// plus HangUp/Failed; Shutdown once when the reactor stops). It replaces an existing reader of fd.
// Reactor goroutine only.
func (r *Reactor) AddReader(fd int, fn func(fd int, events Events)) error {
	return r.addFd("AddReader", fd, fn, false)
}

// AddWriter is AddReader for writability (Writable).
func (r *Reactor) AddWriter(fd int, fn func(fd int, events Events)) error {
	return r.addFd("AddWriter", fd, fn, true)
}

func (r *Reactor) addFd(op string, fd int, fn func(int, Events), writer bool) error {
	if fn == nil || fd < 0 || fd > math.MaxInt32 {
		return &Error{Status: int(C.REACTOR_E_INVALID), Op: op}
	}
	if r.closed.Load() {
		return r.errClosed(op)
	}
	h := newHandle(&fdCallback{sink: r.sink, fn: fn})
	var rc C.int
	if writer {
		rc = C.goreactor_add_writer(r.c, C.int(fd), C.uintptr_t(h))
	} else {
		rc = C.goreactor_add_reader(r.c, C.int(fd), C.uintptr_t(h))
	}
	if err := statusErr(op, rc); err != nil {
		dropHandle(h)
		return err
	}
	return nil
}

// RemoveReader removes the reader of fd. ErrNotFound if there is none. Reactor goroutine only.
func (r *Reactor) RemoveReader(fd int) error {
	if r.closed.Load() {
		return r.errClosed("RemoveReader")
	}
	return statusErr("RemoveReader", C.reactor_remove_reader(r.c, C.int(fd)))
}

// RemoveWriter removes the writer of fd. ErrNotFound if there is none. Reactor goroutine only.
func (r *Reactor) RemoveWriter(fd int) error {
	if r.closed.Load() {
		return r.errClosed("RemoveWriter")
	}
	return statusErr("RemoveWriter", C.reactor_remove_writer(r.c, C.int(fd)))
}

// RemoveAll removes every reader and writer and returns their fds (each once, ascending). Reactor
// goroutine only.
func (r *Reactor) RemoveAll() ([]int, error) {
	if r.closed.Load() {
		return nil, r.errClosed("RemoveAll")
	}
	// The list can only be taken once, so size the buffer first: readers + writers bound the union.
	readers, err := r.fdList("RemoveAll", false)
	if err != nil {
		return nil, err
	}
	writers, err := r.fdList("RemoveAll", true)
	if err != nil {
		return nil, err
	}
	buf := make([]C.int, len(readers)+len(writers)+1)
	var n C.size_t
	if err := statusErr("RemoveAll", C.reactor_remove_all(r.c, &buf[0], C.size_t(len(buf)), &n)); err != nil {
		return nil, err
	}
	return cints(buf, int(n)), nil
}

// Readers returns the fds that have a reader (ascending). Reactor goroutine only.
func (r *Reactor) Readers() ([]int, error) { return r.fdList("Readers", false) }

// Writers returns the fds that have a writer (ascending). Reactor goroutine only.
func (r *Reactor) Writers() ([]int, error) { return r.fdList("Writers", true) }

func (r *Reactor) fdList(op string, writers bool) ([]int, error) {
	if r.closed.Load() {
		return nil, r.errClosed(op)
	}
	buf := make([]C.int, 16)
	for {
		var n C.size_t
		var rc C.int
		if writers {
			rc = C.reactor_get_writers(r.c, &buf[0], C.size_t(len(buf)), &n)
		} else {
			rc = C.reactor_get_readers(r.c, &buf[0], C.size_t(len(buf)), &n)
		}
		if err := statusErr(op, rc); err != nil {
			return nil, err
		}
		if int(n) <= len(buf) {
			return cints(buf, int(n)), nil
		}
		buf = make([]C.int, int(n))
	}
}

func cints(buf []C.int, n int) []int {
	if n > len(buf) {
		n = len(buf)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = int(buf[i])
	}
	return out
}

// BackendFD returns a pollable fd that becomes readable when the reactor has I/O (epoll), or -1.
// Any goroutine. Use with BackendTimeout and Iterate(0) to drive the reactor from another loop.
func (r *Reactor) BackendFD() int {
	if !r.gate.enter() {
		return -1
	}
	defer r.gate.leave()
	return int(C.reactor_backend_fd(r.c))
}

// BackendTimeout returns how long a host loop may sleep before calling Iterate(0): negative = no timer
// pending, 0 = work is ready. Reactor goroutine only (others get a negative value).
func (r *Reactor) BackendTimeout() time.Duration {
	if r.closed.Load() {
		return -1
	}
	ms := C.reactor_backend_timeout_ms(r.c)
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func itox(n uint32) string {
	const digits = "0123456789abcdef"
	if n < 16 {
		return string(digits[n])
	}
	return itox(n/16) + string(digits[n%16])
}

// Version returns the library's version string ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.reactor_version_string()) }

// cgoNoop is one trivial Go→C call (for the benchmarks' floor).
func cgoNoop() { C.reactor_version() }

// cgoCallbacks makes n C→Go calls of the callback trampoline (for the benchmarks).
func cgoCallbacks(fn func(), n int) {
	h := newHandle(&callback{sink: &errorSink{}, fn: fn})
	C.goreactor_bench_callbacks(C.uintptr_t(h), C.int(n))
	dropHandle(h)
}
