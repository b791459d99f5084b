import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

/// Echoes everything back; half-close aware servers answer the peer's FIN with their own.
final class Echo: StreamProtocol {
    var made = 0
    var readLost = 0
    var lostReason: ReactorError?? = .none
    let halfClose: Bool
    init(halfClose: Bool = false) { self.halfClose = halfClose }
    var isHalfCloseAware: Bool { halfClose }
    var onMade: (() -> Void)?
    func connectionMade(_ t: Transport) { made += 1; onMade?() }
    func dataReceived(_ t: Transport, _ data: [UInt8]) { try! t.write(data) }
    func readConnectionLost(_ t: Transport) {
        readLost += 1
        try! t.write("!")   // still writable after the peer's FIN
        try! t.loseConnection()
    }
    func connectionLost(_ t: Transport, reason: ReactorError?) { lostReason = .some(reason) }
}

/// Sends a message, collects the reply until `expect` bytes came, then closes.
final class Client: StreamProtocol {
    let message: [UInt8]
    let expect: Int
    var received: [UInt8] = []
    var events: [String] = []
    var lostReason: ReactorError?? = .none
    var failed: ReactorError?
    var onLost: (() -> Void)?
    var hostAddr: Address?
    var peerAddr: Address?
    init(_ message: String, expect: Int? = nil) {
        self.message = Array(message.utf8)
        self.expect = expect ?? message.utf8.count
    }
    func connectionMade(_ t: Transport) {
        events.append("made")
        hostAddr = try? t.host
        peerAddr = try? t.peer
        // Three ways in: a Data, an [UInt8] slice through writeSequence, a String.
        let half = message.count / 2
        try! t.write(Data(message[0..<half]))
        try! t.writeSequence([Array(message[half..<(half + (message.count - half) / 2)])])
        try! t.write(String(decoding: message[(half + (message.count - half) / 2)...], as: UTF8.self))
    }
    func dataReceived(_ t: Transport, _ data: [UInt8]) {
        received += data
        if received.count >= expect { try! t.loseConnection() }
    }
    func connectionLost(_ t: Transport, reason: ReactorError?) {
        events.append("lost")
        lostReason = .some(reason)
        onLost?()
    }
    func connectionFailed(_ c: Connector?, reason: ReactorError) {
        events.append("failed")
        failed = reason
        onLost?()
    }
}

final class NetworkTests: ReactorTestCase {
    func echo(_ r: Reactor, listen: (@escaping (Address) -> StreamProtocol?) throws -> ListeningPort,
              connect: (ListeningPort, Client) throws -> Connector) throws -> (Client, Echo, Address) {
        try watchdog(r)
        let server = Echo()
        var peers: [Address] = []
        let port = try listen { peer in peers.append(peer); return server }
        let client = Client("hello, reactor")
        client.onLost = {
            try! port.stopListening()
            do { try port.stopListening(); XCTFail("second stopListening") } catch {}   // the handle is gone
            _ = try? r.callLater(0.01) { try r.stop() }
        }
        let addr = try port.host
        let connector = try connect(port, client)
        XCTAssertNotEqual(try connector.state, .disconnected)
        try r.run()
        XCTAssertEqual(peers.count, 1)
        XCTAssertEqual(String(decoding: client.received, as: UTF8.self), "hello, reactor")
        XCTAssertEqual(client.events, ["made", "lost"])
        XCTAssertEqual(client.lostReason, .some(nil), "clean close")
        XCTAssertEqual(server.made, 1)
        if case .none = server.lostReason { XCTFail("server connectionLost did not run") }
        return (client, server, addr)
    }

    func testEchoTCP() throws {
        let r = try makeReactor()
        let (client, _, addr) = try echo(r, listen: { try r.listenTCP(port: 0, interface: "127.0.0.1", $0) },
                                         connect: { port, client in
            try r.connectTCP(host: "127.0.0.1", port: try port.host.port, client)
        })
        XCTAssertEqual(addr.family, .inet)
        XCTAssertNotEqual(addr.port, 0)
        XCTAssertEqual(client.peerAddr, addr)
        XCTAssertEqual(client.hostAddr?.host, "127.0.0.1")
        XCTAssertEqual(client.peerAddr?.description, "127.0.0.1:\(addr.port)")
    }

