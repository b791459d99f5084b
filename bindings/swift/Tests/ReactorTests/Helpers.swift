import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

/// A value shared between threads in tests.
final class Shared<T>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: T
    init(_ value: T) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }
    deinit { pthread_mutex_destroy(&mutex) }
    func with<R>(_ body: (inout T) throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&value)
    }
    var get: T { with { $0 } }
}

private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A joinable OS thread.
final class OSThread: @unchecked Sendable {
    private var tid = pthread_t()
    init(_ body: @escaping @Sendable () -> Void) {
        let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        let rc = pthread_create(&tid, nil, { p in
            Unmanaged<ThreadBody>.fromOpaque(p!).takeRetainedValue().body()
            return nil
        }, arg)
        precondition(rc == 0)
    }
    func join() { pthread_join(tid, nil) }
}

/// Base class: every reactor made with `makeReactor` is closed after the test, then the live box
/// count must be back to zero (every closure given to the library was released exactly once).
class ReactorTestCase: XCTestCase {
    private var reactors: [Reactor] = []
    private var boxesAtStart = 0

    override func setUp() {
        super.setUp()
        boxesAtStart = Reactor.liveBoxes
        XCTAssertEqual(boxesAtStart, 0, "boxes leaked by an earlier test")
    }

    override func tearDown() {
        for r in reactors { XCTAssertNoThrow(try r.close()) }
        reactors.removeAll()
        XCTAssertEqual(Reactor.liveBoxes, 0, "live boxes after the test")
        super.tearDown()
    }

    func makeReactor(manualClock: Bool = false) throws -> Reactor {
        let r = try Reactor(Reactor.Options(installSignalHandlers: false, manualClock: manualClock))
        reactors.append(r)
        return r
    }

    /// Stops the reactor after `seconds` and fails the test (a watchdog for tests that run the loop).
    func watchdog(_ r: Reactor, _ seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws {
        try r.callLater(seconds) {
            XCTFail("watchdog: the test did not finish in \(seconds) s", file: file, line: line)
            try r.crash()
        }
    }

    func assertThrows(_ expected: ReactorError, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? ReactorError, expected, "got \(error)", file: file, line: line)
        }
    }
}
