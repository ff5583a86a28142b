import CSiloSystem
import ArgumentParser
import Foundation
import Logging
import SiloClient
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// The process at the heart of a container, started by `silo run` and `silo container start` inside a
/// mount namespace of its own (util-linux's `unshare --mount --propagation private`): it attaches each
/// volume at its path there, so nothing outside the container sees the mounts, then runs the command
/// (`silo run`) or waits to be stopped (`silo container start`), and at the end makes the final
/// background commits or reports what is discarded. Not for direct use.
struct ContainerSupervise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "supervise", shouldDisplay: false)

    @Option var id: String
    @Flag(help: "Keep the mounts until SIGTERM instead of running a command.") var keep = false
    @OptionGroup var options: ContainerOptions
    @Argument(parsing: .postTerminator) var command: [String] = []

    func run() async throws {
        var logger = Logger(label: "silo.container")
        logger.logLevel = .warning
        // Handlers first: a signal that comes while the volumes attach is kept, and acted on (passed
        // to the command, or ending the container) once there is something to act on.
        for number in keep ? [SIGTERM, SIGINT, SIGHUP] : ChildProcess.forwarded { _ = silo_forward_signal(number) }
        let service: any VolumeService
        let cache: ContentCache
        do {
            cache = try SiloEnvironment.contentCache()
            service = try await SiloEnvironment.openService(logger: logger)
        } catch {
            throw ExitStatus.fail(error)
        }
        let container = Container(id: id, service: service)
        do {
            try await container.attach(try options.attachments(), options: options, cache: cache)
            try container.record(options: options)
        } catch {
            await container.end()
            try? await service.close()
            throw ExitStatus.fail(error)
        }
        let status: Int32
        if keep {
            status = await container.serveUntilStopped()
        } else {
            status = await container.runCommand(command, options: options)
        }
        let messages = await container.end()
        for message in messages { FileHandle.standardError.write(Data("silo: \(message)\n".utf8)) }
        if keep {
            // For `silo container stop`, which waits for this process's lock, then prints it.
            try? Data(messages.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: ContainerRecord.endingPath(id)))
            unlink(ContainerRecord.path(id))
        } else {
            ContainerRecord.remove(id)
        }
        try? await service.close()
        throw ExitCode(status)
    }
}

/// The volumes attached in one container, and their clean-up.
final class Container: @unchecked Sendable {
    let id: String
    let service: any VolumeService
    private(set) var attached: [(AttachedVolume, ContainerRecord.Attached)] = []
    /// Ephemeral volumes made for this container, deleted at its end.
    private var ephemeral: [VolumeName] = []
    /// Mount points this container created, removed again at its end.
    private var createdDirectories: [String] = []

    init(id: String, service: any VolumeService) {
        self.id = id
        self.service = service
    }

    func attach(_ attachments: [VolumeAttachment], options: ContainerOptions, cache: ContentCache) async throws {
        for (index, attachment) in attachments.enumerated() {
            let name: VolumeName
            if let volume = attachment.volume {
                name = try VolumeName(volume)
                do {
                    _ = try await service.volume(name)
                } catch let error as SiloError where error.code == .volumeNotFound {
                    guard !options.noCreate else {
                        throw SiloError(
                            .volumeNotFound, "volume '\(name)' does not exist; create it with `silo volume create \(name)`, or drop --no-create")
                    }
                    _ = try await service.createVolume(name)
                }
            } else {
                name = try VolumeName("ephemeral-\(id)-\(index)")
                _ = try await service.createVolume(name)
                ephemeral.append(name)
            }
            try makeMountPoint(attachment.path)
            let volumeOptions = AttachedVolume.Options(
                readOnly: attachment.readOnly, backgroundCommits: options.backgroundCommits && !attachment.readOnly,
                commitInterval: options.commitInterval, passthrough: options.passthrough
            )
            let volume = try await AttachedVolume.attach(
                name, at: attachment.path, service: service, cache: cache, options: volumeOptions,
                runtime: SiloEnvironment.mounts + "/\(getpid())-\(index)"
            )
            let info = ContainerRecord.Attached(
                volume: name.rawValue, path: attachment.path, readOnly: attachment.readOnly, ephemeral: attachment.volume == nil,
                socket: volume.runtime + "/control.sock"
            )
            attached.append((volume, info))
        }
    }

