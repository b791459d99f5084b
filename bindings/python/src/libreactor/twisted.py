"""A Twisted reactor whose loop is libreactor's.

Usage, before anything imports ``twisted.internet.reactor``::

    from libreactor.twisted import install
    install()

What is native and what is Twisted's Python:

* native (libreactor): ``run``/``stop``/``crash``/``iterate``, system event triggers (three phases, a
  ``"before"`` trigger's Deferred holds the event), ``callLater``/``getDelayedCalls`` and every
  ``DelayedCall`` operation (the timer heap, O(log n) reset), ``seconds()`` (a monotonic clock),
  ``callFromThread`` (a lock-free queue and coalesced wake-ups), the fd set (``addReader`` ...
  ``getWriters``), waking;
* Twisted's Python, unchanged, on top of that loop: the transports (TCP, UDP, UNIX, TLS), processes,
  the name resolver, the thread pool (``callInThread``, ``deferToThread``) and signal handling
  (SIGINT/SIGTERM/SIGBREAK stop the reactor, SIGCHLD reaps processes).
"""

import builtins
import itertools
import traceback

from twisted.internet import error
from twisted.internet.base import DelayedCall, PluggableResolverMixin
from twisted.internet.defer import Deferred
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST, installReactor
from twisted.internet.posixbase import _NO_FILEDESC, PosixReactorBase
from twisted.internet.interfaces import IReactorFDSet
from twisted.python import failure, log, threadable
from twisted.python.runtime import platform
from zope.interface import implementer

from ._core import ERROR, HANGUP, PENDING, PHASES, READABLE, WRITABLE, Reactor
from ._errors import (
    AlreadyRunningError,
    BusyError,
    ClosedError,
    NotFoundError,
    NotRestartableError,
    NotRunningError,
)
from ._errors import check, error_for
from ._native import ffi, lib

_lr_fire = lib._lr_fire
_lr_fd_handle = lib._lr_fd_handle
_new_handle = ffi.new_handle
_call_later = lib.reactor_call_later
_release_handle = lib.reactor_delayed_call_release
_seconds = lib.reactor_seconds
_NULL = ffi.NULL

_SHUTDOWN = lib.REACTOR_SHUTDOWN
_DISCONNECTED = HANGUP | ERROR

__all__ = ["LibreactorReactor", "install"]


