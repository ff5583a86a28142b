import CSiloSystem
import Foundation
import SiloClient
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// What a container is made with: its attachments and how they behave, and its command's
/// environment and working directory.
public struct ContainerSettings: Sendable {
    public var attachments: [VolumeAttachment]
    /// Refuse volume names that do not exist instead of creating them.
    public var noCreate: Bool
    public var backgroundCommits: Bool
    public var commitInterval: Double
    public var passthrough: Bool
    public var extendedAttributes: Bool
    /// `KEY=VALUE` pairs set in the command's environment.
    public var environment: [String]
    public var workdir: String
    /// Who the container's commits are recorded as.
    public var author: String

    public init(
        attachments: [VolumeAttachment], noCreate: Bool = false, backgroundCommits: Bool = false, commitInterval: Double = 5,
        passthrough: Bool = true, extendedAttributes: Bool = false, environment: [String] = [], workdir: String = "/", author: String
    ) {
        self.extendedAttributes = extendedAttributes
        self.attachments = attachments
        self.noCreate = noCreate
        self.backgroundCommits = backgroundCommits
        self.commitInterval = commitInterval
        self.passthrough = passthrough
        self.environment = environment
        self.workdir = workdir
        self.author = author
    }
}

/// The volumes attached in one container, and their clean-up.
public final class Container: @unchecked Sendable {
    public let id: String
    public let service: any VolumeService
    public let records: ContainerRecords
    /// Where the mounts keep their runtime directories (``MountControl/runtimeDirectory(home:)``).
    public let mounts: String
    /// The `SILO_HOME` whose machine mounts of shared volumes (``MachineMount``) this container binds.
    public let home: String?
    public private(set) var attached: [(AttachedVolume, ContainerRecord.Attached)] = []
    /// Shared volumes bound from their machine mounts, which stay when the container ends.
    private var bound: [ContainerRecord.Attached] = []
    /// Ephemeral volumes made for this container, deleted at its end.
    private var ephemeral: [VolumeName] = []
    /// Mount points this container created, removed again at its end.
    private var createdDirectories: [String] = []

    public init(id: String, service: any VolumeService, records: ContainerRecords, mounts: String, home: String? = nil) {
        self.id = id
        self.service = service
        self.records = records
        self.mounts = mounts
        self.home = home
    }

    /// Attaches every volume the settings name, each at its path, creating volumes that do not exist
    /// (unless told not to) and ephemeral ones.
    public func attach(_ settings: ContainerSettings, cache: ContentCache) async throws {
        for (index, attachment) in settings.attachments.enumerated() {
            let name: VolumeName
            if let volume = attachment.volume {
                name = try VolumeName(volume)
                try await Self.prepare(
                    name, kind: attachment.kind ?? .snapshot, create: !settings.noCreate, attachment: "--nfs \(name):\(attachment.path)",
                    service: service)
            } else {
                name = try VolumeName("ephemeral-\(id)-\(index)")
                _ = try await service.createVolume(name, kind: attachment.kind ?? .snapshot)
                ephemeral.append(name)
            }
            try makeMountPoint(attachment.path)
            if attachment.kind == .shared, attachment.volume != nil, let home {
                let source = MachineMount.mountPoint(home: home, volume: name)
                if MountTable.hasSiloMount(at: source) {
                    try Self.bind(source, at: attachment.path, readOnly: attachment.readOnly)
                    let socket = (try? MountControl.find(source, under: mounts))?.socket ?? ""
                    bound.append(
                        ContainerRecord.Attached(volume: name.rawValue, path: attachment.path, readOnly: attachment.readOnly, ephemeral: false, socket: socket))
                    continue
                }
            }
            var volumeOptions = AttachedVolume.Options(
                readOnly: attachment.readOnly, backgroundCommits: settings.backgroundCommits && !attachment.readOnly,
                commitInterval: settings.commitInterval, passthrough: settings.passthrough, author: settings.author
            )
            volumeOptions.extendedAttributes = settings.extendedAttributes
            let volume = try await AttachedVolume.attach(
                name, at: attachment.path, service: service, cache: cache, options: volumeOptions, runtime: mounts + "/\(getpid())-\(index)"
            )
            let info = ContainerRecord.Attached(
                volume: name.rawValue, path: attachment.path, readOnly: attachment.readOnly, ephemeral: attachment.volume == nil,
                socket: volume.controlSocket
            )
            attached.append((volume, info))
        }
    }

