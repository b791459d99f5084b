import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

final class CoreTests: ReactorTestCase {
    func testVersionAndBackend() throws {
        XCTAssertTrue(Reactor.version.contains("."))
        let r = try makeReactor()
        XCTAssertTrue(["epoll", "poll", "kqueue"].contains(r.backendName), r.backendName)
        XCTAssertTrue(r.isInIOThread)
        XCTAssertFalse(r.isRunning)
        let p = try Reactor(Reactor.Options(backend: .poll, installSignalHandlers: false))
        XCTAssertEqual(p.backendName, "poll")
        try p.close()
        try p.close()   // twice: no-op
    }

    func testRunStopNotRestartable() throws {
        let r = try makeReactor()
        var ran = false
        try r.callWhenRunning {
            XCTAssertTrue(r.isRunning)
            ran = true
            try r.stop()
            XCTAssertThrowsError(try r.stop())   // already stopping
        }
        try r.run()
        XCTAssertTrue(ran)
        XCTAssertFalse(r.isRunning)
        assertThrows(.notRestartable) { try r.run() }
        assertThrows(.notRestartable) { try r.iterate(timeout: 0) }
    }

    func testStopWhenNotRunning() throws {
        let r = try makeReactor()
        assertThrows(.notRunning) { try r.stop() }
    }

    func testRunInsideCallbackAlreadyRunning() throws {
        let r = try makeReactor()
        try r.callWhenRunning {
            XCTAssertThrowsError(try r.run()) { XCTAssertEqual($0 as? ReactorError, .alreadyRunning) }
            XCTAssertThrowsError(try r.iterate(timeout: 0)) { XCTAssertEqual($0 as? ReactorError, .alreadyRunning) }
            try r.stop()
        }
        try r.run()
    }

    func testCrashThenRunAgain() throws {
        let r = try makeReactor()
        var shutdownRan = false
        try r.addSystemEventTrigger(.during, "shutdown") { shutdownRan = true }
        try r.callLater(0) { try r.crash() }
        try r.run()
        XCTAssertFalse(shutdownRan, "crash runs no shutdown triggers")
        try r.callLater(0) { try r.stop() }
        try r.run()
        XCTAssertTrue(shutdownRan)
    }

    func testIterate() throws {
        let r = try makeReactor()
        var n = 0
        try r.callLater(0) { n += 1 }
        try r.iterate(timeout: 0)
        XCTAssertEqual(n, 1)
        try r.iterate(timeout: .milliseconds(1))
        assertThrows(.invalid) { try r.iterate(timeout: .nan) }
    }

    func testCallLaterDelayedCall() throws {
        let r = try makeReactor(manualClock: true)
        var order: [Int] = []
        let t0 = r.seconds
        let a = try r.callLater(1) { order.append(1) }
        try r.callLater(1) { order.append(2) }   // same deadline: FIFO
        let c = try r.callLater(.seconds(2)) { order.append(3) }
        let d = try r.callLater(5) { order.append(4) }
        XCTAssertEqual(r.delayedCallCount, 4)
        XCTAssertEqual(a.time, t0 + 1, accuracy: 1e-9)
        XCTAssertTrue(d.isActive)
        try d.cancel()
        XCTAssertFalse(d.isActive)
        assertThrows(.alreadyCancelled) { try d.cancel() }
        assertThrows(.alreadyCancelled) { try d.reset(1) }
        try c.reset(.seconds(3))                 // now at t0 + 3
        XCTAssertEqual(c.time, t0 + 3, accuracy: 1e-9)
        try c.delay(.seconds(1))                 // t0 + 4
        XCTAssertEqual(c.time, t0 + 4, accuracy: 1e-9)
        try r.advance(by: 1.5)
        XCTAssertEqual(order, [1, 2])
        XCTAssertEqual(r.seconds, t0 + 1.5, accuracy: 1e-9)
        assertThrows(.alreadyCalled) { try a.cancel() }
        assertThrows(.alreadyCalled) { try a.delay(1) }
        try r.advance(by: .seconds(3))
        XCTAssertEqual(order, [1, 2, 3])
        XCTAssertEqual(r.delayedCallCount, 0)
        assertThrows(.invalid) { try r.callLater(-1) {} }
        assertThrows(.invalid) { try r.callLater(.nan) {} }
        assertThrows(.invalid) { try r.advance(by: -1) }
    }

    func testCancelInsideOwnCallback() throws {
        let r = try makeReactor(manualClock: true)
        let holder = Shared<DelayedCall?>(nil)
        var result: ReactorError?
        holder.with { $0 = try? r.callLater(1) {
            do { try holder.get?.cancel() } catch { result = error as? ReactorError }
        } }
        try r.advance(by: 1)
        XCTAssertEqual(result, .alreadyCalled)
        holder.with { $0 = nil }
    }

