import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `silo run` and `silo container`: volumes attached at paths in mount namespaces of their own (root,
/// as CI runs), driven through the built binary.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct ContainerTests {
    typealias Setup = MountTests.Setup

    /// The seed's reload example as the README's demo runs it: `examples/seed-reload`.
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/seed-reload").standardized
        .path

    /// A path for attaching volumes that no other test uses, as the kernel lists it (the temporary
    /// directory's may hold "//"): suites run in parallel, and a container makes and removes the
    /// directories of its attachments on the host.
    static func place(_ setup: Setup, _ name: String) -> String {
        URL(fileURLWithPath: setup.directory.file("attach/" + name)).standardizedFileURL.path
    }

    static func start(_ setup: Setup, _ arguments: String...) throws -> String {
        let output = try setup.ok(["container", "start"] + arguments)
        let id = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(id.count == 12, "silo container start printed '\(output.stdout)' \(output.stderr)")
        return id
    }

    @Test func theSeedsReloadExampleRunsAsWrittenWithReusedContainers() throws {
        let setup = try Setup(.embedded)
        let hostHad = FileManager.default.fileExists(atPath: "/root/foo")
        let hostBefore = hostHad ? try FileManager.default.contentsOfDirectory(atPath: "/root/foo") : []

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.example + "/main.sh", "my-volume"]
        process.environment = ProcessInfo.processInfo.environment.merging(["SILO": SiloBinary.path, "SILO_HOME": setup.silo.home]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(
            printed == """
                p=PosixPath('/root/foo/bar.txt') does not exist!
                Created p=PosixPath('/root/foo/bar.txt')
                Committed p=PosixPath('/root/foo/bar.txt')
                p=PosixPath('/root/foo/bar.txt') does not exist!
                p=PosixPath('/root/foo/bar.txt') contains 'hello'

                """
        )
        // The host's own /root/foo never saw the volume.
        #expect(!FileManager.default.fileExists(atPath: "/root/foo/bar.txt"))
        // main.sh stopped g's container on its way out.
        #expect(FileManager.default.fileExists(atPath: "/root/foo") == hostHad)
        if hostHad { #expect(try FileManager.default.contentsOfDirectory(atPath: "/root/foo") == hostBefore) }
        let listed = try JSONSerialization.jsonObject(with: Data(try setup.ok("container", "list", "--json").stdout.utf8)) as? [Any]
        #expect(listed?.isEmpty == true)
    }

    @Test func aVolumeAttachedOverAHostDirectoryHidesItOnlyInsideTheContainer() throws {
        let setup = try Setup(.embedded)
        try setup.directory.write("host/data/host.txt", "the host's")
        let path = setup.directory.file("host/data")
        let output = try setup.ok(
            "run", "-v", "v:\(path)", "--", "sh", "-c", "ls -A \(path); echo inside > \(path)/new.txt; silo volume commit \(path)")
        #expect(output.stdout.hasPrefix("committed 1 changed path(s)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: path) == ["host.txt"])
        #expect(try setup.ok("volume", "get", "v", "/new.txt", "-").stdout == "inside\n")
        // Outside any container, the path is no silo mount, though a container's record named it.
        let outside = try setup.silo.run(["volume", "commit", path])
        #expect(outside.status == 2 && outside.stderr.contains("is not in a silo mount"))
    }

    @Test func backgroundCommitsReachOtherContainersWhileRunningAndAtStop() throws {
        let setup = try Setup(.embedded)
        let models = Self.place(setup, "vol/models")
        let writer = try Self.start(setup, "--background-commits", "--commit-interval", "0.5", "-v", "models:\(models)")
        let reader = try Self.start(setup, "-v", "models:\(models)")
        _ = try setup.ok("container", "exec", writer, "--", "sh", "-c", "echo 'I will be persisted' > \(models)/dummy.txt")
        // No commit call anywhere: the reader finds the file by reloading, within ten seconds.
        let deadline = Date(timeIntervalSinceNow: 10)
        var seen = ""
        while Date() < deadline {
            seen = try setup.silo.run([
                "container", "exec", reader, "--", "sh", "-c", "silo volume reload \(models) >/dev/null && cat \(models)/dummy.txt",
            ]).stdout
            if !seen.isEmpty { break }
        }
        #expect(seen == "I will be persisted\n")

        // Written just before the stop: the final commit at shutdown carries it, unless a background
        // commit (every half second) already did; either way it has landed once the stop returns.
        _ = try setup.ok("container", "exec", writer, "--", "sh", "-c", "echo last > \(models)/last.txt")
        let stopped = try setup.ok("container", "stop", writer)
        #expect(!stopped.stderr.contains("discarded"), "\(stopped.stderr)")
        #expect(try setup.ok("run", "-v", "models:\(models)", "--", "cat", "\(models)/last.txt").stdout == "last\n")
        // With no timer due before it, the stop's own final commit is the one that carries a change.
        let slow = try Self.start(setup, "--background-commits", "--commit-interval", "3600", "-v", "models:\(models)")
        _ = try setup.ok("container", "exec", slow, "--", "sh", "-c", "echo final > \(models)/final.txt")
        #expect(try setup.ok("container", "stop", slow).stderr.contains("as version"))
        #expect(try setup.ok("run", "-v", "models:\(models)", "--", "cat", "\(models)/final.txt").stdout == "final\n")
        _ = try setup.ok("container", "stop", reader)

        // Without background commits, changes are discarded at the end, and counted.
        let discarded = try setup.ok("run", "-v", "models:\(models)", "--", "sh", "-c", "echo a > \(models)/a; echo b > \(models)/b")
        #expect(discarded.stderr.contains("2 changed path(s) in \(models) ('models') were not committed and are discarded"))
        // cat's own status for a missing file, passed through.
        #expect(try setup.silo.run(["run", "-v", "models:\(models)", "--", "cat", "\(models)/a"]).status == 1)
    }

    @Test func anInferenceContainerReloadsToFindAModelTrainedMeanwhile() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "model-store")
        let models = Self.place(setup, "vol/models")
        let inference = try Self.start(setup, "-v", "model-store:\(models)", "--no-create")
        let load = "cat \(models)/m1.bin 2>/dev/null || { echo not-found; silo volume reload \(models) >/dev/null && cat \(models)/m1.bin; }"
        #expect(try setup.silo.run(["container", "exec", inference, "--", "test", "-e", "\(models)/m1.bin"]).status == 1)
        _ = try setup.ok(
            "run", "-v", "model-store:\(models)", "--", "sh", "-c", "echo weights > \(models)/m1.bin && silo volume commit \(models)")
        #expect(try setup.ok("container", "exec", inference, "--", "sh", "-c", load).stdout == "not-found\nweights\n")
        #expect(try setup.ok("container", "exec", inference, "--", "sh", "-c", load).stdout == "weights\n")
        let list = try setup.ok("container", "list").stdout
        #expect(list.contains(inference) && list.contains("model-store:\(models)"))
        _ = try setup.ok("container", "stop", inference)
        #expect(!(try setup.ok("container", "list").stdout.contains(inference)))
    }

    @Test func aTrainingLoopKilledMidRunResumesFromItsLastCommittedCheckpoint() throws {
        let setup = try Setup(.embedded)
        let ckpt = Self.place(setup, "ckpt")
        let train = """
            import os, sys, time
            path = sys.argv[2] + "/step"
            step = int(open(path).read()) if os.path.exists(path) else 0
            print("resumed", step, flush=True)
            limit = int(sys.argv[1])
            while limit < 0 or step < limit:
                step += 1
                with open(path + ".tmp", "w") as f:
                    f.write(str(step))
                os.replace(path + ".tmp", path)
                print("step", step, flush=True)
                time.sleep(0.02)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: SiloBinary.path)
        process.arguments = ["run", "--background-commits", "--commit-interval", "0.5", "-v", "ckpt:\(ckpt)", "--", "python3", "-c", train, "-1", ckpt]
        process.environment = ProcessInfo.processInfo.environment.merging(["SILO_HOME": setup.silo.home]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var lines: [String] = []
        var line = Data()
        let reader = out.fileHandleForReading
        // Well into its run: 60 steps.
        while lines.count < 60 {
            let byte = reader.readData(ofLength: 1)
            if byte.isEmpty { break }
            if byte == Data("\n".utf8) {
                lines.append(String(decoding: line, as: UTF8.self))
                line = Data()
            } else {
                line.append(byte)
            }
        }
        // A background commit lands while the loop still runs: seen from outside, in the volume's history.
        let deadline = Date(timeIntervalSinceNow: 20)
        var midRun: String?
        while midRun == nil && Date() < deadline {
            let history = try setup.silo.run(["volume", "history", "ckpt", "--json"]).stdout
            // The latest version holding a checkpoint: the first background commit may have come before
            // the first checkpoint was renamed into place.
            if (try? JSONSerialization.jsonObject(with: Data(history.utf8)) as? [Any])?.count ?? 0 >= 2,
                let step = Int(try setup.silo.run(["volume", "get", "ckpt", "/step", "-"]).stdout)
            {
                midRun = String(step)
            } else {
                usleep(50_000)
            }
        }
        #expect(process.isRunning, "the training loop ended before a background commit was seen")
        let committedStep = try #require(midRun.flatMap { Int($0) }, "no background commit within 20 s while the loop ran")
        #expect(committedStep >= 1)
        kill(process.processIdentifier, SIGTERM)
        let rest = String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
        let steps = (lines + rest.split(separator: "\n").map(String.init)).filter { $0.hasPrefix("step ") }
        let lastLine = try #require(steps.last)
        let last = try #require(Int(lastLine.dropFirst(5)))
        #expect(last >= 59)

        // The final commit at shutdown holds the last checkpoint written (or the one being written).
        #expect(committedStep <= last)
        let resumed = try setup.ok("run", "-v", "ckpt:\(ckpt)", "--", "python3", "-c", train, "\(last + 3)", ckpt).stdout
        let first = try #require(resumed.split(separator: "\n").first)
        let from = try #require(Int(first.dropFirst("resumed ".count)))
        #expect(from == last || from == last + 1)
        #expect(resumed.hasSuffix("step \(last + 3)\n"))
    }

    @Test func aContainerWhoseSupervisorIsKilledLeavesNoMountAndIsGoneFromTheList() throws {
        let setup = try Setup(.embedded)
        // The path as the kernel lists it (the temporary directory's may hold "//").
        let path = URL(fileURLWithPath: setup.directory.file("data")).standardizedFileURL.path
        let id = try Self.start(setup, "-v", "v:\(path)")
        #expect(try setup.ok("container", "list").stdout.contains(id))
        // A command still running in the container when its supervisor dies.
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: SiloBinary.path)
        let script =
            "echo ready; read go; i=0; while grep -q ' \(path) fuse.silo ' /proc/self/mounts; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done; ls -A \(path) && echo detached"
        watcher.arguments = ["container", "exec", id, "--", "sh", "-c", script]
        watcher.environment = ProcessInfo.processInfo.environment.merging(["SILO_HOME": setup.silo.home]) { $1 }
        let input = Pipe()
        let output = Pipe()
        watcher.standardInput = input
        watcher.standardOutput = output
        let log = setup.directory.file("watcher.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        watcher.standardError = FileHandle(forWritingAtPath: log)
        try watcher.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        #expect(String(decoding: line, as: UTF8.self) == "ready")
        let record = try JSONSerialization.jsonObject(with: Data(try setup.ok("container", "list", "--json").stdout.utf8)) as? [[String: Any]]
        let pid = try #require(record?.first?["pid"] as? Int)
        kill(pid_t(pid), SIGKILL)
        input.fileHandleForWriting.write(Data("go\n".utf8))
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        watcher.waitUntilExit()
        // Inside, the guard detached the dead mount: the path lists (empty), no "not connected".
        #expect(
            watcher.terminationStatus == 0 && rest == "detached\n",
            "status \(watcher.terminationStatus): \(rest) \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(!(try setup.ok("container", "list").stdout.contains(id)))
        #expect(!MountTests.isMounted(path))
        #expect(try setup.silo.run(["container", "exec", id, "--", "true"]).status == 3)
    }

    @Test func twoContainersAtOneNewPathKeepTheirMountsWhileEitherRuns() throws {
        let setup = try Setup(.embedded)
        let path = URL(fileURLWithPath: setup.directory.file("new/place")).standardizedFileURL.path
        let a = try Self.start(setup, "-v", "a:\(path)")
        let b = try Self.start(setup, "-v", "b:\(path)")
        _ = try setup.ok("container", "exec", b, "--", "sh", "-c", "echo b > \(path)/f")
        // a made the mount point; ending first, it must leave it to b.
        _ = try setup.ok("container", "stop", a)
        #expect(try setup.ok("container", "exec", b, "--", "cat", "\(path)/f").stdout == "b\n")
        _ = try setup.ok("container", "stop", b)
        // The mount point stayed for b, and stays after it (b did not make it); nothing is mounted.
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).isEmpty)
        #expect(!MountTests.isMounted(path))
    }

    @Test func twentyContainersCommittingAtOnceAllLand() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "shared")
        let data = Self.place(setup, "data")
        let runs = try (0..<20).map { index in
            try setup.silo.start(["run", "-v", "shared:\(data)", "--", "sh", "-c", "echo \(index) > \(data)/f\(index) && silo volume commit \(data)"])
        }
        for run in runs {
            run.waitUntilExit()
            #expect(run.terminationStatus == 0)
        }
        let listed = try setup.ok("volume", "ls", "shared", "/").stdout
        for index in 0..<20 { #expect(listed.contains("f\(index)\n") || listed.hasSuffix("f\(index)"), "f\(index) is missing") }
        let history = try JSONSerialization.jsonObject(with: Data(try setup.ok("volume", "history", "shared", "--json").stdout.utf8)) as? [Any]
        #expect(history?.count == 21)
    }

    @Test func exitCodesStdioAndSignalsPassThrough() throws {
        let setup = try Setup(.embedded)
        #expect(try setup.silo.run(["run", "--", "sh", "-c", "exit 7"]).status == 7)
        let scratch = Self.place(setup, "scratch")
        let echoed = try setup.silo.run(
            ["run", "-v", ":\(scratch)", "--", "sh", "-c", "cat > \(scratch)/in && tr a-z A-Z < \(scratch)/in"], input: Data("hello\n".utf8))
        #expect(echoed.status == 0 && echoed.stdout == "HELLO\n")
        #expect(try setup.silo.run(["run", "--", "/nonexistent/program"]).status == 127)

        for (signal, name) in [(SIGTERM, "TERM"), (SIGINT, "INT")] {
            let (process, line) = try setup.silo.startReadingFirstLine(
                ["run", "--", "sh", "-c", "trap 'echo got \(name); exit 3' \(name); echo ready; while :; do sleep 0.05; done"],
                log: setup.directory.file("signal-\(name).log")
            )
            #expect(line == "ready")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            #expect(process.terminationStatus == 3, "after SIG\(name)")
        }
    }

    @Test func ephemeralVolumesGoWithTheirRunAndReadOnlyAttachmentsRefuseWrites() throws {
        let setup = try Setup(.embedded)
        let x = Self.place(setup, "x")
        let data = Self.place(setup, "data")
        let ephemeral = try setup.ok("run", "-v", ":\(x)", "--", "sh", "-c", "echo scratch > \(x)/f && cat \(x)/f && silo volume status \(x)")
        #expect(ephemeral.stdout.hasPrefix("scratch\n"))
        #expect(ephemeral.stdout.contains("'ephemeral-"))
        #expect(!(try setup.ok("volume", "list").stdout.contains("ephemeral-")))

        _ = try setup.ok("volume", "create", "data")
        // The shell's own status for a redirection it cannot make (2), passed through.
        let refused = try setup.silo.run(["run", "-v", "data:\(data):ro", "--", "sh", "-c", "echo x > \(data)/f"])
        #expect(refused.status == 2 && refused.stderr.contains("Read-only file system"), "\(refused.status): \(refused.stderr)")
        #expect(try setup.silo.run(["run", "--no-create", "-v", "absent:\(data)", "--", "true"]).status == 3)
        for bad in ["bad name!:\(data)", "data:relative", "data:/a/../b", "data:/", "data:\(data):rx", "data"] {
            let output = try setup.silo.run(["run", "-v", bad, "--", "true"])
            #expect(output.status == 2, "-v \(bad): \(output.stderr)")
            #expect(output.stderr.hasPrefix("silo: error: "))
        }
        #expect(try setup.silo.run(["run", "-v", "a:\(data)", "-v", "b:\(data)/sub", "--", "true"]).status == 2)
    }
}
