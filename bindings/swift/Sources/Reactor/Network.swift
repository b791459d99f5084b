#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor

// MARK: - Addresses

/// A network address as the library reports it (always numeric).
public struct Address: Sendable, Hashable, CustomStringConvertible {
    public enum Family: UInt32, Sendable {
        case inet = 1, inet6 = 2, unix = 3
    }
    public var family: Family
    /// A numeric IP, a UNIX path, "@name" (Linux abstract socket) or "" (unnamed UNIX socket).
    public var host: String
    /// 0 for UNIX.
    public var port: UInt16
    public var flowInfo: UInt32 = 0
    public var scopeID: UInt32 = 0

    public init(family: Family, host: String, port: UInt16) {
        self.family = family
        self.host = host
        self.port = port
    }

    init(_ a: reactor_address_t) {
        family = Family(rawValue: a.family) ?? .inet
        port = a.port
        flowInfo = a.flow_info
        scopeID = a.scope_id
        host = withUnsafeBytes(of: a.host) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@name".
    public var description: String {
        switch family {
        case .inet: return "\(host):\(port)"
        case .inet6: return "[\(host)]:\(port)"
        case .unix: return host
        }
    }

    static func read(_ op: String, _ call: (UnsafeMutablePointer<reactor_address_t>) -> Int32) throws -> Address {
        var a = reactor_address_t()
        try check(call(&a), op)
        return Address(a)
    }
}

// MARK: - Protocols

/// The Swift side of a stream connection (Twisted's IProtocol). Every method has a default that does
/// nothing (`dataReceived` discards, `fileDescriptorReceived` closes the fd). Methods run on the
/// reactor thread.
public protocol StreamProtocol: AnyObject {
    func connectionMade(_ transport: Transport)
    func dataReceived(_ transport: Transport, _ data: [UInt8])
    /// The peer closed its side. Only called when `isHalfCloseAware`; otherwise a FIN ends the
    /// connection (`connectionLost` with `nil`).
    func readConnectionLost(_ transport: Transport)
    /// `loseWriteConnection` finished: the write side is shut down.
    func writeConnectionLost(_ transport: Transport)
    /// The connection ended: `reason` nil for a clean close, else why (`.connectionLost`,
    /// `.connectionAborted`, an OS error...). The transport is dead after this returns.
    func connectionLost(_ transport: Transport, reason: ReactorError?)
    /// A client attempt failed (`.connectionRefused`, `.timeout`, `.dns`, `.cancelled`, an OS error).
    /// `connector.connect()` here tries again, also when the `Connector` returned by
    /// `connectTCP`/`connectUNIX` was not kept (the library lends a handle for the callback).
    /// `connector` is nil only if the library could not make that handle (its table is full).
    func connectionFailed(_ connector: Connector?, reason: ReactorError)
    /// UNIX sockets: a file descriptor passed by the peer; it is yours to close.
    func fileDescriptorReceived(_ transport: Transport, _ fd: Int32)
    /// Whether the peer's FIN is reported through `readConnectionLost` (the transport stays writable).
    var isHalfCloseAware: Bool { get }
}

extension StreamProtocol {
    public func connectionMade(_ transport: Transport) {}
    public func dataReceived(_ transport: Transport, _ data: [UInt8]) {}
    public func readConnectionLost(_ transport: Transport) {}
    public func writeConnectionLost(_ transport: Transport) {}
    public func connectionLost(_ transport: Transport, reason: ReactorError?) {}
    public func connectionFailed(_ connector: Connector?, reason: ReactorError) {}
    public func fileDescriptorReceived(_ transport: Transport, _ fd: Int32) { _ = Glibc.close(fd) }
    public var isHalfCloseAware: Bool { false }
}

/// A producer feeding a transport (Twisted's IPushProducer / IPullProducer).
public protocol Producer: AnyObject {
    func pauseProducing()
    func resumeProducing()
    func stopProducing()
}

extension Producer {
    public func pauseProducing() {}
    public func resumeProducing() {}
    public func stopProducing() {}
}

// MARK: - Transport

/// One stream connection (Twisted's ITransport). Reactor thread only; after `connectionLost`
/// returned every method throws `ReactorError.invalid`.
public final class Transport: @unchecked Sendable {
    private(set) var t: OpaquePointer?

    init(_ t: OpaquePointer) { self.t = t }
    func invalidate() { t = nil }