    func testDelayedCallOutlivesReactor() throws {
        let r = try Reactor(Reactor.Options(installSignalHandlers: false, manualClock: true))
        let pending = try r.callLater(10) {}
        let cancelled = try r.callLater(10) {}
        try cancelled.cancel()
        XCTAssertEqual(Reactor.liveBoxes, 1)
        try r.close()
        XCTAssertEqual(Reactor.liveBoxes, 0)
        assertThrows(.closed) { try pending.cancel() }
        assertThrows(.alreadyCancelled) { try cancelled.cancel() }
    }

    func testManualClockOnlyWhenEnabled() throws {
        let r = try makeReactor()
        XCTAssertThrowsError(try r.advance(by: 1))
        let m = try makeReactor(manualClock: true)
        let before = m.seconds
        try m.advance(by: .milliseconds(250))
        XCTAssertEqual(m.seconds - before, 0.25, accuracy: 1e-9)
    }

    func testSystemEventTriggersOrder() throws {
        let r = try makeReactor()
        var log: [String] = []
        try r.addSystemEventTrigger(.after, "startup") { log.append("after-startup"); try r.stop() }
        try r.addSystemEventTrigger(.during, "startup") { log.append("during-startup") }
        try r.addSystemEventTrigger(.before, "startup") { log.append("before-startup") }
        try r.addSystemEventTrigger(.before, "shutdown") { log.append("before-shutdown") }
        try r.addSystemEventTrigger(.during, "shutdown") { log.append("during-shutdown") }
        try r.addSystemEventTrigger(.after, "shutdown") { log.append("after-shutdown") }
        let removed = try r.addSystemEventTrigger(.during, "shutdown") { log.append("removed") }
        try r.removeSystemEventTrigger(removed)
        assertThrows(.notFound) { try r.removeSystemEventTrigger(removed) }
        try r.run()
        XCTAssertEqual(log, ["before-startup", "during-startup", "after-startup",
                             "before-shutdown", "during-shutdown", "after-shutdown"])
    }

    func testFireCustomEventAndThrowingTrigger() throws {
        let r = try makeReactor()
        let errors = Shared<[String]>([])
        r.errorHandler = { e in errors.with { $0.append("\(e)") } }
        var log: [String] = []
        var logged: [(Reactor.LogLevel, String)] = []
        try r.setLogHandler { logged.append(($0, $1)) }
        try r.addSystemEventTrigger(.before, "custom") { throw ReactorError.busy }
        try r.addSystemEventTrigger(.during, "custom") { log.append("during") }
        try r.fireSystemEvent("custom")   // runs before it returns
        XCTAssertEqual(log, ["during"])
        XCTAssertEqual(errors.get.count, 1)
        XCTAssertEqual(logged.count, 1)
        XCTAssertEqual(logged.first?.0, .error)
        XCTAssertTrue(logged.first?.1.contains("custom") ?? false, "\(logged)")
        try r.setLogHandler(nil)
        try r.fireSystemEvent("custom")   // one-shot: nothing left
        XCTAssertEqual(log, ["during"])
    }

    func testHoldingBeforeShutdownTrigger() throws {
        let r = try makeReactor()
        try watchdog(r)
        var log: [String] = []
        try r.addBeforeTrigger(holding: "shutdown") { completion in
            log.append("hold")
            // Work keeps running while the event is held; complete it 50 ms later.
            _ = try? r.callLater(0.05) {
                log.append("timer while held")
                try completion.complete()
                XCTAssertThrowsError(try completion.complete()) { XCTAssertEqual($0 as? ReactorError, .notFound) }
            }
        }
        try r.addSystemEventTrigger(.during, "shutdown") { log.append("during-shutdown") }
        try r.callWhenRunning { try r.stop() }
        try r.run()
        XCTAssertEqual(log, ["hold", "timer while held", "during-shutdown"])
        assertThrows(.notFound) { try r.completeTrigger(Reactor.TriggerID(rawValue: 12345)) }
    }

