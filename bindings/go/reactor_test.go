package reactor

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Tests run sequentially (no t.Parallel): TestMain checks the package-wide handle counters.

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if n := LiveHandles(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d cgo handles still live after all tests\n", n)
			code = 1
		}
		if n := liveDelayedCalls.Load(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d delayed-call handles still held after all tests\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

// newReactor creates a reactor on the test goroutine and closes it when the test ends (t.Cleanup runs
// on the same goroutine).
func newReactor(t *testing.T, opts ...Option) *Reactor {
	t.Helper()
	r, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// failures records what reactor callbacks find wrong. Callbacks (CallLater, CallFromThread, readers,
// triggers, pool jobs, DeferToThread work and done, ...) never call t's methods: t.Fatal, t.FailNow
// and t.Skip* end the goroutine with runtime.Goexit, which would unwind through the library's Rust
// frames, and t.Error* is kept out of them too so that no callback is one edit away from a fatal
// call. A callback records with errorf, or with fatalf / must, which also stop the reactor; the test
// body reports with check once Run or Iterate has returned (runFor does), and a t.Cleanup reports
// whatever is left.
type failures struct {
	mu   sync.Mutex
	msgs []string
	r    *Reactor // stopped by fatalf; nil for a standalone thread pool
}

func newFailures(t *testing.T, r *Reactor) *failures {
	f := &failures{r: r}
	t.Cleanup(func() { f.check(t) })
	return f
}

func (f *failures) record(skip int, msg string) {
	if _, file, line, ok := runtime.Caller(skip + 1); ok {
		msg = fmt.Sprintf("%s:%d: %s", filepath.Base(file), line, msg)
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, msg)
	f.mu.Unlock()
}

// errorf records a failure; safe from any goroutine or thread.
func (f *failures) errorf(format string, args ...any) {
	f.record(1, fmt.Sprintf(format, args...))
}

// fatalf records a failure and stops the reactor (Stop, else Crash; from a pool thread both just
// return ErrWrongThread).
func (f *failures) fatalf(format string, args ...any) {
	f.record(1, fmt.Sprintf(format, args...))
	f.stop()
}

// must records err and stops the reactor unless err is nil; it reports whether err was nil.
func (f *failures) must(err error) bool {
	if err == nil {
		return true
	}
	f.record(1, err.Error())
	f.stop()
	return false
}

func (f *failures) stop() {
	if f.r != nil {
		if err := f.r.Stop(); err != nil {
			_ = f.r.Crash()
		}
	}
}

// check reports, on the test goroutine, what callbacks recorded so far.
func (f *failures) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	msgs := f.msgs
	f.msgs = nil
	f.mu.Unlock()
	for _, m := range msgs {
		t.Error("in a callback: " + m)
	}
}

// runFor runs r with a watchdog that crashes it after limit (a failing test must not hang), then
// reports what callbacks recorded in f.
func runFor(t *testing.T, r *Reactor, limit time.Duration, f *failures) {
	t.Helper()
	watchdog, err := r.CallLater(limit, func() {
		f.errorf("watchdog: reactor still running after %v", limit)
		_ = r.Crash()
	})
	if err != nil {
		t.Fatalf("CallLater(watchdog): %v", err)
	}
	err = r.Run()
	f.check(t)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	_ = watchdog.Cancel()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVersionAndBackend(t *testing.T) {
	if !strings.Contains(Version(), ".") {
		t.Errorf("Version() = %q", Version())
	}
	for _, b := range []struct {
		backend Backend
		name    string
	}{{BackendEpoll, "epoll"}, {BackendPoll, "poll"}} {
		r := newReactor(t, WithBackend(b.backend))
		if got := r.BackendName(); got != b.name {
			t.Errorf("BackendName = %q, want %q", got, b.name)
		}
	}
}

func TestTimerOrdering(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	var order []string
	add := func(d time.Duration, name string) {
		if _, err := r.CallLater(d, func() { order = append(order, name) }); err != nil {
			t.Fatal(err)
		}
	}
	add(30*time.Millisecond, "c")
	add(10*time.Millisecond, "a1")
	add(20*time.Millisecond, "b")
	add(10*time.Millisecond, "a2") // scheduled after a1 with the same delay: runs after it
	add(0, "zero1")
	add(0, "zero2")
	_, err := r.CallLater(40*time.Millisecond, func() { fails.must(r.Stop()) })
	must(t, err)
	runFor(t, r, 5*time.Second, fails)
	want := "zero1 zero2 a1 a2 b c"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("order = %q, want %q", got, want)
	}
}

func TestTimerFIFOManualClock(t *testing.T) {
	r := newReactor(t, WithManualClock())
	if s := r.Seconds(); s != 0 {
		t.Errorf("manual clock starts at %v", s)
	}
	var order []int
	for i := 0; i < 50; i++ {
		i := i
		_, err := r.CallLater(time.Second, func() { order = append(order, i) })
		must(t, err)
	}
	must(t, r.Advance(999*time.Millisecond))
	if len(order) != 0 {
		t.Fatalf("ran %d calls early", len(order))
	}
	must(t, r.Advance(time.Millisecond))
	if len(order) != 50 {
		t.Fatalf("ran %d calls, want 50", len(order))
	}
	for i, v := range order {
		if i != v {
			t.Fatalf("equal deadlines not FIFO: %v", order)
		}
	}
	if s := r.Seconds(); math.Abs(s-1) > 1e-9 {
		t.Errorf("Seconds = %v, want 1", s)
	}
	r2 := newReactor(t)
	if err := r2.Advance(time.Second); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Advance on real clock: %v, want ErrUnsupported", err)
	}
}

