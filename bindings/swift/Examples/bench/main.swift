// Per-call cost of the Swift binding's crossings (ns per operation, median of 5 runs with min–max).
//
//   scripts/swift.sh bench        (a release build)
#if canImport(Glibc)
import Glibc
#endif
import CReactor
import CReactorBench
import Reactor

/// Unbuffered output (print is block-buffered into a pipe).
func out(_ line: String) {
    var s = line + "\n"
    s.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

final class Worker {
    private var tid = pthread_t()
    private final class Body { let run: @Sendable () -> Void; init(_ f: @escaping @Sendable () -> Void) { run = f } }
    init(_ body: @escaping @Sendable () -> Void) {
        pthread_create(&tid, nil, { Unmanaged<Body>.fromOpaque($0!).takeRetainedValue().run(); return nil },
                       Unmanaged.passRetained(Body(body)).toOpaque())
    }
    func join() { pthread_join(tid, nil) }
}

/// Runs `body(n)` 5 times; prints the median, min and max of the time per operation.
func measure(_ name: String, _ what: String, _ n: Int, _ body: (Int) throws -> Void) rethrows {
    try body(n / 10)   // warm-up
    var runs: [Double] = []
    for _ in 0..<5 {
        let t0 = now()
        try body(n)
        runs.append((now() - t0) / Double(n) * 1e9)
    }
    runs.sort()
    let f = { (x: Double) in String(Int(x.rounded())) }
    out("| `\(name)` | \(what) | \(f(runs[2])) (\(f(runs[0]))–\(f(runs[4]))) |")
}

final class Counter: @unchecked Sendable { var n = 0 }
final class Closure { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

func reactor() throws -> Reactor { try Reactor(Reactor.Options(installSignalHandlers: false)) }

out("libreactor \(Reactor.version), Swift binding")
out("| benchmark | what one op is | median ns/op (min–max) |")
out("|---|---|---|")

// Swift→C: one trivial C call, and a binding getter (handle lookup under the binding's lock + C call).
measure("SwiftToC", "one trivial Swift→C call (`reactor_version`)", 10_000_000) { n in
    var acc: UInt32 = 0
    for _ in 0..<n { acc &+= reactor_version() }
    if acc == 1 { print("") }
}
do {
    let r = try reactor()
    measure("BindingGetter", "`reactor.isInIOThread` (the binding's gate: two atomic adds, + one Swift→C call)", 5_000_000) { n in
        var k = 0
        for _ in 0..<n where r.isInIOThread { k += 1 }
        if k == -1 { print("") }
    }
    try r.close()
}

// C→Swift: a C loop calls a @convention(c) Swift trampoline that finds its box and runs the closure
// (the shape of every callback of the binding).
do {
    let counter = Counter()
    let box = Closure { counter.n += 1 }
    let ud = Unmanaged.passRetained(box).toOpaque()
    measure("CToSwift", "one C→Swift call of a callback trampoline (box lookup + closure call)", 10_000_000) { n in
        reactor_bench_call_n({ ud in Unmanaged<Closure>.fromOpaque(ud!).takeUnretainedValue().body() }, ud, Int64(n))
    }
    Unmanaged<Closure>.fromOpaque(ud).release()
}

// callFromThread: one producer thread floods n calls; the reactor runs each; time until the last ran.
try measure("CallFromThread", "one thread floods `callFromThread`; the reactor runs each call", 200_000) { n in
    let r = try reactor()
    let done = Counter()
    try r.callWhenRunning {
        let producer = Worker {
            for i in 0..<n {
                try! r.callFromThread { done.n += 1; if i == n - 1 { try! r.stop() } }
            }
        }
        _ = try r.callLater(3600) { producer.join() }   // joined at close (released with the reactor)
    }
    try r.run()
    precondition(done.n == n)
    try r.close()
}

// callLater(0) on the reactor thread in batches of 1000, fired by iterate.
try measure("CallLater", "`callLater(0)` on the reactor thread, batches of 1 000 fired by `iterate`", 200_000) { n in
    let r = try reactor()
    let fired = Counter()
    var left = n
    while left > 0 {
        let batch = min(1000, left)
        for _ in 0..<batch { try r.callLater(0) { fired.n += 1 } }
        while r.delayedCallCount > 0 { try r.iterate(timeout: 0) }
        left -= batch
    }
    precondition(fired.n == n)
    try r.close()
}

try measure("CallLaterCancel", "`callLater(1 s)` then `cancel()` (release hook inside the cancel)", 200_000) { n in
    let r = try reactor()
    for _ in 0..<n { try r.callLater(1) {}.cancel() }
    try r.close()
}

// deferToThread: n jobs from the reactor thread, each runs on the pool, `done` on the reactor thread.
try measure("DeferToThread", "work on a pool thread, result delivered on the reactor thread", 50_000) { n in
    let r = try reactor()
    var done = 0
    try r.callWhenRunning {
        for i in 0..<n {
            try r.deferToThread({ i }, then: { _ in done += 1; if done == n { try! r.stop() } })
        }
    }
    try r.run()
    try r.close()
}

// async deferToThread: sequential awaits from a task while the loop runs on its own thread.
try measure("DeferToThreadAsync", "`try await reactor.deferToThread { }`, one at a time from a task", 20_000) { n in
    let r = try reactor()
    let started = Counter()
    try r.callWhenRunning { started.n = 1 }
    let loop = Worker { try! r.run() }
    while started.n == 0 { usleep(100) }
    let finished = Counter()
    Task.detached {   // not on the main actor: this thread is about to block in join()
        for i in 0..<n { _ = try await r.deferToThread { i } }
        try r.callFromThread { finished.n = 1; try! r.stop() }
    }
    loop.join()
    precondition(finished.n == 1)
    try r.close()
}
out("live boxes: \(Reactor.liveBoxes)")
