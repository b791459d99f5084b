import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

final class ThreadTests: ReactorTestCase {
    func testWrongThreadThrows() throws {
        let r = try makeReactor()
        let call = try r.callLater(100) {}
        let results = Shared<[String: ReactorError?]>([:])
        let t = OSThread {
            func record(_ name: String, _ body: () throws -> Void) {
                do { try body(); results.with { $0[name] = .some(nil) } } catch {
                    results.with { $0[name] = error as? ReactorError }
                }
            }
            record("callLater") { try r.callLater(0) {} }
            record("stop") { try r.stop() }
            record("crash") { try r.crash() }
            record("iterate") { try r.iterate(timeout: 0) }
            record("addReader") { try r.addReader(0) { _, _ in } }
            record("removeReader") { try r.removeReader(0) }
            record("callWhenRunning") { try r.callWhenRunning {} }
            record("addSystemEventTrigger") { try r.addSystemEventTrigger(.during, "shutdown") {} }
            record("fireSystemEvent") { try r.fireSystemEvent("x") }
            record("stats") { _ = try r.stats() }
            record("readers") { _ = try r.readers() }
            record("listenTCP") { try r.listenTCP(port: 0) { _ in nil } }
            record("DelayedCall.cancel") { try call.cancel() }
            record("setLogHandler") { try r.setLogHandler(nil) }
            record("callFromThread") { try r.callFromThread {} }   // any thread: fine
            XCTAssertFalse(r.isInIOThread)
            XCTAssertFalse(r.isRunning)
            XCTAssertTrue(r.seconds.isNaN)
            XCTAssertEqual(r.delayedCallCount, 0)
        }
        t.join()
        let got = results.get
        for (name, err) in got where name != "callFromThread" {
            XCTAssertEqual(err, .wrongThread, "\(name) from another thread")
        }
        XCTAssertEqual(got["callFromThread"], .some(nil))
        XCTAssertEqual(got.count, 15)
        XCTAssertTrue(call.isActive, "the cancel from another thread changed nothing")
        try r.iterate(timeout: 0)   // runs the queued thread call (its box is released)
    }

    func testCallFromThreadOrderedPerThread() throws {
        let r = try makeReactor()
        try watchdog(r)
        var seen: [[Int]] = Array(repeating: [], count: 4)
        let done = Shared(0)
        let sink = Shared<[[Int]]>(seen)
        let threads = (0..<4).map { i in
            OSThread {
                for j in 0..<250 {
                    try! r.callFromThread {
                        XCTAssertTrue(r.isInIOThread)
                        sink.with { $0[i].append(j) }
                    }
                }
                try! r.callFromThread {
                    if done.with({ $0 += 1; return $0 }) == 4 { try? r.stop() }
                }
            }
        }
        try r.run()
        for t in threads { t.join() }
        seen = sink.get
        for i in 0..<4 { XCTAssertEqual(seen[i], Array(0..<250)) }
        XCTAssertEqual(try r.stats().threadCalls, 1004)
        // After a run that ended with stop: closed, and the closure is not kept.
        assertThrows(.closed) { try r.callFromThread {} }
    }

    func testCallInThreadAndDeferToThread() throws {
        let r = try makeReactor()
        try watchdog(r)
        let ranInPool = Shared(false)
        var results: [String] = []
        try r.callWhenRunning {
            try r.callInThread { ranInPool.with { $0 = !r.isInIOThread } }
            try r.deferToThread({ () -> Int in
                XCTAssertFalse(r.isInIOThread)
                return (1...10).reduce(0, +)
            }, then: { result in
                XCTAssertTrue(r.isInIOThread)
                results.append("ok \(try! result.get())")
                try! r.deferToThread({ () -> Int in throw ReactorError.dns }, then: { result in
                    if case .failure(let e) = result { results.append("failed \(e as! ReactorError == .dns)") }
                    try! r.stop()
                })
            })
        }
        try r.run()
        XCTAssertEqual(results, ["ok 55", "failed true"])
        XCTAssertTrue(ranInPool.get)
    }

    func testDeferToThreadAsync() async throws {
        let r = try makeReactor()
        try r.suggestThreadPoolSize(2)
        let started = Shared(false)
        try r.callWhenRunning { started.with { $0 = true } }
        let loop = OSThread { try! r.run() }   // the loop's thread becomes its owner
        while !started.get { usleep(1000) }
        let v = try await r.deferToThread { (1...100).reduce(0, +) }
        XCTAssertEqual(v, 5050)
        do {
            _ = try await r.deferToThread { () throws -> Int in throw ReactorError.timeout }
            XCTFail("no error")
        } catch let e as ReactorError {
            XCTAssertEqual(e, .timeout)
        }
        let many = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<20 { group.addTask { try await r.deferToThread { i * i } } }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(many, (0..<20).map { $0 * $0 }.reduce(0, +))
        try r.callFromThread { try? r.stop() }
        loop.join()
    }