func TestDelayedCallCancelResetDelay(t *testing.T) {
	r := newReactor(t, WithManualClock())
	ran := map[string]int{}
	mk := func(name string, d time.Duration) *DelayedCall {
		dc, err := r.CallLater(d, func() { ran[name]++ })
		must(t, err)
		return dc
	}
	cancelled := mk("cancelled", time.Second)
	reset := mk("reset", time.Second)
	delayed := mk("delayed", time.Second)
	earlier := mk("earlier", 10*time.Second)

	if !cancelled.Active() {
		t.Error("Active before cancel = false")
	}
	if got := cancelled.Time(); got != 1 {
		t.Errorf("Time = %v, want 1", got)
	}
	must(t, cancelled.Cancel())
	if cancelled.Active() {
		t.Error("Active after cancel")
	}
	if err := cancelled.Cancel(); !errors.Is(err, ErrAlreadyCancelled) {
		t.Errorf("second Cancel: %v", err)
	}
	must(t, reset.Reset(5*time.Second))
	must(t, delayed.Delay(2*time.Second))
	must(t, earlier.Delay(-8*time.Second))
	if got := reset.Time(); got != 5 {
		t.Errorf("reset Time = %v", got)
	}
	if got := delayed.Time(); got != 3 {
		t.Errorf("delayed Time = %v", got)
	}
	if err := reset.Reset(-time.Second); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reset(-1s): %v", err)
	}
	if r.DelayedCallCount() != 3 {
		t.Errorf("DelayedCallCount = %d, want 3", r.DelayedCallCount())
	}

	must(t, r.Advance(2*time.Second))
	if ran["earlier"] != 1 || ran["reset"]+ran["delayed"]+ran["cancelled"] != 0 {
		t.Errorf("after 2s: %v", ran)
	}
	must(t, r.Advance(1*time.Second))
	if ran["delayed"] != 1 || ran["reset"] != 0 {
		t.Errorf("after 3s: %v", ran)
	}
	must(t, r.Advance(2*time.Second))
	if ran["reset"] != 1 || ran["cancelled"] != 0 {
		t.Errorf("after 5s: %v", ran)
	}
	for _, dc := range []*DelayedCall{reset, delayed, earlier} {
		if err := dc.Cancel(); !errors.Is(err, ErrAlreadyCalled) {
			t.Errorf("Cancel after run: %v", err)
		}
		if err := dc.Reset(time.Second); !errors.Is(err, ErrAlreadyCalled) {
			t.Errorf("Reset after run: %v", err)
		}
	}
	// The C handles were released when the calls ran or were cancelled.
	if n := liveDelayedCalls.Load(); n != 0 {
		t.Errorf("%d delayed-call handles held after all calls ran or were cancelled", n)
	}
	// Wrong goroutine.
	pending := mk("pending", time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := pending.Cancel(); !errors.Is(err, ErrWrongThread) {
			t.Errorf("Cancel from another goroutine: %v", err)
		}
		if pending.Active() || !math.IsNaN(pending.Time()) {
			t.Error("Active/Time from another goroutine are not false/NaN")
		}
	}()
	<-done
	must(t, r.Close())
	if err := pending.Cancel(); !errors.Is(err, ErrClosed) {
		t.Errorf("Cancel after Close: %v", err)
	}
	if err := reset.Reset(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Reset after Close: %v", err)
	}
	if pending.Active() || pending.Time() != 6 || reset.Time() != 5 {
		t.Errorf("after Close: Active %v, Time %v and %v (want false, 6, 5)", pending.Active(), pending.Time(), reset.Time())
	}
}

