// A short tour of the Swift binding of libreactor: timers (one cancelled, one reset), work on the
// thread pool (callback and async/await), calls from another thread, an echo server over TCP with a
// client, and a BEFORE-shutdown trigger that holds the shutdown until a worker has "drained".
//
//   scripts/swift.sh demo
#if canImport(Glibc)
import Glibc
#endif
import Reactor

final class EchoServer: StreamProtocol {
    func connectionMade(_ t: Transport) { print("echo server: connection from \((try? t.peer)?.description ?? "?")") }
    func dataReceived(_ t: Transport, _ data: [UInt8]) { try? t.write(data) }
}

final class EchoClient: StreamProtocol {
    let reactor: Reactor
    let message: String
    var reply: [UInt8] = []
    init(_ reactor: Reactor, _ message: String) {
        self.reactor = reactor
        self.message = message
    }
    func connectionMade(_ t: Transport) { try? t.write(message) }
    func dataReceived(_ t: Transport, _ data: [UInt8]) {
        reply += data
        if reply.count >= message.utf8.count {
            print("echo client: got \"\(String(decoding: reply, as: UTF8.self))\" back")
            try? t.loseConnection()
        }
    }
    func connectionLost(_ t: Transport, reason: ReactorError?) {
        print("echo client: connection closed (\(reason.map { "\($0)" } ?? "cleanly"))")
    }
    func connectionFailed(_ c: Connector?, reason: ReactorError) { print("echo client: failed: \(reason)") }
}

final class OSThread {
    private var tid = pthread_t()
    private final class Body { let run: @Sendable () -> Void; init(_ f: @escaping @Sendable () -> Void) { run = f } }
    init(_ body: @escaping @Sendable () -> Void) {
        pthread_create(&tid, nil, { Unmanaged<Body>.fromOpaque($0!).takeRetainedValue().run(); return nil },
                       Unmanaged.passRetained(Body(body)).toOpaque())
    }
    func join() { pthread_join(tid, nil) }
}

func demo() throws {
    let r = try Reactor(Reactor.Options(installSignalHandlers: true))
    defer { try? r.close() }
    print("libreactor \(Reactor.version) on \(r.backendName)")
    let start = r.seconds
    func t() -> String { String(Int(((r.seconds - start) * 1000).rounded())) + " ms" }

    // Timers: FIFO for equal deadlines, cancel and reset.
    try r.callLater(.milliseconds(20)) { print(t(), "timer A") }
    let cancelled = try r.callLater(.milliseconds(30)) { print("never printed") }
    try cancelled.cancel()
    let later = try r.callLater(.milliseconds(10)) { print(t(), "timer B (reset to 40 ms)") }
    try later.reset(.milliseconds(40))

    // Work on the pool: a callback on the reactor thread with the result...
    try r.deferToThread({ (1...1000).reduce(0, +) }, then: { result in
        print(t(), "deferToThread result:", (try? result.get()) ?? -1)
    })
    // ...and async/await from a task (the loop runs on this thread; the task awaits elsewhere).
    let asyncDone = Task {
        let v = try await r.deferToThread { (1...10).map { $0 * $0 }.reduce(0, +) }
        try r.callFromThread { print("async deferToThread result: \(v)") }
    }

    // A worker thread talks to the reactor with callFromThread.
    let worker = OSThread {
        for i in 1...3 { try? r.callFromThread { print("call from worker thread \(i)") } }
    }

    // An echo server and a client over TCP on the loopback.
    let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in EchoServer() }
    let address = try port.host
    print("echo server listening on \(address)")
    let client = EchoClient(r, "hello from Swift")
    try r.connectTCP(host: "127.0.0.1", port: address.port, client)

    // Shutdown held by a BEFORE trigger until a worker thread has drained.
    try r.addBeforeTrigger(holding: "shutdown") { completion in
        print(t(), "shutdown: draining...")
        let drainer = OSThread {
            usleep(30_000)
            try? completion.complete()   // any thread
        }
        _ = try? r.callLater(0.05) { drainer.join() }
    }
    try r.addSystemEventTrigger(.after, "shutdown") { print(t(), "shutdown: done") }

    try r.callLater(.milliseconds(150)) { try r.stop() }
    try r.run()
    worker.join()
    _ = asyncDone
    let s = try r.stats()
    print("stats: \(s.iterations) iterations, \(s.timersFired) timers fired, \(s.threadCalls) thread calls")
}

do {
    try demo()
    print("live boxes after close: \(Reactor.liveBoxes)")
    print(Reactor.liveBoxes == 0 ? "demo: ok" : "demo: leaked")
} catch {
    print("demo: \(error)")
    exit(1)
}