    func testThreadPool() throws {
        let pool = try ThreadPool(minThreads: 1, maxThreads: 4)
        let count = Shared(0)
        for _ in 0..<100 { try pool.submit { count.with { $0 += 1 } } }
        try pool.resize(minThreads: 0, maxThreads: 2)
        try pool.stop()
        XCTAssertEqual(count.get, 100)
        let s = try pool.stats()
        XCTAssertEqual(s.completed, 100)
        XCTAssertEqual(s.queued, 0)
        XCTAssertEqual(Reactor.liveBoxes, 0)
        assertThrows(.closed) { try pool.submit {} }
        pool.close()
        pool.close()   // twice: no-op
        assertThrows(.invalid) { try pool.submit {} }
        assertThrows(.invalid) { _ = try ThreadPool(maxThreads: 0) }
    }

    func testDeferToThreadAsyncCancelledWhenReactorCloses() async throws {
        // Never run: the pool does not start, and closing the reactor drops the queued job; the
        // awaiting task gets `.cancelled` instead of hanging.
        let r = try makeReactor()
        async let value: Int = r.deferToThread { 1 }
        while Reactor.liveBoxes == 0 { usleep(1000) }
        try r.close()
        do {
            _ = try await value
            XCTFail("no error")
        } catch let e as ReactorError {
            XCTAssertEqual(e, .cancelled)
        }
        // A failed registration throws once (no second resume).
        do {
            _ = try await r.deferToThread { 2 }
            XCTFail("no error")
        } catch let e as ReactorError {
            XCTAssertEqual(e, .invalid)
        }
    }

    func testCloseRacingWithOtherThreads() throws {
        // Another thread keeps calling while this one closes: each call either went in (and its
        // closure is released by the close) or throws `invalid`; nothing touches freed memory.
        for _ in 0..<20 {
            let r = try Reactor(Reactor.Options(installSignalHandlers: false))
            let go = Shared(false)
            let outcome = Shared<Set<Int32>>([])
            let t = OSThread {
                while !go.get {}
                for _ in 0..<300 {
                    do {
                        try r.callFromThread {}
                        outcome.with { _ = $0.insert(0) }
                    } catch {
                        outcome.with { _ = $0.insert((error as? ReactorError)?.code ?? 1) }
                    }
                    _ = r.isRunning
                }
            }
            go.with { $0 = true }
            var closed = false
            while !closed {
                do { try r.close(); closed = true } catch ReactorError.busy { usleep(10) }
            }
            t.join()
            XCTAssertTrue(outcome.get.isSubset(of: [0, ReactorError.invalid.code]), "\(outcome.get)")
        }
        XCTAssertEqual(Reactor.liveBoxes, 0)
    }

    func testCloseFromAnotherThreadWhileRunningIsBusy() throws {
        let r = try makeReactor()
        try watchdog(r)
        let result = Shared<ReactorError?>(nil)
        try r.callWhenRunning {
            let t = OSThread {
                do { try r.close() } catch { result.with { $0 = error as? ReactorError } }
            }
            t.join()
            try r.stop()
        }
        try r.run()
        XCTAssertEqual(result.get, .busy)
    }

    func testAsyncHandleCoalesces() throws {
        let r = try makeReactor()
        try watchdog(r)
        var calls = 0
        let sent = Shared(false)
        let handle = try r.makeAsync {
            calls += 1
            if sent.get { try r.stop() }
        }
        try r.callWhenRunning {
            let t = OSThread {
                for _ in 0..<1000 { try! handle.send() }
                sent.with { $0 = true }
                try! handle.send()
            }
            _ = try r.callLater(3600) { t.join() }   // joined when the reactor is closed
        }
        try r.run()
        XCTAssertGreaterThanOrEqual(calls, 1)
        XCTAssertLessThanOrEqual(calls, 1001)
        try r.close()   // closes the handle too
        assertThrows(.invalid) { try handle.send() }
        assertThrows(.invalid) { try handle.close() }
    }

    func testAsyncHandleClose() throws {
        let r = try makeReactor()
        let handle = try r.makeAsync {}
        XCTAssertEqual(Reactor.liveBoxes, 1)
        try handle.send()
        try handle.close()
        try handle.close()   // twice: no-op
        XCTAssertEqual(Reactor.liveBoxes, 0)
        assertThrows(.invalid) { try handle.send() }
    }

    func testSignalHandler() throws {
        let r = try makeReactor()
        try watchdog(r)
        var got: [Int32] = []
        let id = try r.addSignalHandler(SIGUSR1) { signum in
            got.append(signum)
            try r.stop()
        }
        try r.callWhenRunning { kill(getpid(), SIGUSR1) }
        try r.run()
        XCTAssertEqual(got, [SIGUSR1])
        try r.removeSignalHandler(id)
        assertThrows(.invalid) { try r.addSignalHandler(SIGKILL) { _ in } }
    }
}