    private func handle(_ op: String) throws -> OpaquePointer {
        guard let t else { throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: op) }
        return t
    }

    /// Whether `connectionLost` has not yet returned.
    public var isAlive: Bool { t != nil }

    /// Queues bytes (copied): `[UInt8]`, `ArraySlice<UInt8>`, `Data`, `String.UTF8View`, ...
    public func write<Bytes: Sequence>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        let t = try handle("Transport.write")
        let status = bytes.withContiguousStorageIfAvailable { reactor_transport_write(t, $0.baseAddress, $0.count) }
            ?? Array(bytes).withUnsafeBufferPointer { reactor_transport_write(t, $0.baseAddress, $0.count) }
        try check(status, "Transport.write")
    }

    /// Queues the UTF-8 bytes of `string`.
    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write($0) }
    }

    /// Queues the bytes of a raw buffer (copied).
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        try check(reactor_transport_write(try handle("Transport.write"), buffer.baseAddress, buffer.count),
                  "Transport.write")
    }

    /// Twisted's writeSequence: queues several buffers in order (one call, nothing joined).
    public func writeSequence(_ chunks: [[UInt8]]) throws {
        let t = try handle("Transport.writeSequence")
        var iov: [iovec] = []
        iov.reserveCapacity(chunks.count)
        func go(_ i: Int) -> Int32 {
            if i == chunks.count { return reactor_transport_writev(t, iov, Int32(iov.count)) }
            return chunks[i].withUnsafeBytes { b in
                iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
                return go(i + 1)
            }
        }
        try check(go(0), "Transport.writeSequence")
    }

    /// Stops reading, flushes what is buffered (after a registered producer unregisters), then closes:
    /// `connectionLost(nil)`.
    public func loseConnection() throws { try check(reactor_transport_lose_connection(try handle("loseConnection")), "loseConnection") }
    /// Discards the buffer and resets the connection: `connectionLost(.connectionAborted)`.
    public func abortConnection() throws { try check(reactor_transport_abort_connection(try handle("abortConnection")), "abortConnection") }
    /// Half-close: shuts down the write side once the buffer drained (`writeConnectionLost`).
    public func loseWriteConnection() throws {
        try check(reactor_transport_lose_write_connection(try handle("loseWriteConnection")), "loseWriteConnection")
    }
    public func pauseReading() throws { try check(reactor_transport_pause_reading(try handle("pauseReading")), "pauseReading") }
    public func resumeReading() throws { try check(reactor_transport_resume_reading(try handle("resumeReading")), "resumeReading") }

    /// Registers a producer: a streaming (push) one is paused above the high-water mark and resumed
    /// when the buffer drains; a pull one is resumed each time the buffer drains.
    public func registerProducer(_ producer: Producer, streaming: Bool) throws {
        let t = try handle("registerProducer")
        var p = reactor_producer_t()
        p.struct_size = UInt32(MemoryLayout<reactor_producer_t>.size)
        p.pause_producing = { _, ud in ProducerBox.from(ud).producer.pauseProducing() }
        p.resume_producing = { _, ud in ProducerBox.from(ud).producer.resumeProducing() }
        p.stop_producing = { _, ud in ProducerBox.from(ud).producer.stopProducing() }
        try ProducerBox(producer).register("registerProducer") {
            reactor_transport_register_producer(t, &p, streaming ? 1 : 0, $0, releaseBox)
        }
    }
    public func unregisterProducer() throws {
        try check(reactor_transport_unregister_producer(try handle("unregisterProducer")), "unregisterProducer")
    }
    public func setWriteBufferLimits(high: Int, low: Int) throws {
        try check(reactor_transport_set_write_buffer_limits(try handle("setWriteBufferLimits"), high, low),
                  "setWriteBufferLimits")
    }
    public var writeBufferSize: Int {
        get throws {
            var n = 0
            try check(reactor_transport_get_write_buffer_size(try handle("writeBufferSize"), &n), "writeBufferSize")
            return n
        }
    }

    public var host: Address {
        get throws { let t = try handle("host"); return try Address.read("Transport.host") { reactor_transport_get_host(t, $0) } }
    }
    public var peer: Address {
        get throws { let t = try handle("peer"); return try Address.read("Transport.peer") { reactor_transport_get_peer(t, $0) } }
    }
    public func setTCPNoDelay(_ on: Bool) throws {
        try check(reactor_transport_set_tcp_nodelay(try handle("setTCPNoDelay"), on ? 1 : 0), "setTCPNoDelay")
    }
    public var tcpNoDelay: Bool {
        get throws {
            var v: Int32 = 0
            try check(reactor_transport_get_tcp_nodelay(try handle("tcpNoDelay"), &v), "tcpNoDelay")
            return v != 0
        }
    }
    public func setTCPKeepAlive(_ on: Bool) throws {
        try check(reactor_transport_set_tcp_keepalive(try handle("setTCPKeepAlive"), on ? 1 : 0), "setTCPKeepAlive")
    }
    public var tcpKeepAlive: Bool {
        get throws {
            var v: Int32 = 0
            try check(reactor_transport_get_tcp_keepalive(try handle("tcpKeepAlive"), &v), "tcpKeepAlive")
            return v != 0
        }
    }
    /// UNIX only: passes a duplicate of `fd` with the next bytes written.
    public func sendFileDescriptor(_ fd: Int32) throws {
        try check(reactor_transport_send_file_descriptor(try handle("sendFileDescriptor"), fd), "sendFileDescriptor")
    }
    /// The socket's fd, or -1.
    public var fileno: Int32 { t.map { reactor_transport_fileno($0) } ?? -1 }
}

