#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CReactor

/// The Swift side of a datagram port (Twisted's DatagramProtocol). Reactor thread; every method
/// has a default that does nothing.
public protocol DatagramProtocol: AnyObject {
    /// The port is open (a later pass after listening).
    func startProtocol(_ port: DatagramPort)
    /// One datagram (truncated to `maxPacketSize`).
    func datagramReceived(_ port: DatagramPort, _ data: [UInt8], from: Address)
    /// Connected ports: the peer refused a datagram (ICMP unreachable).
    func connectionRefused(_ port: DatagramPort)
    /// The port stopped; its handle is dead after this returns.
    func stopProtocol(_ port: DatagramPort)
}

extension DatagramProtocol {
    public func startProtocol(_ port: DatagramPort) {}
    public func datagramReceived(_ port: DatagramPort, _ data: [UInt8], from: Address) {}
    public func connectionRefused(_ port: DatagramPort) {}
    public func stopProtocol(_ port: DatagramPort) {}
}

/// A UDP or UNIX datagram port (Twisted's IUDPTransport / IMulticastTransport). Reactor thread only;
/// after `stopProtocol` returned every method throws `ReactorError.invalid`.
public final class DatagramPort: @unchecked Sendable {
    private(set) var u: OpaquePointer?
    init(_ u: OpaquePointer) { self.u = u }
    func invalidate() { u = nil }

    private func handle(_ op: String) throws -> OpaquePointer {
        guard let u else { throw ReactorError(code: REACTOR_E_INVALID.rawValue, operation: op) }
        return u
    }

    /// Sends one datagram to `host` (an IP literal of the port's family; the peer's path on a UNIX
    /// port) and `port`; nil host on a connected port.
    public func write<Bytes: Sequence>(_ bytes: Bytes, to host: String? = nil, port: UInt16 = 0) throws
    where Bytes.Element == UInt8 {
        let u = try handle("DatagramPort.write")
        let send = { (p: UnsafeRawPointer?, n: Int) -> Int32 in
            guard let host else { return reactor_udp_write(u, p, n, nil, port) }
            return reactor_udp_write(u, p, n, host, port)
        }
        let status = bytes.withContiguousStorageIfAvailable { send($0.baseAddress, $0.count) }
            ?? Array(bytes).withUnsafeBufferPointer { send($0.baseAddress, $0.count) }
        try check(status, "DatagramPort.write")
    }
    public func write(_ string: String, to host: String? = nil, port: UInt16 = 0) throws {
        try write(Array(string.utf8), to: host, port: port)
    }

    /// Connects the port to one peer (an IP literal, or a path for UNIX datagram ports).
    public func connect(host: String, port: UInt16 = 0) throws {
        try check(reactor_udp_connect(try handle("DatagramPort.connect"), host, port), "DatagramPort.connect")
    }
    /// Closes the socket before it returns; `stopProtocol` follows on a later pass.
    public func stopListening() throws {
        try check(reactor_udp_stop_listening(try handle("DatagramPort.stopListening")), "DatagramPort.stopListening")
    }
    public var host: Address {
        get throws { let u = try handle("DatagramPort.host"); return try Address.read("DatagramPort.host") { reactor_udp_get_host(u, $0) } }
    }
    public func setBroadcastAllowed(_ on: Bool) throws {
        try check(reactor_udp_set_broadcast_allowed(try handle("setBroadcastAllowed"), on ? 1 : 0), "setBroadcastAllowed")
    }
    public var broadcastAllowed: Bool {
        get throws {
            var v: Int32 = 0
            try check(reactor_udp_get_broadcast_allowed(try handle("broadcastAllowed"), &v), "broadcastAllowed")
            return v != 0
        }
    }
    public func joinGroup(_ group: String, interface: String? = nil) throws {
        let u = try handle("joinGroup")
        try check(interface.map { reactor_udp_join_group(u, group, $0) } ?? reactor_udp_join_group(u, group, nil), "joinGroup")
    }
    public func leaveGroup(_ group: String, interface: String? = nil) throws {
        let u = try handle("leaveGroup")
        try check(interface.map { reactor_udp_leave_group(u, group, $0) } ?? reactor_udp_leave_group(u, group, nil), "leaveGroup")
    }
    public func setTTL(_ ttl: Int32) throws { try check(reactor_udp_set_ttl(try handle("setTTL"), ttl), "setTTL") }
    public var ttl: Int32 {
        get throws {
            var v: Int32 = 0
            try check(reactor_udp_get_ttl(try handle("ttl"), &v), "ttl")
            return v
        }
    }
    public func setLoopbackMode(_ on: Bool) throws {
        try check(reactor_udp_set_loopback_mode(try handle("setLoopbackMode"), on ? 1 : 0), "setLoopbackMode")
    }
    public var loopbackMode: Bool {
        get throws {
            var v: Int32 = 0
            try check(reactor_udp_get_loopback_mode(try handle("loopbackMode"), &v), "loopbackMode")
            return v != 0
        }
    }
    public var fileno: Int32 { u.map { reactor_udp_fileno($0) } ?? -1 }
}

