import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A second "machine": a network namespace joined to this one by a veth pair. Its `silo mount`
/// processes run there (`nsenter --net`), so they reach the server only over that link, which a test
/// can cut; their mounts are in this machine's mount namespace, where the test's programs use them.
final class Machine {
    let name: String
    /// The address the server has on this machine's link.
    let serverAddress: String
    let silo: SiloBinary
    private let hostSide: String

    init(_ index: Int, directory: TemporaryDirectory, serverPort: Int, token: String) throws {
        name = "silo-m\(getpid() % 10000)-\(index)"
        hostSide = "sh\(getpid() % 10000)-\(index)"
        let subnet = "10.\(200 + index).\(getpid() % 250).0"
        let prefix = subnet.split(separator: ".").prefix(3).joined(separator: ".")
        serverAddress = "\(prefix).1"
        for command in [
            ["netns", "add", name],
            ["link", "add", hostSide, "type", "veth", "peer", "name", "eth-silo", "netns", name],
            ["addr", "add", "\(prefix).1/24", "dev", hostSide],
            ["link", "set", hostSide, "up"],
            ["-n", name, "addr", "add", "\(prefix).2/24", "dev", "eth-silo"],
            ["-n", name, "link", "set", "eth-silo", "up"],
            ["-n", name, "link", "set", "lo", "up"],
        ] {
            let ran = try runProgram("/usr/sbin/ip", command)
            guard ran.status == 0 else { throw SetupFailed(said: "ip \(command.joined(separator: " ")): \(ran.output)") }
        }
        silo = SiloBinary(
            home: directory.file(name),
            environment: [
                "SILO_SERVER": "http://\(serverAddress):\(serverPort)", "SILO_TOKEN": token, "SILO_ALLOW_INSECURE": "1",
                "SILO_LOCK_LEASE_SECONDS": "6",
            ])
    }

    struct SetupFailed: Error {
        var said: String
    }

    /// Runs `silo` with `arguments` on this machine's network.
    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var environment = ProcessInfo.processInfo.environment.merging(silo.environment) { $1 }
        environment["SILO_HOME"] = silo.home
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=/run/netns/\(name)", "--", SiloBinary.path] + arguments
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Takes the link down (`up` false) or back up.
    func link(up: Bool) throws {
        _ = try runProgram("/usr/sbin/ip", ["link", "set", hostSide, up ? "up" : "down"])
    }

    func remove() {
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", name])
    }
}

/// Shared volumes across two "machines" (network namespaces) talking to one `silo serve`, each with
/// its own SILO_HOME and content cache.
@Suite(.timeLimit(.minutes(10)), .ownThread, .serialized) struct TwoMachineTests {
    /// Runs `body` with two machines, each mounting one new shared volume (at the paths given, in
    /// the same order) through one server.
    func withTwoMachines(_ label: String, _ body: ([Machine], [String]) throws -> Void) async throws {
        let directory = try TemporaryDirectory(label)
        chmod(directory.path, 0o755)
        defer { directory.remove() }
        let server = try await SiloServerProcess.launch(dataDirectory: directory.file("server"), arguments: ["--listen", "0.0.0.0:0"])
        defer { _ = server.stop() }
        let port = try #require(Int(server.url.split(separator: ":").last ?? ""))
        let machines = try (1...2).map { try Machine($0, directory: directory, serverPort: port, token: server.adminToken) }
        defer { for machine in machines { machine.remove() } }
        let points = [directory.file("m1"), directory.file("m2")]
        for point in points { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try machines[0].run(["nfs", "create", "shared"]).status == 0)
        for (machine, point) in zip(machines, points) {
            let mounted = try machine.run(["mount", "shared", point])
            #expect(mounted.status == 0, "\(mounted.stderr)")
        }
        defer { for (machine, point) in zip(machines, points) { _ = try? machine.run(["umount", point]) } }
        try body(machines, points)
    }

    /// The issue's count: a counter incremented 1,000 times in all by four processes, two on each
    /// machine, under `flock`, under `fcntl` and under PyPI's filelock, ends at exactly 1,000.
    @Test func aThousandIncrementsUnderLocksOnTwoMachinesLoseNothing() async throws {
        try await withTwoMachines("silo-machines-count") { machines, points in
            for kind in ["flock", "fcntl", "filelock"] {
                try "0".write(toFile: points[0] + "/counter", atomically: false, encoding: .utf8)
                let counted = try SharedLockTests().count(with: kind, through: points, each: 250)
                #expect(counted == "1000", "under \(kind); the mounts' logs: \(SharedLockTests.mountLogs(in: machines.map { $0.silo.home + "/logs" }))")
            }
        }
    }

    @Test func closesLocksAndLeasesHoldAcrossMachines() async throws {
        try await withTwoMachines("silo-machines") { machines, points in
            // A write closed on one machine is read by the next open on the other.
            try "from machine 1".write(toFile: points[0] + "/note", atomically: false, encoding: .utf8)
            #expect(try String(contentsOfFile: points[1] + "/note", encoding: .utf8) == "from machine 1")

            // diskcache (SQLite under its own fcntl locks, rollback journal, no mmap): four processes,
            // two on each machine, at once.
            #expect(try SharedLockTests.fillDiskcache(through: points, each: 10, logs: machines.map { $0.silo.home + "/logs" }) == "40 40 ok\n")

            // A holder on machine 1 writes under its lock; then it is cut off: its lock goes when its lease
            // (6 s) runs out, and a waiter on machine 2 takes it and writes. Back on the network, the first
            // holder's late write (it still believes it holds the lock) is refused, and nothing of it lands.
            let holder = try SharedLockTests.LockHolder(points[0] + "/job.lock")
            defer { holder.stop() }
            #expect(holder.said == "held\n")
            #expect(holder.write("machine 1, under its lock") == "written\n")
            #expect(try String(contentsOfFile: points[1] + "/job.lock", encoding: .utf8) == "machine 1, under its lock")
            try machines[0].link(up: false)
            let waited = try SharedLockTests.waitForLock(points[1] + "/job.lock", writing: "machine 2, the next holder")
            #expect(waited.output == "taken\n", "\(waited.output)")
            try machines[0].link(up: true)
            #expect(holder.write("machine 1, late") == "refused \(EIO)\n")
            for point in points {
                let content = try String(contentsOfFile: point + "/job.lock", encoding: .utf8)
                #expect(content == "machine 2, the next holder", "\(point): \(content)")
            }
        }
    }
}
