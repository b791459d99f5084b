#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor

/// How a child process finished.
public struct ProcessStatus: Sendable, Equatable, CustomStringConvertible {
    /// nil for exit status 0, else `ReactorError(code: REACTOR_E_PROCESS_TERMINATED)`.
    public let reason: ReactorError?
    /// The exit status, or -1 when a signal killed the child.
    public let exitCode: Int32
    /// The signal that killed it, or 0 when it exited.
    public let termSignal: Int32

    public var description: String {
        termSignal != 0 ? "killed by signal \(termSignal)" : "exited with status \(exitCode)"
    }
}

/// The Swift side of a child process (Twisted's ProcessProtocol); reactor thread; all optional.
public protocol ProcessProtocol: AnyObject {
    /// First, on a later pass after the spawn.
    func connectionMade(_ process: ChildProcess)
    /// Bytes the child wrote to one of its READ fds (a pty's output comes as fd 1).
    func childDataReceived(_ process: ChildProcess, fd: Int32, _ data: [UInt8])
    /// Once per pipe when it closes (either side).
    func childConnectionLost(_ process: ChildProcess, fd: Int32)
    /// As soon as the child is reaped, even with pipes still open.
    func processExited(_ process: ChildProcess, status: ProcessStatus)
    /// Once the child is reaped and every pipe has closed; the handle is dead after this returns.
    func processEnded(_ process: ChildProcess, status: ProcessStatus)
}

extension ProcessProtocol {
    public func connectionMade(_ process: ChildProcess) {}
    public func childDataReceived(_ process: ChildProcess, fd: Int32, _ data: [UInt8]) {}
    public func childConnectionLost(_ process: ChildProcess, fd: Int32) {}
    public func processExited(_ process: ChildProcess, status: ProcessStatus) {}
    public func processEnded(_ process: ChildProcess, status: ProcessStatus) {}
}

/// What the child finds at one fd number.
public enum ChildFD: Sendable, Equatable {
    /// A pipe the child writes and the parent reads (`childDataReceived`).
    case read(Int32)
    /// A pipe the parent writes (`write(_:to:)`) and the child reads.
    case write(Int32)
    /// The parent's open fd `parent`, duplicated into the child as `child`.
    case inherit(child: Int32, parent: Int32)

    var c: reactor_child_fd_t {
        switch self {
        case .read(let fd): return reactor_child_fd_t(child_fd: fd, kind: REACTOR_CHILD_FD_READ, parent_fd: -1)
        case .write(let fd): return reactor_child_fd_t(child_fd: fd, kind: REACTOR_CHILD_FD_WRITE, parent_fd: -1)
        case .inherit(let child, let parent):
            return reactor_child_fd_t(child_fd: child, kind: REACTOR_CHILD_FD_INHERIT, parent_fd: parent)
        }
    }
}

/// Options of `Reactor.spawnProcess`.
public struct SpawnOptions: Sendable {
    /// "NAME=value" entries; ignored with `inheritEnvironment`. Default: an empty environment (Twisted's).
    public var environment: [String] = []
    /// The parent's environment instead of `environment`.
    public var inheritEnvironment = false
    public var workingDirectory: String?
    public var uid: Int64 = -1
    public var gid: Int64 = -1
    /// nil: 0 = write, 1 = read, 2 = read.
    public var childFDs: [ChildFD]?
    /// A pseudo-terminal as 0, 1 and 2 (not with `childFDs`).
    public var usePTY = false
    public init(environment: [String] = [], inheritEnvironment: Bool = false, workingDirectory: String? = nil,
                childFDs: [ChildFD]? = nil, usePTY: Bool = false) {
        self.environment = environment
        self.inheritEnvironment = inheritEnvironment
        self.workingDirectory = workingDirectory
        self.childFDs = childFDs
        self.usePTY = usePTY
    }
}

/// A running child (Twisted's IProcessTransport). Reactor thread; dead after `processEnded`.
public final class ChildProcess: @unchecked Sendable {
    private(set) var p: OpaquePointer?
    init(_ p: OpaquePointer) { self.p = p }
    func invalidate() { p = nil }

