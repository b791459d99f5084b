#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor
import Synchronization

extension Reactor {
    /// Runs `body` on the reactor's thread pool (any thread). The pool starts with the loop.
    public func callInThread(_ body: @escaping @Sendable () -> Void) throws {
        let h = try enter(); defer { leave() }
        try WorkBox(body).register("callInThread") { reactor_call_in_thread(h, runWorkBox, $0, releaseBox) }
    }

    /// Twisted's deferToThread: runs `work` on the pool, then `done` with its result (or the error it
    /// threw) on the reactor thread. Callable from any thread.
    public func deferToThread<T>(_ work: @escaping @Sendable () throws -> T,
                                 then done: @escaping (Result<T, any Error>) -> Void) throws {
        let h = try enter(); defer { leave() }
        try DeferBox(self, work, done).register("deferToThread") {
            reactor_call_in_thread_with_callback(h, runDeferWork, runDeferDone, $0, releaseBox)
        }
    }

    /// `try await reactor.deferToThread { ... }`: runs `work` on the reactor's pool; the result comes
    /// back through the reactor thread. The reactor must be running (on its own thread).
    public func deferToThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, any Error>) in
            do {
                let h = try enter(); defer { leave() }
                // If the library drops the job without calling `done` (the reactor shut down or was
                // freed first), the box's release resumes the task with `.cancelled`.
                let box = DeferBox(self, work, { k.resume(with: $0) },
                                   dropped: { k.resume(throwing: ReactorError.cancelled) })
                do {
                    try box.register("deferToThread") {
                        reactor_call_in_thread_with_callback(h, runDeferWork, runDeferDone, $0, releaseBox)
                    }
                } catch {
                    box.finished = true
                    throw error
                }
            } catch {
                k.resume(throwing: error)
            }
        }
    }

    /// Sets the maximum size of the reactor's pool (before it starts: the size it starts with).
    public func suggestThreadPoolSize(_ maxThreads: Int) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_suggest_thread_pool_size(h, maxThreads < 0 ? 0 : maxThreads),
                  "suggestThreadPoolSize")
    }
}

final class DeferBox: Box {
    weak var reactor: Reactor?
    let work: () throws -> Any
    let done: (Result<Any, any Error>) -> Void
    let dropped: (() -> Void)?
    var result: Result<Any, any Error>?
    /// `done` ran, or the registration failed (the caller reports that): `dropped` must not run.
    var finished = false

    init<T>(_ reactor: Reactor, _ work: @escaping @Sendable () throws -> T,
            _ done: @escaping (Result<T, any Error>) -> Void, dropped: (() -> Void)? = nil) {
        self.reactor = reactor
        self.work = { try work() }
        self.done = { r in done(r.map { $0 as! T }) }
        self.dropped = dropped
    }

    deinit {
        if !finished { dropped?() }
    }
}

func runDeferWork(_ ud: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let box = DeferBox.from(ud)
    // The library orders this write before `runDeferDone` (the pool hands the job back to the reactor).
    box.result = Result { try box.work() }
    return nil
}

func runDeferDone(_ r: OpaquePointer?, _ result: UnsafeMutableRawPointer?, _ ud: UnsafeMutableRawPointer?) {
    let box = DeferBox.from(ud)
    box.finished = true
    box.done(box.result ?? .failure(ReactorError.cancelled))
}

/// A standalone thread pool (work stealing; jobs run on its threads).
public final class ThreadPool: @unchecked Sendable {
    public struct Stats: Sendable, Equatable {
        public var workers, idle, queued, completed, stolen: UInt64
    }

    /// The C handle and the same gate as `Reactor`'s (2 per call in progress, 1 = closed).
    private let p: OpaquePointer
    private let gate = Atomic<Int>(0)

    public init(minThreads: Int = 0, maxThreads: Int) throws {
        var p: OpaquePointer?
        try check(reactor_threadpool_new(max(0, minThreads), max(0, maxThreads), &p), "ThreadPool.init")
        self.p = p!
    }

    deinit { close() }

