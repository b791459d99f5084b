import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor

final class ProcessTests: ReactorTestCase {
    final class Collector: ProcessProtocol {
        let r: Reactor
        var out: [Int32: [UInt8]] = [:]
        var lost: [Int32] = []
        var exited: ProcessStatus?
        var ended: ProcessStatus?
        var made = false
        var onMade: ((ChildProcess) -> Void)?
        init(_ r: Reactor) { self.r = r }
        func connectionMade(_ p: ChildProcess) { made = true; onMade?(p) }
        func childDataReceived(_ p: ChildProcess, fd: Int32, _ data: [UInt8]) { out[fd, default: []] += data }
        func childConnectionLost(_ p: ChildProcess, fd: Int32) { lost.append(fd) }
        func processExited(_ p: ChildProcess, status: ProcessStatus) { exited = status }
        func processEnded(_ p: ChildProcess, status: ProcessStatus) { ended = status; try! r.stop() }
        func text(_ fd: Int32) -> String { String(decoding: out[fd] ?? [], as: UTF8.self) }
    }

    func testSpawnPipesAndExitStatus() throws {
        let r = try makeReactor()
        try watchdog(r)
        let c = Collector(r)
        c.onMade = { p in
            XCTAssertGreaterThan(p.pid, 0)
            try! p.write("hello\n")
            try! p.closeChildFD(0)
            do { try p.write("late"); XCTFail("write after close") } catch {
                XCTAssertEqual(error as? ReactorError, .closed)
            }
        }
        let p = try r.spawnProcess("/bin/sh", ["sh", "-c", "read x; echo got:$x; echo \"A=$A\" >&2; exit 3"],
                                   options: SpawnOptions(environment: ["A=1"]), c)
        XCTAssertFalse(c.made, "never inside the call")
        try r.run()
        XCTAssertEqual(c.text(1), "got:hello\n")
        XCTAssertEqual(c.text(2), "A=1\n")
        XCTAssertEqual(Set(c.lost), [0, 1, 2])
        XCTAssertEqual(c.exited?.exitCode, 3)
        XCTAssertEqual(c.ended?.reason?.code, ReactorError(code: -24).code)   // PROCESS_TERMINATED
        XCTAssertEqual(c.ended?.termSignal, 0)
        XCTAssertEqual(p.pid, 0, "dead after processEnded")
        assertThrows(.invalid) { try p.signal(SIGTERM) }
    }

    func testSignalAndCleanExit() throws {
        let r = try makeReactor()
        try watchdog(r)
        let killed = Collector(r)
        killed.onMade = { p in try! p.signal(SIGTERM) }
        try r.spawnProcess("sleep", ["sleep", "10"], options: SpawnOptions(inheritEnvironment: true), killed)
        try r.run()
        XCTAssertEqual(killed.ended?.termSignal, SIGTERM)
        XCTAssertEqual(killed.ended?.exitCode, -1)
        XCTAssertEqual(killed.ended?.description, "killed by signal \(SIGTERM)")

        let r2 = try makeReactor()
        try watchdog(r2)
        let ok = Collector(r2)
        try r2.spawnProcess("/bin/sh", ["sh", "-c", "pwd"],
                            options: SpawnOptions(workingDirectory: "/", childFDs: [.read(1)]), ok)
        try r2.run()
        XCTAssertEqual(ok.text(1), "/\n")
        XCTAssertNil(ok.ended?.reason)
        XCTAssertEqual(ok.ended?.exitCode, 0)
    }

    func testSpawnFailureIsThrown() throws {
        let r = try makeReactor()
        let c = Collector(r)
        assertThrows(.os(ENOENT)) { try r.spawnProcess("/nonexistent/program", ["x"], c) }
        XCTAssertFalse(c.made)
    }
}
