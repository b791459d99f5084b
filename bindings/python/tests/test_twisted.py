"""libreactor.twisted beyond what Twisted's own suite checks (run_twisted_suite.py does that)."""

import gc
import socket

import pytest

pytest.importorskip("twisted")

from twisted.internet import defer, error, protocol, threads  # noqa: E402

from libreactor.twisted import LibreactorReactor  # noqa: E402


@pytest.fixture
def reactor(backend):
    r = LibreactorReactor(backend)
    yield r
    registry = r._native._registry
    r._native.close()
    assert not registry.transient()


def test_echo_thread_and_held_shutdown(reactor, backend):
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    assert reactor.backend == backend
    events = []

    class Echo(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    class Client(protocol.Protocol):
        def connectionMade(self):
            self.transport.write(b"x" * 100000)
            self.got = 0

        def dataReceived(self, data):
            self.got += len(data)
            if self.got == 100000:
                events.append("echoed")
                self.transport.loseConnection()

        def connectionLost(self, reason):
            events.append(reason.type.__name__)
            reactor.stop()

    def slow_shutdown():
        # A BEFORE-shutdown Deferred holds the shutdown until it fires (from a timer).
        d = defer.Deferred()
        reactor.callLater(0.05, d.callback, None)
        d.addCallback(lambda _: events.append("before-shutdown done"))
        return d

    reactor.addSystemEventTrigger("before", "shutdown", slow_shutdown)
    reactor.addSystemEventTrigger("during", "shutdown", events.append, "during-shutdown")
    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")

    @defer.inlineCallbacks
    def main():
        result = yield threads.deferToThreadPool(reactor, reactor.getThreadPool(), lambda: 42)
        events.append(result)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        yield connectProtocol(endpoint, Client())

    reactor.callWhenRunning(main)
    reactor.run(installSignalHandlers=False)
    assert events == [42, "echoed", "ConnectionDone", "before-shutdown done", "during-shutdown"]
    with pytest.raises(error.ReactorNotRestartable):
        reactor.run()
    port.stopListening()


def test_delayed_calls(reactor):
    seen = []
    a = reactor.callLater(10, seen.append, "a")
    b = reactor.callLater(20, seen.append, "b")
    assert set(reactor.getDelayedCalls()) == {a, b}
    b.reset(0)
    a.delay(5)
    assert a.getTime() == pytest.approx(reactor.seconds() + 15, abs=0.5)
    reactor.iterate(0.1)
    assert seen == ["b"]
    assert reactor.getDelayedCalls() == [a]
    a.cancel()
    with pytest.raises(error.AlreadyCancelled):
        a.reset(1)
    with pytest.raises(error.AlreadyCalled):
        b.cancel()
    assert reactor.getDelayedCalls() == []


def test_fd_set(reactor):
    from twisted.internet.abstract import FileDescriptor

    a, b = socket.socketpair()

    class Reader(FileDescriptor):
        def fileno(self):
            return a.fileno()

        def doRead(self):
            return None

    r = Reader(reactor)
    reactor.addReader(r)
    reactor.addWriter(r)
    assert reactor.getReaders() == [r]
    assert reactor.getWriters() == [r]
    assert reactor.removeAll() == [r]
    assert reactor.getReaders() == [] and reactor.getWriters() == []
    a.close()
    b.close()
    gc.collect()


def test_call_from_thread_after_stop_is_dropped(reactor):
    reactor.callWhenRunning(reactor.stop)
    reactor.run(installSignalHandlers=False)
    reactor.callFromThread(lambda: None)  # never runs, never raises (as in Twisted)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_stops_a_blocked_reactor(backend, signame, tmp_path):
    # The reactor sleeps in the native poll with nothing scheduled; the signal must still reach
    # Twisted's Python handler (through Python's wakeup fd, a reader of the loop), which stops it.
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "signalled.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        from libreactor.twisted import install
        reactor = install({backend!r})
        reactor.addSystemEventTrigger("after", "shutdown", print, "shutdown ran")
        reactor.callWhenRunning(lambda: print("running", flush=True))
        reactor.run()
        print("exit signal", reactor._exitSignal == signal.{signame})
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    import signal as signal_module
    import time

    time.sleep(0.2)  # let it block in the poll
    proc.send_signal(getattr(signal_module, signame))
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out.split("\n")[:2] == ["shutdown ran", "exit signal True"]


def test_spawn_process_and_sigchld(reactor):
    # Twisted's process support (SIGCHLD through its waker, an internal reader of our fd set).
    import sys

    out, ended = [], []

    class Proto(protocol.ProcessProtocol):
        def outReceived(self, data):
            out.append(data)

        def processEnded(self, reason):
            ended.append(reason.value.exitCode)
            reactor.stop()

    reactor.callWhenRunning(
        reactor.spawnProcess, Proto(), sys.executable,
        [sys.executable, "-c", "print('hello'); raise SystemExit(3)"], env=None,
    )
    reactor.run()
    assert (b"".join(out), ended) == (b"hello\n", [3])
