import CReactor

/// A libreactor status code as a Swift error.
///
/// Every function of the C ABI returns `REACTOR_OK` or a negative status; the binding throws a
/// `ReactorError` for the negative ones. Errors compare equal when their codes are equal, so
/// `XCTAssertThrowsError(...) { XCTAssertEqual($0 as? ReactorError, .wrongThread) }` works, and a
/// `catch ReactorError.wrongThread` pattern matches any error with that code.
public struct ReactorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The status code (`REACTOR_E_*`, or `REACTOR_E_OS(errno)`).
    public let code: Int32
    /// The binding method that failed, when known (not part of equality).
    public let operation: String?

    public init(code: Int32, operation: String? = nil) {
        self.code = code
        self.operation = operation
    }

    /// The errno carried by an OS error, or nil.
    public var errno: Int32? {
        let e = reactor_status_errno(code)
        return e == 0 ? nil : e
    }

    /// The library's text for the code (`reactor_strerror`).
    public var message: String { String(cString: reactor_strerror(code)) }

    public var description: String {
        if let operation { return "\(operation): \(message) (\(code))" }
        return "\(message) (\(code))"
    }

    public static func == (a: ReactorError, b: ReactorError) -> Bool { a.code == b.code }
    public func hash(into h: inout Hasher) { h.combine(code) }
    public static func ~= (pattern: ReactorError, value: any Error) -> Bool {
        (value as? ReactorError)?.code == pattern.code
    }

    /// An OS error with this errno (`REACTOR_E_OS(errno)`).
    public static func os(_ errno: Int32) -> ReactorError { ReactorError(code: -(REACTOR_E_OS_BASE + errno)) }

    private init(_ s: reactor_status_t) { self.init(code: s.rawValue) }
    public static let invalid = ReactorError(REACTOR_E_INVALID)
    public static let wrongThread = ReactorError(REACTOR_E_WRONG_THREAD)
    public static let alreadyRunning = ReactorError(REACTOR_E_ALREADY_RUNNING)
    public static let notRunning = ReactorError(REACTOR_E_NOT_RUNNING)
    public static let notRestartable = ReactorError(REACTOR_E_NOT_RESTARTABLE)
    public static let alreadyCalled = ReactorError(REACTOR_E_ALREADY_CALLED)
    public static let alreadyCancelled = ReactorError(REACTOR_E_ALREADY_CANCELLED)
    public static let notFound = ReactorError(REACTOR_E_NOT_FOUND)
    public static let busy = ReactorError(REACTOR_E_BUSY)
    public static let closed = ReactorError(REACTOR_E_CLOSED)
    public static let unsupported = ReactorError(REACTOR_E_UNSUPPORTED)
    public static let timeout = ReactorError(REACTOR_E_TIMEOUT)
    public static let noMemory = ReactorError(REACTOR_E_NOMEM)
    public static let connectionRefused = ReactorError(REACTOR_E_CONNECTION_REFUSED)
    public static let dns = ReactorError(REACTOR_E_DNS)
    public static let addressInUse = ReactorError(REACTOR_E_ADDRESS_IN_USE)
    public static let invalidAddress = ReactorError(REACTOR_E_INVALID_ADDRESS)
    public static let messageTooLong = ReactorError(REACTOR_E_MESSAGE_TOO_LONG)
    public static let connectionLost = ReactorError(REACTOR_E_CONNECTION_LOST)
    public static let connectionAborted = ReactorError(REACTOR_E_CONNECTION_ABORTED)
    public static let cancelled = ReactorError(REACTOR_E_CANCELLED)
}

/// Throws for a negative status; returns a non-negative one.
@inline(__always) @discardableResult
func check(_ status: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
    if status < 0 { throw ReactorError(code: status, operation: operation()) }
    return status
}
