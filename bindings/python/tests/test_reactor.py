"""The Python binding over the C ABI, on every backend (conftest.BACKENDS)."""

import gc
import os
import socket
import threading
import time
import weakref

import pytest

import libreactor
from libreactor import PENDING, READABLE, WRITABLE


def live_objects(reactor):
    """What the library still holds (the log handler lives as long as the reactor)."""
    return reactor._registry.transient()


# -- the loop ---------------------------------------------------------------------------------------


def test_version_and_backend(reactor, backend):
    assert libreactor.version().count(".") == 2
    assert reactor.backend == backend
    assert not reactor.running
    assert reactor.is_in_io_thread()


def test_run_fires_startup_and_stop_fires_shutdown(reactor):
    events = []
    reactor.add_system_event_trigger("before", "startup", events.append, "before-startup")
    reactor.add_system_event_trigger("during", "startup", lambda: events.append(reactor.running))
    reactor.add_system_event_trigger("after", "startup", reactor.stop)
    reactor.add_system_event_trigger("during", "shutdown", events.append, "during-shutdown")
    reactor.add_system_event_trigger("after", "shutdown", events.append, "after-shutdown")
    reactor.run()
    assert events == ["before-startup", True, "during-shutdown", "after-shutdown"]
    with pytest.raises(libreactor.NotRestartableError) as info:
        reactor.run()
    assert info.value.status == -5
    assert not live_objects(reactor)


def test_stop_when_not_running(reactor):
    with pytest.raises(libreactor.NotRunningError):
        reactor.stop()


def test_run_inside_a_callback(reactor, errors):
    seen = []

    def nested():
        try:
            reactor.run()
        except libreactor.AlreadyRunningError as exc:
            seen.append(exc.status)
        reactor.stop()

    reactor.call_when_running(nested)
    reactor.run()
    assert seen == [-3]
    assert errors == []


def test_crash_then_run_again(reactor):
    runs = []
    reactor.call_later(0, lambda: (runs.append(1), reactor.crash()))
    reactor.run()
    reactor.call_later(0, lambda: (runs.append(2), reactor.stop()))
    reactor.run()
    assert runs == [1, 2]


def test_iterate_runs_due_work(reactor):
    seen = []
    reactor.call_later(0, seen.append, "timer")
    reactor.call_from_thread(seen.append, "thread call")
    reactor.iterate(0)
    assert sorted(seen) == ["thread call", "timer"]


def test_stats_count_callbacks(reactor):
    reactor.call_later(0, lambda: None)
    reactor.iterate(0)
    stats = reactor.stats()
    assert stats.iterations >= 1
    assert stats.timers_fired == 1
    assert stats.callbacks >= 1


def test_exceptions_in_callbacks_are_reported(reactor, errors):
    def boom():
        raise RuntimeError("boom")

    reactor.call_later(0, boom)
    reactor.call_from_thread(boom)
    reactor.iterate(0)
    assert [str(e) for e in errors] == ["boom", "boom"]


# -- system events ----------------------------------------------------------------------------------


def test_before_trigger_holds_until_completed(reactor):
    events = []
    ids = {}

    def hold():
        events.append("before")
        return PENDING

    ids["hold"] = reactor.add_system_event_trigger("before", "custom", hold)
    reactor.add_system_event_trigger("during", "custom", events.append, "during")
    reactor.add_system_event_trigger("after", "custom", events.append, "after")
    reactor.fire_system_event("custom")
    assert events == ["before"]
    with pytest.raises(libreactor.BusyError):
        reactor.fire_system_event("custom")
    reactor.complete_trigger(ids["hold"])
    assert events == ["before"]  # DURING runs on the next pass
    reactor.iterate(0)
    assert events == ["before", "during", "after"]
    with pytest.raises(libreactor.NotFoundError):
        reactor.complete_trigger(ids["hold"])


def test_complete_now_runs_the_rest_before_returning(reactor):
    events = []
    hold = reactor.add_system_event_trigger("before", "custom", lambda: PENDING)
    reactor.add_system_event_trigger("during", "custom", events.append, "during")
    reactor.fire_system_event("custom")
    reactor.complete_trigger(hold, now=True)
    assert events == ["during"]


def test_remove_trigger(reactor):
    events = []
    tid = reactor.add_system_event_trigger("during", "custom", events.append, "x")
    reactor.remove_system_event_trigger(tid)
    with pytest.raises(libreactor.NotFoundError):
        reactor.remove_system_event_trigger(tid)
    reactor.fire_system_event("custom")
    assert events == []


