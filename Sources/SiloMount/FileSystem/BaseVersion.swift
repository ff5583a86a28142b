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

    /// One move between versions that carried the cache over: what the paths that changed became.
    private struct Move {
        var from: Version
        var to: Version
        var gone: [VolumePath]
        var fetched: [VolumePath: Entry]
    }

    /// The latest carried-over moves, oldest first, without a gap up to the version shown: a listing
    /// fetched for a version among them is carried over to the one shown in turn.
    private var moves: [Move] = []

    /// Shows `version` from now on; what was fetched of the old one is dropped.
    func move(to version: Version) {
        lock.withLock { moveLocked(to: version) }
    }

    /// At most this many changed paths are fetched one by one to carry the cached listings over to a
    /// new version; beyond, they are dropped and fetched again as they are looked into.
    static let patchLimit = 64

    /// Shows `version` from now on, which differs from the one shown by `changed`: the listings
    /// fetched so far are carried over with those paths' new entries, so that a directory a few names
    /// changed in is not listed whole again (a shared volume moves on at every close, in directories
    /// of any size). Many changes, or a change to a file of several names (whose other names' link
    /// counts change too), drop everything instead.
    func move(to version: Version, changed: [PathChange]) async throws {
        let from = self.version
        // A reload that found nothing new starts the caches afresh (what the kernel asks next is
        // fetched again); only moves are carried over.
        if version == from && changed.isEmpty { return move(to: version) }
        guard changed.count <= Self.patchLimit else { return move(to: version) }
        var fetched: [VolumePath: Entry] = [:]
        for change in changed where change.kind != .removed {
            guard let entry = try await service.entry(at: change.path, in: volume, version: version) else { return move(to: version) }
            fetched[change.path] = entry
        }
        lock.withLock {
            guard shown == from else { return moveLocked(to: version) }
            let move = Move(from: from, to: version, gone: changed.filter { $0.kind == .removed }.map(\.path), fetched: fetched)
            if fetched.values.contains(where: { $0.fileID != nil }) || move.gone.contains(where: { entries[$0]?.fileID != nil }) {
                return moveLocked(to: version)
            }
            shown = version
            for path in move.gone {
                entries[path] = nil
                // What a removed directory held is gone with it.
                for directory in listings.keys where directory.isWithin(path) { listings[directory] = nil }
            }
            for (path, entry) in fetched {
                entries[path] = entry
                if entry.kind != .directory { listings[path] = nil }
            }
            for directory in Set(move.gone.map(\.parent) + fetched.keys.map(\.parent)) {
                if var listed = listings[directory] {
                    Self.carry(&listed, of: directory, over: move)
                    listings[directory] = listed
                }
            }
            moves.append(move)
            if moves.count > 16 { moves.removeFirst() }
        }
    }

    private func moveLocked(to version: Version) {
        shown = version
        listings.removeAll()
        entries.removeAll()
        moves.removeAll()
    }

    /// `listed`, the listing of `directory` at `move.from`, as it is at `move.to`.
    private static func carry(_ listed: inout [Entry], of directory: VolumePath, over move: Move) {
        for path in move.gone where path.parent == directory {
            listed.removeAll { $0.path == path }
        }
        for (path, entry) in move.fetched where path.parent == directory {
            if let index = listed.firstIndex(where: { $0.path == path }) {
                listed[index] = entry
            } else {
                // Listings are in name order, byte by byte.
                let name = Array(path.name.utf8)
                let index = listed.firstIndex { !$0.path.name.utf8.lexicographicallyPrecedes(name) } ?? listed.endIndex
                listed.insert(entry, at: index)
            }
        }
    }

    /// A directory's entries at the base version.
    func listing(of directory: VolumePath) async throws -> [Entry] {
        let (cached, version) = lock.withLock { (listings[directory], shown) }
        if let cached { return cached }
        let listed = try await service.list(directory, in: volume, version: version)
        return lock.withLock {
            // A reload while this was fetched moved the base on: carried over the moves since, if they
            // were all carried-over ones, or kept out of the cache.
            var current = listed
            if shown != version {
                guard let first = moves.firstIndex(where: { $0.from == version }) else { return listed }
                for move in moves[first...] {
                    if move.gone.contains(where: { directory.isWithin($0) }) { return listed }
                    Self.carry(&current, of: directory, over: move)
                }
            }
            listings[directory] = current
            for entry in current { entries[entry.path] = entry }
            return current
        }
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