final class ProducerBox: Box {
    let producer: Producer
    init(_ producer: Producer) { self.producer = producer }
}

// MARK: - Connections (user data of one connection, or of a connector)

final class ConnBox: Box {
    weak var reactor: Reactor?
    let proto: StreamProtocol
    var transport: Transport?

    init(_ reactor: Reactor, _ proto: StreamProtocol) {
        self.reactor = reactor
        self.proto = proto
    }

    func transport(_ t: OpaquePointer?) -> Transport {
        if let tr = transport, tr.t == t { return tr }
        let tr = Transport(t!)
        transport = tr
        return tr
    }
}

func makeProtocolStruct() -> reactor_protocol_t {
    var p = reactor_protocol_t()
    reactor_protocol_init(&p)
    p.connection_made = { t, ud in
        let box = ConnBox.from(ud)
        box.proto.connectionMade(box.transport(t))
    }
    p.data_received = { t, data, len, ud in
        let box = ConnBox.from(ud)
        box.proto.dataReceived(box.transport(t), Array(UnsafeBufferPointer(start: data, count: len)))
    }
    p.read_connection_lost = { t, ud in
        let box = ConnBox.from(ud)
        if box.proto.isHalfCloseAware {
            box.proto.readConnectionLost(box.transport(t))
        } else {
            // Not half-close aware: the peer's FIN ends the connection (flushing what is queued).
            _ = reactor_transport_lose_connection(t)
        }
    }
    p.write_connection_lost = { t, ud in
        let box = ConnBox.from(ud)
        box.proto.writeConnectionLost(box.transport(t))
    }
    p.connection_lost = { t, reason, ud in
        let box = ConnBox.from(ud)
        let tr = box.transport(t)
        box.proto.connectionLost(tr, reason: reason == 0 ? nil : ReactorError(code: reason))
        tr.invalidate()
        box.transport = nil
    }
    p.connection_failed = { c, reason, ud in
        let box = ConnBox.from(ud)
        box.proto.connectionFailed(c.map { Connector($0, owned: false) }, reason: ReactorError(code: reason))
    }
    p.file_descriptor_received = { t, fd, ud in
        let box = ConnBox.from(ud)
        box.proto.fileDescriptorReceived(box.transport(t), fd)
    }
    return p
}

// MARK: - Ports

final class PortBox: Box {
    weak var reactor: Reactor?
    let factory: (Address) -> StreamProtocol?
    init(_ reactor: Reactor, _ factory: @escaping (Address) -> StreamProtocol?) {
        self.reactor = reactor
        self.factory = factory
    }
}

func buildProtocol(_ port: OpaquePointer?, _ peer: UnsafePointer<reactor_address_t>?,
                   _ portUD: UnsafeMutableRawPointer?, _ connUD: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                   _ connRelease: UnsafeMutablePointer<reactor_release_fn?>?) -> Int32 {
    let box = PortBox.from(portUD)
    guard let reactor = box.reactor,
          let proto = box.factory(peer.map { Address($0.pointee) } ?? Address(family: .inet, host: "", port: 0))
    else { return REACTOR_E_INVALID.rawValue }
    connUD!.pointee = ConnBox(reactor, proto).retainedPointer()
    connRelease!.pointee = releaseBox
    return REACTOR_OK.rawValue
}

