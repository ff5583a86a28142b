import Foundation
import SiloFUSE
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Locks a file system keeps itself, through the kernel: programs' `flock` and `fcntl` locks reach it
/// as lock requests, a wait for a held lock is answered later, and a signal ends the wait.
// The limit counts the wait for a thread of its own behind long process-driving tests, too.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread) struct FUSELockTests {
    /// A program that opens `f` in the mount and locks it: `hold` takes the lock, says `held` and keeps
    /// it until its standard input ends; `try` says `busy` if the lock is taken; `wait` waits for it and
    /// says `locked`, or `interrupted` if SIGUSR1 comes first. `posix` uses fcntl record locks, `flock`
    /// whole-file ones.
    static let locker = """
        import fcntl, signal, sys
        path, action, kind = sys.argv[1:4]
        f = open(path, "r+b")
        def take(flags):
            if kind == "flock":
                fcntl.flock(f, flags)
            else:
                fcntl.lockf(f, flags)
        class Interrupted(Exception): pass
        def interrupted(number, frame): raise Interrupted()
        signal.signal(signal.SIGUSR1, interrupted)
        # The test runner's threads block most signals, and a child inherits the mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        if action == "hold":
            take(fcntl.LOCK_EX); print("held", flush=True); sys.stdin.read()
        elif action == "try":
            try:
                take(fcntl.LOCK_EX | fcntl.LOCK_NB); print("locked", flush=True)
            except BlockingIOError:
                print("busy", flush=True)
        else:
            print("waiting", flush=True)
            try:
                take(fcntl.LOCK_EX); print("locked", flush=True)
            except Interrupted:
                print("interrupted", flush=True)
        """

    /// Starts the locker; returns the process, its stdin and its stdout.
    func locker(_ path: String, _ action: String, _ kind: String) throws -> (Process, FileHandle, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.locker, path, action, kind]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        return (process, input.fileHandleForWriting, output.fileHandleForReading)
    }

    /// The next line the program prints, or nil if none comes within `seconds` (a wait that never
    /// ends fails the test instead of hanging it).
    func line(_ handle: FileHandle, within seconds: Double = 30) -> String? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var bytes: [UInt8] = []
        while true {
            var ready = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            guard poll(&ready, 1, left) > 0 else { return nil }
            var byte: UInt8 = 0
            guard read(handle.fileDescriptor, &byte, 1) == 1, byte != 0x0A else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits until `condition` holds, checking every few milliseconds, up to `seconds`.
    func eventually(within seconds: Double = 30, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !condition() {
            guard Date() < deadline else { return false }
            usleep(2000)
        }
        return true
    }

    @Test(arguments: ["flock", "posix"]) func aLockIsHeldAcrossProcessesAndAWaitEndsWithASignalOrTheRelease(_ kind: String) throws {
        let files = LockingFile()
        let directory = try TemporaryDirectory("silo-fuse-locks")
        defer { directory.remove() }
        let mountPoint = directory.file("mnt")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let session = FUSESession(fileSystem: files, mountPoint: mountPoint)
        try session.mount()
        // One request thread: a wait that held it would stall every other request of the mount.
        try session.start(threads: 1)
        defer { session.unmount() }
        let path = session.mountPoint + "/f"

        var started: [Process] = []
        // SIGKILL: the runner's signal mask, which the programs inherit, blocks SIGTERM.
        defer { for process in started where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let (holder, holderInput, holderOutput) = try locker(path, "hold", kind)
        started.append(holder)
        try #require(line(holderOutput) == "held")
        let (trier, _, trierOutput) = try locker(path, "try", kind)
        started.append(trier)
        try #require(line(trierOutput) == "busy")
        trier.waitUntilExit()

        // A waiter the file system holds in its lock table; SIGUSR1 makes the kernel interrupt the
        // request, and the wait ends with EINTR (the program's handler runs).
        let (first, _, firstOutput) = try locker(path, "wait", kind)
        started.append(first)
        try #require(line(firstOutput) == "waiting")
        #expect(eventually { files.waiting == 1 })
        // Meanwhile the mount answers other requests.
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_size == 5)
        kill(first.processIdentifier, SIGUSR1)
        try #require(line(firstOutput) == "interrupted")
        first.waitUntilExit()
        #expect(eventually { files.waiting == 0 })

        // A second waiter gets the lock when the holder's process ends and the kernel releases it.
        let (second, _, secondOutput) = try locker(path, "wait", kind)
        started.append(second)
        try #require(line(secondOutput) == "waiting")
        #expect(eventually { files.waiting == 1 })
        try holderInput.close()
        holder.waitUntilExit()
        try #require(line(secondOutput) == "locked")
        second.waitUntilExit()
        #expect(holder.terminationStatus == 0 && second.terminationStatus == 0)
    }
}
