#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor
import Synchronization

/// Counts the Swift objects currently owned by the library (see `Reactor.liveBoxes`).
let liveBoxCount = Atomic<Int>(0)

/// Everything handed to the library as `user_data` is a `Box`: retained once (`Unmanaged`) when it
/// is given, released exactly once by the library's `release` hook (`releaseBox`) or, when the call
/// that would have taken it fails, by the binding itself.
class Box {
    /// Retains the box for the library and counts it.
    final func retainedPointer() -> UnsafeMutableRawPointer {
        liveBoxCount.add(1, ordering: .relaxed)
        return Unmanaged.passRetained(self).toOpaque()
    }

    /// The box behind a `user_data` pointer, without changing its retain count.
    static func from(_ p: UnsafeMutableRawPointer?) -> Self {
        Unmanaged<Self>.fromOpaque(p!).takeUnretainedValue()
    }

    /// Undo `retainedPointer` (the library's release hook, or a failed registration).
    static func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        liveBoxCount.subtract(1, ordering: .relaxed)
        Unmanaged<Box>.fromOpaque(p).release()
    }

    /// Hands `self` to a C registration: on failure the reference is given back and the error thrown.
    final func register(_ operation: @autoclosure () -> String,
                        _ call: (UnsafeMutableRawPointer) -> Int32) throws {
        let p = retainedPointer()
        let status = call(p)
        if status < 0 {
            Box.release(p)
            throw ReactorError(code: status, operation: operation())
        }
    }
}

/// The `reactor_release_fn` of every box.
func releaseBox(_ ud: UnsafeMutableRawPointer?) { Box.release(ud) }

/// A closure run on the reactor thread (call_later, call_when_running, call_from_thread, ...).
final class CallbackBox: Box {
    let body: () throws -> Void
    weak var reactor: Reactor?
    init(_ reactor: Reactor?, _ body: @escaping () throws -> Void) {
        self.reactor = reactor
        self.body = body
    }
    func run() {
        do { try body() } catch { Reactor.report(reactor, error, "callback") }
    }
}

/// `reactor_cb_fn` for a `CallbackBox`.
func runCallbackBox(_ r: OpaquePointer?, _ ud: UnsafeMutableRawPointer?) {
    CallbackBox.from(ud).run()
}

/// A job on a pool thread (`reactor_work_fn`).
final class WorkBox: Box {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

func runWorkBox(_ ud: UnsafeMutableRawPointer?) { WorkBox.from(ud).body() }
