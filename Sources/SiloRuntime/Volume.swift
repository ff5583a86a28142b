import Foundation
import SiloClient
import SiloCore

/// A volume, with the seed's (and Modal's) calls, from Swift: made or found by name in a store
/// (``fromName(_:createIfMissing:service:version:)``: listed, read, uploaded to, copied within), or
/// attached at a path on this machine (``init(mountedAt:home:)``, a container's mount found by the
/// volume's name): `commit()` and `reload()`.
///
/// ```swift
/// let volume = try Volume(mountedAt: "/mnt/models")
/// try weights.write(to: URL(fileURLWithPath: "/mnt/models/final.pt"))
/// let version = try volume.commit()   // one new version; nil if nothing changed
/// try volume.reload()                 // others' commits become visible here
/// ```
///
/// A commit or reload asks the process serving the mount over its control socket; the mount stays
/// usable while it runs.
public struct Volume: Sendable {
    public let name: VolumeName
    /// The mount's record, for a volume found by where it is mounted.
    public let mount: MountControl.Record?
    /// The store, for a volume found by name.
    let service: (any VolumeService)?
    /// The version reads show when they name none (nil: the latest).
    public let version: Version?
    public let isReadOnly: Bool

    /// The mount at (or containing) `path`, among those started with SILO_HOME `home` (by default
    /// the one the CLI would use).
    public init(mountedAt path: String, home: String = EmbeddedVolumeService.defaultHome) throws {
        let mount = try MountControl.find(path, under: MountControl.runtimeDirectory(home: home))
        self.init(name: try VolumeName(mount.volume), mount: mount, service: nil, version: nil, isReadOnly: false)
    }

    /// This container's mount of volume `name` (`silo run -v NAME:/path`), found through the
    /// `SILO_ATTACHED` and `SILO_HOME` the container sets in `environment`.
    public init(attachedNamed name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let name = try VolumeName(name)
        let mount = try Self.attachedMount(of: name, environment: environment)
        self.init(name: name, mount: mount, service: nil, version: nil, isReadOnly: false)
    }

    init(name: VolumeName, mount: MountControl.Record?, service: (any VolumeService)?, version: Version?, isReadOnly: Bool) {
        self.name = name
        self.mount = mount
        self.service = service
        self.version = version
        self.isReadOnly = isReadOnly
    }

    /// Commits the mount's changes as one new version and returns it, or nil when nothing changed.
    @discardableResult
    public func commit(author: String? = nil) throws -> Version? {
        try ask(.commit(author: author)).version.map { Version($0) }
    }

    /// Moves the mount to the volume's latest version, keeping its uncommitted changes on top, and
    /// returns the version it now shows.
    @discardableResult
    public func reload() throws -> Version {
        Version(try ask(.reload).version ?? 0)
    }

    /// The version shown, uncommitted changes, and how the mount's files are read.
    public func status() throws -> (version: Version, changedPaths: Int, status: MountControl.Status) {
        let answer = try ask(.status)
        guard let status = answer.status else { throw SiloError(.io, "the mount of '\(name)' sent no status") }
        return (Version(answer.version ?? 0), answer.changedPaths, status)
    }

    /// Where this volume is attached: its mount, or in a container (`silo run -v NAME:/path`), the
    /// path `SILO_ATTACHED` names for it.
    private func attachedMount() throws -> MountControl.Record {
        if let mount { return mount }
        return try Self.attachedMount(of: name, environment: ProcessInfo.processInfo.environment)
    }

    private static func attachedMount(of name: VolumeName, environment: [String: String]) throws -> MountControl.Record {
        guard let path = Container.attachedPath(of: name, in: environment["SILO_ATTACHED"] ?? "") else {
            throw SiloError(
                .invalidArgument,
                "volume '\(name)' is not attached here; commit() and reload() act on a container's mount (silo run -v \(name):/path -- ...)")
        }
        return try MountControl.find(path, under: MountControl.runtimeDirectory(home: environment["SILO_HOME"] ?? EmbeddedVolumeService.defaultHome))
    }

    private func ask(_ request: MountControl.Request) throws -> MountControl.Answer {
        let mount = try attachedMount()
        let answer = try MountControl.send(request, to: mount.socket)
        if let error = answer.error { throw error.error }
        return answer
    }
}
