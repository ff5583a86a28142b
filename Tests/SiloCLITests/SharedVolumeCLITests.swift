import Foundation
import SiloCore
import SiloFUSE
import SiloRuntime
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shared volumes through the real binary: `silo nfs`, two mounts of one volume through the kernel
/// (embedded, and two clients of one server, each with its own SILO_HOME and cache), and `--nfs` for
/// runs.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct SharedVolumeCLITests {
    /// What two programs on two mounts see: a write closed in one is read by the next open in the other,
    /// also when written to a temporary name and renamed over; O_EXCL creates have one winner.
    static let writer = """
        import os, sys
        root, step = sys.argv[1], sys.argv[2]
        if step == "write":
            with open(os.path.join(root, "model.txt"), "w") as f: f.write("weights v1")
        elif step == "replace":
            tmp = os.path.join(root, ".model.tmp")
            with open(tmp, "w") as f: f.write("weights v2")
            os.rename(tmp, os.path.join(root, "model.txt"))
        elif step == "read":
            print(open(os.path.join(root, "model.txt")).read())
        elif step == "excl":
            try:
                os.close(os.open(os.path.join(root, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)); print("won")
            except FileExistsError: print("lost")
        """

    func step(_ mountPoint: String, _ step: String) throws -> String {
        let ran = try runPython(Self.writer, [mountPoint, step])
        #expect(ran.status == 0, "\(ran.output)")
        return ran.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func closeToOpen(_ one: String, _ two: String) throws {
        _ = try step(one, "write")
        #expect(try step(two, "read") == "weights v1")
        _ = try step(two, "replace")
        #expect(try step(one, "read") == "weights v2")
        #expect(try step(one, "excl") == "won")
        #expect(try step(two, "excl") == "lost")
    }

    @Test func twoMountsOfASharedVolumeSeeEachOthersCloses() throws {
        let directory = try TemporaryDirectory("silo-nfs")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let (one, two) = (directory.file("one"), directory.file("two"))
        for point in [one, two] { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try silo.run(["nfs", "create", "cache"]).stdout == "created shared volume 'cache'\n")
        #expect(try silo.run(["volume", "create", "plain"]).status == 0)
        let listed = try silo.run(["nfs", "list", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { "\($0["name"]!):\($0["kind"]!)" } == ["cache:shared"])

        #expect(try silo.run(["mount", "cache", one]).status == 0)
        #expect(try silo.run(["mount", "cache", two]).status == 0)
        defer { for point in [one, two] { _ = try? silo.run(["umount", point]) } }
        try closeToOpen(one, two)

        // A shared volume has no commit and no reload; its history holds every change.
        let commit = try silo.run(["volume", "commit", one])
        #expect(commit.status == 2 && commit.stderr.contains("is shared"), "\(commit.stderr)")
        #expect(try silo.run(["volume", "reload", two]).status == 2)
        #expect(try silo.run(["nfs", "ls", "cache", "/"]).stdout.contains("model.txt"))
        let history = try silo.run(["volume", "history", "cache", "--json"])
        let versions = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(versions.count >= 4)
        #expect(try silo.run(["volume", "get", "cache", "/model.txt", "-"]).stdout == "weights v2")
    }

    @Test func twoClientsOfOneServerSeeEachOthersCloses() async throws {
        let directory = try TemporaryDirectory("silo-nfs-server")
        defer { directory.remove() }
        let server = try await SiloServerProcess.launch(dataDirectory: directory.file("server"))
        defer { _ = server.stop() }
        // Two machines' worth of clients: each its own SILO_HOME, so its own content cache.
        let first = SiloBinary(home: directory.file("a")).using(server)
        let second = SiloBinary(home: directory.file("b")).using(server)
        let (one, two) = (directory.file("one"), directory.file("two"))
        for point in [one, two] { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try first.run(["nfs", "create", "cache"]).status == 0)
        #expect(try first.run(["mount", "cache", one]).status == 0)
        defer { _ = try? first.run(["umount", one]) }
        #expect(try second.run(["mount", "cache", two]).status == 0)
        defer { _ = try? second.run(["umount", two]) }
        try closeToOpen(one, two)
    }

    @Test func runsAttachSharedVolumesByName() throws {
        let directory = try TemporaryDirectory("silo-nfs-run")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let cache = "/silo-nfs-cache-\(getpid())"
        let first = try silo.run(["run", "--nfs", "model-cache:\(cache)", "--", "/bin/sh", "-c", "echo cached > \(cache)/model"])
        #expect(first.status == 0, "\(first.stderr)")
        // The volume was made shared, and the write is there without any commit.
        let listed = try silo.run(["nfs", "list"])
        #expect(listed.stdout.contains("model-cache") && listed.stdout.contains("shared"), "\(listed.stdout)")
        let second = try silo.run(["run", "--nfs", "model-cache:\(cache)", "--", "/bin/cat", "\(cache)/model"])
        #expect(second.stdout == "cached\n", "\(second.stderr)")
        // A snapshot volume is not attached as a shared one.
        #expect(try silo.run(["volume", "create", "plain"]).status == 0)
        let refused = try silo.run(["run", "--nfs", "plain:\(cache)", "--", "/bin/true"])
        #expect(refused.status == 2 && refused.stderr.contains("snapshot volume"), "\(refused.stderr)")
        // An ephemeral shared volume goes with its run.
        let ephemeral = try silo.run(["run", "--nfs", ":\(cache)", "--", "/bin/sh", "-c", "echo x > \(cache)/f && cat \(cache)/f"])
        #expect(ephemeral.stdout == "x\n", "\(ephemeral.stderr)")
        #expect(!(try silo.run(["volume", "list"]).stdout.contains("ephemeral-")))
    }

    /// Containers on one machine attaching one shared volume by name share one mount of it (bound into
    /// each): a write not yet closed in one container is read in another, as on one disk, and the
    /// mount goes once the last of them has ended.
    @Test func containersOnOneMachineShareOneMountOfASharedVolume() throws {
        let directory = try TemporaryDirectory("silo-nfs-machine")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let (first, second) = ("/silo-nfs-one-\(getpid())", "/silo-nfs-two-\(getpid())")
        let writer = """
            import os, sys
            fd = os.open(sys.argv[1] + "/open.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"not closed yet")
            print("written", flush=True)
            sys.stdin.readline()
            os.close(fd)
            """
        let running = try silo.startPiped(["run", "--nfs", "scratch:\(first)", "--", "/usr/bin/python3", "-c", writer, first], stderr: directory.file("one.log"))
        let said = running.output.readLine()
        #expect(said == "written\n", "\(said) \(String(decoding: (try? directory.read("one.log")) ?? [], as: UTF8.self))")
        let machineMount = MachineMount.mountPoint(home: directory.file("home"), volume: try VolumeName("scratch"))
        #expect(MountTable.hasSiloMount(at: machineMount))
        let read = try silo.run(["run", "--nfs", "scratch:\(second)", "--", "/bin/cat", "\(second)/open.txt"])
        #expect(read.stdout == "not closed yet", "\(read.stderr)")
        // Commands inside (`silo` is on the command's PATH) find the machine's mount behind the
        // container's path.
        let commit = try silo.run(["run", "--nfs", "scratch:\(second)", "--", "silo", "volume", "commit", second])
        #expect(commit.status == 2 && commit.stderr.contains("is shared"), "\(commit.stderr)")
        running.input.write(Data("go\n".utf8))
        running.process.waitUntilExit()
        #expect(running.process.terminationStatus == 0)
        // The last container gone, the mount process unmounts and ends.
        let deadline = Date(timeIntervalSinceNow: 60)
        while MountTable.hasSiloMount(at: machineMount) && Date() < deadline { usleep(10_000) }
        #expect(!MountTable.hasSiloMount(at: machineMount))
        #expect(try silo.run(["volume", "get", "scratch", "/open.txt", "-"]).stdout == "not closed yet")
    }

    /// Nothing lost on a fault: a shared mount killed (SIGKILL) mid-write loses only what was neither
    /// closed nor fsynced; what was closed, and what an fsync returned for, is in the volume.
    @Test func aKilledMountLosesOnlyWhatWasNeitherClosedNorSynced() throws {
        let directory = try TemporaryDirectory("silo-nfs-killed")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let (one, two) = (directory.file("one"), directory.file("two"))
        for point in [one, two] { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try silo.run(["nfs", "create", "cache"]).status == 0)
        let mounted = try silo.run(["mount", "cache", one])
        let pid = try #require(mounted.stdout.firstMatch(of: /pid (\d+)/).flatMap { Int32($0.1) })
        defer { _ = try? silo.run(["umount", one]) }

        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        writer.arguments = [
            "-c",
            """
            import os, sys
            root = sys.argv[1]
            with open(root + "/closed", "w") as f: f.write("closed whole")
            synced = os.open(root + "/synced", os.O_WRONLY | os.O_CREAT)
            os.write(synced, b"synced part")
            os.fsync(synced)
            os.write(synced, b", then more never synced")
            open_only = os.open(root + "/open", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(open_only, b"never closed")
            print("ready", flush=True)
            sys.stdin.read()
            """,
            one,
        ]
        let (input, output) = (Pipe(), Pipe())
        writer.standardInput = input
        writer.standardOutput = output
        try writer.run()
        defer {
            kill(writer.processIdentifier, SIGKILL)
            writer.waitUntilExit()
        }
        #expect(output.fileHandleForReading.readLine() == "ready\n")
        #expect(kill(pid, SIGKILL) == 0)

        #expect(try silo.run(["mount", "cache", two]).status == 0)
        defer { _ = try? silo.run(["umount", two]) }
        #expect(try String(contentsOfFile: two + "/closed", encoding: .utf8) == "closed whole")
        #expect(try String(contentsOfFile: two + "/synced", encoding: .utf8) == "synced part")
        // Its name was committed when it was made (an O_EXCL create is atomic across mounts); its
        // bytes, never closed nor synced, are not.
        #expect(try String(contentsOfFile: two + "/open", encoding: .utf8) == "")
    }
}