final class DatagramBox: Box {
    let proto: DatagramProtocol
    var port: DatagramPort?
    init(_ proto: DatagramProtocol) { self.proto = proto }
    func port(_ u: OpaquePointer?) -> DatagramPort {
        if let p = port, p.u == u { return p }
        let p = DatagramPort(u!)
        port = p
        return p
    }
}

func makeDatagramProtocolStruct() -> reactor_datagram_protocol_t {
    var p = reactor_datagram_protocol_t()
    reactor_datagram_protocol_init(&p)
    p.start_protocol = { u, ud in
        let box = DatagramBox.from(ud)
        box.proto.startProtocol(box.port(u))
    }
    p.datagram_received = { u, data, len, from, ud in
        let box = DatagramBox.from(ud)
        let bytes = len == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: len))
        box.proto.datagramReceived(box.port(u), bytes,
                                   from: from.map { Address($0.pointee) } ?? Address(family: .inet, host: "", port: 0))
    }
    p.connection_refused = { u, ud in
        let box = DatagramBox.from(ud)
        box.proto.connectionRefused(box.port(u))
    }
    p.stop_protocol = { u, ud in
        let box = DatagramBox.from(ud)
        let port = box.port(u)
        box.proto.stopProtocol(port)
        port.invalidate()
        box.port = nil
    }
    return p
}

extension Reactor {
    public struct DatagramOptions: Sendable {
        /// Longer datagrams are truncated (default 8192).
        public var maxPacketSize: Int?
        /// Several sockets on one port (Twisted's listenMultiple).
        public var listenMultiple = false
        public var ipv6Only = false
        /// UNIX datagram socket file permissions (default 0666).
        public var mode: UInt32?
        /// connectUNIXDatagram: the local path to bind (nil: unnamed).
        public var bindPath: String?
        public init(maxPacketSize: Int? = nil, listenMultiple: Bool = false, ipv6Only: Bool = false,
                    mode: UInt32? = nil, bindPath: String? = nil) {
            self.maxPacketSize = maxPacketSize
            self.listenMultiple = listenMultiple
            self.ipv6Only = ipv6Only
            self.mode = mode
            self.bindPath = bindPath
        }
        func withC<R>(_ body: (UnsafePointer<reactor_udp_options_t>) -> R) -> R {
            var o = reactor_udp_options_t()
            reactor_udp_options_init(&o)
            if let maxPacketSize { o.max_packet_size = maxPacketSize }
            if listenMultiple { o.flags |= UInt32(REACTOR_UDP_LISTEN_MULTIPLE) }
            if ipv6Only { o.flags |= UInt32(REACTOR_LISTEN_IPV6_ONLY) }
            if let mode { o.mode = mode }
            guard let bindPath else { return body(&o) }
            return bindPath.withCString { p in
                o.bind_path = p
                return body(&o)
            }
        }
    }

    private func datagramPort(_ op: String, _ proto: DatagramProtocol,
                              _ call: (UnsafePointer<reactor_datagram_protocol_t>, UnsafeMutableRawPointer,
                                       UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws -> DatagramPort {
        var p = makeDatagramProtocolStruct()
        var out: OpaquePointer?
        let box = DatagramBox(proto)
        try box.register(op) { call(&p, $0, &out) }
        // The box's port object is the one handed to the protocol's callbacks too.
        return box.port(out)
    }

    /// Listens for UDP datagrams on `port` (0: a free one) of `interface` (nil: all IPv4 addresses).
    @discardableResult
    public func listenUDP(port: UInt16, interface: String? = nil, options: DatagramOptions = DatagramOptions(),
                          _ proto: DatagramProtocol) throws -> DatagramPort {
        let h = try enter(); defer { leave() }
        return try datagramPort("listenUDP", proto) { p, ud, out in
            options.withC { reactor_listen_udp(h, port, interface, $0, p, ud, releaseBox, out) }
        }
    }

    /// A UNIX datagram socket bound to `path`.
    @discardableResult
    public func listenUNIXDatagram(path: String, options: DatagramOptions = DatagramOptions(),
                                   _ proto: DatagramProtocol) throws -> DatagramPort {
        let h = try enter(); defer { leave() }
        return try datagramPort("listenUNIXDatagram", proto) { p, ud, out in
            options.withC { reactor_listen_unix_datagram(h, path, $0, p, ud, releaseBox, out) }
        }
    }

    /// A UNIX datagram socket connected to `path` (errors are thrown here, not reported later).
    @discardableResult
    public func connectUNIXDatagram(path: String, options: DatagramOptions = DatagramOptions(),
                                    _ proto: DatagramProtocol) throws -> DatagramPort {
        let h = try enter(); defer { leave() }
        return try datagramPort("connectUNIXDatagram", proto) { p, ud, out in
            options.withC { reactor_connect_unix_datagram(h, path, $0, p, ud, releaseBox, out) }
        }
    }
}
