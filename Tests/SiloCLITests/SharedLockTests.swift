import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Locks on a shared volume hold across mounts (each a `silo mount` process of its own, as on two
/// machines): a counter incremented under a lock by processes on two mounts loses no increment, and a
/// lock whose mount was killed is taken by a waiter elsewhere within the lease.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct SharedLockTests {
    /// Increments `counter` `n` times, each under an exclusive lock of `counter.lock` (`flock`,
    /// `fcntl`, or PyPI's `filelock`), reading and rewriting it as a program would.
    static let incrementer = """
        import fcntl, os, sys
        root, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        lock_path, counter = os.path.join(root, "counter.lock"), os.path.join(root, "counter")
        def increment():
            try:
                with open(counter) as f: value = int(f.read() or "0")
            except FileNotFoundError:
                value = 0
            with open(counter, "w") as f: f.write(str(value + 1))
        if kind == "filelock":
            import filelock
            lock = filelock.FileLock(lock_path)
            for _ in range(n):
                with lock: increment()
            sys.exit(0)
        def lock(fd, how):
            if kind == "flock": fcntl.flock(fd, how)
            else: fcntl.lockf(fd, how)
        for _ in range(n):
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            lock(fd, fcntl.LOCK_EX)
            try:
                increment()
            finally:
                lock(fd, fcntl.LOCK_UN)
                os.close(fd)
        """

    /// A process that takes an exclusive `flock` of `path` (made if missing) and holds it until
    /// stopped; each line it is sent becomes the file's content, written and fsynced under the lock.
    final class LockHolder {
        let process = Process()
        private let input = Pipe()
        private let output = Pipe()
        /// What it said once it held the lock ("held").
        private(set) var said = ""

        static let program = """
            import fcntl, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print('held', flush=True)
            for line in sys.stdin:
                os.ftruncate(fd, 0)
                os.pwrite(fd, line.strip().encode(), 0)
                try:
                    os.fsync(fd)
                    print('written', flush=True)
                except OSError as error:
                    print('refused', error.errno, flush=True)
            """

        init(_ path: String) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.program, path]
            process.standardOutput = output
            process.standardInput = input
            try process.run()
            said = readLine()
        }

        /// The next line it says, or what it said before it ended.
        func readLine() -> String { output.fileHandleForReading.readLine() }

        /// Writes `text` as the file's content under the lock it believes it holds; "written" or
        /// "refused ERRNO".
        func write(_ text: String) -> String {
            input.fileHandleForWriting.write(Data((text + "\n").utf8))
            return readLine()
        }

        /// Stops it with SIGKILL (children of the test runner inherit its blocked SIGTERM).
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Waits (at most 30 s) for an exclusive `flock` of `path`, then writes `content` (if given) under
    /// it and fsyncs; the output is "taken" once done.
    static func waitForLock(_ path: String, writing content: String? = nil) throws -> (status: Int32, output: String) {
        try runProgram(
            "/usr/bin/timeout",
            [
                "30", "/usr/bin/python3", "-c",
                """
                import fcntl, os, sys
                fd = os.open(sys.argv[1], os.O_RDWR)
                fcntl.flock(fd, fcntl.LOCK_EX)
                if len(sys.argv) > 2:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, sys.argv[2].encode(), 0)
                    os.fsync(fd)
                print('taken')
                """,
                path,
            ] + (content.map { [$0] } ?? []))
    }

    /// Opens a diskcache (SQLite under its own fcntl locks) in `root/cache`, with the settings
    /// machines without shared memory need: a rollback journal (no WAL) and no mmap; says "ready",
    /// and once it reads a line sets `n` keys of its own and increments one shared counter `n` times.
    static let diskcacheWorker = """
        import sys, diskcache
        root, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        with diskcache.Cache(root + "/cache", sqlite_journal_mode="delete", sqlite_mmap_size=0, timeout=120) as cache:
            print("ready", flush=True)
            sys.stdin.readline()
            for i in range(n):
                cache.set(f"{worker}-{i}", i * i + 1)
                cache.incr("total")
        """

    /// What a diskcache filled by ``diskcacheWorker`` holds, read through `point`: the count of keys
    /// correct, the counter, and SQLite's integrity check.
    static let diskcacheCheck = """
        import sqlite3, sys, diskcache
        root, workers, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
        with diskcache.Cache(root + "/cache", sqlite_journal_mode="delete", sqlite_mmap_size=0) as cache:
            good = sum(cache.get(f"{w}-{i}") == i * i + 1 for w in workers for i in range(n))
            total = cache.get("total")
        check = sqlite3.connect(root + "/cache/cache.db").execute("PRAGMA integrity_check").fetchone()[0]
        print(good, total, check)
        """

    /// Runs ``diskcacheWorker`` in two processes on each of `points`, `each` keys and increments
    /// each, all at once; then what the cache holds, as ``diskcacheCheck`` says it through the first.
    /// The workers open the cache one after another: diskcache's set-up statements, run by every
    /// open, are schema changes SQLite does not retry when they meet a lock, so opens at one moment
    /// from several mounts can time out (docs/semantics.md).
    static func fillDiskcache(through points: [String], each: Int, logs: [String]) throws -> String {
        var workers: [(process: Process, input: Pipe)] = []
        for (index, point) in (points + points).enumerated() {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", diskcacheWorker, point, "w\(index)", "\(each)"]
            let (input, output) = (Pipe(), Pipe())
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            workers.append((process, input))
            let said = output.fileHandleForReading.readLine()
            #expect(said == "ready\n", "worker \(index) said \(said)")
        }
        for worker in workers { worker.input.fileHandleForWriting.write(Data("go\n".utf8)) }
        for worker in workers {
            worker.process.waitUntilExit()
            #expect(worker.process.terminationStatus == 0, "the mounts' logs: \(mountLogs(in: logs))")
        }
        let names = (0..<workers.count).map { "w\($0)" }.joined(separator: ",")
        return try runPython(diskcacheCheck, [points[0], names, "\(each)"]).output
    }

    /// What the mount processes logging to `directories` wrote, for a failure's message.
    static func mountLogs(in directories: [String]) -> String {
        directories.flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map { name in
                (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            }
        }.joined(separator: "\n")
    }

    func count(with kind: String, through points: [String], each: Int) throws -> String {
        var workers: [Process] = []
        for point in points + points {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.incrementer, point, kind, "\(each)"]
            try process.run()
            workers.append(process)
        }
        for worker in workers {
            worker.waitUntilExit()
            #expect(worker.terminationStatus == 0)
        }
        return try String(contentsOfFile: points[0] + "/counter", encoding: .utf8)
    }

    /// Runs `body` with two mount points of a new shared volume, each a `silo mount` process of its
    /// own, unmounted after.
    func withTwoMounts(_ label: String, _ body: (SiloBinary, [String]) throws -> Void) throws {
        let directory = try TemporaryDirectory(label)
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let points = [directory.file("one"), directory.file("two")]
        for point in points { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try silo.run(["nfs", "create", "shared"]).status == 0)
        for point in points { #expect(try silo.run(["mount", "shared", point]).status == 0) }
        defer { for point in points { _ = try? silo.run(["umount", point]) } }
        try body(silo, points)
    }

    @Test func aCounterIncrementedUnderLocksOnTwoMountsLosesNothing() throws {
        try withTwoMounts("silo-nfs-locks") { _, points in
            // Four processes, two on each mount, 25 increments each.
            #expect(try count(with: "flock", through: points, each: 25) == "100")
            for kind in ["fcntl", "filelock"] {
                try "0".write(toFile: points[0] + "/counter", atomically: false, encoding: .utf8)
                #expect(try count(with: kind, through: points, each: 25) == "100", "under \(kind)")
            }
        }
    }

    /// diskcache (SQLite under its own locks, rollback journal, no mmap) from four processes on two
    /// mounts at once: each keeps the database open and sees the others' transactions under its
    /// locks (the file keeps its inode, and its open copy takes other mounts' commits in place), so
    /// nothing is lost and the database stays sound.
    @Test func aDiskcacheSharedByTwoMountsLosesNothing() throws {
        try withTwoMounts("silo-nfs-diskcache") { silo, points throws in
            #expect(try Self.fillDiskcache(through: points, each: 10, logs: [silo.home + "/logs"]) == "40 40 ok\n")
        }
    }

    /// diskcache with its defaults (WAL, whose shared memory is a mapped file) from four processes in
    /// two containers on one machine at once: the containers share one mount of the volume, so the
    /// kernel keeps the mapping coherent between them, and nothing is lost.
    @Test func aDiskcacheInWALModeSharedByTwoContainersLosesNothing() throws {
        let directory = try TemporaryDirectory("silo-nfs-wal")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let worker = """
            import sys, diskcache
            root, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
            with diskcache.Cache(root + "/cache", timeout=120) as cache:
                for i in range(n):
                    cache.set(f"{worker}-{i}", i * i + 1)
                    cache.incr("total")
            """
        let check = """
            import sqlite3, sys, diskcache
            root, workers, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
            with diskcache.Cache(root + "/cache") as cache:
                good = sum(cache.get(f"{w}-{i}") == i * i + 1 for w in workers for i in range(n))
                total = cache.get("total")
                mode = cache._sql("PRAGMA journal_mode").fetchone()[0]
            print(good, total, sqlite3.connect(root + "/cache/cache.db").execute("PRAGMA integrity_check").fetchone()[0], mode)
            """
        var containers: [Process] = []
        for name in ["a", "b"] {
            let path = "/silo-nfs-wal-\(name)-\(getpid())"
            let script = "/usr/bin/python3 -c \"$0\" \(path) \(name)1 20 & /usr/bin/python3 -c \"$0\" \(path) \(name)2 20; wait %1 && exit $?"
            containers.append(try silo.start(["run", "--nfs", "cache:\(path)", "--", "/bin/sh", "-c", script, worker], stderr: directory.file("\(name).log")))
        }
        for (container, name) in zip(containers, ["a", "b"]) {
            container.waitUntilExit()
            #expect(container.terminationStatus == 0, "\(String(decoding: (try? directory.read("\(name).log")) ?? [], as: UTF8.self))")
        }
        let path = "/silo-nfs-wal-check-\(getpid())"
        let checked = try silo.run(["run", "--nfs", "cache:\(path)", "--", "/usr/bin/python3", "-c", check, path, "a1,a2,b1,b2", "20"])
        #expect(checked.stdout == "80 80 ok wal\n", "\(checked.stderr)")
    }

    /// The seed's SharedVolume example: a shelve cache on the shared volume, under a flufl.lock lock
    /// (hard links and lifetimes), filled by four containers computing overlapping keys.
    @Test func theSeedsShelveCacheFilledByFourContainersUnderFluflLock() throws {
        let directory = try TemporaryDirectory("silo-nfs-shelve")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let cache = "/silo-shelve-\(getpid())"
        let program = """
            import shelve, sys
            from datetime import timedelta
            from flufl.lock import Lock
            root, worker = sys.argv[1], int(sys.argv[2])
            def compute(key): return key * key + 1
            for key in range(worker * 5, worker * 5 + 15):
                with Lock(root + "/shelve.lock", lifetime=timedelta(seconds=600)):
                    with shelve.open(root + "/shelve") as memo:
                        known = memo.get(str(key))
                        if known is None:
                            memo[str(key)] = compute(key)
                        elif known != compute(key):
                            sys.exit(f"key {key} holds {known}")
            """
        var runs: [Process] = []
        for worker in 0..<4 {
            runs.append(try silo.start(
                ["run", "--nfs", "memo:\(cache)", "--", "/usr/bin/python3", "-c", program, cache, "\(worker)"],
                stderr: directory.file("worker-\(worker).err")))
        }
        for (worker, run) in runs.enumerated() {
            run.waitUntilExit()
            let said = (try? String(contentsOfFile: directory.file("worker-\(worker).err"), encoding: .utf8)) ?? ""
            #expect(run.terminationStatus == 0, "worker \(worker): \(said)\nthe mounts' logs: \(Self.mountLogs(in: [silo.home + "/logs"]))")
        }
        let check = try silo.run([
            "run", "--nfs", "memo:\(cache)", "--", "/usr/bin/python3", "-c",
            "import shelve, sys\nwith shelve.open(sys.argv[1] + '/shelve') as memo: print(sorted(int(k) for k in memo), all(memo[k] == int(k) ** 2 + 1 for k in memo))",
            cache,
        ])
        let keys = (0..<30).map(String.init).joined(separator: ", ")
        #expect(check.stdout == "[\(keys)] True\n", "\(check.stdout) \(check.stderr)")
    }

    @Test func aKilledMountsLockIsTakenElsewhereWithinTheLease() throws {
        let directory = try TemporaryDirectory("silo-nfs-lease")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"), environment: ["SILO_LOCK_LEASE_SECONDS": "2"])
        let (one, two) = (directory.file("one"), directory.file("two"))
        for point in [one, two] { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        #expect(try silo.run(["nfs", "create", "shared"]).status == 0)
        let mounted = try silo.run(["mount", "shared", one])
        #expect(try silo.run(["mount", "shared", two]).status == 0)
        defer { for point in [one, two] { _ = try? silo.run(["umount", point]) } }
        let pid = try #require(mounted.stdout.firstMatch(of: /pid (\d+)/).flatMap { Int32($0.1) })

        // A holder takes the lock through the first mount and says so; then its mount dies.
        let holder = try LockHolder(one + "/job.lock")
        defer { holder.stop() }
        #expect(holder.said == "held\n")
        let blocked = try runPython(
            "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\ntry: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('taken')\nexcept BlockingIOError: print('busy')",
            [two + "/job.lock"])
        #expect(blocked.output == "busy\n")
        #expect(kill(pid, SIGKILL) == 0)

        // A waiter on the second mount gets it once the lease (2 s) runs out, not before nor long after.
        let started = Date()
        let waited = try Self.waitForLock(two + "/job.lock")
        let seconds = Date().timeIntervalSince(started)
        #expect(waited.output == "taken\n", "\(waited.output)")
        #expect(seconds > 0.5 && seconds < 10, "the lock was taken after \(seconds) s")
    }
}