func TestCancelFromOwnCallbackAndReschedule(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	var self *DelayedCall
	var selfErr error
	count := 0
	var tick func()
	tick = func() {
		count++
		if count == 1 {
			selfErr = self.Cancel()
		}
		if count < 5 {
			_, err := r.CallLater(time.Millisecond, tick)
			fails.must(err)
		} else {
			fails.must(r.Stop())
		}
	}
	var err error
	self, err = r.CallLater(0, tick)
	must(t, err)
	runFor(t, r, 5*time.Second, fails)
	if !errors.Is(selfErr, ErrAlreadyCalled) {
		t.Errorf("Cancel inside own callback: %v", selfErr)
	}
	if count != 5 {
		t.Errorf("count = %d", count)
	}
}

func TestRunStopRestartCrash(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	if err := r.Stop(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Stop before Run: %v", err)
	}
	if err := r.Crash(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Crash before Run: %v", err)
	}
	var nested error
	must(t, r.CallWhenRunning(func() {
		nested = r.Run()
		if !r.IsRunning() {
			fails.errorf("IsRunning false inside CallWhenRunning")
		}
		fails.must(r.Crash())
	}))
	runFor(t, r, 5*time.Second, fails)
	if !errors.Is(nested, ErrAlreadyRunning) {
		t.Errorf("Run inside a callback: %v", nested)
	}
	// After a crash the reactor can run again.
	ran := false
	_, err := r.CallLater(0, func() { ran = true; fails.must(r.Stop()) })
	must(t, err)
	runFor(t, r, 5*time.Second, fails)
	if !ran {
		t.Error("second run did not run the call")
	}
	if err := r.Run(); !errors.Is(err, ErrNotRestartable) {
		t.Errorf("Run after Stop: %v", err)
	}
	if err := r.CallFromThread(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("CallFromThread after Stop: %v", err)
	}
}

func TestIterateWithoutRun(t *testing.T) {
	r := newReactor(t)
	n := 0
	_, err := r.CallLater(0, func() { n++ })
	must(t, err)
	must(t, r.CallFromThread(func() { n += 10 }))
	for i := 0; i < 5 && n < 11; i++ {
		must(t, r.Iterate(100*time.Millisecond))
	}
	if n != 11 {
		t.Errorf("n = %d after Iterate", n)
	}
	// Iterate(-1) waits until something is dispatched: a call from another goroutine.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = r.CallFromThread(func() { n = 100 })
	}()
	must(t, r.Iterate(-1))
	if n != 100 {
		t.Errorf("n = %d after Iterate(-1)", n)
	}
	st, err := r.Stats()
	must(t, err)
	if st.Iterations == 0 || st.TimersFired != 1 || st.ThreadCalls != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestWrongThread(t *testing.T) {
	r := newReactor(t)
	if !r.InIOThread() {
		t.Fatal("InIOThread false on the creating goroutine")
	}
	errs := make(chan error, 8)
	go func() {
		if r.InIOThread() {
			errs <- errors.New("InIOThread true on another goroutine")
		}
		_, err := r.CallLater(time.Second, func() {})
		errs <- err
		errs <- r.Run()
		errs <- r.Iterate(0)
		errs <- r.AddReader(0, func(int, Events) {})
		_, err = r.AddSystemEventTrigger(Before, "shutdown", func() error { return nil })
		errs <- err
		close(errs)
	}()
	n := 0
	for err := range errs {
		n++
		if !errors.Is(err, ErrWrongThread) {
			t.Errorf("call %d from another goroutine: %v, want ErrWrongThread", n, err)
		}
		var e *Error
		if errors.As(err, &e) && !strings.Contains(e.Error(), StatusText(e.Status)) {
			t.Errorf("error text %q lacks %q", e.Error(), StatusText(e.Status))
		}
	}
	if n != 5 {
		t.Errorf("got %d errors", n)
	}
}

