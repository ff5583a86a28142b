import Foundation
import SiloClient
import SiloCore

/// A volume attached at a path on this machine by `silo mount`, as a program that uses it sees it:
/// the seed's `volume.commit()` and `volume.reload()`, from Swift.
///
/// ```swift
/// let volume = try Volume(mountedAt: "/mnt/models")
/// try weights.write(to: URL(fileURLWithPath: "/mnt/models/final.pt"))
/// let version = try volume.commit()   // one new version; nil if nothing changed
/// try volume.reload()                 // others' commits become visible here
/// ```
///
/// Each call asks the process serving the mount over its control socket; the mount stays usable
/// while a commit or reload runs.
public struct Volume: Sendable {
    /// The mount's record: where it is mounted, which volume, which process serves it.
    public let mount: MountControl.Record

    /// The mount at (or containing) `path`, among those started with SILO_HOME `home` (by default
    /// the one the CLI would use).
    public init(mountedAt path: String, home: String = EmbeddedVolumeService.defaultHome) throws {
        mount = try MountControl.find(path, under: MountControl.runtimeDirectory(home: home))
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
        guard let status = answer.status else { throw SiloError(.io, "the mount at \(mount.mountPoint) sent no status") }
        return (Version(answer.version ?? 0), answer.changedPaths, status)
    }

    private func ask(_ request: MountControl.Request) throws -> MountControl.Answer {
        let answer = try MountControl.send(request, to: mount.socket)
        if let error = answer.error { throw error.error }
        return answer
    }
}
