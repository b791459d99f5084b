import gc
import os

import pytest

import libreactor


def _available_backends():
    wanted = os.environ.get("LIBREACTOR_TEST_BACKENDS")
    names = wanted.split(",") if wanted else ["epoll", "poll", "kqueue"]
    found = []
    for name in names:
        try:
            libreactor.Reactor(name, install_signal_handlers=False).close()
        except libreactor.ReactorError:
            continue
        found.append(name)
    return found


BACKENDS = _available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def errors():
    return []


@pytest.fixture
def reactor(backend, errors):
    """A reactor on each backend; after the test, every registration it still holds is released
    (close), and the Python objects kept for the library must be gone."""
    r = libreactor.Reactor(backend, install_signal_handlers=False, on_error=errors.append)
    yield r
    registry = r._registry
    r.close()
    gc.collect()
    # Key 0 is the log handler, which lives as long as the registry itself.
    assert not registry.transient(), f"objects not released: {registry.transient()}"
