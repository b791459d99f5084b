#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor
import Synchronization

/// The event loop: Twisted's reactor (IReactorCore, IReactorTime, IReactorThreads, IReactorFDSet and
/// the networking interfaces) over libreactor's C ABI.
///
/// Threading rule: a reactor belongs to the thread that runs it (before the first run, to the
/// thread that created it). Methods documented as *any thread* may be called from every thread; the
/// others, called from another thread, throw `ReactorError.wrongThread` and change nothing. All
/// callbacks run on the reactor thread. Errors thrown by callbacks are caught at the C boundary
/// (they never unwind through the library) and passed to `errorHandler` (default: printed).
///
/// Closures registered with the reactor are kept alive by the library until it drops the
/// registration; a closure that captures the reactor keeps it alive until then. Call `close()` (or let
/// the last reference go) to free the reactor: every pending registration is released.
public final class Reactor: @unchecked Sendable {
    /// The I/O multiplexer.
    public enum Backend: Int32, Sendable {
        case `default` = 0, epoll = 1, poll = 2, kqueue = 3
    }

    /// Options of `init(_:)`.
    public struct Options: Sendable {
        public var backend: Backend = .default
        /// SIGINT/SIGTERM stop the reactor while it runs (dispositions restored after `run`).
        public var installSignalHandlers: Bool = true
        /// Time advances only through `advance(by:)` (for tests).
        public var manualClock: Bool = false
        /// Maximum size of the reactor's thread pool.
        public var threadPoolMax: Int = 10
        public init(backend: Backend = .default, installSignalHandlers: Bool = true,
                    manualClock: Bool = false, threadPoolMax: Int = 10) {
            self.backend = backend
            self.installSignalHandlers = installSignalHandlers
            self.manualClock = manualClock
            self.threadPoolMax = threadPoolMax
        }
    }

    /// The C handle (valid until `close()` frees it) and a gate around it: every call on the handle
    /// adds 2 to `gate` while it runs; `close()` frees the reactor only when it can move the gate from
    /// 0 (no call in progress, else `busy`) to 1 (closed), so a call racing with `close()` from another
    /// thread gets `invalid` instead of touching freed memory. Two atomic adds per call (as in the Go
    /// binding).
    private let r: OpaquePointer
    private let gate = Atomic<Int>(0)
    /// Receives errors thrown by callbacks (reactor thread). Default: printed to stderr.
    public var errorHandler: (@Sendable (any Error) -> Void)?
    /// The log handler's box: borrowed by the library (`reactor_set_log_fn`), owned here.
    private var logBox: LogBox?

    /// Creates a reactor owned by the calling thread.
    public init(_ options: Options = Options()) throws {
        var o = reactor_options_t()
        reactor_options_init(&o)
        o.backend = options.backend.rawValue
        o.install_signal_handlers = options.installSignalHandlers ? 1 : 0
        o.manual_clock = options.manualClock ? 1 : 0
        o.thread_pool_max = options.threadPoolMax < 0 ? 0 : options.threadPoolMax
        var r: OpaquePointer?
        try check(reactor_new(&o, &r), "Reactor.init")
        self.r = r!
    }

    deinit {
        _ = try? close()
    }

    /// Frees the reactor (any thread, while no call on it is in progress, else `busy`). Every pending
    /// registration is released. Afterwards every method throws `ReactorError.invalid`. Closing twice
    /// is a no-op.
    public func close() throws {
        let (exchanged, seen) = gate.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
        if !exchanged {
            if seen & 1 != 0 { return }   // closed (or being closed)
            throw ReactorError(code: REACTOR_E_BUSY.rawValue, operation: "close")
        }
        // Release hooks run inside: code they trigger that calls the reactor gets `invalid`.
        let status = reactor_free(r)
        if status != 0 {
            gate.subtract(1, ordering: .releasing)   // still open
            try check(status, "close")
        }
    }

