import Dispatch
import Foundation
import SiloClient
import SiloCore
import SiloWire
import SiloFUSE
import SiloMount

#if canImport(Glibc)
import Glibc
#endif

/// One volume attached at a directory by this process: its file system, FUSE session, unmount guard,
/// control socket and background commits. `silo mount` runs one; a container runs one per volume.
public final class AttachedVolume: @unchecked Sendable {
    public struct Options: Sendable {
        public var readOnly = false
        /// The version to show; the latest when nil.
        public var version: Version?
        /// Commit every `commitInterval` seconds while changed, and once more at detach.
        public var backgroundCommits = false
        public var commitInterval: Double = 5
        public var passthrough = true
        /// Let programs use extended attributes (at a cost to every write; see ``VolumeFUSEAdapter``).
        public var extendedAttributes = false
        /// Who commits made here are recorded as, unless a commit request names someone.
        public var author: String

        public init(
            readOnly: Bool = false, version: Version? = nil, backgroundCommits: Bool = false, commitInterval: Double = 5,
            passthrough: Bool = true, author: String
        ) {
            self.readOnly = readOnly
            self.version = version
            self.backgroundCommits = backgroundCommits
            self.commitInterval = commitInterval
            self.passthrough = passthrough
            self.author = author
        }
    }

    /// How an attachment ended.
    public struct Ending: Sendable {
        /// The version the final background commit made, if it made one.
        public var committed: Version?
        public var committedPaths = 0
        /// Changed paths that were not committed and are gone.
        public var discardedPaths = 0
    }

    public let name: VolumeName
    public let fileSystem: VolumeFileSystem
    public let session: FUSESession
    public let options: Options
    /// Local changes, control socket and record, while attached.
    public let runtime: String
    private var control: Int32 = -1
    private var guardPipe: Int32 = -1
    private var timer: (any DispatchSourceTimer)?
    private var scrubber: (any DispatchSourceTimer)?
    private var journal: (any DispatchSourceTimer)?
    /// A shared volume's mount follows others' commits (listings and attributes at most ~1 s stale).
    private var follower: Task<Void, Never>?

    /// How often the content cache is read through and checked, in hours (`$SILO_CACHE_SCRUB_HOURS`,
    /// default 24; 0 turns it off). Every process using the cache looks hourly; the first that finds
    /// the last check older than this does it.
    public static var scrubHours: Int {
        Int(ProcessInfo.processInfo.environment["SILO_CACHE_SCRUB_HOURS"] ?? "") ?? 24
    }

    private static func startScrubbing(_ cache: ContentCache) -> (any DispatchSourceTimer)? {
        let hours = scrubHours
        guard hours > 0 else { return nil }
        return repeating(every: 3600, label: "silo.cache-scrub", qos: .background) {
            if let report = cache.scrubIfDue(every: hours * 3600), !report.dropped.isEmpty {
                FileHandle.standardError.write(Data("silo: the content cache held \(report.dropped.count) damaged entr(ies), dropped: \(report.dropped.joined(separator: ", "))\n".utf8))
            }
        }
    }

