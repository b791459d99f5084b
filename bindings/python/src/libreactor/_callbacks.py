"""How the library calls back into Python.

The library never holds a Python object. Each registration's ``user_data`` is a number,
``(registry id << 40) | key``, and the Python side keeps ``key -> callable`` in a :class:`Registry`
owned by the reactor (or thread pool) it belongs to. So:

* a callable stays alive exactly until the library's release hook for it runs (``_lr_release``
  pops it): the library's "exactly once" promise is what keeps Python's references right;
* the library holds no reference the garbage collector cannot see, so a reactor that nobody uses
  any more is collected even when its callbacks refer back to it (then ``reactor_free`` runs);
* a callback for a registry that is gone (its reactor was collected) is ignored.

The ``_lr_*`` functions are cffi ``extern "Python"`` callbacks: they take the GIL themselves, also
on the library's pool threads. They never let an exception escape into the library's frames: an
exception from host code goes to the registry's ``report`` (the reactor's error handler).
"""

import itertools
import weakref

from ._native import ffi, lib

KEY_BITS = 40

# registry id -> weakref to the Registry. A plain dict of weak references rather than a
# WeakValueDictionary: every callback looks its registry up here, and dict.get plus calling the
# reference are both C code.
_registries = {}
_registry_ids = itertools.count(1)

_cast = ffi.cast
_VOID_P = ffi.typeof("void *")
_UINTPTR = ffi.typeof("uintptr_t")


def _default_report(exc):
    import logging

    logging.getLogger("libreactor").error("unhandled error in a callback", exc_info=exc)


class Registry:
    """The Python objects one reactor's (or pool's) registrations stand for, keyed by the
    ``user_data`` value the library holds for them."""

    __slots__ = ("rid", "objects", "permanent", "_keys", "report", "__weakref__")

    def __init__(self, report=None):
        self.rid = next(_registry_ids)
        self.objects = {}
        # Keys of objects that live as long as the registry (registered with a NULL release).
        self.permanent = set()
        # The keys are the user_data values themselves: registry id in the high bits.
        self._keys = itertools.count((self.rid << KEY_BITS) | 1)
        self.report = report or _default_report
        rid = self.rid
        _registries[rid] = weakref.ref(self, lambda _ref: _registries.pop(rid, None))

    def add(self, obj):
        """Keeps ``obj`` until the library releases the returned ``user_data``."""
        key = next(self._keys)
        self.objects[key] = obj
        return _cast(_VOID_P, key)

    def add_permanent(self, obj):
        """Keeps ``obj`` as long as the registry: for registrations made with a NULL release
        (the reactor's log handler)."""
        key = next(self._keys)
        self.objects[key] = obj
        self.permanent.add(key)
        return _cast(_VOID_P, key)

    def transient(self):
        """The objects that wait for a release hook."""
        return {k: v for k, v in self.objects.items() if k not in self.permanent}

    def discard(self, user_data):
        """Forgets an object whose registration the library refused (it kept nothing)."""
        self.objects.pop(int(_cast(_UINTPTR, user_data)), None)

    def __len__(self):
        return len(self.objects)


_NO_REGISTRY = lambda: None  # noqa: E731 - a dead weak reference's stand-in


def _lookup(user_data):
    key = int(_cast(_UINTPTR, user_data))
    registry = _registries.get(key >> KEY_BITS, _NO_REGISTRY)()
    if registry is None:
        return None, None
    return registry, registry.objects.get(key)


@ffi.def_extern()
def _lr_release(user_data):
    key = int(_cast(_UINTPTR, user_data))
    registry = _registries.get(key >> KEY_BITS, _NO_REGISTRY)()
    if registry is not None:
        registry.objects.pop(key, None)


@ffi.def_extern()
def _lr_call(_reactor, user_data):
    registry, fn = _lookup(user_data)
    if fn is None:
        return
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - reported, never unwound into the library
        registry.report(exc)


_from_handle = ffi.from_handle


@ffi.def_extern()
def _lr_fire(_reactor, user_data):
    # The object handles its own exceptions (a Twisted DelayedCall logs them); anything that still
    # escapes is printed by cffi rather than unwound into the library.
    _from_handle(user_data)()


@ffi.def_extern()
def _lr_fd_handle(_reactor, fd, events, user_data):
    _from_handle(user_data)(fd, events)


@ffi.def_extern()
def _lr_trigger(_reactor, trigger_id, user_data):
    registry, fn = _lookup(user_data)
    if fn is None:
        return 0
    try:
        return fn(trigger_id)
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)
        return 0


@ffi.def_extern()
def _lr_fd(_reactor, fd, events, user_data):
    registry, fn = _lookup(user_data)
    if fn is None:
        return
    try:
        fn(fd, events)
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)


@ffi.def_extern()
def _lr_signal(_reactor, signum, user_data):
    registry, fn = _lookup(user_data)
    if fn is None:
        return
    try:
        fn(signum)
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)


@ffi.def_extern()
def _lr_job(user_data):
    registry, fn = _lookup(user_data)
    if fn is None:
        return
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)


@ffi.def_extern()
def _lr_work(user_data):
    # The result stays in Python: the job object keeps it for _lr_done.
    registry, job = _lookup(user_data)
    if job is not None:
        try:
            job.work()
        except BaseException as exc:  # noqa: BLE001
            registry.report(exc)
    return ffi.NULL


@ffi.def_extern()
def _lr_done(_reactor, _result, user_data):
    registry, job = _lookup(user_data)
    if job is None:
        return
    try:
        job.done()
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)


@ffi.def_extern()
def _lr_log(user_data, level, message):
    registry, handler = _lookup(user_data)
    if handler is None:
        return
    try:
        handler(level, ffi.string(message).decode("utf-8", "replace"))
    except BaseException as exc:  # noqa: BLE001
        registry.report(exc)


__all__ = ["Registry", "lib", "ffi"]