    /// Enters the gate: the C handle, or `ReactorError.invalid` after `close()`. Pair with `leave()`
    /// (`let h = try enter(); defer { leave() }`).
    @inline(__always)
    func enter(_ operation: @autoclosure () -> String = #function) throws -> OpaquePointer {
        if gate.add(2, ordering: .acquiringAndReleasing).newValue & 1 != 0 {
            gate.subtract(2, ordering: .releasing)
            throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: operation())
        }
        return r
    }

    @inline(__always)
    func leave() { gate.subtract(2, ordering: .releasing) }

    /// For getters with a neutral value: `body(handle)`, or nil after `close()`.
    func gated<R>(_ body: (OpaquePointer) -> R) -> R? {
        guard let h = try? enter() else { return nil }
        defer { leave() }
        return body(h)
    }

    static func report(_ reactor: Reactor?, _ error: any Error, _ place: String) {
        if let h = reactor?.errorHandler {
            h(error)
        } else {
            var line = "libreactor (Swift): error thrown by a \(place): \(error)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        }
    }

    // MARK: - Core

    /// Fires startup, runs until `stop()` or `crash()` (which may come from a callback).
    public func run() throws {
        let h = try enter(); defer { leave() }
        try check(reactor_run(h), "run")
    }
    /// Stops the loop: shutdown triggers run on its next pass, then `run()` returns.
    public func stop() throws {
        let h = try enter(); defer { leave() }
        try check(reactor_stop(h), "stop")
    }
    /// Ends `run()` at once, without shutdown triggers.
    public func crash() throws {
        let h = try enter(); defer { leave() }
        try check(reactor_crash(h), "crash")
    }

    /// One pass of the loop without `run()`: due timers and thread calls, then waits at most
    /// `timeout` seconds for I/O (negative: until something is dispatched).
    public func iterate(timeout: Double = 0) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_iterate(h, timeout), "iterate")
    }
    public func iterate(timeout: Duration) throws { try iterate(timeout: timeout.seconds) }

    /// Twisted's `running`: true from during-startup until during-shutdown (0 from another thread).
    public var isRunning: Bool { gated { reactor_is_running($0) == 1 } ?? false }
    /// Whether the calling thread owns the reactor (any thread).
    public var isInIOThread: Bool { gated { reactor_is_in_io_thread($0) == 1 } ?? false }
    /// "epoll", "poll" or "kqueue" (any thread).
    public var backendName: String {
        gated { h in reactor_backend_name(h).map { String(cString: $0) } ?? "" } ?? ""
    }
    /// The library's version string.
    public static var version: String { String(cString: reactor_version_string()) }

    /// Runs `body` once the reactor runs (at once if it already does).
    public func callWhenRunning(_ body: @escaping () throws -> Void) throws {
        let h = try enter(); defer { leave() }
        try CallbackBox(self, body).register("callWhenRunning") {
            reactor_call_when_running(h, runCallbackBox, $0, releaseBox)
        }
    }

    /// Loop statistics.
    public struct Stats: Sendable, Equatable {
        public var iterations, polls, wakeups, callbacks, timersFired, threadCalls: UInt64
        public var fdsRegistered, timersPending, backendCtlCalls: UInt64
        public var idleSeconds: Double
    }

    public func stats() throws -> Stats {
        var s = reactor_stats_t()
        s.struct_size = UInt32(MemoryLayout<reactor_stats_t>.size)
        let h = try enter(); defer { leave() }
        try check(reactor_stats(h, &s), "stats")
        return Stats(iterations: s.iterations, polls: s.polls, wakeups: s.wakeups,
                     callbacks: s.callbacks, timersFired: s.timers_fired, threadCalls: s.thread_calls,
                     fdsRegistered: s.fds_registered, timersPending: s.timers_pending,
                     backendCtlCalls: s.backend_ctl_calls, idleSeconds: s.idle_seconds)
    }

    /// Swift objects (closures, protocols, producers) currently held by the library, over all
    /// reactors and pools. Tests check that it returns to zero.
    public static var liveBoxes: Int { liveBoxCount.load(ordering: .acquiring) }

    /// Levels of the library's log messages.
    public enum LogLevel: Int32, Sendable {
        case error = 1, warn = 2, info = 3
    }

    /// Routes the library's log messages (failed triggers, EMFILE on accept, ...) to `handler`
    /// instead of stderr; nil restores the default. Reactor thread only.
    public func setLogHandler(_ handler: ((LogLevel, String) -> Void)?) throws {
        let h = try enter(); defer { leave() }
        guard isInIOThread else { throw ReactorError(code: REACTOR_E_WRONG_THREAD.rawValue, operation: "setLogHandler") }
        if let handler {
            let box = LogBox(handler)
            reactor_set_log_fn(h, { ud, level, message in
                let box = Unmanaged<LogBox>.fromOpaque(ud!).takeUnretainedValue()
                box.handler(LogLevel(rawValue: level) ?? .error, message.map { String(cString: $0) } ?? "")
            }, Unmanaged.passUnretained(box).toOpaque())
            logBox = box
        } else {
            reactor_set_log_fn(h, nil, nil)
            logBox = nil
        }
    }

    // MARK: - System event triggers

    public enum Phase: Int32, Sendable {
        case before = 0, during = 1, after = 2
    }

    /// Identifies a trigger (for `removeSystemEventTrigger` and `completeTrigger`).
    public struct TriggerID: Hashable, Sendable {
        public let rawValue: UInt64
    }

    /// Adds a one-shot trigger for `event` ("startup", "shutdown" or any name) in `phase`. A thrown
    /// error is reported; the other triggers still run.
    @discardableResult
    public func addSystemEventTrigger(_ phase: Phase, _ event: String,
                                      _ body: @escaping () throws -> Void) throws -> TriggerID {
        try addTrigger(phase, event, TriggerBox(self, hold: nil, body: body))
    }

    /// Adds a BEFORE trigger that holds `event`: the DURING phase starts only after `complete` (given
    /// to `body`) has been called. This is how a program drains connections before shutdown.
    @discardableResult
    public func addBeforeTrigger(holding event: String,
                                 _ body: @escaping (TriggerCompletion) -> Void) throws -> TriggerID {
        try addTrigger(.before, event, TriggerBox(self, hold: body, body: nil))
    }

    private func addTrigger(_ phase: Phase, _ event: String, _ box: TriggerBox) throws -> TriggerID {
        let h = try enter(); defer { leave() }
        var id: UInt64 = 0
        try box.register("addSystemEventTrigger") { p in
            reactor_add_system_event_trigger(h, phase.rawValue, event, runTriggerBox, p, releaseBox, &id)
        }
        return TriggerID(rawValue: id)
    }

    public func removeSystemEventTrigger(_ id: TriggerID) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_remove_system_event_trigger(h, id.rawValue), "removeSystemEventTrigger")
    }

    /// Runs the triggers of `event` (before it returns, unless a BEFORE trigger holds it).
    public func fireSystemEvent(_ event: String) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_fire_system_event(h, event), "fireSystemEvent")
    }

    /// Completes a held BEFORE trigger.
    public func completeTrigger(_ id: TriggerID) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_trigger_complete(h, id.rawValue), "completeTrigger")
    }

    // MARK: - Time

    /// The clock delayed calls use (seconds, monotonic; the manual clock when enabled).
    public var seconds: Double { gated { reactor_seconds($0) } ?? .nan }

    /// Runs `body` after `delay` seconds on the reactor thread.
    @discardableResult
    public func callLater(_ delay: Double, _ body: @escaping () throws -> Void) throws -> DelayedCall {
        let h = try enter(); defer { leave() }
        var c: OpaquePointer?
        try CallbackBox(self, body).register("callLater") {
            reactor_call_later(h, delay, runCallbackBox, $0, releaseBox, &c)
        }
        return DelayedCall(c!)
    }

    @discardableResult
    public func callLater(_ delay: Duration, _ body: @escaping () throws -> Void) throws -> DelayedCall {
        try callLater(delay.seconds, body)
    }

    /// Pending delayed calls (not cancelled).
    public var delayedCallCount: Int { gated { Int(reactor_delayed_call_count($0)) } ?? 0 }

    /// Advances the manual clock and runs the calls that became due (manual clock only).
    public func advance(by seconds: Double) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_clock_advance(h, seconds), "advance")
    }
    public func advance(by d: Duration) throws { try advance(by: d.seconds) }

    // MARK: - File descriptors

    /// Readiness events of a reader or writer callback.
    public struct Events: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: UInt32(REACTOR_READABLE))
        public static let writable = Events(rawValue: UInt32(REACTOR_WRITABLE))
        public static let hangup = Events(rawValue: UInt32(REACTOR_HANGUP))
        public static let error = Events(rawValue: UInt32(REACTOR_ERROR))
        /// The reactor shut down; the registration has been removed.
        public static let shutdown = Events(rawValue: UInt32(REACTOR_SHUTDOWN))
    }

    /// Calls `body` when `fd` is readable (replaces an earlier reader of `fd`).
    public func addReader(_ fd: Int32, _ body: @escaping (Int32, Events) throws -> Void) throws {
        let h = try enter(); defer { leave() }
        try FdBox(self, body).register("addReader") { reactor_add_reader(h, fd, runFdBox, $0, releaseBox) }
    }

    /// Calls `body` when `fd` is writable (replaces an earlier writer of `fd`).
    public func addWriter(_ fd: Int32, _ body: @escaping (Int32, Events) throws -> Void) throws {
        let h = try enter(); defer { leave() }
        try FdBox(self, body).register("addWriter") { reactor_add_writer(h, fd, runFdBox, $0, releaseBox) }
    }

    public func removeReader(_ fd: Int32) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_remove_reader(h, fd), "removeReader")
    }
    public func removeWriter(_ fd: Int32) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_remove_writer(h, fd), "removeWriter")
    }

    /// Removes every reader and writer; returns their fds.
    @discardableResult
    public func removeAll() throws -> [Int32] {
        let h = try enter(); defer { leave() }
        // Sized first: the removal cannot be asked again for the fds that did not fit.
        var nr = 0, nw = 0
        try check(reactor_get_readers(h, nil, 0, &nr), "removeAll")
        try check(reactor_get_writers(h, nil, 0, &nw), "removeAll")
        var buf = [Int32](repeating: -1, count: nr + nw + 1)
        var count = 0
        let cap = buf.count
        try check(buf.withUnsafeMutableBufferPointer { reactor_remove_all(h, $0.baseAddress, cap, &count) }, "removeAll")
        return Array(buf[0..<min(count, cap)])
    }
    public func readers() throws -> [Int32] {
        let h = try enter(); defer { leave() }
        return try fdList("readers") { reactor_get_readers(h, $0, $1, $2) }
    }
    public func writers() throws -> [Int32] {
        let h = try enter(); defer { leave() }
        return try fdList("writers") { reactor_get_writers(h, $0, $1, $2) }
    }

    private func fdList(_ op: String,
                        _ call: (UnsafeMutablePointer<Int32>?, Int, UnsafeMutablePointer<Int>) -> Int32) throws -> [Int32] {
        var cap = 64
        while true {
            var count = 0
            var buf = [Int32](repeating: -1, count: cap)
            try check(buf.withUnsafeMutableBufferPointer { call($0.baseAddress, cap, &count) }, op)
            if count <= cap { return Array(buf[0..<count]) }
            cap = count
        }
    }

    /// A pollable fd for embedding the loop in another one (any thread), or -1.
    public var backendFD: Int32 { gated { reactor_backend_fd($0) } ?? -1 }
    /// Milliseconds until the next timer (-1: none, 0: work is ready).
    public var backendTimeoutMilliseconds: Int32 { gated { reactor_backend_timeout_ms($0) } ?? -1 }

    // MARK: - Threads

    /// Runs `body` on the reactor thread on a later pass (any thread). Calls from one thread run in
    /// order. After a run that ended with `stop()` it throws `ReactorError.closed`.
    public func callFromThread(_ body: @escaping @Sendable () -> Void) throws {
        let h = try enter(); defer { leave() }
        try CallbackBox(nil, body).register("callFromThread") {
            reactor_call_from_thread(h, runCallbackBox, $0, releaseBox)
        }
    }

    /// Wakes the loop up (any thread).
    public func wakeUp() throws {
        let h = try enter(); defer { leave() }
        try check(reactor_wake_up(h), "wakeUp")
    }
}