class _NativeDelayedCall(DelayedCall):
    """Twisted's ``DelayedCall`` whose scheduling is a libreactor delayed call.

    ``time`` and ``getTime()`` keep Twisted's meaning (computed with the reactor's ``seconds``, so a
    reactor whose ``seconds`` was replaced still reports in that clock); the call itself fires from
    the native timer heap, and ``reset``/``delay`` move it there in O(log n).
    """

    # Registered without a release hook: the call itself knows when the library is done with it (it
    # ran, or it was cancelled) and leaves the reactor's table of pending calls then, which spares a
    # crossing back into Python per call. A call still pending when its reactor is freed goes with
    # the reactor. The table holds a cffi handle to the call (reactor -> handle -> call), which is
    # what the library passes back to _lr_fire; nothing refers from the call back to itself, so a
    # call that has run is freed by reference counting, without the cycle collector.

    resetter = None

    def __init__(self, reactor, delay, func, args, kw):
        # Twisted's DelayedCall.__init__, written out (this is the hot path of callLater).
        seconds = reactor.seconds
        self.time = seconds() + delay
        self.func = func
        self.args = args
        self.kw = kw
        self.seconds = seconds
        self.cancelled = self.called = 0
        self.delayed_time = 0
        if self.debug:
            self.creator = traceback.format_stack()[:-2]
        handle = _new_handle(self)
        self._pending = pending = reactor._pendingCalls
        self._key = key = next(reactor._callKeys)
        pending[key] = handle
        out = reactor._handleOut
        status = _call_later(reactor._nativePtr, delay, _lr_fire, handle, _NULL, out)
        if status < 0:
            del pending[key]
            self._handle = None
            raise error_for(status, "callLater")
        self._handle = out[0]

    @staticmethod
    def canceller(call):
        # DelayedCall.cancel checked the flags and calls this before marking the call cancelled.
        lib.reactor_delayed_call_cancel(call._handle)
        call._pending.pop(call._key, None)
        handle, call._handle = call._handle, None
        _release_handle(handle)

    def __del__(self):
        # Still pending when the last reference went (the reactor was freed first).
        handle = getattr(self, "_handle", None)
        if handle is not None:
            _release_handle(handle)

    def __call__(self):
        # The native timer fired: what ReactorBase.runUntilCurrent does for one call. The native
        # handle is only needed while the call is pending; Twisted's flags answer from now on.
        self._pending.pop(self._key, None)
        handle, self._handle = self._handle, None
        _release_handle(handle)
        self.called = 1
        try:
            self.func(*self.args, **self.kw)
        except BaseException:
            log.deferr()
            if hasattr(self, "creator"):
                log.msg("DelayedCall was created at:\n" + "".join(self.creator))
        if not self.debug:
            del self.func, self.args, self.kw

    def reset(self, secondsFromNow):
        if self.cancelled:
            raise error.AlreadyCancelled
        if self.called:
            raise error.AlreadyCalled
        lib.reactor_delayed_call_reset(self._handle, float(secondsFromNow))
        self.time = self.seconds() + secondsFromNow
        self.delayed_time = 0

    def delay(self, secondsLater):
        if self.cancelled:
            raise error.AlreadyCancelled
        if self.called:
            raise error.AlreadyCalled
        lib.reactor_delayed_call_delay(self._handle, float(secondsLater))
        self.time += secondsLater
        self.delayed_time = 0