    /// Runs `work` every `seconds` on a queue of its own, the first time `seconds` from now.
    private static func repeating(
        every seconds: Double, label: String, qos: DispatchQoS = .unspecified, _ work: @escaping @Sendable () -> Void
    ) -> any DispatchSourceTimer {
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: label, qos: qos))
        source.schedule(deadline: .now() + seconds, repeating: seconds)
        source.setEventHandler(handler: work)
        source.resume()
        return source
    }

    /// Mounts `name` at `path` and starts serving it; returns once the mount is in place.
    public static func attach(
        _ name: VolumeName, at path: String, service: any VolumeService, cache: ContentCache, options: Options, runtime: String
    ) async throws -> AttachedVolume {
        let info = try await service.volume(name)
        if info.kind == .shared, let version = options.version, version != info.latestVersion {
            throw SiloError(.invalidArgument, "volume '\(name)' is shared: a mount shows its latest version, not version \(version.rawValue); `silo volume get --version` reads older ones")
        }
        let version = options.version ?? info.latestVersion
        guard version <= info.latestVersion, version.rawValue >= 0 else {
            throw SiloError(.versionNotFound, "volume '\(name)' has versions 0 to \(info.latestVersion.rawValue), not \(version.rawValue)")
        }
        return try AttachedVolume(
            name, kind: info.kind, version: version, at: path, service: service, cache: cache, options: options, runtime: runtime)
    }

    private init(
        _ name: VolumeName, kind: VolumeKind, version: Version, at path: String, service: any VolumeService, cache: ContentCache,
        options: Options, runtime: String
    ) throws {
        self.name = name
        self.options = options
        self.runtime = runtime
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        fileSystem = try VolumeFileSystem(
            service: service, volume: name, version: version, scratch: options.readOnly ? nil : runtime + "/scratch", cache: cache,
            locks: kind == .shared ? StoreLockService(service: service, volume: name) : nil, kind: kind
        )
        var sessionOptions = FUSESession.Options()
        sessionOptions.source = "silo:\(name)"
        sessionOptions.readOnly = options.readOnly
        sessionOptions.passthrough = options.passthrough
        let adapter = VolumeFUSEAdapter(fileSystem, extendedAttributes: options.extendedAttributes)
        session = FUSESession(fileSystem: adapter, mountPoint: path, options: sessionOptions)
        adapter.kernel = session
        do {
            try session.mount()
        } catch let error as FUSEError {
            try? FileManager.default.removeItem(atPath: runtime)
            let hint = error.errno == EPERM ? " (mounting needs root, or fusermount3 from Debian's fuse3 and a mount point you own)" : ""
            throw SiloError(.localFile, "cannot mount at \(path): \(String(cString: strerror(error.errno)))\(hint)")
        }
        do {
            try session.start(threads: 4)
            guardPipe = try UnmountGuard.start(for: session.mountPoint)
            control = try Self.startControl(fileSystem, session: session, runtime: runtime, volume: name, author: options.author)
        } catch {
            session.unmount()
            try? FileManager.default.removeItem(atPath: runtime)
            throw error
        }
        scrubber = Self.startScrubbing(cache)
        if !options.readOnly {
            // About once a second, what is uncommitted is journaled, for `silo volume recover`.
            journal = Self.repeating(every: 1, label: "silo.journal") { [fileSystem] in
                do {
                    try fileSystem.saveJournal()
                } catch {
                    FileHandle.standardError.write(Data("silo: \(error)\n".utf8))
                }
            }
        }
        if kind == .shared {
            follower = Task { [fileSystem] in
                // Followed for as long as the mount lives: a failure (a server away a moment) is said
                // once and the feed taken up again a few seconds later.
                while !Task.isCancelled {
                    do {
                        for try await _ in PollingChangeFeed(service: service).updates(of: name, after: fileSystem.version) {
                            try await fileSystem.refresh()
                        }
                    } catch is CancellationError {
                        return
                    } catch {
                        FileHandle.standardError.write(Data("silo: following volume '\(name)' failed, trying again: \(error)\n".utf8))
                    }
                    try? await Task.sleep(for: .seconds(3))
                }
            }
        }
        if options.backgroundCommits, kind == .snapshot {
            timer = Self.repeating(every: options.commitInterval, label: "silo.background-commits") { [fileSystem, options] in
                Self.commitInBackground(fileSystem, author: options.author, when: "background")
            }
        }
    }

    public var mountPoint: String { session.mountPoint }

    /// The control socket, for records of where to reach this mount.
    public var controlSocket: String { runtime + "/control.sock" }

    /// Blocks until the file system is unmounted (by ``detach()``, `silo umount` or from outside).
    public func wait() { session.wait() }

    /// Unmounts (if still mounted), makes the final background commit or counts what is discarded,
    /// and removes the runtime directory.
    public func detach() -> Ending {
        session.unmount()
        follower?.cancel()
        if let locks = fileSystem.locks as? StoreLockService { try? Bridge.run { await locks.close() } }
        timer?.cancel()
        scrubber?.cancel()
        journal?.cancel()
        var ending = Ending()
        if options.backgroundCommits, let commit = Self.commitInBackground(fileSystem, author: options.author, when: "at unmount") {
            // The last commit, after the mount is gone: nothing can change beneath it any more.
            ending.committed = commit.result.version.version
            ending.committedPaths = commit.changedPaths
        }
        ending.discardedPaths = fileSystem.changedPaths
        if control >= 0 { close(control) }
        if guardPipe >= 0 { close(guardPipe) }
        control = -1
        guardPipe = -1
        try? FileManager.default.removeItem(atPath: runtime)
        return ending
    }

    @discardableResult
    static func commitInBackground(_ fileSystem: VolumeFileSystem, author: String, when: String) -> MountCommit? {
        do {
            guard let commit = try Bridge.run({ try await fileSystem.commit(author: author) }) else { return nil }
            let version = commit.result.version.version.rawValue
            FileHandle.standardError.write(
                Data("silo: committed \(commit.changedPaths) changed path(s) of '\(fileSystem.volume)' as version \(version) (\(when))\n".utf8)
            )
            return commit
        } catch {
            FileHandle.standardError.write(Data("silo: \(when) commit of '\(fileSystem.volume)' failed, will retry: \(error)\n".utf8))
            return nil
        }
    }

    /// Answers `silo volume commit`, `reload` and `status` for this mount over a socket in `runtime`,
    /// and records where to find it.
    private static func startControl(
        _ fileSystem: VolumeFileSystem, session: FUSESession, runtime: String, volume: VolumeName, author: String
    ) throws -> Int32 {
        let socket = runtime + "/control.sock"
        let listener = try MountControl.serve(at: socket) { request in
            do {
                switch request {
                case .commit(let asked):
                    let commit = try Bridge.run { try await fileSystem.commit(author: asked ?? author) }
                    return MountControl.Answer(version: commit?.result.version.version.rawValue, changedPaths: commit?.changedPaths ?? 0)
                case .reload:
                    guard fileSystem.kind == .snapshot else {
                        throw SiloError(
                            .invalidArgument,
                            "volume '\(volume)' is shared: its mounts show every close of another as it happens (at the next open); there is nothing to reload")
                    }
                    let version = try Bridge.run { try await fileSystem.reload() }
                    return MountControl.Answer(version: version.rawValue, changedPaths: fileSystem.changedPaths)
                case .status:
                    let counters = session.counters
                    let status = MountControl.Status(
                        writable: fileSystem.writable, passthrough: session.passthroughEnabled,
                        passedThroughOpens: counters.passedThroughOpens, servedOpens: counters.servedOpens, bytesServed: counters.bytesServed
                    )
                    return MountControl.Answer(version: fileSystem.version.rawValue, changedPaths: fileSystem.changedPaths, status: status)
                }
            } catch let error as SiloError {
                return MountControl.Answer(version: nil, changedPaths: 0, error: API.ErrorBody(error))
            } catch {
                return MountControl.Answer(version: nil, changedPaths: 0, error: API.ErrorBody(SiloError(.io, "\(error)")))
            }
        }
        guard let device = MountTable.siloMountDevice(at: session.mountPoint) else {
            close(listener)
            throw SiloError(.io, "the mount at \(session.mountPoint) is not in the mount table")
        }
        let record = MountControl.Record(mountPoint: session.mountPoint, volume: volume.rawValue, pid: getpid(), socket: socket, device: device)
        try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: runtime + "/mount.json"))
        return listener
    }
}