/// Passed to a holding BEFORE trigger: call `complete()` to let the event go on.
public struct TriggerCompletion: Sendable {
    public let reactor: Reactor
    public let id: Reactor.TriggerID
    /// Completes the held trigger: at once on the reactor thread; from any other thread through
    /// `callFromThread` (errors there go to `errorHandler`).
    public func complete() throws {
        if reactor.isInIOThread {
            try reactor.completeTrigger(id)
        } else {
            let (reactor, id) = (self.reactor, self.id)
            try reactor.callFromThread {
                do { try reactor.completeTrigger(id) } catch { Reactor.report(reactor, error, "trigger completion") }
            }
        }
    }
}

final class LogBox {
    let handler: (Reactor.LogLevel, String) -> Void
    init(_ handler: @escaping (Reactor.LogLevel, String) -> Void) { self.handler = handler }
}

final class TriggerBox: Box {
    weak var reactor: Reactor?
    let hold: ((TriggerCompletion) -> Void)?
    let body: (() throws -> Void)?
    init(_ reactor: Reactor, hold: ((TriggerCompletion) -> Void)?, body: (() throws -> Void)?) {
        self.reactor = reactor
        self.hold = hold
        self.body = body
    }
}

func runTriggerBox(_ r: OpaquePointer?, _ id: UInt64, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    let box = TriggerBox.from(ud)
    if let hold = box.hold {
        guard let reactor = box.reactor else { return REACTOR_OK.rawValue }
        hold(TriggerCompletion(reactor: reactor, id: Reactor.TriggerID(rawValue: id)))
        return REACTOR_PENDING
    }
    do {
        try box.body?()
        return REACTOR_OK.rawValue
    } catch {
        Reactor.report(box.reactor, error, "system event trigger")
        return (error as? ReactorError)?.code ?? REACTOR_E_INVALID.rawValue
    }
}

