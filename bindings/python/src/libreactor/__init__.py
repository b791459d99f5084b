"""libreactor for Python: Twisted's reactor semantics in a native (Rust) event loop.

* :class:`Reactor`: the loop (run/stop/crash/iterate, system event triggers, delayed calls,
  readers and writers, thread calls, the reactor's thread pool);
* :class:`ThreadPool`: a work-stealing pool of its own;
* :mod:`libreactor.twisted`: a Twisted reactor whose loop is a :class:`Reactor`
  (``from libreactor.twisted import install; install()``).
"""

from ._core import (
    ERROR,
    HANGUP,
    PENDING,
    READABLE,
    WRITABLE,
    DelayedCall,
    PoolStats,
    Reactor,
    Stats,
    ThreadPool,
    version,
)
from ._errors import (
    AlreadyCalledError,
    AlreadyCancelledError,
    AlreadyRunningError,
    BusyError,
    ClosedError,
    InvalidError,
    NotFoundError,
    NotRestartableError,
    NotRunningError,
    ReactorError,
    WrongThreadError,
)

__all__ = [
    "ERROR",
    "HANGUP",
    "PENDING",
    "READABLE",
    "WRITABLE",
    "AlreadyCalledError",
    "AlreadyCancelledError",
    "AlreadyRunningError",
    "BusyError",
    "ClosedError",
    "DelayedCall",
    "InvalidError",
    "NotFoundError",
    "NotRestartableError",
    "NotRunningError",
    "PoolStats",
    "Reactor",
    "ReactorError",
    "Stats",
    "ThreadPool",
    "WrongThreadError",
    "version",
]