    private func handle(_ op: String) throws -> OpaquePointer {
        guard let p else { throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: op) }
        return p
    }

    /// Queues bytes for one of the child's WRITE pipes (default: its stdin).
    public func write<Bytes: Sequence>(_ bytes: Bytes, to fd: Int32 = 0) throws where Bytes.Element == UInt8 {
        let p = try handle("ChildProcess.write")
        let status = bytes.withContiguousStorageIfAvailable { reactor_process_write_to_child(p, fd, $0.baseAddress, $0.count) }
            ?? Array(bytes).withUnsafeBufferPointer { reactor_process_write_to_child(p, fd, $0.baseAddress, $0.count) }
        try check(status, "ChildProcess.write")
    }
    public func write(_ string: String, to fd: Int32 = 0) throws { try write(Array(string.utf8), to: fd) }
    /// Closes one pipe (a WRITE pipe after flushing it).
    public func closeChildFD(_ fd: Int32) throws {
        try check(reactor_process_close_child_fd(try handle("closeChildFD"), fd), "closeChildFD")
    }
    /// Closes 0, 2 and 1, as Twisted does.
    public func loseConnection() throws {
        try check(reactor_process_lose_connection(try handle("ChildProcess.loseConnection")), "ChildProcess.loseConnection")
    }
    /// Sends `signum` (`.processExited`-style error after the child was reaped).
    public func signal(_ signum: Int32) throws {
        try check(reactor_process_signal(try handle("ChildProcess.signal"), signum), "ChildProcess.signal")
    }
    /// The child's pid until `processEnded`, else 0.
    public var pid: Int32 { p.map { reactor_process_pid($0) } ?? 0 }
}

final class ProcessBox: Box {
    let proto: ProcessProtocol
    var process: ChildProcess?
    init(_ proto: ProcessProtocol) { self.proto = proto }
    func process(_ p: OpaquePointer?) -> ChildProcess {
        if let c = process, c.p == p { return c }
        let c = ChildProcess(p!)
        process = c
        return c
    }
}

func processStatus(_ reason: Int32, _ exitCode: Int32, _ termSignal: Int32) -> ProcessStatus {
    ProcessStatus(reason: reason == 0 ? nil : ReactorError(code: reason), exitCode: exitCode, termSignal: termSignal)
}

/// Runs `body` with a NULL-terminated array of C strings (copies, freed afterwards).
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let array = copies.map { UnsafePointer($0) } + [nil]
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension Reactor {
    /// Starts `executable` (searched in PATH without a '/') with `arguments` (argv, argv[0] included).
    /// A program that cannot be run is reported here as an OS error, and nothing is called.
    @discardableResult
    public func spawnProcess(_ executable: String, _ arguments: [String], options: SpawnOptions = SpawnOptions(),
                             _ proto: ProcessProtocol) throws -> ChildProcess {
        let h = try enter(); defer { leave() }
        var p = reactor_process_protocol_t()
        reactor_process_protocol_init(&p)
        p.connection_made = { c, ud in
            let box = ProcessBox.from(ud)
            box.proto.connectionMade(box.process(c))
        }
        p.child_data_received = { c, fd, data, len, ud in
            let box = ProcessBox.from(ud)
            box.proto.childDataReceived(box.process(c), fd: fd, Array(UnsafeBufferPointer(start: data, count: len)))
        }
        p.child_connection_lost = { c, fd, ud in
            let box = ProcessBox.from(ud)
            box.proto.childConnectionLost(box.process(c), fd: fd)
        }
        p.process_exited = { c, reason, code, sig, ud in
            let box = ProcessBox.from(ud)
            box.proto.processExited(box.process(c), status: processStatus(reason, code, sig))
        }
        p.process_ended = { c, reason, code, sig, ud in
            let box = ProcessBox.from(ud)
            let process = box.process(c)
            box.proto.processEnded(process, status: processStatus(reason, code, sig))
            process.invalidate()
            box.process = nil
        }
        var o = reactor_spawn_options_t()
        reactor_spawn_options_init(&o)
        o.inherit_env = options.inheritEnvironment ? 1 : 0
        o.uid = options.uid
        o.gid = options.gid
        o.use_pty = options.usePTY ? 1 : 0
        let fds = (options.childFDs ?? []).map(\.c)
        var out: OpaquePointer?
        let box = ProcessBox(proto)
        try box.register("spawnProcess") { ud in
            withCStrings(arguments) { argv in
                withCStrings(options.environment) { env in
                    fds.withUnsafeBufferPointer { fdBuf in
                        if !options.inheritEnvironment { o.env = env }
                        if options.childFDs != nil {
                            o.child_fds = fdBuf.baseAddress
                            o.child_fd_count = fdBuf.count
                        }
                        let spawn = { reactor_spawn_process(h, executable, argv, &o, &p, ud, releaseBox, &out) }
                        guard let cwd = options.workingDirectory else { return spawn() }
                        return cwd.withCString { o.cwd = $0; return spawn() }
                    }
                }
            }
        }
        return box.process(out)
    }
}