final class FdBox: Box {
    weak var reactor: Reactor?
    let body: (Int32, Reactor.Events) throws -> Void
    init(_ reactor: Reactor, _ body: @escaping (Int32, Reactor.Events) throws -> Void) {
        self.reactor = reactor
        self.body = body
    }
}

func runFdBox(_ r: OpaquePointer?, _ fd: Int32, _ events: UInt32, _ ud: UnsafeMutableRawPointer?) {
    let box = FdBox.from(ud)
    do { try box.body(fd, Reactor.Events(rawValue: events)) } catch {
        Reactor.report(box.reactor, error, "reader/writer")
    }
}

/// A call scheduled with `callLater` (Twisted's IDelayedCall). The handle stays valid (and keeps
/// reporting what happened to the call) until it is dropped, even after its reactor is gone.
public final class DelayedCall: @unchecked Sendable {
    private let c: OpaquePointer
    init(_ c: OpaquePointer) { self.c = c }
    deinit { reactor_delayed_call_release(c) }

    /// Cancels the call (`alreadyCancelled`, `alreadyCalled` otherwise).
    public func cancel() throws { try check(reactor_delayed_call_cancel(c), "DelayedCall.cancel") }
    /// Reschedules it `seconds` from now.
    public func reset(_ seconds: Double) throws { try check(reactor_delayed_call_reset(c, seconds), "DelayedCall.reset") }
    public func reset(_ d: Duration) throws { try reset(d.seconds) }
    /// Moves it `seconds` later (earlier when negative, never before now).
    public func delay(_ seconds: Double) throws { try check(reactor_delayed_call_delay(c, seconds), "DelayedCall.delay") }
    public func delay(_ d: Duration) throws { try delay(d.seconds) }
    /// Pending: neither run nor cancelled.
    public var isActive: Bool { reactor_delayed_call_active(c) == 1 }
    /// When it runs, on the reactor's clock (`Reactor.seconds`).
    public var time: Double { reactor_delayed_call_get_time(c) }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