    private func enter(_ op: String) throws -> OpaquePointer {
        if gate.add(2, ordering: .acquiringAndReleasing).newValue & 1 != 0 {
            gate.subtract(2, ordering: .releasing)
            throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: op)
        }
        return p
    }
    private func leave() { gate.subtract(2, ordering: .releasing) }

    /// Queues `body` (any thread).
    public func submit(_ body: @escaping @Sendable () -> Void) throws {
        let p = try enter("ThreadPool.submit"); defer { leave() }
        try WorkBox(body).register("ThreadPool.submit") { reactor_threadpool_submit(p, runWorkBox, $0, releaseBox) }
    }

    public func resize(minThreads: Int, maxThreads: Int) throws {
        let p = try enter("ThreadPool.resize"); defer { leave() }
        try check(reactor_threadpool_resize(p, max(0, minThreads), max(0, maxThreads)), "ThreadPool.resize")
    }

    public func stats() throws -> Stats {
        let p = try enter("ThreadPool.stats"); defer { leave() }
        var s = reactor_threadpool_stats_t()
        s.struct_size = UInt32(MemoryLayout<reactor_threadpool_stats_t>.size)
        try check(reactor_threadpool_stats(p, &s), "ThreadPool.stats")
        return Stats(workers: s.workers, idle: s.idle, queued: s.queued, completed: s.completed, stolen: s.stolen)
    }

    /// Runs the queued work and joins the workers; afterwards `submit` throws `.closed`. Any thread but
    /// the pool's own workers (from a job: `.busy`).
    public func stop() throws {
        let p = try enter("ThreadPool.stop"); defer { leave() }
        try check(reactor_threadpool_stop(p), "ThreadPool.stop")
    }

    /// Stops and frees the pool (runs the queued work, joins the workers); afterwards every method
    /// throws `ReactorError.invalid`. Waits for calls in progress on other threads to leave first.
    public func close() {
        while true {
            let (exchanged, seen) = gate.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
            if exchanged { break }
            if seen & 1 != 0 { return }
            sched_yield()
        }
        reactor_threadpool_free(p)
    }
}

// MARK: - Coalescing wake-ups and signals

/// A coalescing wake-up (libuv's uv_async): after `send()` (any thread), the callback runs at least once
/// on the reactor thread; many sends before it runs give one call. `close()` it on the reactor thread
/// (closing the reactor closes it too).
public final class AsyncHandle: @unchecked Sendable {
    private let reactor: Reactor
    private let a: OpaquePointer
    /// 2 per call in progress, 1 = closed (as `Reactor`'s gate).
    private let gate = Atomic<Int>(0)

    init(_ reactor: Reactor, _ a: OpaquePointer) {
        self.reactor = reactor
        self.a = a
    }

    /// Any thread. Throws `.invalid` after `close()` or once the reactor is closed.
    public func send() throws {
        if gate.add(2, ordering: .acquiringAndReleasing).newValue & 1 != 0 {
            gate.subtract(2, ordering: .releasing)
            throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: "AsyncHandle.send")
        }
        defer { gate.subtract(2, ordering: .releasing) }
        _ = try reactor.enter("AsyncHandle.send")   // the reactor's gate: no send races with its close
        defer { reactor.leave() }
        try check(reactor_async_send(a), "AsyncHandle.send")
    }

    /// Reactor thread: the callback's closure is released, later sends throw `.invalid`. Twice: no-op.
    public func close() throws {
        _ = try reactor.enter("AsyncHandle.close")
        defer { reactor.leave() }
        guard reactor.isInIOThread else {
            throw ReactorError(code: REACTOR_E_WRONG_THREAD.rawValue, operation: "AsyncHandle.close")
        }
        while true {
            let (exchanged, seen) = gate.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
            if exchanged { break }
            if seen & 1 != 0 { return }
            sched_yield()   // a send in progress on another thread
        }
        try check(reactor_async_close(a), "AsyncHandle.close")
    }
}

extension Reactor {
    /// A coalescing wake-up whose callback runs on the reactor thread (see `AsyncHandle`).
    public func makeAsync(_ body: @escaping () throws -> Void) throws -> AsyncHandle {
        let h = try enter(); defer { leave() }
        var out: OpaquePointer?
        try CallbackBox(self, body).register("makeAsync") { reactor_async_new(h, runCallbackBox, $0, releaseBox, &out) }
        return AsyncHandle(self, out!)
    }

    /// Identifies a signal handler (`removeSignalHandler`).
    public struct SignalHandlerID: Hashable, Sendable {
        public let rawValue: UInt64
    }

    /// Runs `body(signum)` on the reactor thread after `signum` is delivered (never in signal context;
    /// deliveries may coalesce). The process-wide disposition is installed with the first handler.
    @discardableResult
    public func addSignalHandler(_ signum: Int32, _ body: @escaping (Int32) throws -> Void) throws -> SignalHandlerID {
        let h = try enter(); defer { leave() }
        var id: UInt64 = 0
        try SignalBox(self, body).register("addSignalHandler") {
            reactor_add_signal_handler(h, signum, { _, signum, ud in
                let box = SignalBox.from(ud)
                do { try box.body(signum) } catch { Reactor.report(box.reactor, error, "signal handler") }
            }, $0, releaseBox, &id)
        }
        return SignalHandlerID(rawValue: id)
    }

    public func removeSignalHandler(_ id: SignalHandlerID) throws {
        let h = try enter(); defer { leave() }
        try check(reactor_remove_signal_handler(h, id.rawValue), "removeSignalHandler")
    }
}

final class SignalBox: Box {
    weak var reactor: Reactor?
    let body: (Int32) throws -> Void
    init(_ reactor: Reactor, _ body: @escaping (Int32) throws -> Void) {
        self.reactor = reactor
        self.body = body
    }
}
