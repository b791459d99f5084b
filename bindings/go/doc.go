// Package reactor is the Go binding of libreactor: Twisted's reactor (an event loop with delayed
// calls, three-phase system events, an fd set, thread calls and a thread pool) implemented in Rust
// behind a C ABI. It links with cgo against the installed library (`#cgo pkg-config: reactor`; set
// PKG_CONFIG_PATH to PREFIX/lib/pkgconfig for a private prefix).
//
//	r, err := reactor.New()          // locks this goroutine to its OS thread
//	if err != nil { ... }
//	defer r.Close()
//	r.CallLater(500*time.Millisecond, func() { fmt.Println("tick"); r.Stop() })
//	go func() { r.CallFromThread(func() { fmt.Println("hello from another goroutine") }) }()
//	err = r.Run()                    // returns after Stop and the shutdown triggers
//
// # Threads and goroutines
//
// libreactor binds a reactor to one OS thread: the thread that created it, and later the thread that
// runs it. Go moves goroutines between OS threads, so the binding pins the reactor to a goroutine:
//
//   - New locks the calling goroutine to its OS thread (runtime.LockOSThread). That goroutine is the
//     reactor goroutine. Close, called on it, undoes the lock (called elsewhere, the lock stays until
//     that goroutine exits, which then also ends its OS thread).
//   - Run and Iterate must be called on the reactor goroutine; Run also locks it for the duration.
//     Run from another goroutine returns ErrWrongThread instead of moving the reactor to another
//     thread (which libreactor would allow), so the rule below holds before, during and after a run.
//   - Every callback (timers, fd readiness, triggers, thread calls, done functions) runs on the reactor
//     goroutine: inside Run or Iterate, or, for triggers fired by FireSystemEvent and calls due after
//     Advance, inside those calls.
//   - Methods documented "reactor goroutine only" return ErrWrongThread when called from any other
//     goroutine and change nothing (getters that cannot fail return false, 0 or NaN). The binding does
//     not marshal them: marshal explicitly with CallFromThread, which is safe from any goroutine, like
//     WakeUp, CallInThread, CallInThreadWithCallback, DeferToThread, InIOThread, BackendName, BackendFD,
//     Panics, SetErrorHandler, every ThreadPool method, and the complete function of
//     AddBeforeTriggerWithCompletion.
//   - Close may be called from any goroutine, but not while Run or Iterate is active (ErrBusy) and not
//     concurrently with reactor-goroutine methods. Any-thread calls racing with Close are safe: they
//     either complete before the reactor is freed or return ErrClosed (they never block on Close).
//
// A common shape is to create, run and close the reactor on one goroutine (main, or a goroutine of its
// own) and let every other goroutine talk to it through CallFromThread.
//
// # Callbacks and handles
//
// Each Go function handed to the library crosses as a runtime/cgo.Handle passed as the C user_data; the
// library calls its release hook exactly once when it drops the registration (after a one-shot call
// ran, on cancel or removal, or inside Close), and the hook deletes the handle. LiveHandles reports how
// many are outstanding, so leaks are visible. The C handle of a DelayedCall is released by the same
// hook, so a DelayedCall needs no finalizer or explicit release.
//
// Every trampoline that the library calls recovers Go panics: a panicking callback never unwinds
// through the library. The panic is recorded (Reactor.Panics) and passed as a *PanicError to the error
// handler (WithErrorHandler; default: printed to stderr), and the loop goes on. Trigger errors are
// reported the same way as *TriggerError. Do not call runtime.Goexit (t.FailNow, t.Fatal) inside a
// callback: it cannot be stopped at the C boundary.
//
// # Errors
//
// Failed calls return *Error carrying libreactor's status code and its reactor_strerror text. Compare
// with errors.Is against the sentinels (ErrInvalid, ErrWrongThread, ErrAlreadyRunning, ErrNotRunning,
// ErrNotRestartable, ErrAlreadyCalled, ErrAlreadyCancelled, ErrNotFound, ErrBusy, ErrClosed,
// ErrUnsupported, ...); OS errors also match their syscall.Errno.
//
// # Signals
//
// The binding never lets the library install its own SIGINT/SIGTERM handlers (they would replace the
// Go runtime's). WithSignalHandlers(true) gets the same behaviour through os/signal: while Run is
// active, SIGINT or SIGTERM stops the reactor and the shutdown triggers run.
package reactor
