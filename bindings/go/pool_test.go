package reactor

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCallInThread(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	const jobs = 100
	var ran, onReactorThread atomic.Int32
	finished := 0
	for i := 0; i < jobs; i++ {
		must(t, r.CallInThread(func() {
			ran.Add(1)
			if r.InIOThread() {
				onReactorThread.Add(1)
			}
			if err := r.CallFromThread(func() {
				finished++
				if finished == jobs {
					fails.must(r.Stop())
				}
			}); err != nil {
				fails.errorf("CallFromThread from a pool job: %v", err)
			}
		}))
	}
	runFor(t, r, 10*time.Second, fails)
	if ran.Load() != jobs || finished != jobs {
		t.Errorf("ran %d, finished %d", ran.Load(), finished)
	}
	if onReactorThread.Load() != 0 {
		t.Errorf("%d jobs ran on the reactor thread", onReactorThread.Load())
	}
	if err := r.CallInThread(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("CallInThread after Stop: %v", err)
	}
}

func TestDeferToThreadResults(t *testing.T) {
	var reported []error
	var mu sync.Mutex
	r := newReactor(t, WithErrorHandler(func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}))
	fails := newFailures(t, r)
	const jobs = 50
	results := map[int]int{}
	var errs []error
	pending := 0
	finish := func() {
		pending--
		if pending == 0 {
			fails.must(r.Stop())
		}
	}
	for i := 0; i < jobs; i++ {
		i := i
		pending++
		must(t, DeferToThread(r, func() (int, error) {
			if r.InIOThread() {
				return 0, errors.New("work ran on the reactor thread")
			}
			return i * i, nil
		}, func(v int, err error) {
			if !r.InIOThread() {
				fails.errorf("done ran off the reactor thread")
			}
			if err != nil {
				fails.errorf("done got %v", err)
			}
			results[i] = v
			finish()
		}))
	}
	boom := errors.New("boom")
	pending++
	must(t, DeferToThread(r, func() (string, error) { return "ignored", boom }, func(s string, err error) {
		errs = append(errs, err)
		if s != "ignored" {
			fails.errorf("value with error = %q", s)
		}
		finish()
	}))
	pending++
	must(t, DeferToThread(r, func() (*int, error) { panic("work panic") }, func(p *int, err error) {
		errs = append(errs, err)
		if p != nil {
			fails.errorf("non-nil value after a panic")
		}
		finish()
	}))
	pending++
	must(t, r.CallInThreadWithCallback(func() (any, error) { return 42, nil }, func(v any, err error) {
		if v != 42 || err != nil {
			fails.errorf("CallInThreadWithCallback = %v, %v", v, err)
		}
		defer finish()
		panic("done panic")
	}))
	runFor(t, r, 10*time.Second, fails)
	for i := 0; i < jobs; i++ {
		if results[i] != i*i {
			t.Fatalf("result %d = %d", i, results[i])
		}
	}
	// The two jobs run concurrently: their done callbacks come in either order.
	if len(errs) != 2 {
		t.Fatalf("errors = %v", errs)
	}
	if errors.Is(errs[1], boom) {
		errs[0], errs[1] = errs[1], errs[0]
	}
	if !errors.Is(errs[0], boom) {
		t.Errorf("work error not delivered: %v", errs)
	}
	var pe *PanicError
	if !errors.As(errs[1], &pe) || pe.Value != "work panic" || pe.Where != "work" {
		t.Errorf("work panic delivered as %v", errs[1])
	}
	_, n := r.Panics()
	if n != 2 {
		t.Errorf("recorded %d panics, want 2 (work, done)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 {
		t.Errorf("error handler got %v", reported)
	}
}

func TestDeferToThreadNotRunAfterShutdown(t *testing.T) {
	base := LiveHandles()
	r, err := New()
	must(t, err)
	doneCalled := false
	// Queued before Run: the pool never starts, the job never runs; Close releases it.
	must(t, DeferToThread(r, func() (int, error) { return 1, nil }, func(int, error) { doneCalled = true }))
	must(t, r.CallInThread(func() {}))
	if LiveHandles()-base != 2 {
		t.Errorf("live handles = %d", LiveHandles()-base)
	}
	must(t, r.Close())
	if doneCalled {
		t.Error("done ran")
	}
	if LiveHandles() != base {
		t.Errorf("live handles after Close = %d", LiveHandles()-base)
	}
}

func TestStandaloneThreadPool(t *testing.T) {
	base := LiveHandles()
	p, err := NewThreadPool(1, 4)
	must(t, err)
	fails := newFailures(t, nil)
	var reported atomic.Int32
	p.SetErrorHandler(func(err error) {
		var pe *PanicError
		if errors.As(err, &pe) && pe.Where == "work" {
			reported.Add(1)
		}
	})
	var count atomic.Int64
	var wg sync.WaitGroup
	const jobs = 1000
	wg.Add(jobs + jobs/10)
	for i := 0; i < jobs; i++ {
		i := i
		must(t, p.Submit(func() {
			defer wg.Done()
			count.Add(1)
			if i%10 == 0 {
				// A job may submit more jobs.
				if err := p.Submit(func() { defer wg.Done(); count.Add(1) }); err != nil {
					fails.errorf("Submit from a job: %v", err)
					wg.Done()
				}
			}
		}))
	}
	wg.Wait()
	fails.check(t)
	if count.Load() != jobs+jobs/10 {
		t.Errorf("count = %d", count.Load())
	}
	must(t, p.Submit(func() { panic("job panic") }))
	must(t, p.Resize(2, 8))
	if err := p.Resize(3, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("Resize(3, 2): %v", err)
	}
	must(t, p.Stop())
	st, err := p.Stats()
	must(t, err)
	if st.Completed != jobs+jobs/10+1 || st.Queued != 0 || st.Workers != 0 {
		t.Errorf("Stats after Stop = %+v", st)
	}
	if reported.Load() != 1 {
		t.Errorf("job panics reported: %d", reported.Load())
	}
	if _, n := p.Panics(); n != 1 {
		t.Errorf("pool recorded %d panics", n)
	}
	if err := p.Submit(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Stop: %v", err)
	}
	must(t, p.Close())
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if LiveHandles() != base {
		t.Errorf("live handles after pool Close = %d", LiveHandles()-base)
	}
	if _, err := NewThreadPool(0, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewThreadPool(0, 0): %v", err)
	}
}