    /// Mounts `source` (a machine mount) at `path` too, in this container's namespace.
    private static func bind(_ source: String, at path: String, readOnly: Bool) throws {
        guard Glibc.mount(source, path, nil, UInt(MS_BIND), nil) == 0 else {
            throw SiloError(.localFile, "cannot attach \(source) at \(path): \(String(cString: strerror(errno)))")
        }
        if readOnly, Glibc.mount(source, path, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY), nil) != 0 {
            let reason = String(cString: strerror(errno))
            umount2(path, Int32(MNT_DETACH))
            throw SiloError(.localFile, "cannot make \(path) read-only: \(reason)")
        }
    }

    /// Makes volume `name` (of `kind`) ready to attach: made if it does not exist (refused instead
    /// unless `create`), and, for a shared attachment (named `attachment` in what is said), refused
    /// if it is a snapshot volume.
    public static func prepare(_ name: VolumeName, kind: VolumeKind, create: Bool, attachment: String, service: any VolumeService) async throws {
        var existing = try? await service.volume(name)
        if existing == nil {
            guard create else {
                throw SiloError(
                    .volumeNotFound,
                    "volume '\(name)' does not exist; create it with `silo \(kind == .shared ? "nfs" : "volume") create \(name)`, or drop --no-create")
            }
            do {
                existing = try await service.createVolume(name, kind: kind)
            } catch let error as SiloError where error.code == .volumeExists {
                existing = try await service.volume(name)  // another run made it first
            }
        }
        if kind == .shared, existing?.kind != .shared {
            throw SiloError(
                .invalidArgument,
                "\(attachment): volume '\(name)' is a snapshot volume; attach it with -v, or use a shared volume (`silo nfs create`)")
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

    /// The command's environment: this one, plus the container's `--env` pairs; `binary` (the `silo`
    /// executable) first on PATH and SILO_HOME set to `home`, so `silo volume commit /path` works
    /// inside as outside; and `SILO_ATTACHED`, what is attached where (``attachedVariable(_:)``), so a
    /// program can find its volume's path by the volume's name.
    public static func environment(
        _ pairs: [String], binary: String, home: String, attached: [ContainerRecord.Attached] = []
    ) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SILO_HOME"] = home
        environment["SILO_ATTACHED"] = attachedVariable(attached)
        let directory = String(binary[..<(binary.lastIndex(of: "/") ?? binary.startIndex)])
        environment["PATH"] = directory + ":" + (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        for pair in pairs {
            let split = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(split[0])] = split.count > 1 ? String(split[1]) : ""
        }
        return environment
    }

    /// `SILO_ATTACHED`: one line per attachment, `VOLUME<TAB>PATH<TAB>rw|ro` (volume names hold no tab
    /// or newline; paths are absolute and written by the user's own --volume option).
    public static func attachedVariable(_ attached: [ContainerRecord.Attached]) -> String {
        attached.map { "\($0.volume)\t\($0.path)\t\($0.readOnly ? "ro" : "rw")" }.joined(separator: "\n")
    }

    /// The path `variable` (a container's `SILO_ATTACHED`: `VOLUME<TAB>PATH<TAB>rw|ro` lines)
    /// attaches `volume` at.
    public static func attachedPath(of volume: VolumeName, in variable: String) -> String? {
        for line in variable.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count >= 2, fields[0] == volume.rawValue { return String(fields[1]) }
        }
        return nil
    }

    /// What this container has attached, where.
    public var attachments: [ContainerRecord.Attached] { attached.map(\.1) + bound }

    /// Runs `command` in its own process group (made the terminal's foreground group, so Ctrl-C
    /// reaches it as it would a command run by a shell), passes on the signals this process gets,
    /// and returns its exit status (128 + N if signal N ended it).
    public func runCommand(_ command: [String], settings: ContainerSettings, binary: String, home: String) async -> Int32 {
        guard !command.isEmpty else { return 0 }
        guard chdir(settings.workdir) == 0 else {
            FileHandle.standardError.write(
                Data("silo: error: cannot enter the working directory \(settings.workdir): \(String(cString: strerror(errno)))\n".utf8))
            return 2
        }
        do {
            return try await ChildProcess.run(
                command, environment: Self.environment(settings.environment, binary: binary, home: home, attached: attachments))
        } catch {
            FileHandle.standardError.write(Data("silo: error: cannot run \(command[0]): \(error)\n".utf8))
            return 127
        }
    }

    /// Records the container (`silo container list` shows it) and holds its lock until this process
    /// exits, however it ends: while the lock is held, the container lives.
    public func record(_ settings: ContainerSettings) throws {
        _ = try records.lock(id)
        let record = ContainerRecord(
            id: id, pid: getpid(), created: Date().timeIntervalSince1970, attachments: attachments,
            environment: settings.environment, workdir: settings.workdir, backgroundCommits: settings.backgroundCommits
        )
        try records.write(record)
    }

    /// Stops writing to stdout (the caller has said the container is ready there) and waits for
    /// SIGTERM, SIGINT or SIGHUP (whose handlers were installed before the container was recorded, so
    /// `stop` cannot signal too early).
    public func serveUntilStopped() async -> Int32 {
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
    public func end() async -> [String] {
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
        // The machine mount stays for other containers (it ends once none holds it).
        for info in bound { umount2(info.path, Int32(MNT_DETACH)) }
        bound = []
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
