"""The reactor, delayed calls and thread pools over libreactor's C API."""

import weakref
from collections import namedtuple

from ._callbacks import Registry, _default_report, ffi, lib
from ._errors import check, error_for

PENDING = lib.REACTOR_PENDING
"""Returned by a ``"before"`` system event trigger to hold the event until
:meth:`Reactor.complete_trigger`."""

READABLE = lib.REACTOR_READABLE
WRITABLE = lib.REACTOR_WRITABLE
HANGUP = lib.REACTOR_HANGUP
ERROR = lib.REACTOR_ERROR

_BACKENDS = {
    None: lib.REACTOR_BACKEND_DEFAULT,
    "default": lib.REACTOR_BACKEND_DEFAULT,
    "epoll": lib.REACTOR_BACKEND_EPOLL,
    "poll": lib.REACTOR_BACKEND_POLL,
    "kqueue": lib.REACTOR_BACKEND_KQUEUE,
}

PHASES = {
    "before": lib.REACTOR_PHASE_BEFORE,
    "during": lib.REACTOR_PHASE_DURING,
    "after": lib.REACTOR_PHASE_AFTER,
}

Stats = namedtuple(
    "Stats",
    "iterations polls wakeups callbacks timers_fired thread_calls fds_registered "
    "timers_pending backend_ctl_calls idle_seconds",
)
PoolStats = namedtuple("PoolStats", "workers idle queued completed stolen")

_LOG_LEVELS = {lib.REACTOR_LOG_ERROR: 40, lib.REACTOR_LOG_WARN: 30, lib.REACTOR_LOG_INFO: 20}


def version():
    """The library's version string, e.g. ``"0.1.0"``."""
    return ffi.string(lib.reactor_version_string()).decode()


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


def _free_reactor(ptr):
    # Runs when the Reactor object is collected (or closed): every pending registration's release
    # hook runs inside reactor_free. BUSY means another thread is inside a call on it right now;
    # then the reactor is leaked rather than freed under that thread.
    lib.reactor_free(ptr)


def _bind(fn, args, kwargs):
    if not args and not kwargs:
        return fn
    return lambda: fn(*args, **kwargs)


class _Job:
    """``call_in_thread_with_callback``: ``work`` on a pool thread, ``done`` on the reactor thread."""

    __slots__ = ("fn", "on_result", "success", "result")

    def __init__(self, fn, on_result):
        self.fn = fn
        self.on_result = on_result
        self.success = False
        self.result = None

    def work(self):
        try:
            self.result = self.fn()
            self.success = True
        except BaseException as exc:  # noqa: BLE001 - handed to on_result
            self.result = exc

    def done(self):
        self.on_result(self.success, self.result)