func TestErrors(t *testing.T) {
	r := newReactor(t)
	if _, err := r.CallLater(-time.Second, func() {}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative delay: %v", err)
	}
	if err := r.RemoveReader(0); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveReader unknown: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	must(t, err)
	fd := int(f.Fd())
	f.Close()
	err = r.AddReader(fd, func(int, Events) {})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, syscall.EBADF) || e.Errno() != syscall.EBADF {
		t.Errorf("AddReader(closed fd): %v (want an OS error matching EBADF)", err)
	}
	if errors.Is(ErrBusy, ErrClosed) || !errors.Is(&Error{Status: ErrBusy.Status, Op: "x"}, ErrBusy) {
		t.Error("errors.Is compares status codes")
	}
	must(t, r.Close())
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.CallLater(0, func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("CallLater after Close: %v", err)
	}
	if err := r.CallFromThread(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("CallFromThread after Close: %v", err)
	}
}

func TestCallFromThread100Goroutines(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	const goroutines, perG = 100, 100
	var last [goroutines]int
	total := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 1; i <= perG; i++ {
				i := i
				if err := r.CallFromThread(func() {
					if last[g] != i-1 {
						fails.errorf("goroutine %d: call %d after %d (not FIFO)", g, i, last[g])
					}
					last[g] = i
					total++
					if total == goroutines*perG {
						fails.must(r.Stop())
					}
				}); err != nil {
					t.Errorf("CallFromThread: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	runFor(t, r, 20*time.Second, fails)
	wg.Wait()
	if total != goroutines*perG {
		t.Errorf("total = %d, want %d", total, goroutines*perG)
	}
}

func TestPipeReadiness(t *testing.T) {
	for _, backend := range []Backend{BackendEpoll, BackendPoll} {
		t.Run(fmt.Sprint(backend), func(t *testing.T) {
			r := newReactor(t, WithBackend(backend))
			fails := newFailures(t, r)
			pr, pw, err := os.Pipe()
			must(t, err)
			defer pr.Close()
			defer pw.Close()
			rfd, wfd := int(pr.Fd()), int(pw.Fd())

			var got []byte
			var writable, shutdownSeen int
			must(t, r.AddReader(rfd, func(fd int, ev Events) {
				if ev&Shutdown != 0 {
					shutdownSeen++
					return
				}
				if fd != rfd || ev&Readable == 0 {
					fails.errorf("reader got fd %d events %v", fd, ev)
				}
				buf := make([]byte, 64)
				n, err := syscall.Read(fd, buf)
				if err != nil {
					fails.fatalf("read: %v", err)
					return
				}
				got = append(got, buf[:n]...)
				if string(got) == "hello world" {
					fails.must(r.Stop())
				}
			}))
			must(t, r.AddWriter(wfd, func(fd int, ev Events) {
				if ev&Writable == 0 {
					fails.errorf("writer got events %v", ev)
				}
				writable++
				fails.must(r.RemoveWriter(fd))
			}))
			readers, err := r.Readers()
			must(t, err)
			writers, err := r.Writers()
			must(t, err)
			if len(readers) != 1 || readers[0] != rfd || len(writers) != 1 || writers[0] != wfd {
				t.Errorf("Readers %v Writers %v", readers, writers)
			}
			// A second pipe whose reader stays registered until shutdown.
			pr2, pw2, err := os.Pipe()
			must(t, err)
			defer pr2.Close()
			defer pw2.Close()
			must(t, r.AddReader(int(pr2.Fd()), func(fd int, ev Events) {
				if ev&Shutdown != 0 {
					shutdownSeen++
				}
			}))
			go func() {
				time.Sleep(10 * time.Millisecond)
				_, _ = pw.Write([]byte("hello "))
				time.Sleep(10 * time.Millisecond)
				_, _ = pw.Write([]byte("world"))
			}()
			runFor(t, r, 5*time.Second, fails)
			if string(got) != "hello world" {
				t.Errorf("read %q", got)
			}
			if writable != 1 {
				t.Errorf("writable callbacks = %d", writable)
			}
			if shutdownSeen != 2 {
				t.Errorf("shutdown callbacks = %d, want 2", shutdownSeen)
			}
			if fds, err := r.Readers(); err != nil || len(fds) != 0 {
				t.Errorf("after shutdown Readers = %v, %v", fds, err)
			}
		})
	}
}

func TestRemoveAll(t *testing.T) {
	r := newReactor(t)
	var files []*os.File
	for i := 0; i < 20; i++ {
		pr, pw, err := os.Pipe()
		must(t, err)
		files = append(files, pr, pw)
		must(t, r.AddReader(int(pr.Fd()), func(int, Events) {}))
		must(t, r.AddWriter(int(pw.Fd()), func(int, Events) {}))
		must(t, r.AddWriter(int(pr.Fd()), func(int, Events) {}))
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	before := LiveHandles()
	fds, err := r.RemoveAll()
	must(t, err)
	if len(fds) != 40 {
		t.Errorf("RemoveAll returned %d fds, want 40: %v", len(fds), fds)
	}
	for i := 1; i < len(fds); i++ {
		if fds[i] <= fds[i-1] {
			t.Errorf("not ascending: %v", fds)
		}
	}
	if d := before - LiveHandles(); d != 60 {
		t.Errorf("RemoveAll released %d handles, want 60", d)
	}
}

func TestShutdownTriggers(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	var mu sync.Mutex
	var log []string
	add := func(s string) {
		mu.Lock()
		log = append(log, s)
		mu.Unlock()
	}
	_, err := r.AddSystemEventTrigger(After, "shutdown", func() error { add("after"); return nil })
	must(t, err)
	_, err = r.AddSystemEventTrigger(During, "shutdown", func() error {
		add(fmt.Sprintf("during running=%v", r.IsRunning()))
		return nil
	})
	must(t, err)
	_, err = r.AddSystemEventTrigger(Before, "shutdown", func() error { add("before"); return nil })
	must(t, err)
	// A BEFORE trigger that holds shutdown until a goroutine completes it; the goroutine waits for
	// three ticks of a 5 ms timer, so timers must keep running while shutdown is held (an ordering:
	// no amount of load makes the ticks come after the completion).
	ticks := 0
	threeTicks := make(chan struct{})
	_, err = r.AddBeforeTriggerWithCompletion("shutdown", func(complete func()) {
		add("held")
		var tick func()
		tick = func() {
			ticks++
			if ticks == 3 {
				close(threeTicks)
			}
			if _, err := r.CallLater(5*time.Millisecond, tick); err != nil {
				fails.errorf("CallLater(tick): %v", err)
			}
		}
		tick()
		go func() {
			select {
			case <-threeTicks:
			case <-time.After(30 * time.Second): // timers stopped while held: fail below, do not hang
			}
			add("complete")
			complete()
			complete() // only the first call counts
		}()
	})
	must(t, err)
	// A BEFORE trigger that completes itself synchronously does not hold.
	_, err = r.AddBeforeTriggerWithCompletion("shutdown", func(complete func()) { add("self"); complete() })
	must(t, err)
	removed, err := r.AddSystemEventTrigger(Before, "shutdown", func() error { add("removed"); return nil })
	must(t, err)
	must(t, r.RemoveSystemEventTrigger(removed))
	if err := r.RemoveSystemEventTrigger(removed); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	_, err = r.AddSystemEventTrigger(During, "startup", func() error { add("startup"); return r.Stop() })
	must(t, err)
	runFor(t, r, 60*time.Second, fails)
	want := "startup before held self complete during running=false after"
	if got := strings.Join(log, " "); got != want {
		t.Errorf("log = %q\nwant  %q", got, want)
	}
	if ticks < 3 {
		t.Errorf("timers did not run while shutdown was held (ticks = %d)", ticks)
	}
}

func TestCustomEventAndTriggerError(t *testing.T) {
	var reported []error
	r := newReactor(t, WithErrorHandler(func(err error) { reported = append(reported, err) }))
	boom := errors.New("boom")
	ran := 0
	id, err := r.AddSystemEventTrigger(During, "custom", func() error { ran++; return boom })
	must(t, err)
	_, err = r.AddSystemEventTrigger(After, "custom", func() error { ran++; return nil })
	must(t, err)
	must(t, r.FireSystemEvent("custom"))
	if ran != 2 {
		t.Errorf("ran = %d", ran)
	}
	if len(reported) != 1 || !errors.Is(reported[0], boom) {
		t.Fatalf("reported = %v", reported)
	}
	var te *TriggerError
	if !errors.As(reported[0], &te) || te.ID != id || te.Event != "custom" || te.Phase != During {
		t.Errorf("TriggerError = %+v", te)
	}
	// Triggers are one-shot.
	must(t, r.FireSystemEvent("custom"))
	if ran != 2 {
		t.Errorf("triggers ran again: %d", ran)
	}
	// CompleteTrigger on an id that is not pending.
	if err := r.CompleteTrigger(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("CompleteTrigger: %v", err)
	}
}

func TestPanicsReportedAndSurvived(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	r := newReactor(t, WithErrorHandler(func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}))
	fails := newFailures(t, r)
	pr, pw, err := os.Pipe()
	must(t, err)
	defer pr.Close()
	defer pw.Close()

	_, err = r.CallLater(0, func() { panic("timer panic") })
	must(t, err)
	must(t, r.CallFromThread(func() { panic(errors.New("thread call panic")) }))
	must(t, r.AddReader(int(pr.Fd()), func(fd int, ev Events) {
		if ev&Shutdown == 0 {
			fails.must(r.RemoveReader(fd))
			panic("fd panic")
		}
	}))
	_, err = r.AddSystemEventTrigger(Before, "shutdown", func() error { panic("trigger panic") })
	must(t, err)
	heldPanicked := false
	_, err = r.AddBeforeTriggerWithCompletion("shutdown", func(func()) { heldPanicked = true; panic("held panic") })
	must(t, err)
	after := false
	_, err = r.AddSystemEventTrigger(After, "shutdown", func() error { after = true; return nil })
	must(t, err)
	_, err = r.CallLater(30*time.Millisecond, func() { fails.must(r.Stop()) })
	must(t, err)
	_, err = pw.Write([]byte("x"))
	must(t, err)
	runFor(t, r, 5*time.Second, fails)

	if !heldPanicked || !after {
		t.Errorf("shutdown did not complete after panicking triggers (held=%v after=%v)", heldPanicked, after)
	}
	panics, n := r.Panics()
	if n != 5 || len(panics) != 5 {
		t.Fatalf("recorded %d panics (%d listed), want 5", n, len(panics))
	}
	wheres := map[string]int{}
	for _, p := range panics {
		wheres[p.Where]++
		if len(p.Stack) == 0 {
			t.Error("panic without stack")
		}
	}
	if wheres["callback"] != 2 || wheres["fd"] != 1 || wheres["trigger"] != 2 {
		t.Errorf("panic sites = %v", wheres)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 5 {
		t.Errorf("error handler got %d reports", len(reported))
	}
	var pe *PanicError
	found := false
	for _, err := range reported {
		if errors.As(err, &pe) && pe.Unwrap() != nil && pe.Unwrap().Error() == "thread call panic" {
			found = true
		}
	}
	if !found {
		t.Error("PanicError does not unwrap an error panic value")
	}
}

func TestHandlesReleasedAfterClose(t *testing.T) {
	base := LiveHandles()
	baseDC := liveDelayedCalls.Load()
	r, err := New()
	must(t, err)
	pr, pw, err := os.Pipe()
	must(t, err)
	defer pr.Close()
	defer pw.Close()
	var kept []*DelayedCall
	for i := 0; i < 100; i++ {
		dc, err := r.CallLater(time.Hour, func() {})
		must(t, err)
		kept = append(kept, dc)
	}
	for i := 0; i < 10; i++ {
		must(t, r.CallFromThread(func() {}))
		must(t, r.CallWhenRunning(func() {}))
		_, err := r.AddSystemEventTrigger(Before, "shutdown", func() error { return nil })
		must(t, err)
		_, err = r.AddBeforeTriggerWithCompletion("custom", func(func()) {})
		must(t, err)
	}
	must(t, r.AddReader(int(pr.Fd()), func(int, Events) {}))
	must(t, r.AddWriter(int(pw.Fd()), func(int, Events) {}))
	// Replacing a reader releases the old one.
	must(t, r.AddReader(int(pr.Fd()), func(int, Events) {}))
	if got := LiveHandles() - base; got != 100+40+2 {
		t.Errorf("live handles before Close = %d, want 142", got)
	}
	if got := liveDelayedCalls.Load() - baseDC; got != 100 {
		t.Errorf("delayed-call handles = %d, want 100", got)
	}
	must(t, r.Close())
	if got := LiveHandles() - base; got != 0 {
		t.Errorf("live handles after Close = %d, want 0", got)
	}
	if got := liveDelayedCalls.Load() - baseDC; got != 0 {
		t.Errorf("delayed-call handles after Close = %d, want 0", got)
	}
	for _, dc := range kept {
		if err := dc.Cancel(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Cancel after Close: %v", err)
		}
	}
}

func TestHandlesReleasedAfterRun(t *testing.T) {
	base := LiveHandles()
	r := newReactor(t, WithLogger(func(LogLevel, string) {}))
	fails := newFailures(t, r)
	var n atomic.Int32
	for i := 0; i < 50; i++ {
		_, err := r.CallLater(time.Duration(i)*time.Microsecond, func() { n.Add(1) })
		must(t, err)
		must(t, r.CallFromThread(func() { n.Add(1) }))
	}
	dc, err := r.CallLater(time.Hour, func() {})
	must(t, err)
	_, err = r.CallLater(10*time.Millisecond, func() { fails.must(dc.Cancel()); fails.must(r.Stop()) })
	must(t, err)
	runFor(t, r, 5*time.Second, fails)
	if n.Load() != 100 {
		t.Errorf("ran %d", n.Load())
	}
	// Everything ran or was cancelled: only the log hook's handle is left until Close.
	if got := LiveHandles() - base; got != 1 {
		t.Errorf("live handles after run = %d, want 1 (the log hook)", got)
	}
}

func TestLoggerReceivesReports(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	r := newReactor(t, WithLogger(func(level LogLevel, msg string) {
		mu.Lock()
		msgs = append(msgs, level.String()+": "+msg)
		mu.Unlock()
	}))
	// Without an error handler, trigger errors (and panics) are reported through the logger.
	_, err := r.AddSystemEventTrigger(During, "x", func() error { return errors.New("bad") })
	must(t, err)
	must(t, r.FireSystemEvent("x"))
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "error: ") || !strings.Contains(msgs[0], "bad") {
		t.Errorf("logger got %q", msgs)
	}
}

func TestSignalHandlers(t *testing.T) {
	r := newReactor(t, WithSignalHandlers(true))
	fails := newFailures(t, r)
	stopped := false
	_, err := r.AddSystemEventTrigger(During, "shutdown", func() error { stopped = true; return nil })
	must(t, err)
	must(t, r.CallWhenRunning(func() {
		go func() {
			time.Sleep(10 * time.Millisecond)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}()
	}))
	runFor(t, r, 5*time.Second, fails)
	if !stopped {
		t.Error("SIGTERM did not stop the reactor")
	}
}