    /// Creates `path` and any missing parents, remembering which, so the container leaves none behind.
    private func makeMountPoint(_ path: String) throws {
        var missing: [String] = []
        var current = path
        while !current.isEmpty, !FileManager.default.fileExists(atPath: current) {
            missing.append(current)
            current = String(current[..<(current.lastIndex(of: "/") ?? current.startIndex)])
        }
        for directory in missing.reversed() {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw SiloError(.localFile, "cannot create the mount point \(directory): \(String(cString: strerror(errno)))")
            }
            createdDirectories.append(directory)
        }
    }

    /// The command's environment: this one, plus the container's `--env` pairs; `silo` (this binary)
    /// first on PATH and SILO_HOME set, so `silo volume commit /path` works inside as outside.
    static func environment(_ pairs: [String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SILO_HOME"] = SiloEnvironment.home
        let binary = ContainerLaunch.binary
        let directory = String(binary[..<(binary.lastIndex(of: "/") ?? binary.startIndex)])
        environment["PATH"] = directory + ":" + (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        for pair in pairs {
            let split = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(split[0])] = split.count > 1 ? String(split[1]) : ""
        }
        return environment
    }

    /// Runs `command` in its own process group (made the terminal's foreground group, so Ctrl-C
    /// reaches it as it would a command run by a shell), passes on the signals this process gets,
    /// and returns its exit status (128 + N if signal N ended it).
    func runCommand(_ command: [String], options: ContainerOptions) async -> Int32 {
        guard !command.isEmpty else { return 0 }
        guard chdir(options.workdir) == 0 else {
            FileHandle.standardError.write(
                Data("silo: error: cannot enter the working directory \(options.workdir): \(String(cString: strerror(errno)))\n".utf8))
            return 2
        }
        do {
            return try await ChildProcess.run(command, environment: Self.environment(options.environment))
        } catch {
            FileHandle.standardError.write(Data("silo: error: cannot run \(command[0]): \(error)\n".utf8))
            return 127
        }
    }

    /// Records the container (`silo container list` shows it) and holds its lock until this process
    /// exits, however it ends: while the lock is held, the container lives.
    func record(options: ContainerOptions) throws {
        _ = try ContainerRecord.lock(id)
        let record = ContainerRecord(
            id: id, pid: getpid(), created: Date().timeIntervalSince1970, attachments: attached.map(\.1),
            environment: options.environment, workdir: options.workdir, backgroundCommits: options.backgroundCommits
        )
        try record.write()
    }

    /// Says the container is ready on stdout and waits for SIGTERM, SIGINT or SIGHUP (whose handlers
    /// were installed before the container was recorded, so `stop` cannot signal too early).
    func serveUntilStopped() async -> Int32 {
        Output.line("started \(id)")
        let null = open("/dev/null", O_WRONLY)
        dup2(null, STDOUT_FILENO)
        close(null)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                _ = silo_wait_for_signal()
                done.resume()
            }
        }
        return 0
    }

    /// Detaches every volume (final background commits first), deletes ephemeral volumes, removes the
    /// mount points it made, and returns what to tell the user.
    @discardableResult
    func end() async -> [String] {
        var messages: [String] = []
        for (volume, info) in attached.reversed() {
            let ending = volume.detach()
            if ending.discardedPaths > 0 && !info.ephemeral {
                messages.append("\(ending.discardedPaths) changed path(s) in \(info.path) ('\(info.volume)') were not committed and are discarded")
            }
            if let version = ending.committed {
                messages.append(
                    "committed \(ending.committedPaths) changed path(s) in \(info.path) as version \(version.rawValue) of '\(info.volume)'")
            }
        }
        attached = []
        for name in ephemeral {
            do {
                try await service.deleteVolume(name)
            } catch {
                messages.append("could not delete the ephemeral volume '\(name)': \(error); delete it with `silo volume delete \(name) --yes`")
            }
        }
        ephemeral = []
        // A mount point another container still mounts on stays: removing it would unmount that
        // container's volume (the kernel detaches mounts on a directory removed in another
        // namespace), and so would removing a directory above it.
        var kept: [String] = []
        for directory in createdDirectories.reversed() {
            if kept.contains(where: { $0.hasPrefix(directory + "/") }) || MountTable.isMountPointInAnyNamespace(directory) {
                kept.append(directory)
            } else {
                rmdir(directory)
            }
        }
        createdDirectories = []
        return messages
    }
}
