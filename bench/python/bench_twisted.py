#!/usr/bin/env python3
"""Twisted on libreactor (libreactor.twisted) against Twisted's own EPollReactor, in one run.

    scripts/python.sh bench [PREFIX] [--runs 5] [--quick] [--no-write]

Each (shape, reactor) runs in a fresh child process (`--child`), interleaved over the runs (the order
of the two reactors alternates), and the medians go to bindings/python/BENCHMARKS.md (which
bench/run.py includes in BENCHMARKS.md). Shapes:

* calllater0: a callLater(0) chain of N calls (each call schedules the next); calls per wall second.
* callfromthread: a thread calls callFromThread every 0.5 ms (paced, the reactor idle in between);
  one-way latency from before the call to the callback, p50 and p99 in microseconds.
* reset: 100k pending calls 100-200 s away, then 2000 of them reset to 10-50 s (earlier); wall
  microseconds per reset (Twisted finds the call in its heap with a linear scan).
* tcp: 1 GiB through Twisted's TCP transports over loopback (a pull producer writing 64 KiB chunks,
  a server protocol counting bytes), both ends in the one loop; MB per process CPU second.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

REACTORS = ["libreactor", "epoll"]


def install(name, backend):
    if name == "libreactor":
        from libreactor.twisted import install as install_ours

        return install_ours(backend)
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    return reactor


# -- shapes (run in the child) ------------------------------------------------------------------------


def shape_calllater0(reactor, quick):
    n = 50_000 if quick else 300_000
    count = [0]

    def tick():
        count[0] += 1
        if count[0] < n:
            reactor.callLater(0, tick)
        else:
            reactor.stop()

    reactor.callWhenRunning(tick)
    started = time.perf_counter()
    reactor.run(installSignalHandlers=False)
    elapsed = time.perf_counter() - started
    assert count[0] == n
    return {"calls_per_s": n / elapsed}


def shape_callfromthread(reactor, quick):
    n = 1000 if quick else 4000
    latencies = []

    def record(sent):
        latencies.append(time.perf_counter_ns() - sent)
        if len(latencies) == n:
            reactor.stop()

    def producer():
        time.sleep(0.05)
        for _ in range(n):
            reactor.callFromThread(record, time.perf_counter_ns())
            time.sleep(0.0005)

    thread = threading.Thread(target=producer)
    reactor.callWhenRunning(thread.start)
    reactor.run(installSignalHandlers=False)
    thread.join()
    latencies.sort()
    return {
        "p50_us": latencies[len(latencies) // 2] / 1000,
        "p99_us": latencies[int(len(latencies) * 0.99)] / 1000,
    }


def shape_reset(reactor, quick):
    pending, resets = (20_000, 500) if quick else (100_000, 2000)
    rng = random.Random(1)
    calls = [reactor.callLater(rng.uniform(100, 200), lambda: None) for _ in range(pending)]
    reactor.iterate(0)  # Twisted moves new calls into its heap here
    chosen = rng.sample(calls, resets)
    targets = [rng.uniform(10, 50) for _ in chosen]
    started = time.perf_counter()
    for call, seconds in zip(chosen, targets):
        call.reset(seconds)
    elapsed = time.perf_counter() - started
    for call in calls:
        call.cancel()
    return {"us_per_reset": elapsed / resets * 1e6}


def shape_tcp(reactor, quick):
    from twisted.internet import protocol
    from zope.interface import implementer
    from twisted.internet.interfaces import IPullProducer

    total = (64 if quick else 1024) * 1024 * 1024
    chunk = b"x" * 65536
    received = [0]

    class Sink(protocol.Protocol):
        def dataReceived(self, data):
            received[0] += len(data)

        def connectionLost(self, reason):
            reactor.stop()

    @implementer(IPullProducer)
    class Source(protocol.Protocol):
        sent = 0

        def connectionMade(self):
            self.transport.registerProducer(self, False)

        def resumeProducing(self):
            self.transport.write(chunk)
            self.sent += len(chunk)
            if self.sent >= total:
                self.transport.unregisterProducer()
                self.transport.loseConnection()

        def stopProducing(self):
            pass

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Sink), interface="127.0.0.1")
    client = protocol.ClientCreator(reactor, Source)
    reactor.callWhenRunning(client.connectTCP, "127.0.0.1", port.getHost().port)
    cpu = time.process_time()
    reactor.run(installSignalHandlers=False)
    cpu = time.process_time() - cpu
    assert received[0] == total, (received[0], total)
    return {"mb_per_cpu_s": total / 1e6 / cpu}


SHAPES = {
    "calllater0": (shape_calllater0, [("calls_per_s", "callLater(0) chain", "calls/s", "higher")]),
    "callfromthread": (
        shape_callfromthread,
        [
            ("p50_us", "callFromThread one-way latency p50 (idle reactor)", "µs", "lower"),
            ("p99_us", "callFromThread one-way latency p99 (idle reactor)", "µs", "lower"),
        ],
    ),
    "reset": (
        shape_reset,
        [("us_per_reset", "reset to an earlier time, 100k pending calls", "µs/reset", "lower")],
    ),
    "tcp": (shape_tcp, [("mb_per_cpu_s", "TCP through Twisted's transports, 64 KiB writes",
                         "MB/CPU-s", "higher")]),
}


# -- the parent: interleaved runs, medians, the report ------------------------------------------------


def run_child(shape, reactor, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", shape, reactor]
    if args.backend:
        cmd += ["--backend", args.backend]
    if args.quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def fmt(value):
    if value >= 100_000:
        return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def report(samples, args):
    import twisted

    lines = [
        "# Python binding: Twisted on libreactor vs Twisted's EPollReactor",
        "",
        f"`bench/python/bench_twisted.py` ({'quick, ' if args.quick else ''}{args.runs} interleaved "
        f"runs, medians; each run a fresh process), {time.strftime('%Y-%m-%d')}, "
        f"Python {platform.python_version()}, Twisted {twisted.__version__}, libreactor backend "
        f"{args.backend or 'default (epoll)'}, {os.cpu_count()} CPUs. Ratio = libreactor / "
        "EPollReactor; the target is to beat it on every row.",
        "",
        "| shape | unit | better | libreactor | EPollReactor | ratio | spread (libreactor; EPollReactor) | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape, (_, metrics) in SHAPES.items():
        for key, label, unit, better in metrics:
            ours = [s[key] for s in samples[(shape, "libreactor")]]
            theirs = [s[key] for s in samples[(shape, "epoll")]]
            mo, mt = statistics.median(ours), statistics.median(theirs)
            ratio = mo / mt
            good = ratio > 1 if better == "higher" else ratio < 1
            lines.append(
                f"| {label} | {unit} | {better} | {fmt(mo)} | {fmt(mt)} | {ratio:.2f} | "
                f"{fmt(min(ours))}–{fmt(max(ours))}; {fmt(min(theirs))}–{fmt(max(theirs))} | "
                f"{'✓' if good else '✗'} |"
            )
    lines += [
        "",
        "The loop work is native in libreactor's rows (timer heap, thread-call queue, poll, fd dispatch);",
        "every callback, the DelayedCall object and Twisted's transports are Python in both columns.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "REACTOR"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", help="libreactor backend (epoll, poll)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--only", help="comma-separated shapes")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings",
                             "python", "BENCHMARKS.md"),
    )
    args = parser.parse_args()

    if args.child:
        shape, reactor_name = args.child
        reactor = install(reactor_name, args.backend)
        print(json.dumps(SHAPES[shape][0](reactor, args.quick)))
        return 0

    shapes = args.only.split(",") if args.only else list(SHAPES)
    samples = {(s, r): [] for s in SHAPES for r in REACTORS}
    for run in range(args.runs):
        for shape in shapes:
            order = REACTORS if run % 2 == 0 else REACTORS[::-1]
            for reactor_name in order:
                result = run_child(shape, reactor_name, args)
                samples[(shape, reactor_name)].append(result)
                print(f"run {run + 1}/{args.runs} {shape:<15} {reactor_name:<10} {result}", flush=True)
    if args.only:
        for shape in list(SHAPES):
            if shape not in shapes:
                del SHAPES[shape]
    text = report(samples, args)
    print("\n" + text)
    if not args.no_write:
        with open(os.path.normpath(args.out), "w") as f:
            f.write(text)
        print(f"written: {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