    func testEchoUNIX() throws {
        let r = try makeReactor()
        let path = "/tmp/libreactor-swift-\(getpid()).sock"
        unlink(path)
        let (client, _, addr) = try echo(r, listen: { try r.listenUNIX(path: path, $0) },
                                         connect: { _, client in try r.connectUNIX(path: path, client) })
        XCTAssertEqual(addr.family, .unix)
        XCTAssertEqual(addr.host, path)
        XCTAssertEqual(client.peerAddr?.description, path)
        XCTAssertNotEqual(access(path, F_OK), 0, "the path is unlinked when the port stops")
    }

    func testConnectionRefusedAndReconnect() throws {
        let r = try makeReactor()
        try watchdog(r)
        // A port that was free a moment ago: nothing listens there.
        let probe = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in nil }
        let port = try probe.host.port
        try probe.stopListening()
        final class Retry: StreamProtocol {
            var failures: [ReactorError] = []
            var connector: Connector?
            let r: Reactor
            init(_ r: Reactor) { self.r = r }
            func connectionFailed(_ c: Connector?, reason: ReactorError) {
                failures.append(reason)
                XCTAssertEqual(try c?.state, .disconnected)
                if failures.count == 1 { try! c!.connect() } else { connector = nil; try! r.stop() }
            }
        }
        let proto = Retry(r)
        proto.connector = try r.connectTCP(host: "127.0.0.1", port: port, proto)
        try r.run()
        XCTAssertEqual(proto.failures, [.connectionRefused, .connectionRefused])
        // A connector handle dropped at once: the attempt goes on and still reports its failure.
        let r2 = try makeReactor()
        let dropped = Client("x")
        try r2.connectTCP(host: "127.0.0.1", port: port, dropped)
        for _ in 0..<10 where dropped.failed == nil { try r2.iterate(timeout: 0.5) }
        XCTAssertEqual(dropped.failed, .connectionRefused)
    }

    func testStopConnectingAndErrors() throws {
        let r = try makeReactor()
        try watchdog(r)
        let client = Client("x")
        client.onLost = { try! r.stop() }
        // A non-routable-by-design address would leave the machine; a UNIX path that does not exist fails
        // synchronously inside the attempt, so use TCP to a listening port whose backlog we never accept:
        let c = try r.connectUNIX(path: "/nonexistent/libreactor.sock", client)
        try r.run()
        XCTAssertEqual(client.failed, .os(ENOENT))
        XCTAssertEqual(try c.state, .disconnected)
        XCTAssertEqual(try c.destination.host, "/nonexistent/libreactor.sock")
        assertThrows(.alreadyCalled) { try c.stopConnecting() }
        // stopConnecting while the attempt is in progress: connectionFailed(.cancelled) on a later pass.
        let listening = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in nil }
        let r2 = try makeReactor()
        let stopped = Client("x")
        let c2 = try r2.connectTCP(host: "127.0.0.1", port: try listening.host.port, stopped)
        try c2.stopConnecting()
        XCTAssertNil(stopped.failed, "never inside the call")
        assertThrows(.alreadyCalled) { try c2.stopConnecting() }
        assertThrows(.busy) { try c2.connect() }
        for _ in 0..<10 where stopped.failed == nil { try r2.iterate(timeout: 0.1) }
        XCTAssertEqual(stopped.failed, .cancelled)
        XCTAssertEqual(stopped.events, ["failed"])
        assertThrows(.invalidAddress) { try r.listenTCP(port: 0, interface: "not-an-ip") { _ in nil } }
        assertThrows(.invalidAddress) { try r.connectTCP(host: "127.0.0.1", port: 0, Client("")) }
    }

    func testAddressInUse() throws {
        let r = try makeReactor()
        let p = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in nil }
        assertThrows(.addressInUse) { try r.listenTCP(port: try p.host.port, interface: "127.0.0.1") { _ in nil } }
        try p.pauseAccepting()
        try p.resumeAccepting()
        XCTAssertGreaterThanOrEqual(p.fileno, 0)
    }

    func testHalfClose() throws {
        let r = try makeReactor()
        try watchdog(r)
        let server = Echo(halfClose: true)
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in server }
        final class HalfCloser: StreamProtocol {
            var log: [String] = []
            var received: [UInt8] = []
            let r: Reactor
            init(_ r: Reactor) { self.r = r }
            var isHalfCloseAware: Bool { true }
            func connectionMade(_ t: Transport) {
                try! t.write("abc")
                try! t.loseWriteConnection()
                XCTAssertThrowsError(try t.write("late")) { XCTAssertEqual($0 as? ReactorError, .closed) }
            }
            func dataReceived(_ t: Transport, _ data: [UInt8]) { received += data }
            func writeConnectionLost(_ t: Transport) { log.append("writeLost") }
            func readConnectionLost(_ t: Transport) { log.append("readLost") }
            func connectionLost(_ t: Transport, reason: ReactorError?) {
                log.append("lost \(reason.map { "\($0.code)" } ?? "clean")")
                try! r.stop()
            }
        }
        let client = HalfCloser(r)
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, client)
        try r.run()
        XCTAssertEqual(String(decoding: client.received, as: UTF8.self), "abc!")
        XCTAssertEqual(server.readLost, 1)
        // The client's write side closed first; the server's FIN then still calls
        // readConnectionLost before connectionLost (API.md §6.7).
        XCTAssertEqual(client.log, ["writeLost", "readLost", "lost clean"])
    }

    func testAbortConnectionAndDeadTransport() throws {
        let r = try makeReactor()
        try watchdog(r)
        let server = Echo()
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in server }
        final class Aborter: StreamProtocol {
            var reason: ReactorError?
            var transport: Transport?
            let r: Reactor
            init(_ r: Reactor) { self.r = r }
            func connectionMade(_ t: Transport) {
                transport = t
                try! t.setTCPNoDelay(true)
                XCTAssertTrue(try! t.tcpNoDelay)
                try! t.setTCPKeepAlive(true)
                XCTAssertTrue(try! t.tcpKeepAlive)
                XCTAssertGreaterThanOrEqual(t.fileno, 0)
                try! t.write("data that is thrown away")
                try! t.abortConnection()
                try! t.abortConnection()   // idempotent
            }
            func connectionLost(_ t: Transport, reason: ReactorError?) {
                self.reason = reason
                _ = try? r.callLater(0.05) { try self.r.stop() }
            }
        }
        let client = Aborter(r)
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, client)
        try r.run()
        XCTAssertEqual(client.reason, .connectionAborted)
        XCTAssertFalse(client.transport!.isAlive)
        assertThrows(.invalid) { try client.transport!.write("x") }
        XCTAssertEqual(client.transport!.fileno, -1)
    }

    func testPullProducerAndPauseReading() throws {
        let r = try makeReactor()
        try watchdog(r)
        final class Counter: StreamProtocol {
            var bytes = 0
            var paused = false
            let total: Int
            let r: Reactor
            init(_ r: Reactor, total: Int) { self.r = r; self.total = total }
            func connectionMade(_ t: Transport) {
                // Pause reading for 20 ms; data waits in the socket.
                try! t.pauseReading()
                paused = true
                _ = try? r.callLater(0.02) { self.paused = false; try t.resumeReading() }
            }
            func dataReceived(_ t: Transport, _ data: [UInt8]) {
                XCTAssertFalse(paused)
                bytes += data.count
            }
            func connectionLost(_ t: Transport, reason: ReactorError?) {
                XCTAssertNil(reason)
                try! r.stop()
            }
        }
        final class Pump: Producer, StreamProtocol {
            var chunks = 0
            var transport: Transport?
            var resumed = 0
            func connectionMade(_ t: Transport) {
                transport = t
                try! t.setWriteBufferLimits(high: 1 << 16, low: 0)
                try! t.registerProducer(self, streaming: false)
                XCTAssertThrowsError(try t.registerProducer(self, streaming: false)) {
                    XCTAssertEqual($0 as? ReactorError, .busy)
                }
            }
            func resumeProducing() {
                resumed += 1
                guard let t = transport else { return }
                if chunks == 64 {
                    try! t.unregisterProducer()
                    try! t.loseConnection()
                    return
                }
                chunks += 1
                try! t.write([UInt8](repeating: 7, count: 16 * 1024))
            }
        }
        let server = Counter(r, total: 64 * 16 * 1024)
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in server }
        let pump = Pump()
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, pump)
        try r.run()
        XCTAssertEqual(server.bytes, 64 * 16 * 1024)
        XCTAssertGreaterThanOrEqual(pump.resumed, 64)
    }

    func testStreamingProducerPaused() throws {
        let r = try makeReactor()
        try watchdog(r)
        final class Sink: StreamProtocol {
            var transport: Transport?
            func connectionMade(_ t: Transport) { transport = t; try! t.pauseReading() }
        }
        final class Push: Producer, StreamProtocol {
            var log: [String] = []
            let r: Reactor
            init(_ r: Reactor) { self.r = r }
            func connectionMade(_ t: Transport) {
                try! t.setWriteBufferLimits(high: 1024, low: 0)
                try! t.registerProducer(self, streaming: true)
                // Write until paused (pause_producing runs inside the write that crosses `high`).
                var n = 0
                while !log.contains("pause") && n < 100_000 {
                    try! t.write([UInt8](repeating: 1, count: 65536))
                    n += 1
                }
                XCTAssertGreaterThan(try! t.writeBufferSize, 1024)
                try! t.abortConnection()
            }
            func pauseProducing() { log.append("pause") }
            func stopProducing() { log.append("stop") }
            func connectionLost(_ t: Transport, reason: ReactorError?) {
                log.append("lost")
                try! r.stop()
            }
        }
        let sink = Sink()
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in sink }
        let push = Push(r)
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, push)
        try r.run()
        XCTAssertEqual(push.log, ["pause", "stop", "lost"])
    }

    func testShutdownHeldUntilConnectionsDrain() throws {
        // A BEFORE-shutdown trigger holds shutdown until the open connection closed cleanly.
        let r = try makeReactor()
        try watchdog(r)
        let server = Echo()
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in server }
        final class Holder: StreamProtocol {
            var transport: Transport?
            var onLost: (() -> Void)?
            var reason: ReactorError?? = .none
            var onMade: (() -> Void)?
            func connectionMade(_ t: Transport) { transport = t; onMade?() }
            func connectionLost(_ t: Transport, reason: ReactorError?) { self.reason = .some(reason); onLost?() }
        }
        let client = Holder()
        var log: [String] = []
        try r.addBeforeTrigger(holding: "shutdown") { completion in
            log.append("draining")
            client.onLost = { log.append("drained"); try! completion.complete() }
            try! client.transport!.write("bye")
            try! client.transport!.loseConnection()
        }
        try r.addSystemEventTrigger(.during, "shutdown") { log.append("during-shutdown") }
        client.onMade = { try! r.stop() }   // shut down while the connection is open
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, client)
        try r.run()
        XCTAssertEqual(log, ["draining", "drained", "during-shutdown"])
        XCTAssertEqual(client.reason, .some(nil), "closed cleanly before shutdown")
    }

    func testRefusedByFactoryAndLostAtShutdown() throws {
        let r = try makeReactor()
        try watchdog(r)
        var n = 0
        let server = Echo()
        let port = try r.listenTCP(port: 0, interface: "127.0.0.1") { _ in
            n += 1
            return n == 1 ? nil : server   // refuse the first connection
        }
        let first = Client("a")
        first.onLost = {
            // The second connection stays open until shutdown ends it.
            let second = Client("b", expect: 1_000_000)
            second.onLost = {}
            try! r.connectTCP(host: "127.0.0.1", port: try! port.host.port, second)
            server.onMade = { try! r.stop() }   // shut down once the server has it
        }
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, first)
        try r.run()
        XCTAssertEqual(first.events, ["made", "lost"])
        XCTAssertEqual(server.made, 1)
        XCTAssertEqual(server.lostReason, .some(.connectionLost), "shutdown ends open connections")
    }

    func testFileDescriptorPassingAndConnectorDisconnect() throws {
        let r = try makeReactor()
        try watchdog(r)
        let path = "/tmp/libreactor-swift-fd-\(getpid()).sock"
        unlink(path)
        final class Receiver: StreamProtocol {
            var fds: [Int32] = []
            var text: [UInt8] = []
            var onData: (() -> Void)?
            func fileDescriptorReceived(_ t: Transport, _ fd: Int32) { fds.append(fd) }
            func dataReceived(_ t: Transport, _ data: [UInt8]) { text += data; onData?() }
        }
        final class Sender: StreamProtocol {
            let fd: Int32
            var lost: ReactorError?? = .none
            init(_ fd: Int32) { self.fd = fd }
            func connectionMade(_ t: Transport) {
                try! t.sendFileDescriptor(fd)
                "x".utf8.withContiguousStorageIfAvailable { try! t.write(UnsafeRawBufferPointer($0)) }
            }
            var onLost: (() -> Void)?
            func connectionLost(_ t: Transport, reason: ReactorError?) { lost = .some(reason); onLost?() }
        }
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let receiver = Receiver()
        try r.listenUNIX(path: path) { _ in receiver }
        let sender = Sender(fds[1])
        let connector = try r.connectUNIX(path: path, sender)
        receiver.onData = {
            XCTAssertEqual(try? connector.state, .connected)
            try! connector.disconnect()     // loses the connection
        }
        sender.onLost = { try! r.stop() }
        try r.run()
        XCTAssertEqual(receiver.text, Array("x".utf8))
        XCTAssertEqual(receiver.fds.count, 1)
        // The received fd is a duplicate of the pipe's write end: writing to it reaches fds[0].
        if let fd = receiver.fds.first {
            XCTAssertEqual(write(fd, "!", 1), 1)
            var b: UInt8 = 0
            XCTAssertEqual(read(fds[0], &b, 1), 1)
            XCTAssertEqual(b, UInt8(ascii: "!"))
            close(fd)
        }
        if case .none = sender.lost { XCTFail("disconnect did not end the connection") }
        XCTAssertEqual(try connector.state, .disconnected)
        try connector.disconnect()   // disconnected: no effect
    }

    func testIPv6AndUDPOptions() throws {
        let r = try makeReactor()
        guard let port = try? r.listenTCP(port: 0, interface: "::1", { _ in nil }) else {
            throw XCTSkip("no IPv6 loopback here")
        }
        XCTAssertEqual(try port.host.family, .inet6)
        XCTAssertEqual(try port.host.description, "[::1]:\(try port.host.port)")
        final class Quiet: DatagramProtocol {}
        let u = try r.listenUDP(port: 0, interface: "127.0.0.1", Quiet())
        try u.setBroadcastAllowed(true)
        XCTAssertTrue(try u.broadcastAllowed)
        try u.setLoopbackMode(false)
        XCTAssertFalse(try u.loopbackMode)
        assertThrows(.invalidAddress) { try u.joinGroup("not-a-group") }
        try u.stopListening()
        try u.stopListening()   // between stop and stopProtocol: OK
    }

    func testResolve() throws {
        let r = try makeReactor()
        try watchdog(r)
        var results: [String: Result<[Address], ReactorError>] = [:]
        try r.callWhenRunning {
            try r.resolve("127.0.0.1", port: 80) { results["literal"] = $0 }
            try r.resolve("localhost", port: 80, family: .inet) { res in
                results["name"] = res
                // A literal of another family than the one asked for: DNS error (no lookup is made).
                try! r.resolve("127.0.0.1", port: 1, family: .inet6) { results["bad"] = $0; try! r.stop() }
            }
        }
        try r.run()
        XCTAssertEqual(try results["literal"]?.get(), [Address(family: .inet, host: "127.0.0.1", port: 80)])
        XCTAssertEqual(try results["name"]?.get().first?.host, "127.0.0.1")
        if case .failure(let e)? = results["bad"] { XCTAssertEqual(e, .dns) } else { XCTFail("\(String(describing: results["bad"]))") }
        assertThrows(.closed) { try r.resolve("127.0.0.1") { _ in } }
    }

    func testAdoptedSocketpairEcho() throws {
        let r = try makeReactor()
        try watchdog(r)
        var sv: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv), 0)
        defer { close(sv[0]); close(sv[1]) }
        let server = Echo()
        let serverTransport = try r.adoptStreamConnection(fd: sv[0], server)
        let client = Client("through an adopted socketpair")
        client.onLost = { try! r.stop() }
        try r.adoptStreamConnection(fd: sv[1], client)
        try r.run()
        XCTAssertEqual(String(decoding: client.received, as: UTF8.self), "through an adopted socketpair")
        XCTAssertEqual(server.made, 1)
        XCTAssertFalse(serverTransport.isAlive)
        assertThrows(.unsupported) { try r.adoptStreamConnection(fd: 0, Echo()) }   // stdin: not a socket
    }

    func testAdoptedListeningPort() throws {
        let r = try makeReactor()
        try watchdog(r)
        // A listening socket made here, by hand.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(fd, 8), 0)
        let server = Echo()
        let port = try r.adoptStreamPort(fd: fd) { _ in server }
        let client = Client("adopted port")
        client.onLost = { try! port.stopListening(); try! r.stop() }
        try r.connectTCP(host: "127.0.0.1", port: try port.host.port, client)
        try r.run()
        XCTAssertEqual(String(decoding: client.received, as: UTF8.self), "adopted port")
    }
}