def test_bad_trigger_arguments(reactor):
    with pytest.raises(ValueError):
        reactor.add_system_event_trigger("sometime", "custom", lambda: None)
    with pytest.raises(TypeError):
        reactor.add_system_event_trigger("during", "custom", 42)
    assert not live_objects(reactor)


# -- delayed calls ----------------------------------------------------------------------------------


def test_manual_clock_cancel_reset_delay():
    with libreactor.Reactor(manual_clock=True, install_signal_handlers=False) as reactor:
        seen = []
        a = reactor.call_later(1.0, seen.append, "a")
        b = reactor.call_later(2.0, seen.append, "b")
        c = reactor.call_later(3.0, seen.append, "c")
        assert reactor.pending_calls() == 3
        assert a.get_time() == 1.0 and a.active()
        c.reset(0.5)
        b.delay(2.0)
        assert (c.get_time(), b.get_time()) == (0.5, 4.0)
        a.cancel()
        assert not a.active()
        with pytest.raises(libreactor.AlreadyCancelledError):
            a.cancel()
        reactor.advance(1.0)
        assert seen == ["c"]
        reactor.advance(3.0)
        assert seen == ["c", "b"]
        with pytest.raises(libreactor.AlreadyCalledError):
            b.reset(1.0)
        with pytest.raises(libreactor.InvalidError):
            reactor.call_later(-1, seen.append, "never")
        assert reactor.pending_calls() == 0
        assert "inactive" in repr(b)


def test_call_later_real_clock(reactor):
    started = reactor.seconds()
    fired = []
    reactor.call_later(0.02, lambda: (fired.append(reactor.seconds()), reactor.stop()))
    reactor.run()
    assert fired and fired[0] - started >= 0.02


def test_delayed_call_handle_outlives_the_reactor(backend):
    reactor = libreactor.Reactor(backend, install_signal_handlers=False)
    call = reactor.call_later(10, lambda: None)
    reactor.close()
    with pytest.raises(libreactor.ClosedError):
        call.cancel()


def test_advance_needs_the_manual_clock(reactor):
    with pytest.raises(libreactor.ReactorError) as info:
        reactor.advance(1)
    assert info.value.status == -11  # REACTOR_E_UNSUPPORTED


# -- file descriptors -------------------------------------------------------------------------------


def test_reader_and_writer(reactor):
    a, b = socket.socketpair()
    try:
        got = []

        def readable(fd, events):
            assert events & READABLE
            got.append(a.recv(100))
            reactor.remove_reader(a)

        def writable(fd, events):
            assert events & WRITABLE
            b.send(b"ping")
            reactor.remove_writer(b)

        reactor.add_reader(a, readable)
        reactor.add_writer(b.fileno(), writable)
        assert reactor.get_readers() == [a.fileno()]
        assert reactor.get_writers() == [b.fileno()]
        for _ in range(10):
            if got:
                break
            reactor.iterate(0.1)
        assert got == [b"ping"]
        assert reactor.get_readers() == [] and reactor.get_writers() == []
        with pytest.raises(libreactor.NotFoundError):
            reactor.remove_reader(a)
    finally:
        a.close()
        b.close()


def test_remove_all(reactor):
    a, b = socket.socketpair()
    try:
        reactor.add_reader(a, lambda fd, ev: None)
        reactor.add_writer(a, lambda fd, ev: None)
        reactor.add_reader(b, lambda fd, ev: None)
        assert reactor.remove_all() == sorted([a.fileno(), b.fileno()])
        assert not live_objects(reactor)
    finally:
        a.close()
        b.close()


def test_bad_fds(reactor):
    with pytest.raises(libreactor.InvalidError):
        reactor.add_reader(-1, lambda fd, ev: None)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(libreactor.ReactorError) as info:
        reactor.add_reader(r, lambda fd, ev: None)
    assert info.value.errno is not None
    assert not live_objects(reactor)


# -- threads ----------------------------------------------------------------------------------------


def test_call_from_thread_from_many_threads(reactor):
    count = 4 * 500
    seen = []

    def producer():
        for i in range(500):
            reactor.call_from_thread(seen.append, i)

    def check():
        if len(seen) == count:
            reactor.stop()
        else:
            reactor.call_later(0.001, check)

    threads = [threading.Thread(target=producer) for _ in range(4)]
    for t in threads:
        t.start()
    reactor.call_when_running(check)
    reactor.run()
    for t in threads:
        t.join()
    assert len(seen) == count


def test_loop_methods_from_another_thread_raise(reactor):
    caught = []

    def other():
        for method, args in [
            (reactor.stop, ()),
            (reactor.iterate, (0,)),
            (reactor.call_later, (1, print)),
            (reactor.add_reader, (0, print)),
            (reactor.fire_system_event, ("x",)),
        ]:
            try:
                method(*args)
            except libreactor.WrongThreadError as exc:
                caught.append(exc.status)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert caught == [-2] * 5
    assert not reactor.is_in_io_thread() or threading.current_thread() is threading.main_thread()