/// A listening stream port (TCP or UNIX). Reactor thread only.
public final class ListeningPort: @unchecked Sendable {
    let p: OpaquePointer
    init(_ p: OpaquePointer) { self.p = p }

    /// The address it listens on (the real port when 0 was asked for).
    public var host: Address {
        get throws { try Address.read("ListeningPort.host") { reactor_port_get_host(p, $0) } }
    }
    /// Closes the socket before it returns (a UNIX path is unlinked).
    public func stopListening() throws { try check(reactor_port_stop_listening(p), "stopListening") }
    public func pauseAccepting() throws { try check(reactor_port_pause_accepting(p), "pauseAccepting") }
    public func resumeAccepting() throws { try check(reactor_port_resume_accepting(p), "resumeAccepting") }
    public var fileno: Int32 { reactor_port_fileno(p) }
}

/// Twisted's IConnector: a client attempt (and the connection it made). Dropping it does not stop
/// the attempt.
public final class Connector: @unchecked Sendable {
    public enum State: Int32, Sendable {
        case disconnected = 0, connecting = 1, connected = 2
    }
    let c: OpaquePointer
    let owned: Bool
    init(_ c: OpaquePointer, owned: Bool) {
        self.c = c
        self.owned = owned
    }
    deinit { if owned { reactor_connector_release(c) } }

    public var state: State {
        get throws {
            let s = try check(reactor_connector_state(c), "Connector.state")
            return State(rawValue: s) ?? .disconnected
        }
    }
    /// Ends a pending attempt (`connectionFailed(.cancelled)` on a later pass).
    public func stopConnecting() throws { try check(reactor_connector_stop_connecting(c), "stopConnecting") }
    /// Stops an attempt or loses the connection.
    public func disconnect() throws { try check(reactor_connector_disconnect(c), "disconnect") }
    /// Starts a new attempt (same destination and protocol) once the previous one ended.
    public func connect() throws { try check(reactor_connector_connect(c), "connect") }
    public var destination: Address {
        get throws { try Address.read("Connector.destination") { reactor_connector_get_destination(c, $0) } }
    }
}

extension Reactor {
    public struct ListenOptions: Sendable {
        public var backlog: Int32?
        public var reusePort = false
        public var ipv6Only = false
        /// UNIX socket file permissions (default 0666).
        public var mode: UInt32?
        public init(backlog: Int32? = nil, reusePort: Bool = false, ipv6Only: Bool = false, mode: UInt32? = nil) {
            self.backlog = backlog
            self.reusePort = reusePort
            self.ipv6Only = ipv6Only
            self.mode = mode
        }
        var c: reactor_listen_options_t {
            var o = reactor_listen_options_t()
            reactor_listen_options_init(&o)
            if let backlog { o.backlog = backlog }
            if reusePort { o.flags |= UInt32(REACTOR_LISTEN_REUSE_PORT) }
            if ipv6Only { o.flags |= UInt32(REACTOR_LISTEN_IPV6_ONLY) }
            if let mode { o.mode = mode }
            return o
        }
    }

    /// Listens on TCP `port` (0: a free one) of `interface` (nil: all IPv4 addresses; "::" for IPv6).
    /// `factory` makes the protocol of each accepted connection from the peer's address (nil refuses).
    @discardableResult
    public func listenTCP(port: UInt16, interface: String? = nil, options: ListenOptions = ListenOptions(),
                          _ factory: @escaping (Address) -> StreamProtocol?) throws -> ListeningPort {
        let h = try enter(); defer { leave() }
        var proto = makeProtocolStruct()
        var opts = options.c
        var out: OpaquePointer?
        try PortBox(self, factory).register("listenTCP") { ud in
            reactor_listen_tcp(h, port, interface, &opts, &proto, buildProtocol, ud, releaseBox, &out)
        }
        return ListeningPort(out!)
    }

    /// Listens on a UNIX socket at `path` ("@name": Linux abstract socket).
    @discardableResult
    public func listenUNIX(path: String, options: ListenOptions = ListenOptions(),
                           _ factory: @escaping (Address) -> StreamProtocol?) throws -> ListeningPort {
        let h = try enter(); defer { leave() }
        var proto = makeProtocolStruct()
        var opts = options.c
        var out: OpaquePointer?
        try PortBox(self, factory).register("listenUNIX") { ud in
            reactor_listen_unix(h, path, &opts, &proto, buildProtocol, ud, releaseBox, &out)
        }
        return ListeningPort(out!)
    }

