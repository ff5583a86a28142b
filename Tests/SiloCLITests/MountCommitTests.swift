import Foundation
import SiloCore
import SiloMount
import SiloRuntime
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Writable mounts: commit and reload as the seed's `Volume` has them, through real mounts.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct MountCommitTests {
    typealias Setup = MountTests.Setup

    @Test(arguments: Store.allCases) func theSeedsReloadExample(_ store: Store) throws {
        let setup = try Setup(store)
        _ = try setup.ok("volume", "create", "my-volume")
        let (a, rootA) = try setup.mount("my-volume", at: "a")
        let (b, rootB) = try setup.mount("my-volume", at: "b")
        defer { MountTests.stop(a); MountTests.stop(b) }

        // B does not see bar.txt; A writes and commits it; B still does not; B reloads and reads hello.
        #expect(!FileManager.default.fileExists(atPath: rootB + "/bar.txt"))
        try "hello".write(toFile: rootA + "/bar.txt", atomically: false, encoding: .utf8)
        #expect(!FileManager.default.fileExists(atPath: rootB + "/bar.txt"))
        #expect(try setup.ok("volume", "commit", rootA).stdout.contains("as version 1"))
        #expect(!FileManager.default.fileExists(atPath: rootB + "/bar.txt"))
        #expect(try setup.ok("volume", "reload", rootB).stdout.contains("shows version 1"))
        #expect(try String(contentsOfFile: rootB + "/bar.txt", encoding: .utf8) == "hello")

        // A rewrite of the same length: B's cached pages must go on reload, and only then.
        try "world".write(toFile: rootA + "/bar.txt", atomically: false, encoding: .utf8)
        _ = try setup.ok("volume", "commit", rootA)
        #expect(try String(contentsOfFile: rootB + "/bar.txt", encoding: .utf8) == "hello")
        // B's own uncommitted change survives its reload.
        try "mine".write(toFile: rootB + "/mine.txt", atomically: false, encoding: .utf8)
        #expect(try setup.ok("volume", "reload", rootB).stdout.contains("1 uncommitted change(s) kept"))
        #expect(try String(contentsOfFile: rootB + "/bar.txt", encoding: .utf8) == "world")
        #expect(try String(contentsOfFile: rootB + "/mine.txt", encoding: .utf8) == "mine")
        #expect(try setup.ok("volume", "get", "my-volume", "/bar.txt", "-").stdout == "world")
    }

    @Test func theSwiftAPICommitsAndReloadsAMount() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "my-volume")
        let (a, rootA) = try setup.mount("my-volume", at: "a")
        let (b, rootB) = try setup.mount("my-volume", at: "b")
        defer { for mount in [a, b] { MountTests.stop(mount) } }
        let home = setup.silo.home
        let volumeA = try Volume(mountedAt: rootA, home: home)
        let volumeB = try Volume(mountedAt: rootB + "/", home: home)
        #expect(volumeA.mount?.volume == "my-volume" && volumeA.mount?.mountPoint == rootA)
        #expect(try volumeA.commit() == nil)

        try "hello".write(toFile: rootA + "/bar.txt", atomically: false, encoding: .utf8)
        #expect(try volumeA.status().changedPaths == 1)
        #expect(try volumeA.commit(author: "trainer") == Version(1))
        #expect(!FileManager.default.fileExists(atPath: rootB + "/bar.txt"))
        #expect(try volumeB.reload() == Version(1))
        #expect(try String(contentsOfFile: rootB + "/bar.txt", encoding: .utf8) == "hello")
        #expect(try setup.ok("volume", "history", "my-volume").stdout.contains("trainer"))
        #expect(throws: SiloError.self) { try Volume(mountedAt: setup.directory.path, home: home) }

        // In a container a program finds its mount by the volume's name, through SILO_ATTACHED.
        try "again".write(toFile: rootA + "/again.txt", atomically: false, encoding: .utf8)
        let attached = try Volume(attachedNamed: "my-volume", environment: ["SILO_ATTACHED": "other\t/x\trw\nmy-volume\t\(rootA)\trw", "SILO_HOME": home])
        #expect(try attached.commit(author: "in a container") == Version(2))
        #expect(throws: SiloError.self) { try Volume(attachedNamed: "my-volume", environment: ["SILO_HOME": home]) }
    }

    @Test func overwritingAndAppendingToACommittedLargeFileCommitsWhole() throws {
        let setup = try Setup(.embedded)
        // 1 GiB in which every MiB differs (its index at its start), so no two blocks are alike.
        let mebibyte = 1 << 20
        let count = 1024
        var chunk = pseudoRandomBytes(count: mebibyte, seed: 41)
        let source = setup.directory.file("big.bin")
        _ = FileManager.default.createFile(atPath: source, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
        func stamp(_ index: Int) { withUnsafeBytes(of: UInt64(index).littleEndian) { chunk.replaceSubrange(0..<8, with: $0) } }
        for index in 0..<count {
            stamp(index)
            out.write(Data(chunk))
        }
        try out.close()
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", source, "/big.bin")

        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        let fd = open(root + "/big.bin", O_WRONLY)
        try #require(fd >= 0, "open for writing: \(String(cString: strerror(errno)))")
        #expect(pwrite(fd, "PATCH", 5, off_t(500 * mebibyte + 3)) == 5)
        close(fd)
        let appender = open(root + "/big.bin", O_WRONLY | O_APPEND)
        try #require(appender >= 0)
        #expect(write(appender, "TAIL", 4) == 4)
        close(appender)
        #expect(try setup.ok("volume", "commit", root).stdout.contains("as version 2"))

        let back = setup.directory.file("back.bin")
        _ = try setup.ok("volume", "get", "v", "/big.bin", back)
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: back))
        defer { try? input.close() }
        #expect(try input.seekToEnd() == UInt64(count * mebibyte + 4))
        for index in [0, 499, 500, 501, 1023] {
            try input.seek(toOffset: UInt64(index * mebibyte))
            var expected = chunk
            withUnsafeBytes(of: UInt64(index).littleEndian) { expected.replaceSubrange(0..<8, with: $0) }
            if index == 500 { expected.replaceSubrange(3..<8, with: Array("PATCH".utf8)) }
            #expect(Array(try input.read(upToCount: mebibyte) ?? Data()) == expected, "MiB \(index)")
        }
        #expect(Array(try input.readToEnd() ?? Data()) == Array("TAIL".utf8))
    }

    @Test func aSparseFileOfFiveGiBCommitsAndReadsBack() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let size = 5 << 30
        do {
            let (mount, root) = try setup.mount("v", at: "m")
            defer { MountTests.stop(mount) }
            let fd = open(root + "/sparse.bin", O_CREAT | O_WRONLY, 0o644)
            try #require(fd >= 0)
            #expect(pwrite(fd, "start", 5, 0) == 5)
            #expect(pwrite(fd, "end", 3, off_t(size - 3)) == 3)
            close(fd)
            var info = stat()
            #expect(stat(root + "/sparse.bin", &info) == 0 && info.st_size == size)
            #expect(try setup.ok("volume", "commit", root).stdout.contains("as version 1"))
        }
        let listed = try setup.ok("volume", "ls", "v", "/", "--json").stdout
        #expect(listed.contains("\(size)"))
        let (reader, readRoot) = try setup.mount("v", at: "r", "--read-only")
        defer { MountTests.stop(reader) }
        let fd = open(readRoot + "/sparse.bin", O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 1, count: 8)
        for (offset, expected) in [(0, Array("start".utf8)), (size - 3, Array("end".utf8)), ((4 << 30) + 12345, [UInt8](repeating: 0, count: 8))] {
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, expected.count, off_t(offset)) }
            #expect(got == expected.count && Array(bytes.prefix(expected.count)) == expected, "at \(offset)")
        }
    }

    @Test func aCommitTakesAFileStillOpenForWritingAsWrittenSoFar() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        let fd = open(root + "/log.txt", O_CREAT | O_WRONLY, 0o644)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(write(fd, "first\n", 6) == 6)
        #expect(try setup.ok("volume", "commit", root).stdout.contains("as version 1"))
        #expect(try setup.ok("volume", "get", "v", "/log.txt", "-").stdout == "first\n")
        #expect(write(fd, "second\n", 7) == 7)
        #expect(try setup.ok("volume", "commit", root).stdout.contains("as version 2"))
        #expect(try setup.ok("volume", "get", "v", "/log.txt", "-").stdout == "first\nsecond\n")
        #expect(try setup.ok("volume", "commit", root).stdout.contains("nothing to commit"))
    }

    @Test func manyMountsCommittingAtOnceAllLandAndTheLastWriterOfAFileWinsWhole() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "shared")
        let count = 20
        var mounts: [(Process, String)] = []
        for index in 0..<count { mounts.append(try setup.mount("shared", at: "m\(index)")) }
        defer { for (mount, _) in mounts { MountTests.stop(mount) } }
        for (index, (_, root)) in mounts.enumerated() {
            try Data(pseudoRandomBytes(count: 1000 + index, seed: UInt64(index))).write(to: URL(fileURLWithPath: root + "/own-\(index)"))
            try "writer \(index) ".appending(String(repeating: "x", count: 100 * index)).write(toFile: root + "/same", atomically: false, encoding: .utf8)
        }
        // Each commit is made as its own user, so the history names who committed last.
        let commits = try mounts.enumerated().map { index, mount in
            try SiloBinary(home: setup.silo.home, environment: ["USER": "w\(index)"]).start(["volume", "commit", mount.1])
        }
        for commit in commits {
            commit.waitUntilExit()
            #expect(commit.terminationStatus == 0)
        }
        let listing = try setup.ok("volume", "ls", "shared", "/", "--json").stdout
        for index in 0..<count { #expect(listing.contains("\"own-\(index)\"")) }
        // The writer whose commit made the last version holds "same", whole.
        let history = try JSONSerialization.jsonObject(with: Data(try setup.ok("volume", "history", "shared", "--json").stdout.utf8)) as? [[String: Any]]
        #expect(history?.count == count + 1)
        let last = try #require(history?.last)
        #expect(last["version"] as? Int == count)
        let author = try #require(last["author"] as? String)
        let writer = try #require(Int(author.dropFirst().prefix { $0 != "@" }), "author \(author)")
        #expect(try setup.ok("volume", "get", "shared", "/same", "-").stdout == "writer \(writer) " + String(repeating: "x", count: 100 * writer))
    }

    @Test func unmountingWithoutACommitDiscardsTheChangesAndSaysHowMany() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let (mount, root) = try setup.mount("v", at: "m")
        try "a".write(toFile: root + "/a", atomically: false, encoding: .utf8)
        try "b".write(toFile: root + "/b", atomically: false, encoding: .utf8)
        MountTests.stop(mount)
        #expect(mount.terminationStatus == 0)
        let log = try String(contentsOfFile: setup.directory.file("m.log"), encoding: .utf8)
        #expect(log.contains("2 changed path(s)") && log.contains("discarded"))
        #expect(try setup.ok("volume", "history", "v", "--json").stdout.components(separatedBy: "\"version\"").count == 2)
    }

    @Test func programsUseAMountAsALocalDisk() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        let script = """
            import mmap, os, shutil, sqlite3, sys
            root = sys.argv[1]
            with open(f"{root}/data.bin", "wb") as f:
                f.write(b"\\0" * 65536)
            with open(f"{root}/data.bin", "r+b") as f:
                m = mmap.mmap(f.fileno(), 0)
                m[100:105] = b"hello"
                m.flush()
                assert m[100:105] == b"hello"
                m.close()
            with open(f"{root}/tmp.json", "w") as f:
                f.write('{"step": 7}')
            os.replace(f"{root}/tmp.json", f"{root}/state.json")
            os.makedirs(f"{root}/junk/a/b")
            open(f"{root}/junk/a/b/c", "w").write("c")
            shutil.rmtree(f"{root}/junk")
            db = sqlite3.connect(f"{root}/rows.db")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            db.executemany("INSERT INTO t (name) VALUES (?)", [(f"row {i}",) for i in range(10000)])
            db.commit()
            assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 10000
            db.close()
            print("ok")
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, root]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        #expect(python.terminationStatus == 0 && printed == "ok\n")
        _ = try setup.ok("volume", "commit", root)
        #expect(try setup.ok("volume", "get", "v", "/state.json", "-").stdout == #"{"step": 7}"#)
        _ = try setup.ok("volume", "get", "v", "/rows.db", setup.directory.file("rows.db"))
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM t').fetchone()[0])", setup.directory.file("rows.db")]
        let checked = Pipe()
        check.standardOutput = checked
        try check.run()
        #expect(String(decoding: checked.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "10000\n")
        check.waitUntilExit()
        let listing = try setup.ok("volume", "ls", "v", "/").stdout
        #expect(!listing.contains("junk") && !listing.contains("tmp.json"))
        let data = try setup.ok("volume", "get", "v", "/data.bin", "-").stdoutBytes
        #expect(data.count == 65536 && Array(data[100..<105]) == Array("hello".utf8))
    }

    @Test func aMountProcessKilledMidCommitLeavesNoStaleMountAndNoHalfVersion() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let big = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 64 * 1024 * 1024)
        for round in 0..<3 {
            let (mount, root) = try setup.mount("v", at: "m\(round)")
            try big.write(to: URL(fileURLWithPath: root + "/big\(round).bin"))
            let commit = try setup.silo.start(["volume", "commit", root])
            Thread.sleep(forTimeInterval: [0.05, 0.2, 0.5][round])  // fault injection: when to kill, not synchronisation
            kill(mount.processIdentifier, SIGKILL)
            mount.waitUntilExit()
            commit.waitUntilExit()
            // The mount's guard detaches it once the process is gone; wait for that, with a deadline.
            let deadline = Date().addingTimeInterval(10)
            while MountTests.isMounted(root) && Date() < deadline { usleep(10_000) }
            #expect(!MountTests.isMounted(root), "a killed mount was left mounted")
            #expect(FileManager.default.isReadableFile(atPath: root))
            let listing = try setup.silo.run(["volume", "ls", "v", "/big\(round).bin"])
            if listing.status == 0 {
                let copy = setup.directory.file("got\(round)")
                _ = try setup.ok("volume", "get", "v", "/big\(round).bin", copy)
                #expect(FileManager.default.contents(atPath: copy) == big, "a committed file must read back whole")
            } else {
                #expect(listing.status == 3)
            }
        }
    }

    @Test func backgroundCommitsLandWhileMountedAndOnceMoreAtUnmount() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let (writer, root) = try setup.mount("v", at: "w", "--background-commits", "--commit-interval", "1")
        try "step 1".write(toFile: root + "/checkpoint", atomically: false, encoding: .utf8)
        // No commit call: within ten seconds a background commit carries it.
        let deadline = Date().addingTimeInterval(10)
        var seen = ""
        while Date() < deadline {
            seen = try setup.silo.run(["volume", "get", "v", "/checkpoint", "-"]).stdout
            if seen == "step 1" { break }
            usleep(100_000)
        }
        #expect(seen == "step 1")
        // Written just before the mount stops: the commit at unmount carries it.
        try "step 2".write(toFile: root + "/checkpoint", atomically: false, encoding: .utf8)
        try "late".write(toFile: root + "/late", atomically: false, encoding: .utf8)
        MountTests.stop(writer)
        #expect(writer.terminationStatus == 0)
        #expect(try setup.ok("volume", "get", "v", "/checkpoint", "-").stdout == "step 2")
        #expect(try setup.ok("volume", "get", "v", "/late", "-").stdout == "late")
        let log = try String(contentsOfFile: setup.directory.file("w.log"), encoding: .utf8)
        #expect(log.contains("(at unmount)") && !log.contains("discarded"))
    }

    @Test func aReaderNeverMissesAPathPresentInBothVersionsWhileCommitsAndReloadsRun() throws {
        let setup = try Setup(.embedded)
        for index in 0..<40 { try setup.directory.write("base/d\(index % 4)/f\(index)", "v0-\(index)") }
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", setup.directory.file("base"), "/base")
        let (writer, rootA) = try setup.mount("v", at: "a")
        let (reader, rootB) = try setup.mount("v", at: "b")
        defer { MountTests.stop(writer); MountTests.stop(reader) }

        // A reader walks every base file of B in a loop while A commits and B reloads.
        let paths = (0..<40).map { "base/d\($0 % 4)/f\($0)" }
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var misses: [String] = []
            var reads = 0
            var stop = false
        }
        let tally = Tally()
        let finished = DispatchSemaphore(value: 0)
        let loop = Thread {
            defer { finished.signal() }
            while !tally.lock.withLock({ tally.stop }) {
                for path in paths {
                    let data = FileManager.default.contents(atPath: rootB + "/" + path)
                    tally.lock.withLock {
                        tally.reads += 1
                        if data == nil { tally.misses.append(path) }
                    }
                }
            }
        }
        loop.start()
        for round in 1...5 {
            for index in stride(from: round, to: 40, by: 5) {
                try "v\(round)-\(index)".write(toFile: rootA + "/" + paths[index], atomically: false, encoding: .utf8)
            }
            try "new \(round)".write(toFile: rootA + "/base/new\(round)", atomically: false, encoding: .utf8)
            _ = try setup.ok("volume", "commit", rootA)
            _ = try setup.ok("volume", "reload", rootB)
        }
        tally.lock.withLock { tally.stop = true }
        finished.wait()
        #expect(tally.reads > 40)
        #expect(tally.misses.isEmpty, "paths present in every version went missing: \(tally.misses.prefix(5))")
        // After the last reload B shows A's last commit.
        #expect(try String(contentsOfFile: rootB + "/" + paths[5], encoding: .utf8) == "v5-5")
        #expect(try String(contentsOfFile: rootB + "/base/new5", encoding: .utf8) == "new 5")
    }
}
