import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

final class DatagramTests: ReactorTestCase {
    final class EchoUDP: DatagramProtocol {
        var log: [String] = []
        func startProtocol(_ port: DatagramPort) { log.append("start") }
        func datagramReceived(_ port: DatagramPort, _ data: [UInt8], from: Address) {
            try! port.write(data, to: from.host, port: from.port)
        }
        func stopProtocol(_ port: DatagramPort) { log.append("stop") }
    }

    final class Pinger: DatagramProtocol {
        let r: Reactor
        var replies: [String] = []
        var started = false
        var stopped = false
        init(_ r: Reactor) { self.r = r }
        func startProtocol(_ port: DatagramPort) { started = true }
        func datagramReceived(_ port: DatagramPort, _ data: [UInt8], from: Address) {
            replies.append(String(decoding: data, as: UTF8.self))
            if replies.count == 2 { try! port.stopListening() }
        }
        func stopProtocol(_ port: DatagramPort) {
            stopped = true
            try! r.stop()
        }
    }

    func testUDPEcho() throws {
        let r = try makeReactor()
        try watchdog(r)
        let echo = EchoUDP()
        let server = try r.listenUDP(port: 0, interface: "127.0.0.1", echo)
        let addr = try server.host
        XCTAssertEqual(addr.family, .inet)
        XCTAssertNotEqual(addr.port, 0)
        let pinger = Pinger(r)
        let client = try r.listenUDP(port: 0, interface: "127.0.0.1", pinger)
        try client.write("one", to: "127.0.0.1", port: addr.port)
        try client.connect(host: "127.0.0.1", port: addr.port)
        try client.write(Array("two".utf8))   // connected: no destination
        XCTAssertGreaterThanOrEqual(client.fileno, 0)
        try client.setTTL(5)
        XCTAssertEqual(try client.ttl, 5)
        assertThrows(.invalidAddress) { try client.write("x", to: "not-an-ip", port: 1) }
        try r.run()
        XCTAssertEqual(pinger.replies.sorted(), ["one", "two"])
        XCTAssertTrue(pinger.started && pinger.stopped)
        XCTAssertEqual(echo.log, ["start", "stop"], "shutdown stops the server port")
        assertThrows(.invalid) { try client.write("late", to: "127.0.0.1", port: addr.port) }
    }

    func testUNIXDatagram() throws {
        let r = try makeReactor()
        try watchdog(r)
        let path = "/tmp/libreactor-swift-dgram-\(getpid()).sock"
        unlink(path)
        final class Sink: DatagramProtocol {
            let r: Reactor
            var got: [String] = []
            init(_ r: Reactor) { self.r = r }
            func datagramReceived(_ port: DatagramPort, _ data: [UInt8], from: Address) {
                got.append(String(decoding: data, as: UTF8.self))
                try! r.stop()
            }
        }
        let sink = Sink(r)
        try r.listenUNIXDatagram(path: path, sink)
        final class Quiet: DatagramProtocol {}
        let sender = try r.connectUNIXDatagram(path: path, Quiet())
        try sender.write("over a UNIX datagram socket")
        try r.run()
        XCTAssertEqual(sink.got, ["over a UNIX datagram socket"])
        assertThrows(.os(ENOENT)) { try r.connectUNIXDatagram(path: "/nonexistent/x.sock", Quiet()) }
    }
}
