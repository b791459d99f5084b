package reactor

import (
	"sync"
	"testing"
	"time"
)

// Benchmarks of the binding's crossings. ns/op is the cost of one call through the binding, end to
// end: creating the cgo handle, the Go→C call into libreactor, the C→Go callback on the reactor
// goroutine and the release hook that deletes the handle.

// BenchmarkCgoCall is the floor: one trivial Go→C call (reactor_version).
func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cgoNoop()
	}
}

// BenchmarkCallFromThread: one producer goroutine floods b.N CallFromThread calls while the reactor
// runs; the last callback stops it.
func BenchmarkCallFromThread(b *testing.B) {
	benchCallFromThread(b, 1)
}

// BenchmarkCallFromThread4: the same with 4 producer goroutines.
func BenchmarkCallFromThread4(b *testing.B) {
	benchCallFromThread(b, 4)
}

func benchCallFromThread(b *testing.B, producers int) {
	r, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	fn := func() {
		n++
		if n == b.N {
			_ = r.Stop()
		}
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	for p := 0; p < producers; p++ {
		count := b.N / producers
		if p == 0 {
			count += b.N % producers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < count; i++ {
				if err := r.CallFromThread(fn); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	if err := r.Run(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	wg.Wait()
	if n != b.N {
		b.Fatalf("ran %d of %d", n, b.N)
	}
}

// BenchmarkCallLater: CallLater(0) scheduled on the reactor goroutine in batches of 1000, each batch
// fired by one Iterate. Reports the scheduling and the firing halves separately (ns/schedule: handle,
// Go→C call, timer insert; ns/fire: C→Go callback, release hook, C handle release).
func BenchmarkCallLater(b *testing.B) {
	r, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	fn := func() { n++ }
	var scheduling, firing time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		batch := b.N - done
		if batch > 1000 {
			batch = 1000
		}
		t0 := time.Now()
		for i := 0; i < batch; i++ {
			if _, err := r.CallLater(0, fn); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for n < done+batch {
			if err := r.Iterate(0); err != nil {
				b.Fatal(err)
			}
		}
		scheduling += t1.Sub(t0)
		firing += time.Since(t1)
		done += batch
	}
	b.StopTimer()
	b.ReportMetric(float64(scheduling.Nanoseconds())/float64(b.N), "ns/schedule")
	b.ReportMetric(float64(firing.Nanoseconds())/float64(b.N), "ns/fire")
}

// BenchmarkCallLaterCancel: schedule and cancel (no callback crossing; the release hook still runs).
func BenchmarkCallLaterCancel(b *testing.B) {
	r, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	fn := func() {}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dc, err := r.CallLater(time.Second, fn)
		if err != nil {
			b.Fatal(err)
		}
		if err := dc.Cancel(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCgoCallback is the cost of one C→Go call of a callback trampoline (handle lookup, recover
// set-up, the Go function) made from C code that Go called.
func BenchmarkCgoCallback(b *testing.B) {
	n := 0
	cgoCallbacks(func() { n++ }, b.N)
	if n != b.N {
		b.Fatal(n)
	}
}

// BenchmarkDeferToThread: b.N DeferToThread jobs queued from the reactor goroutine, each running on
// a pool thread (a C thread calling into Go) and completing on the reactor goroutine.
func BenchmarkDeferToThread(b *testing.B) {
	r, err := New(WithThreadPoolSize(2))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	done := func(v int, err error) {
		n++
		if n == b.N {
			_ = r.Stop()
		}
	}
	work := func() (int, error) { return 1, nil }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := DeferToThread(r, work, done); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Run(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("ran %d of %d", n, b.N)
	}
}
