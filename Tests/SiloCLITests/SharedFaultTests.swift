import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A shared volume loses nothing on a server's faults (issue "Shared volumes", nothing lost on
/// faults): a server SIGKILLed while a mount's close commits leaves the old file or the new one whole
/// once it is back, and a server whose disk is full refuses the close with ENOSPC and keeps the volume
/// as it was. Mounts and servers are the real binary; the commit's way to the server goes through a
/// proxy that holds it, or drops its answer, at the moment the test picks.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct SharedFaultTests {
    /// Writes `size` bytes of `seed`'s pattern over `path` and closes it; prints "closed" or the
    /// errno's name the close (or a write) failed with.
    static let writer = """
        import errno, os, sys
        path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        block = bytes((seed * 31 + i) % 251 for i in range(1 << 16))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for _ in range(size // len(block)): os.write(fd, block)
            finally:
                os.close(fd)
            print("closed", flush=True)
        except OSError as error:
            print(errno.errorcode[error.errno], flush=True)
        """

    static func content(size: Int, seed: Int) -> [UInt8] {
        let block = (0..<(1 << 16)).map { UInt8((seed * 31 + $0) % 251) }
        return Array([[UInt8]](repeating: block, count: size / block.count).joined())
    }

    static let size = 4 << 20

    /// A server with a shared volume holding the first version of `/model.bin`, and a mount of it
    /// through `proxy`'s address (made by `makeProxy` from the server's).
    struct Setup {
        let directory: TemporaryDirectory
        let server: SiloServerProcess
        let admin: SiloBinary
        let point: String
        let mount: SiloBinary

        init(_ label: String, serverArguments: [String] = [], dataDirectory: String? = nil, proxy: (String) throws -> String) throws {
            directory = try TemporaryDirectory(label)
            server = try SiloServerProcess(dataDirectory: dataDirectory ?? directory.file("server"), arguments: serverArguments)
            admin = SiloBinary(home: directory.file("admin")).using(server)
            #expect(try admin.run(["nfs", "create", "models"]).status == 0)
            let first = try directory.write("first.bin", SharedFaultTests.content(size: SharedFaultTests.size, seed: 1))
            #expect(try admin.run(["nfs", "put", "models", first, "/model.bin"]).status == 0)
            point = directory.file("point")
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
            mount = SiloBinary(home: directory.file("mount"), environment: ["SILO_SERVER": try proxy(server.url), "SILO_TOKEN": server.adminToken])
            let mounted = try mount.run(["mount", "models", point])
            #expect(mounted.status == 0, "\(mounted.stderr)")
        }

        /// The writer of the second version, started.
        func startWriting() throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", SharedFaultTests.writer, point + "/model.bin", "\(SharedFaultTests.size)", "2"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            return (process, output)
        }

        /// What the volume holds at `/model.bin`, read through the server (started again if it is down).
        func committed() throws -> [UInt8] {
            if server.processIdentifier == 0 { try server.start() }
            let fresh = SiloBinary(home: directory.file("reader")).using(server)
            let got = try fresh.run(["volume", "get", "models", "/model.bin", "-"])
            #expect(got.status == 0, "\(got.stderr)")
            return got.stdoutBytes
        }

        /// Expects the volume to hold the version written from `seed`, whole.
        func expectHolds(seed: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let kept = try committed()
            let whole = kept == SharedFaultTests.content(size: SharedFaultTests.size, seed: seed)
            #expect(whole, "\(kept.count) bytes, beginning \(Array(kept.prefix(4))), not version \(seed)", sourceLocation: sourceLocation)
        }

        func tearDown() {
            _ = try? mount.run(["umount", point])
            _ = server.stop()
            directory.remove()
        }
    }

    /// The mount's commit is held on its way, the server is killed, then the commit goes on to find
    /// it gone: the close fails, and the server, back, holds the first version whole.
    @Test func aServerKilledBeforeACloseCommitsKeepsTheOldFileWhole() throws {
        var holding: HoldingProxy?
        let setup = try Setup("silo-nfs-killed-before") { upstream in
            holding = try HoldingProxy(upstream: upstream, holdRequestTo: "/commits")
            return holding!.url
        }
        defer { holding?.close(); setup.tearDown() }
        let proxy = try #require(holding)
        let (writer, output) = try setup.startWriting()
        #expect(proxy.waitUntilHolding(seconds: 120), "the close never sent its commit")
        #expect(setup.server.stop(signal: SIGKILL) != 0)
        proxy.release()
        writer.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said == "EIO\n", "the close said \(said)")
        try setup.expectHolds(seed: 1)
    }

    /// The commit reaches the server and lands, its answer is lost, and the server is killed: the
    /// server, back, holds the second version whole (the commit was the server's before it died).
    @Test func aServerKilledAfterACloseCommitsKeepsTheNewFileWhole() throws {
        var dropping: DroppingProxy?
        let setup = try Setup("silo-nfs-killed-after") { upstream in
            dropping = try DroppingProxy(upstream: upstream, dropAnswerTo: "/commits")
            return dropping!.url
        }
        defer { dropping?.close(); setup.tearDown() }
        let proxy = try #require(dropping)
        let (writer, output) = try setup.startWriting()
        #expect(proxy.waitUntilAnswered(seconds: 120), "the close's commit was never answered")
        #expect(setup.server.stop(signal: SIGKILL) != 0)
        writer.waitUntilExit()
        _ = output.fileHandleForReading.readDataToEndOfFile()
        #expect(proxy.dropped == 1)
        try setup.expectHolds(seed: 2)
    }

    /// The server's disk is full (a small tmpfs holds its data): the close that cannot be kept gets
    /// ENOSPC, and the volume keeps its first version whole.
    @Test func aFullServerDiskGivesTheCloseENOSPCAndKeepsTheVolume() throws {
        let disk = try TemporaryDirectory("silo-nfs-full-disk")
        defer { disk.remove() }
        let mounted = try runProgram("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=12m,mode=0700", "tmpfs", disk.path])
        try #require(mounted.status == 0, "\(mounted.output)")
        defer { _ = try? runProgram("/usr/bin/umount", ["--lazy", disk.path]) }
        let setup = try Setup("silo-nfs-full", dataDirectory: disk.file("server")) { $0 }
        defer { setup.tearDown() }
        // The first version takes 4 MiB of the 12; a second of 12 MiB cannot be kept beside it.
        let written = try runPython(Self.writer, [setup.point + "/model.bin", "\(3 * Self.size)", "3"])
        #expect(written.output == "ENOSPC\n", "the close said \(written.output)")
        try setup.expectHolds(seed: 1)
    }
}
