// Command demo is a short tour of the Go binding of libreactor: timers (one cancelled, one reset), a
// pipe reader, work on the thread pool with a typed result, calls from other goroutines, and a BEFORE
// shutdown trigger that holds the shutdown until a goroutine has "drained" something.
package main

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	reactor "github.com/libreactor/libreactor/bindings/go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	// New locks this goroutine (main) to its OS thread: the reactor lives here.
	r, err := reactor.New(reactor.WithSignalHandlers(true))
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Printf("libreactor %s on %s\n", reactor.Version(), r.BackendName())

	// Timers: FIFO for equal deadlines, cancel and reset.
	start := time.Now()
	elapsed := func() string { return time.Since(start).Round(10 * time.Millisecond).String() }
	if _, err := r.CallLater(20*time.Millisecond, func() { fmt.Println(elapsed(), "timer A") }); err != nil {
		return err
	}
	cancelled, err := r.CallLater(30*time.Millisecond, func() { fmt.Println("never printed") })
	if err != nil {
		return err
	}
	if err := cancelled.Cancel(); err != nil {
		return err
	}
	later, err := r.CallLater(10*time.Millisecond, func() { fmt.Println(elapsed(), "timer B (reset to 40ms)") })
	if err != nil {
		return err
	}
	if err := later.Reset(40 * time.Millisecond); err != nil {
		return err
	}

	// A pipe reader: another goroutine writes, the reactor reads when the fd is readable.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	defer pw.Close()
	err = r.AddReader(int(pr.Fd()), func(fd int, ev reactor.Events) {
		if ev&reactor.Shutdown != 0 {
			fmt.Println(elapsed(), "pipe reader: shutdown")
			return
		}
		buf := make([]byte, 128)
		n, _ := syscall.Read(fd, buf)
		fmt.Printf("%s pipe reader: %q (%v)\n", elapsed(), buf[:n], ev)
	})
	if err != nil {
		return err
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = pw.Write([]byte("hello through a pipe"))
	}()

	// Work on the thread pool, result delivered on the reactor goroutine.
	err = reactor.DeferToThread(r, func() (int, error) {
		sum := 0
		for i := 1; i <= 1000; i++ {
			sum += i
		}
		return sum, nil
	}, func(sum int, err error) {
		fmt.Println(elapsed(), "deferToThread result:", sum, err)
	})
	if err != nil {
		return err
	}

	// Calls from other goroutines are marshalled with CallFromThread.
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.CallFromThread(func() { fmt.Println(elapsed(), "call from goroutine", i) })
		}()
	}

	// Shutdown held by a BEFORE trigger until a goroutine finishes draining.
	_, err = r.AddBeforeTriggerWithCompletion("shutdown", func(complete func()) {
		fmt.Println(elapsed(), "shutdown: draining...")
		go func() {
			time.Sleep(30 * time.Millisecond)
			fmt.Println(elapsed(), "shutdown: drained")
			complete() // safe from any goroutine
		}()
	})
	if err != nil {
		return err
	}
	_, err = r.AddSystemEventTrigger(reactor.After, "shutdown", func() error {
		fmt.Println(elapsed(), "shutdown: done")
		return nil
	})
	if err != nil {
		return err
	}

	if _, err := r.CallLater(100*time.Millisecond, func() { _ = r.Stop() }); err != nil {
		return err
	}
	if err := r.Run(); err != nil {
		return err
	}
	wg.Wait()
	st, err := r.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("stats: %d iterations, %d timers fired, %d thread calls; live handles: %d\n",
		st.Iterations, st.TimersFired, st.ThreadCalls, reactor.LiveHandles())
	return nil
}
