import CSiloSystem
import ArgumentParser
import Foundation
import Logging
import SiloClient
import SiloMount
import SiloRuntime
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

struct Mount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach a volume at a directory (FUSE).",
        discussion: """
            Mounts one version of the volume (the latest unless --version is given) at PATH. Nothing is \
            listed or fetched up front: directories are listed when first opened and file blocks fetched \
            when first read. Runs in the background unless --foreground; `silo umount PATH` detaches it. \
            Without --read-only, programs may change files there; the changes stay local to the mount \
            until `silo volume commit PATH` (or --background-commits), and are discarded at unmount \
            otherwise. Files read through are kept whole in the machine's cache ($SILO_CACHE, else \
            $SILO_HOME/cache, at most $SILO_CACHE_SIZE bytes), and later opens read them at the local \
            disk's speed (FUSE passthrough).
            """
    )

    @Argument(help: "The volume.")
    var volume: String

    @Argument(help: "An existing empty directory to mount at.")
    var path: String

    @Flag(help: "Refuse every change (EROFS).")
    var readOnly = false

    @Option(help: "Mount this version instead of the latest.")
    var version: Int64?

    @Flag(help: "Stay in the foreground until unmounted, SIGTERM or SIGINT.")
    var foreground = false

    @Flag(help: "Commit changes every few seconds while there are any, and once more at unmount.")
    var backgroundCommits = false

    @Option(help: "Seconds between background commits.")
    var commitInterval: Double = 5

    @Flag(inversion: .prefixedNo, help: "Let the kernel read and write cached and local files directly (FUSE passthrough).")
    var passthrough = true

    @Flag(help: "Let programs get and set extended attributes (user.*, trusted.*); every write then costs the kernel one more request.")
    var xattrs = false

    /// A shared volume's machine mount for containers (``MachineMount``): made shared if missing, and
    /// unmounted once no container holds a lock of this file.
    @Option(help: .hidden)
    var untilUnused: String?

    /// With --until-unused: a volume that does not exist is refused, not made.
    @Flag(help: .hidden)
    var noCreate = false

    func validate() throws {
        if backgroundCommits && readOnly { throw ValidationError("--background-commits needs a writable mount (no --read-only)") }
        if commitInterval <= 0 { throw ValidationError("--commit-interval must be positive") }
    }

    func run() async throws {
        let name: VolumeName
        do {
            name = try VolumeName(volume)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw SiloError(.localFile, "cannot mount at \(path): not a directory; create it first")
            }
        } catch {
            throw ExitStatus.fail(error)
        }
        if foreground {
            try await serve(name)
        } else {
            try detach()
        }
    }

    /// Starts this command again in the foreground, with its output in a log file, and returns once
    /// the mount is in place (the child's first line says so) or the child has failed.
    private func detach() throws {
        for changes in AbandonedChanges.find(under: SiloEnvironment.mounts) where changes.volume == volume {
            Output.note(
                "\(changes.changedPaths) uncommitted change(s) to '\(volume)' were left by a mount that died"
                    + (changes.savedAtMilliseconds.map { " at \(Output.time(milliseconds: $0))" } ?? "")
                    + ": `silo volume recover \(changes.id) --commit` keeps them, `--discard` removes them"
            )
        }
        let logs = try SiloEnvironment.privateHome() + "/logs"
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let log = logs + "/mount-\(volume)-\(getpid()).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = ["mount", volume, path, "--foreground"] + (readOnly ? ["--read-only"] : [])
            + (untilUnused.map { ["--until-unused", $0] } ?? []) + (noCreate ? ["--no-create"] : [])
            + (backgroundCommits ? ["--background-commits", "--commit-interval", "\(commitInterval)"] : [])
            + (version.map { ["--version", "\($0)"] } ?? []) + (passthrough ? [] : ["--no-passthrough"]) + (xattrs ? ["--xattrs"] : [])
        let ready = Pipe()
        child.standardOutput = ready
        child.standardInput = FileHandle.nullDevice
        child.standardError = FileHandle(forWritingAtPath: log)
        try child.run()
        let line = String(decoding: ready.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard line.hasPrefix("mounted") else {
            child.waitUntilExit()
            let reason = (try? String(contentsOfFile: log, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            FileHandle.standardError.write(Data("\(reason.isEmpty ? "silo: error: the mount did not start" : reason)\n".utf8))
            throw ExitCode(child.terminationStatus == 0 ? 1 : child.terminationStatus)
        }
        Output.line(line.trimmingCharacters(in: .whitespacesAndNewlines) + "; log: \(log)")
    }

    private func serve(_ name: VolumeName) async throws {
        var logger = Logger(label: "silo.mount")
        logger.logLevel = .warning
        let service: any VolumeService
        let attached: AttachedVolume
        do {
            let cache = try SiloEnvironment.contentCache()
            service = try await SiloEnvironment.openService(logger: logger)
            var options = AttachedVolume.Options(
                readOnly: readOnly, version: version.map { Version($0) }, backgroundCommits: backgroundCommits,
                commitInterval: commitInterval, passthrough: passthrough, author: SiloEnvironment.author
            )
            options.extendedAttributes = xattrs
            do {
                if untilUnused != nil {
                    try await Container.prepare(name, kind: .shared, create: !noCreate, attachment: "--nfs \(name)", service: service)
                }
                attached = try await AttachedVolume.attach(
                    name, at: path, service: service, cache: cache, options: options, runtime: SiloEnvironment.mounts + "/\(getpid())"
                )
            } catch {
                try? await service.close()
                throw error
            }
        } catch {
            throw ExitStatus.fail(error)
        }
        // SIGTERM, SIGINT and SIGHUP unmount (so does `silo umount` from outside); the handlers are in
        // place before anyone learns the mount is ready.
        for number in [SIGTERM, SIGINT, SIGHUP] { _ = silo_forward_signal(number) }
        Thread.detachNewThread {
            _ = silo_wait_for_signal()
            attached.session.unmount()
        }
        if let untilUnused {
            Thread.detachNewThread {
                do {
                    try MachineMount.waitUntilUnused(untilUnused)
                } catch {
                    FileHandle.standardError.write(Data("silo: \(error); unmounting\n".utf8))
                }
                attached.session.unmount()
            }
        }
        // One line on stdout once the mount is usable: the detaching parent (or a script) waits for it.
        Output.line("mounted '\(name)' version \(attached.fileSystem.version.rawValue) at \(attached.mountPoint) (pid \(getpid()))")
        let null = open("/dev/null", O_WRONLY)
        dup2(null, STDOUT_FILENO)
        close(null)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                attached.wait()
                done.resume()
            }
        }
        let ending = attached.detach()
        if ending.discardedPaths > 0 {
            FileHandle.standardError.write(
                Data("silo: \(ending.discardedPaths) changed path(s) in \(attached.mountPoint) were not committed and are discarded\n".utf8)
            )
        }
        try? await service.close()
    }
}

struct Umount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detach a volume mounted with `silo mount`.",
        discussion: "Programs with files still open there keep them until they close them; new opens fail."
    )

    @Argument(help: "Where the volume is mounted.")
    var path: String

    func run() async throws {
        guard let mountPoint = MountTable.canonical(path) else {
            throw ExitStatus.fail(SiloError(.localFile, "\(path): \(String(cString: strerror(errno)))"))
        }
        guard MountTable.hasSiloMount(at: mountPoint) else {
            throw ExitStatus.fail(SiloError(.invalidArgument, "\(mountPoint) is not a silo mount"))
        }
        let code = FUSESession.detach(mountPoint)
        guard code == 0 else {
            throw ExitStatus.fail(SiloError(.localFile, "cannot unmount \(mountPoint): \(String(cString: strerror(code)))"))
        }
        Output.note("unmounted \(mountPoint)")
    }
}