@implementer(IReactorFDSet)
class LibreactorReactor(PosixReactorBase):
    """Twisted's ``PosixReactorBase`` with libreactor as the loop (see the module docstring)."""

    def __init__(self, backend=None):
        # The native loop first: ReactorBase.__init__'s work is redone below without its Python
        # loop machinery (the timed-call heap, the thread-call queue, the waker).
        self._native = Reactor(backend, install_signal_handlers=False, on_error=self._unhandled)
        self._reads = {}
        self._writes = {}
        self._pendingCalls = {}  # key -> cffi handle of a pending _NativeDelayedCall
        self._callKeys = itertools.count()
        # The fd callbacks are cffi handles to two bound methods, made once for the reactor's
        # lifetime and registered without a release hook, so adding and removing a reader or writer
        # (which Twisted's transports do on every write burst) costs the native call only. The
        # reactor keeps the handles alive; the library can only call them inside run/iterate.
        self._readUserData = _new_handle(self._readable)
        self._writeUserData = _new_handle(self._writable)
        self._nativePtr = self._native._ptr
        self._handleOut = self._native._handle_out
        PluggableResolverMixin.__init__(self)
        self.threadCallQueue = []
        self.running = False
        self._started = False
        self._stopped = True
        self._justStopped = False
        self._startedBefore = False
        self._internalReaders = set()
        self.waker = None
        self.addSystemEventTrigger("during", "startup", self._reallyStartRunning)
        self.addSystemEventTrigger("during", "shutdown", self._shutdownBegins)
        self.addSystemEventTrigger("during", "shutdown", self.disconnectAll)
        if platform.supportsThreads():
            self._initThreads()

    @staticmethod
    def _unhandled(exc):
        log.err(failure.Failure(exc), "libreactor: unhandled error in a callback")

    @property
    def backend(self):
        """The native backend: "epoll", "poll" or "kqueue"."""
        return self._native.backend

    # -- IReactorCore ----------------------------------------------------------------------------

    def installWaker(self):
        """The native loop has its own waker (eventfd, EVFILT_USER or a pipe)."""

    def wakeUp(self):
        self._native.wake_up()

    def startRunning(self, installSignalHandlers=True):
        """Twisted's checks and signal set-up; the native ``run`` (``mainLoop``) fires startup."""
        if self._started:
            raise error.ReactorAlreadyRunning()
        if self._startedBefore:
            raise error.ReactorNotRestartable()
        self._signals.uninstall()
        self._installSignalHandlers = installSignalHandlers
        self._signals = self._makeSignalHandling(installSignalHandlers)
        self._started = True
        self._stopped = False
        if self._registerAsIOThread:
            threadable.registerAsIOThread()

    def mainLoop(self):
        try:
            self._native.run()
        except AlreadyRunningError:
            raise error.ReactorAlreadyRunning()
        except NotRestartableError:
            raise error.ReactorNotRestartable()
        finally:
            self._started = False

    def run(self, installSignalHandlers=True):
        self.startRunning(installSignalHandlers=installSignalHandlers)
        try:
            self.mainLoop()
        finally:
            self._signals.uninstall()

    def stop(self):
        if self._stopped:
            raise error.ReactorNotRunning("Can't stop reactor that isn't running.")
        try:
            self._native.stop()
        except NotRunningError:
            raise error.ReactorNotRunning("Can't stop reactor that isn't running.")
        self._stopped = True
        self._justStopped = True
        self._startedBefore = True

    def _shutdownBegins(self):
        # What Twisted's DURING-shutdown crash() does to the flags (the native run then ends by
        # itself once shutdown has finished).
        self._started = False
        self.running = False
        self._justStopped = False

    def crash(self):
        try:
            self._native.crash()
        except NotRunningError:
            pass
        self._started = False
        self.running = False
        self.addSystemEventTrigger("during", "startup", self._reallyStartRunning)

    def iterate(self, delay=0.0):
        self._native.iterate(delay)

    def doIteration(self, delay):
        self._native.iterate(-1.0 if delay is None else delay)

    def runUntilCurrent(self):
        """Runs what is due now (one native pass that does not wait)."""
        self._native.iterate(0.0)

    def timeout(self):
        ms = self._native.timeout_ms()
        return None if ms < 0 else ms / 1000.0

    # -- system events ---------------------------------------------------------------------------

    def addSystemEventTrigger(self, phase, eventType, callable, *args, **kwargs):
        assert builtins.callable(callable), f"{callable} is not callable"
        if phase not in PHASES:
            raise KeyError(phase)

        def trigger():
            try:
                result = callable(*args, **kwargs)
            except BaseException:
                log.err()
                return None
            if phase == "before" and isinstance(result, Deferred):
                return self._holdFor(result, lambda: triggerID[1][1])
            return None

        triggerID = (eventType, (phase, self._native.add_system_event_trigger(phase, eventType, trigger)))
        return triggerID

    def _holdFor(self, deferred, triggerId):
        """A "before" trigger returned ``deferred``: hold the event until it fires."""
        state = {"returned": False, "fired": False}

        def fired(result):
            if state["returned"]:
                self._native.complete_trigger(triggerId(), now=True)
            else:
                state["fired"] = True
            return result

        deferred.addBoth(fired)
        state["returned"] = True
        return None if state["fired"] else PENDING

    def removeSystemEventTrigger(self, triggerID):
        eventType, (phase, native_id) = triggerID
        if phase not in PHASES:
            raise KeyError(phase)
        try:
            self._native.remove_system_event_trigger(native_id)
        except NotFoundError:
            raise ValueError(f"no trigger {triggerID!r} to remove")

    def fireSystemEvent(self, eventType):
        try:
            self._native.fire_system_event(eventType)
        except BusyError:
            log.msg(f"libreactor: system event {eventType!r} is already firing")

    # -- IReactorTime ----------------------------------------------------------------------------

    def seconds(self):
        return _seconds(self._nativePtr)

    def callLater(self, delay, callable, *args, **kw):
        assert builtins.callable(callable), f"{callable} is not callable"
        assert delay >= 0, f"{delay} is not greater than or equal to 0 seconds"
        return _NativeDelayedCall(self, delay, callable, args, kw)

    def getDelayedCalls(self):
        return [ffi.from_handle(handle) for handle in self._pendingCalls.values()]

    # -- IReactorThreads -------------------------------------------------------------------------

    def callFromThread(self, f, *args, **kwargs):
        assert builtins.callable(f), f"{f} is not callable"
        try:
            self._native.call_from_thread(self._runThreadCall, f, args, kwargs)
        except ClosedError:
            # The run ended with stop: like Twisted's queue after stop, the call never runs.
            pass

    @staticmethod
    def _runThreadCall(f, args, kwargs):
        try:
            f(*args, **kwargs)
        except BaseException:
            log.err()

    # -- IReactorFDSet ---------------------------------------------------------------------------

    def addReader(self, reader):
        fd = reader.fileno()
        if fd in self._reads:
            return
        check(
            lib.reactor_add_reader(self._nativePtr, fd, _lr_fd_handle, self._readUserData, ffi.NULL),
            "addReader",
        )
        self._reads[fd] = reader

    def addWriter(self, writer):
        fd = writer.fileno()
        if fd in self._writes:
            return
        check(
            lib.reactor_add_writer(self._nativePtr, fd, _lr_fd_handle, self._writeUserData, ffi.NULL),
            "addWriter",
        )
        self._writes[fd] = writer

    def _fdOf(self, selectable, table):
        fd = selectable.fileno()
        if fd == -1:
            # The selectable has closed its fd: find it by identity, as Twisted's pollers do.
            for fd, registered in table.items():
                if registered is selectable:
                    return fd
            return None
        return fd

    def removeReader(self, reader):
        fd = self._fdOf(reader, self._reads)
        if fd is not None and self._reads.pop(fd, None) is not None:
            # NOT_FOUND: the library already dropped it (shutdown, or its fd was closed).
            lib.reactor_remove_reader(self._nativePtr, fd)

    def removeWriter(self, writer):
        fd = self._fdOf(writer, self._writes)
        if fd is not None and self._writes.pop(fd, None) is not None:
            lib.reactor_remove_writer(self._nativePtr, fd)

    def removeAll(self):
        return self._removeAll(list(self._reads.values()), list(self._writes.values()))

    def getReaders(self):
        return [self._reads[fd] for fd in self._native.get_readers() if fd in self._reads]

    def getWriters(self):
        return [self._writes[fd] for fd in self._native.get_writers() if fd in self._writes]

    def _readable(self, fd, events):
        selectable = self._reads.get(fd)
        if selectable is None or events & _SHUTDOWN:
            return
        if events & _DISCONNECTED and not events & READABLE:
            # Hung up with nothing left to read: a clean close (maybe a half-close).
            log.callWithLogger(
                selectable, self._disconnectSelectable, selectable, CONNECTION_DONE, True
            )
            return
        log.callWithLogger(selectable, self._dispatch, selectable, True)

    def _writable(self, fd, events):
        selectable = self._writes.get(fd)
        if selectable is None or events & _SHUTDOWN:
            return
        if events & _DISCONNECTED and not events & WRITABLE:
            if fd not in self._reads:
                log.callWithLogger(
                    selectable, self._disconnectSelectable, selectable, CONNECTION_LOST, False
                )
            return
        log.callWithLogger(selectable, self._dispatch, selectable, False)

    def _dispatch(self, selectable, isRead):
        # Twisted's _PollLikeMixin._doReadOrWrite for one direction.
        try:
            if selectable.fileno() == -1:
                why = _NO_FILEDESC
            else:
                why = selectable.doRead() if isRead else selectable.doWrite()
        except BaseException:
            why = failure.Failure().value
            log.err()
        if why:
            self._disconnectSelectable(selectable, why, isRead)


def install(backend=None):
    """Installs a :class:`LibreactorReactor` as Twisted's global reactor and returns it."""
    reactor = LibreactorReactor(backend)
    installReactor(reactor)
    return reactor