def test_call_in_thread_with_callback(reactor):
    results = []
    main = threading.get_ident()

    def work(x):
        return (x * 2, threading.get_ident())

    def fail():
        raise ValueError("in the pool")

    def on_result(success, result):
        results.append((success, result, threading.get_ident() == main))
        if len(results) == 2:
            reactor.stop()

    reactor.call_in_thread_with_callback(on_result, work, 21)
    reactor.call_in_thread_with_callback(on_result, fail)
    reactor.run()
    ok = [r for r in results if r[0]][0]
    bad = [r for r in results if not r[0]][0]
    assert ok[1][0] == 42 and ok[1][1] != main and ok[2]
    assert isinstance(bad[1], ValueError) and bad[2]


def test_call_in_thread(reactor):
    done = threading.Event()
    reactor.call_in_thread(done.set)
    reactor.call_later(0, lambda: None)
    reactor.call_when_running(lambda: reactor.call_in_thread(lambda: reactor.call_from_thread(reactor.stop)))
    reactor.run()
    assert done.wait(5)


def test_thread_pool():
    with libreactor.ThreadPool(0, 4) as pool:
        seen = []
        lock = threading.Lock()
        finished = threading.Event()

        def job(i):
            with lock:
                seen.append(i)
                if len(seen) == 100:
                    finished.set()

        for i in range(100):
            pool.submit(job, i)
        assert finished.wait(10)
        pool.resize(1, 2)
        pool.stop()
        assert sorted(seen) == list(range(100))
        assert pool.stats().completed == 100
        with pytest.raises(libreactor.ClosedError):
            pool.submit(job, 0)
        assert not pool._registry.objects
    with pytest.raises(libreactor.InvalidError):
        libreactor.ThreadPool(0, 0)


# -- lifetime ---------------------------------------------------------------------------------------


def test_close_releases_everything(backend):
    reactor = libreactor.Reactor(backend, install_signal_handlers=False)
    a, b = socket.socketpair()
    reactor.add_reader(a, lambda fd, ev: None)
    reactor.call_later(100, lambda: None)
    reactor.add_system_event_trigger("during", "shutdown", lambda: None)
    reactor.call_from_thread(lambda: None)
    assert len(live_objects(reactor)) == 4
    registry = reactor._registry
    reactor.close()
    assert not registry.transient()
    assert reactor.closed
    reactor.close()  # twice is harmless
    with pytest.raises(libreactor.InvalidError):
        reactor.iterate(0)
    a.close()
    b.close()


def test_close_inside_a_callback_is_busy(reactor):
    seen = []

    def try_close():
        try:
            reactor.close()
        except libreactor.BusyError as exc:
            seen.append(exc.status)
        reactor.stop()

    reactor.call_when_running(try_close)
    reactor.run()
    assert seen == [-9]


def test_unreferenced_reactor_is_freed(backend):
    # A callback that refers back to its reactor makes a cycle only Python sees: the collector
    # breaks it, and reactor_free runs.
    reactor = libreactor.Reactor(backend, install_signal_handlers=False)
    reactor.call_later(100, lambda: reactor)
    finalizer = reactor._finalizer
    ref = weakref.ref(reactor)
    del reactor
    gc.collect()
    assert ref() is None
    assert not finalizer.alive


def test_many_reactors_do_not_leak_fds(backend):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        r = libreactor.Reactor(backend, install_signal_handlers=False)
        r.call_later(1, lambda: r)
        del r
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_signal_handlers_stop_the_reactor(backend):
    import signal

    reactor = libreactor.Reactor(backend)
    reactor.call_later(0.01, lambda: os.kill(os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    reactor.run()  # SIGTERM stops it: shutdown runs and run returns
    assert time.monotonic() - started < 5
    reactor.close()


def test_signal_handler(reactor):
    import signal

    seen = []
    previous = signal.getsignal(signal.SIGUSR1)
    hid = reactor.add_signal_handler(signal.SIGUSR1, seen.append)
    os.kill(os.getpid(), signal.SIGUSR1)
    for _ in range(5):
        reactor.iterate(0.05)
    assert seen == [signal.SIGUSR1]
    reactor.remove_signal_handler(hid)
    with pytest.raises(libreactor.NotFoundError):
        reactor.remove_signal_handler(hid)
    with pytest.raises(libreactor.InvalidError):
        reactor.add_signal_handler(signal.SIGKILL, seen.append)
    assert signal.getsignal(signal.SIGUSR1) == previous