    /// Connects to `host` (an IP literal or a name, resolved off the reactor thread) and `port`.
    /// `timeout` covers the whole attempt (0: none).
    @discardableResult
    public func connectTCP(host: String, port: UInt16, timeout: Double = 30, bindHost: String? = nil,
                           bindPort: UInt16 = 0, _ proto: StreamProtocol) throws -> Connector {
        let h = try enter(); defer { leave() }
        var p = makeProtocolStruct()
        var o = reactor_connect_options_t()
        reactor_connect_options_init(&o)
        o.timeout_s = timeout
        o.bind_port = bindPort
        var out: OpaquePointer?
        try ConnBox(self, proto).register("connectTCP") { ud in
            if let bindHost {
                return bindHost.withCString { b in
                    o.bind_host = b
                    return reactor_connect_tcp(h, host, port, &o, &p, ud, releaseBox, &out)
                }
            }
            return reactor_connect_tcp(h, host, port, &o, &p, ud, releaseBox, &out)
        }
        return Connector(out!, owned: true)
    }

    /// Connects to the UNIX socket at `path`.
    @discardableResult
    public func connectUNIX(path: String, timeout: Double = 30, _ proto: StreamProtocol) throws -> Connector {
        let h = try enter(); defer { leave() }
        var p = makeProtocolStruct()
        var o = reactor_connect_options_t()
        reactor_connect_options_init(&o)
        o.timeout_s = timeout
        var out: OpaquePointer?
        try ConnBox(self, proto).register("connectUNIX") { ud in
            reactor_connect_unix(h, path, &o, &p, ud, releaseBox, &out)
        }
        return Connector(out!, owned: true)
    }
}

// MARK: - Adopted sockets

extension Reactor {
    /// Takes a connected stream socket (INET, INET6 or UNIX) as a connection with `proto`; the library
    /// works on a duplicate (the caller keeps, and may close, `fd`). `connectionMade` follows on a
    /// later pass.
    @discardableResult
    public func adoptStreamConnection(fd: Int32, _ proto: StreamProtocol) throws -> Transport {
        let h = try enter(); defer { leave() }
        var p = makeProtocolStruct()
        var out: OpaquePointer?
        let box = ConnBox(self, proto)
        try box.register("adoptStreamConnection") { reactor_adopt_stream_connection(h, fd, &p, $0, releaseBox, &out) }
        return box.transport(out)
    }

    /// Takes a listening stream socket as a port (the library works on a duplicate; stopping it closes
    /// only that copy).
    @discardableResult
    public func adoptStreamPort(fd: Int32, _ factory: @escaping (Address) -> StreamProtocol?) throws -> ListeningPort {
        let h = try enter(); defer { leave() }
        var proto = makeProtocolStruct()
        var out: OpaquePointer?
        try PortBox(self, factory).register("adoptStreamPort") { ud in
            reactor_adopt_stream_port(h, fd, &proto, buildProtocol, ud, releaseBox, &out)
        }
        return ListeningPort(out!)
    }
}

// MARK: - Name resolution

final class ResolveBox: Box {
    let done: (Result<[Address], ReactorError>) -> Void
    init(_ done: @escaping (Result<[Address], ReactorError>) -> Void) { self.done = done }
}

extension Reactor {
    /// Resolves `host` off the reactor thread (`getaddrinfo` on the pool, which starts with the loop;
    /// IP literals without it). `done` runs on the reactor thread with numeric addresses, or `.dns` /
    /// `.cancelled`. `family` nil: any.
    public func resolve(_ host: String, port: UInt16 = 0, family: Address.Family? = nil,
                        _ done: @escaping (Result<[Address], ReactorError>) -> Void) throws {
        let h = try enter(); defer { leave() }
        try ResolveBox(done).register("resolve") { ud in
            reactor_resolve(h, host, port, family?.rawValue ?? 0, { _, status, addrs, count, ud in
                let box = ResolveBox.from(ud)
                if status < 0 {
                    box.done(.failure(ReactorError(code: status)))
                } else {
                    box.done(.success(UnsafeBufferPointer(start: addrs, count: count).map { Address($0) }))
                }
            }, ud, releaseBox)
        }
    }
}