class Reactor:
    """One libreactor event loop, owned by the thread that creates it (then by the thread that runs
    it). Methods raise :class:`ReactorError` subclasses carrying the library's status code; loop
    methods called from another thread raise :class:`WrongThreadError`.

    ``install_signal_handlers`` (default True, the library's default): SIGINT and SIGTERM stop the
    reactor while it runs, and the previous handlers come back when ``run`` returns.

    Exceptions raised by callbacks go to ``on_error(exc)`` (default: logged on the ``"libreactor"``
    logger); they never stop the loop.
    """

    def __init__(
        self,
        backend=None,
        *,
        install_signal_handlers=True,
        manual_clock=False,
        thread_pool_max=None,
        on_error=None,
    ):
        if backend not in _BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        options = ffi.new("reactor_options_t *")
        lib.reactor_options_init(options)
        options.backend = _BACKENDS[backend]
        options.install_signal_handlers = 1 if install_signal_handlers else 0
        options.manual_clock = 1 if manual_clock else 0
        if thread_pool_max is not None:
            if thread_pool_max < 1:
                raise ValueError("thread_pool_max must be at least 1")
            options.thread_pool_max = thread_pool_max
        out = ffi.new("reactor_t **")
        check(lib.reactor_new(options, out), "reactor_new")
        self._ptr = out[0]
        self.on_error = on_error or _default_report
        self._registry = Registry(self._report)
        lib.reactor_set_log_fn(self._ptr, lib._lr_log, self._registry.add_permanent(self._log))
        self._finalizer = weakref.finalize(self, _free_reactor, self._ptr)
        self._handle_out = ffi.new("reactor_delayed_call_t **")

    # -- lifetime --------------------------------------------------------------------------------

    def close(self):
        """Frees the reactor (``reactor_free``): every pending registration is released. Raises
        :class:`BusyError` while the reactor is in use (e.g. from inside its own callback)."""
        if not self._finalizer.alive:
            return
        check(lib.reactor_free(self._ptr), "reactor_free")
        self._finalizer.detach()

    @property
    def closed(self):
        return not self._finalizer.alive

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _report(self, exc):
        self.on_error(exc)

    @staticmethod
    def _log(level, message):
        import logging

        logging.getLogger("libreactor").log(_LOG_LEVELS.get(level, 20), "%s", message)

    def _register(self, status_of, fn, what):
        """Calls ``status_of(user_data)`` with ``fn`` kept alive; forgets ``fn`` if refused."""
        ud = self._registry.add(fn)
        status = status_of(ud)
        if status < 0:
            self._registry.discard(ud)
            raise error_for(status, what)
        return status

    # -- the loop --------------------------------------------------------------------------------

    def run(self):
        """Fires startup, runs until :meth:`stop` (then shutdown) or :meth:`crash`."""
        check(lib.reactor_run(self._ptr), "run")

    def stop(self):
        check(lib.reactor_stop(self._ptr), "stop")

    def crash(self):
        check(lib.reactor_crash(self._ptr), "crash")

    def iterate(self, timeout=0.0):
        """One pass: due timers and thread calls, one poll of at most ``timeout`` seconds (< 0:
        until something is dispatched), dispatch."""
        check(lib.reactor_iterate(self._ptr, float(timeout)), "iterate")

    @property
    def running(self):
        """True from DURING-startup until DURING-shutdown."""
        return bool(lib.reactor_is_running(self._ptr))

    def is_in_io_thread(self):
        return bool(lib.reactor_is_in_io_thread(self._ptr))

    def wake_up(self):
        """Wakes the reactor's poll. Any thread."""
        check(lib.reactor_wake_up(self._ptr), "wake_up")

    @property
    def backend(self):
        return ffi.string(lib.reactor_backend_name(self._ptr)).decode()

    def stats(self):
        out = ffi.new("reactor_stats_t *")
        out.struct_size = ffi.sizeof("reactor_stats_t")
        check(lib.reactor_stats(self._ptr, out), "stats")
        return Stats(*(getattr(out, f) for f in Stats._fields))

    def timeout_ms(self):
        """How long a host loop may sleep before ``iterate(0)``: -1 none pending, else ms."""
        return lib.reactor_backend_timeout_ms(self._ptr)

    # -- system events ---------------------------------------------------------------------------

    def add_system_event_trigger(self, phase, event, fn, *args, **kwargs):
        """Adds a one-shot trigger; returns its id. A ``"before"`` trigger that returns
        :data:`PENDING` holds the event until :meth:`complete_trigger` with that id."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r} (use 'before', 'during' or 'after')")
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        call = _bind(fn, args, kwargs)

        def trigger(_trigger_id):
            result = call()
            return PENDING if result is PENDING else 0

        out = ffi.new("uint64_t *")
        self._register(
            lambda ud: lib.reactor_add_system_event_trigger(
                self._ptr, PHASES[phase], event.encode(), lib._lr_trigger, ud, lib._lr_release, out
            ),
            trigger,
            "add_system_event_trigger",
        )
        return out[0]

    def remove_system_event_trigger(self, trigger_id):
        check(lib.reactor_remove_system_event_trigger(self._ptr, trigger_id), "remove_trigger")

    def fire_system_event(self, event):
        check(lib.reactor_fire_system_event(self._ptr, event.encode()), "fire_system_event")

    def complete_trigger(self, trigger_id, now=False):
        """Completes a held ``"before"`` trigger. The event's DURING and AFTER triggers then run on
        the loop's next pass; with ``now=True``, before this returns when this was the last trigger
        holding it (Twisted's behaviour; "startup" and "shutdown" inside ``run`` still wait a pass)."""
        complete = lib.reactor_trigger_complete_now if now else lib.reactor_trigger_complete
        check(complete(self._ptr, trigger_id), "complete_trigger")

    def call_when_running(self, fn, *args, **kwargs):
        self._register(
            lambda ud: lib.reactor_call_when_running(self._ptr, lib._lr_call, ud, lib._lr_release),
            _bind(fn, args, kwargs),
            "call_when_running",
        )

    # -- signals ---------------------------------------------------------------------------------

    def add_signal_handler(self, signum, fn):
        """Calls ``fn(signum)`` on the reactor thread after ``signum`` is delivered (coalesced; in
        the order added; never in signal context). The signal's disposition is the library's until
        the last handler goes, then the previous one is back. Returns the handler's id."""
        out = ffi.new("uint64_t *")
        self._register(
            lambda ud: lib.reactor_add_signal_handler(
                self._ptr, int(signum), lib._lr_signal, ud, lib._lr_release, out
            ),
            fn,
            "add_signal_handler",
        )
        return out[0]

    def remove_signal_handler(self, handler_id):
        check(lib.reactor_remove_signal_handler(self._ptr, handler_id), "remove_signal_handler")

    # -- file descriptors ------------------------------------------------------------------------

    def add_reader(self, fd, fn):
        """Calls ``fn(fd, events)`` whenever ``fd`` (an int or an object with ``fileno()``) is
        readable; replaces an earlier reader of the fd."""
        fd = _fileno(fd)
        self._register(
            lambda ud: lib.reactor_add_reader(self._ptr, fd, lib._lr_fd, ud, lib._lr_release),
            fn,
            "add_reader",
        )

    def add_writer(self, fd, fn):
        fd = _fileno(fd)
        self._register(
            lambda ud: lib.reactor_add_writer(self._ptr, fd, lib._lr_fd, ud, lib._lr_release),
            fn,
            "add_writer",
        )

    def remove_reader(self, fd):
        check(lib.reactor_remove_reader(self._ptr, _fileno(fd)), "remove_reader")

    def remove_writer(self, fd):
        check(lib.reactor_remove_writer(self._ptr, _fileno(fd)), "remove_writer")

    def _fd_list(self, fn, what):
        count = ffi.new("size_t *")
        check(fn(self._ptr, ffi.NULL, 0, count), what)
        while True:
            cap = count[0]
            fds = ffi.new("int[]", max(cap, 1))
            check(fn(self._ptr, fds, cap, count), what)
            if count[0] <= cap:
                return list(fds[0 : count[0]])

    def get_readers(self):
        return self._fd_list(lib.reactor_get_readers, "get_readers")

    def get_writers(self):
        return self._fd_list(lib.reactor_get_writers, "get_writers")

    def remove_all(self):
        """Removes every reader and writer; returns their fds."""
        cap = len(set(self.get_readers()) | set(self.get_writers()))
        fds = ffi.new("int[]", max(cap, 1))
        count = ffi.new("size_t *")
        check(lib.reactor_remove_all(self._ptr, fds, cap, count), "remove_all")
        return list(fds[0 : min(cap, count[0])])

    # -- time ------------------------------------------------------------------------------------

    def seconds(self):
        """The clock delayed calls use (monotonic, or the manual clock)."""
        return lib.reactor_seconds(self._ptr)

    def advance(self, seconds):
        """Manual clock only: moves time forward and runs the calls that became due."""
        check(lib.reactor_clock_advance(self._ptr, float(seconds)), "advance")

    def call_later(self, delay, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` after ``delay`` seconds; returns a :class:`DelayedCall`."""
        return DelayedCall(self, delay, _bind(fn, args, kwargs))

    def _schedule(self, delay, fn):
        """``reactor_call_later`` for ``fn``; returns the raw handle, which the caller must release
        (``reactor_delayed_call_release``) when it no longer needs it."""
        ud = self._registry.add(fn)
        out = self._handle_out  # reactor-thread only, and the library fills it before returning
        status = lib.reactor_call_later(self._ptr, delay, lib._lr_call, ud, lib._lr_release, out)
        if status < 0:
            self._registry.discard(ud)
            raise error_for(status, "call_later")
        return out[0]

    def pending_calls(self):
        """Number of pending delayed calls."""
        return lib.reactor_delayed_call_count(self._ptr)

    # -- threads ---------------------------------------------------------------------------------

    def call_from_thread(self, fn, *args, **kwargs):
        """Queues ``fn(*args, **kwargs)`` to run on the reactor thread. Any thread."""
        self._register(
            lambda ud: lib.reactor_call_from_thread(self._ptr, lib._lr_call, ud, lib._lr_release),
            _bind(fn, args, kwargs),
            "call_from_thread",
        )

    def call_in_thread(self, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` on the reactor's thread pool. Any thread."""
        self._register(
            lambda ud: lib.reactor_call_in_thread(self._ptr, lib._lr_job, ud, lib._lr_release),
            _bind(fn, args, kwargs),
            "call_in_thread",
        )

    def call_in_thread_with_callback(self, on_result, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` on the pool, then ``on_result(success, result_or_exception)``
        on the reactor thread (Twisted's ``callInThreadWithCallback``). Any thread."""
        job = _Job(_bind(fn, args, kwargs), on_result)
        self._register(
            lambda ud: lib.reactor_call_in_thread_with_callback(
                self._ptr, lib._lr_work, lib._lr_done, ud, lib._lr_release
            ),
            job,
            "call_in_thread_with_callback",
        )

    def suggest_thread_pool_size(self, size):
        check(lib.reactor_suggest_thread_pool_size(self._ptr, size), "suggest_thread_pool_size")


class DelayedCall:
    """A call scheduled by :meth:`Reactor.call_later`."""

    __slots__ = ("_reactor", "_handle", "_fn", "__weakref__")

    def __init__(self, reactor, delay, fn):
        self._reactor = reactor
        self._fn = fn
        self._handle = ffi.gc(reactor._schedule(float(delay), fn), lib.reactor_delayed_call_release)

    def cancel(self):
        check(lib.reactor_delayed_call_cancel(self._handle), "cancel")

    def reset(self, seconds_from_now):
        check(lib.reactor_delayed_call_reset(self._handle, float(seconds_from_now)), "reset")

    def delay(self, seconds_later):
        check(lib.reactor_delayed_call_delay(self._handle, float(seconds_later)), "delay")

    def active(self):
        return bool(lib.reactor_delayed_call_active(self._handle))

    def get_time(self):
        return lib.reactor_delayed_call_get_time(self._handle)

    def __repr__(self):
        state = "active" if self.active() else "inactive"
        return f"<libreactor.DelayedCall {state} at {self.get_time():.6f}: {self._fn!r}>"


def _stop_pool(ptr):
    lib.reactor_threadpool_free(ptr)


class ThreadPool:
    """A pool of its own (``reactor_threadpool_new``): ``min_threads..max_threads`` workers."""

    def __init__(self, min_threads=0, max_threads=10, *, on_error=None):
        out = ffi.new("reactor_threadpool_t **")
        check(lib.reactor_threadpool_new(min_threads, max_threads, out), "threadpool_new")
        self._ptr = out[0]
        self.on_error = on_error or _default_report
        self._registry = Registry(lambda exc: self.on_error(exc))
        self._finalizer = weakref.finalize(self, _stop_pool, self._ptr)

    def submit(self, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` once on a pool thread. Any thread."""
        ud = self._registry.add(_bind(fn, args, kwargs))
        status = lib.reactor_threadpool_submit(self._ptr, lib._lr_job, ud, lib._lr_release)
        if status < 0:
            self._registry.discard(ud)
            raise error_for(status, "submit")

    def resize(self, min_threads, max_threads):
        check(lib.reactor_threadpool_resize(self._ptr, min_threads, max_threads), "resize")

    def stats(self):
        out = ffi.new("reactor_threadpool_stats_t *")
        out.struct_size = ffi.sizeof("reactor_threadpool_stats_t")
        check(lib.reactor_threadpool_stats(self._ptr, out), "threadpool_stats")
        return PoolStats(*(getattr(out, f) for f in PoolStats._fields))

    def stop(self):
        """Refuses new jobs, runs the queued ones and joins every worker."""
        check(lib.reactor_threadpool_stop(self._ptr), "threadpool_stop")

    def close(self):
        """Stops (if needed) and frees the pool."""
        if self._finalizer.alive:
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