func TestThreadPoolCloseRunsQueuedJobs(t *testing.T) {
	base := LiveHandles()
	p, err := NewThreadPool(0, 1)
	must(t, err)
	var count atomic.Int32
	block := make(chan struct{})
	must(t, p.Submit(func() { <-block; count.Add(1) }))
	for i := 0; i < 100; i++ {
		must(t, p.Submit(func() { count.Add(1) }))
	}
	go func() { time.Sleep(20 * time.Millisecond); close(block) }()
	must(t, p.Close())
	if count.Load() != 101 {
		t.Errorf("Close ran %d of 101 queued jobs", count.Load())
	}
	if LiveHandles() != base {
		t.Errorf("live handles = %d", LiveHandles()-base)
	}
}

func TestReactorThreadPoolBorrowed(t *testing.T) {
	r := newReactor(t, WithThreadPoolSize(3))
	fails := newFailures(t, r)
	p, err := r.ThreadPool()
	must(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := r.ThreadPool()
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, ErrWrongThread) {
		t.Errorf("ThreadPool from another goroutine: %v", err)
	}
	if err := p.Stop(); !errors.Is(err, ErrBusy) {
		t.Errorf("Stop on the reactor's pool: %v", err)
	}
	must(t, p.Close()) // no-op
	var ran atomic.Int32
	for i := 0; i < 10; i++ {
		must(t, p.Submit(func() {
			if ran.Add(1) == 10 {
				_ = r.CallFromThread(func() { fails.must(r.Stop()) })
			}
		}))
	}
	var maxWorkers uint64
	_, err = r.CallLater(time.Millisecond, func() {
		st, err := p.Stats()
		fails.must(err)
		maxWorkers = st.Workers
	})
	must(t, err)
	runFor(t, r, 10*time.Second, fails)
	if ran.Load() != 10 {
		t.Errorf("ran %d", ran.Load())
	}
	if maxWorkers > 3 {
		t.Errorf("pool of max 3 had %d workers", maxWorkers)
	}
	must(t, r.Close())
	if err := p.Submit(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit on the borrowed pool after Close: %v", err)
	}
}

func TestSuggestThreadPoolSize(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	if err := r.SuggestThreadPoolSize(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SuggestThreadPoolSize(0): %v", err)
	}
	must(t, r.SuggestThreadPoolSize(2))
	var inside, maxInside atomic.Int32
	const jobs = 8
	finished := 0
	for i := 0; i < jobs; i++ {
		must(t, r.CallInThread(func() {
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			_ = r.CallFromThread(func() {
				finished++
				if finished == jobs {
					fails.must(r.Stop())
				}
			})
		}))
	}
	runFor(t, r, 10*time.Second, fails)
	if m := maxInside.Load(); m > 2 || m < 1 {
		t.Errorf("max concurrent jobs = %d with a pool of 2", m)
	}
}

// Close while pool jobs keep calling into the reactor: the jobs must get ErrClosed (not block) while
// reactor_free joins the pool.
func TestCloseWhilePoolJobsCallIn(t *testing.T) {
	base := LiveHandles()
	r, err := New()
	must(t, err)
	fails := newFailures(t, r)
	var sawClosed, started atomic.Int32
	for i := 0; i < 4; i++ {
		must(t, r.CallInThread(func() {
			started.Add(1)
			for {
				err := r.CallFromThread(func() {})
				if errors.Is(err, ErrClosed) {
					sawClosed.Add(1)
					return
				}
				if err != nil {
					fails.errorf("CallFromThread: %v", err)
					return
				}
				_ = r.WakeUp()
				time.Sleep(100 * time.Microsecond)
			}
		}))
	}
	// Once the 4 jobs run (the pool starts when the reactor runs), crash: that leaves the pool running.
	var poll func()
	poll = func() {
		if started.Load() == 4 {
			fails.must(r.Crash())
			return
		}
		_, err := r.CallLater(time.Millisecond, poll)
		fails.must(err)
	}
	must(t, r.CallWhenRunning(poll))
	runFor(t, r, 10*time.Second, fails)
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close deadlocked with pool jobs calling CallFromThread")
	}
	fails.check(t) // the jobs ran until Close returned
	if sawClosed.Load() != 4 {
		t.Errorf("%d jobs saw ErrClosed", sawClosed.Load())
	}
	if LiveHandles() != base {
		t.Errorf("live handles after Close = %d", LiveHandles()-base)
	}
}

func TestCloseWhileRunningIsBusy(t *testing.T) {
	r := newReactor(t)
	fails := newFailures(t, r)
	errc := make(chan error, 2)
	must(t, r.CallWhenRunning(func() {
		errc <- r.Close()
		go func() {
			err := r.Close()
			_ = r.CallFromThread(func() { errc <- err; fails.must(r.Stop()) })
		}()
	}))
	runFor(t, r, 5*time.Second, fails)
	for i := 0; i < 2; i++ {
		if err := <-errc; !errors.Is(err, ErrBusy) {
			t.Errorf("Close while running (%d): %v", i, err)
		}
	}
}
