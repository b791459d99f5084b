"""Status codes as Python exceptions."""

import os

from ._native import lib


class ReactorError(Exception):
    """A libreactor call failed. ``status`` is the library's status code (negative); ``errno`` is the
    OS error number for ``REACTOR_E_OS(errno)`` statuses, else ``None``."""

    def __init__(self, status, what=None):
        self.status = status
        number = lib.reactor_status_errno(status)
        self.errno = number if number > 0 else None
        text = os.strerror(self.errno) if self.errno else _strerror(status)
        self.what = what
        super().__init__(f"{what}: {text}" if what else text)


def _strerror(status):
    from ._native import ffi

    return ffi.string(lib.reactor_strerror(status)).decode()


class InvalidError(ReactorError, ValueError):
    """REACTOR_E_INVALID: a bad argument or a handle that is no longer valid."""


class WrongThreadError(ReactorError):
    """REACTOR_E_WRONG_THREAD: a reactor-thread call from another thread."""


class AlreadyRunningError(ReactorError):
    """REACTOR_E_ALREADY_RUNNING."""


class NotRunningError(ReactorError):
    """REACTOR_E_NOT_RUNNING."""


class NotRestartableError(ReactorError):
    """REACTOR_E_NOT_RESTARTABLE: ``run`` after a run that ended with ``stop``."""


class AlreadyCalledError(ReactorError):
    """REACTOR_E_ALREADY_CALLED: the delayed call has run."""


class AlreadyCancelledError(ReactorError):
    """REACTOR_E_ALREADY_CANCELLED: the delayed call was cancelled."""


class NotFoundError(ReactorError, KeyError):
    """REACTOR_E_NOT_FOUND."""

    __str__ = Exception.__str__


class BusyError(ReactorError):
    """REACTOR_E_BUSY."""


class ClosedError(ReactorError):
    """REACTOR_E_CLOSED: the reactor's run ended with ``stop``, or it was freed."""


_BY_STATUS = {
    lib.REACTOR_E_INVALID: InvalidError,
    lib.REACTOR_E_WRONG_THREAD: WrongThreadError,
    lib.REACTOR_E_ALREADY_RUNNING: AlreadyRunningError,
    lib.REACTOR_E_NOT_RUNNING: NotRunningError,
    lib.REACTOR_E_NOT_RESTARTABLE: NotRestartableError,
    lib.REACTOR_E_ALREADY_CALLED: AlreadyCalledError,
    lib.REACTOR_E_ALREADY_CANCELLED: AlreadyCancelledError,
    lib.REACTOR_E_NOT_FOUND: NotFoundError,
    lib.REACTOR_E_BUSY: BusyError,
    lib.REACTOR_E_CLOSED: ClosedError,
}


def error_for(status, what=None):
    """The exception for a (negative) status code."""
    return _BY_STATUS.get(status, ReactorError)(status, what)


def check(status, what=None):
    """Raises the exception for ``status`` unless it is ``REACTOR_OK`` (or positive)."""
    if status < 0:
        raise error_for(status, what)
    return status
