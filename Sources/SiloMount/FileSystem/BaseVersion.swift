import Foundation
import SiloClient
import SiloCore

/// The version a mount shows beneath its changes, fetched as it is looked into: each directory's
/// listing once per version, entries as listings and lookups bring them.
final class BaseVersion: @unchecked Sendable {
    let service: any VolumeService
    let volume: VolumeName
    private let lock = NSLock()
    private var shown: Version
    private var listings: [VolumePath: [Entry]] = [:]
    private var entries: [VolumePath: Entry] = [:]

    init(service: any VolumeService, volume: VolumeName, version: Version) {
        self.service = service
        self.volume = volume
        self.shown = version
    }

    var version: Version { lock.withLock { shown } }

    /// Shows `version` from now on; what was fetched of the old one is dropped.
    func move(to version: Version) {
        lock.withLock {
            shown = version
            listings.removeAll()
            entries.removeAll()
        }
    }

    /// A directory's entries at the base version.
    func listing(of directory: VolumePath) async throws -> [Entry] {
        let (cached, version) = lock.withLock { (listings[directory], shown) }
        if let cached { return cached }
        let listed = try await service.list(directory, in: volume, version: version)
        lock.withLock {
            // A reload while this was fetched moved the base on: keep the answer out of the new cache.
            guard shown == version else { return }
            listings[directory] = listed
            for entry in listed { entries[entry.path] = entry }
        }
        return listed
    }

    /// The base's entry at `path` if its parent's listing has it, fetching the listing if needed.
    /// The parent must be a directory of the base.
    func child(_ path: VolumePath) async throws -> Entry? {
        let listed = try await listing(of: path.parent)
        // The parent's listing holds every child: once it is cached, a name not among the cached
        // entries is absent (a lookup is a dictionary hit, not a scan of the directory).
        let (found, cached) = lock.withLock { (entries[path], listings[path.parent] != nil) }
        if found != nil || cached { return found }
        // A reload moved the base on while the listing was fetched, so it was not cached.
        return listed.first { $0.path == path }
    }

    /// The root's entry.
    func root() async throws -> Entry {
        let (cached, version) = lock.withLock { (entries[.root], shown) }
        if let cached { return cached }
        guard let entry = try await service.entry(at: .root, in: volume, version: version) else {
            throw SiloError(.pathNotFound, "volume '\(volume)' has no root at version \(version.rawValue)")
        }
        lock.withLock { if shown == version { entries[.root] = entry } }
        return entry
    }

    /// `entry` with its content: listings leave small files' inline bytes out.
    func withContent(_ listed: Entry) async throws -> Entry {
        guard listed.kind == .file, listed.content == nil else { return listed }
        guard let entry = try await service.entry(at: listed.path, in: volume, version: version) else {
            throw SiloError(.pathNotFound, "\(listed.path) is gone from version \(version.rawValue) of volume '\(volume)'")
        }
        return entry
    }
}