    func testReadersAndWriters() throws {
        let r = try makeReactor()
        try watchdog(r)
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        var received: [UInt8] = []
        try r.addWriter(fds[1]) { fd, events in
            XCTAssertTrue(events.contains(.writable))
            let msg: [UInt8] = Array("ping".utf8)
            XCTAssertEqual(write(fd, msg, msg.count), msg.count)
            try r.removeWriter(fd)
        }
        try r.addReader(fds[0]) { fd, events in
            XCTAssertTrue(events.contains(.readable))
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(fd, &buf, buf.count)
            received += buf[0..<max(0, n)]
            if received.count >= 4 {
                try r.removeReader(fd)
                try r.stop()
            }
        }
        XCTAssertEqual(try r.readers(), [fds[0]])
        XCTAssertEqual(try r.writers(), [fds[1]])
        try r.run()
        XCTAssertEqual(String(decoding: received, as: UTF8.self), "ping")
        XCTAssertEqual(try r.readers(), [])
        assertThrows(.notFound) { try r.removeReader(fds[0]) }
        assertThrows(.invalid) { try r.addReader(-1) { _, _ in } }
    }

    func testRemoveAllAndShutdownEvent() throws {
        let r = try makeReactor()
        var a: [Int32] = [-1, -1], b: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&a), 0)
        XCTAssertEqual(pipe(&b), 0)
        defer { for fd in a + b { close(fd) } }
        try r.addReader(a[0]) { _, _ in }
        try r.addWriter(a[1]) { _, _ in }
        XCTAssertEqual(Set(try r.removeAll()), Set([a[0], a[1]]))
        XCTAssertEqual(try r.readers(), [])
        var events: Reactor.Events = []
        try r.addReader(b[0]) { _, e in events.formUnion(e) }
        try r.callWhenRunning { try r.stop() }
        try r.run()
        XCTAssertTrue(events.contains(.shutdown), "remaining readers get SHUTDOWN")
    }

    func testStats() throws {
        let r = try makeReactor()
        let fresh = try r.stats()
        XCTAssertEqual(fresh.iterations, 0)
        try r.callLater(0) {}
        try r.iterate(timeout: 0)
        try r.iterate(timeout: 0)
        let s = try r.stats()
        XCTAssertEqual(s.iterations, 2)
        XCTAssertEqual(s.polls, 2)
        XCTAssertGreaterThanOrEqual(s.timersFired, 1)
        XCTAssertEqual(s.timersPending, 0)
    }

    func testEmbeddingHooks() throws {
        let r = try makeReactor()
        XCTAssertGreaterThanOrEqual(r.backendFD, -1)
        XCTAssertEqual(r.backendTimeoutMilliseconds, -1)
        try r.callLater(100) {}
        XCTAssertGreaterThan(r.backendTimeoutMilliseconds, 0)
        try r.wakeUp()
    }

    func testThrowingCallbackIsReportedAndLoopGoesOn() throws {
        let r = try makeReactor()
        try watchdog(r)
        let errors = Shared<[ReactorError]>([])
        r.errorHandler = { e in errors.with { $0.append(e as! ReactorError) } }
        try r.callLater(0) { throw ReactorError.timeout }
        try r.callLater(0.01) { try r.stop() }
        try r.run()
        XCTAssertEqual(errors.get, [.timeout])
    }

    func testCloseReleasesPendingRegistrations() throws {
        let r = try Reactor(Reactor.Options(installSignalHandlers: false))
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        try r.callLater(100) { _ = r }          // captures the reactor: a cycle until the library drops it
        try r.addReader(fds[0]) { _, _ in _ = r }
        try r.addSystemEventTrigger(.during, "shutdown") { _ = r }
        try r.callFromThread { _ = r }
        XCTAssertEqual(Reactor.liveBoxes, 4)
        try r.close()
        XCTAssertEqual(Reactor.liveBoxes, 0)
        // A dead handle: every method throws `invalid`, nothing crashes.
        assertThrows(.invalid) { try r.run() }
        assertThrows(.invalid) { try r.callLater(0) {} }
        assertThrows(.invalid) { try r.callFromThread {} }
        assertThrows(.invalid) { _ = try r.stats() }
        XCTAssertFalse(r.isRunning)
        XCTAssertTrue(r.seconds.isNaN)
    }

    func testCloseWhileRunningIsBusy() throws {
        let r = try makeReactor()
        try r.callWhenRunning {
            XCTAssertThrowsError(try r.close()) { XCTAssertEqual($0 as? ReactorError, .busy) }
            try r.stop()
        }
        try r.run()
    }

    func testErrorType() {
        let e = ReactorError.wrongThread
        XCTAssertEqual(e.code, -2)
        XCTAssertFalse(e.message.isEmpty)
        XCTAssertNil(e.errno)
        let os = ReactorError.os(ECONNRESET)
        XCTAssertEqual(os.errno, ECONNRESET)
        XCTAssertTrue(ReactorError(code: -2, operation: "x").description.hasPrefix("x: "))
        switch e as any Error {
        case ReactorError.wrongThread: break
        default: XCTFail("pattern did not match")
        }
    }
}
