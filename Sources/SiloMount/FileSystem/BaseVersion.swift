import Foundation
import SiloClient
import SiloCore

/// The version a mount shows beneath its changes, fetched as it is looked into: each directory's
/// listing once per version, entries as listings and lookups bring them.
///
/// A name looked up in a directory not listed yet is fetched alone (as NFS's LOOKUP), and only the
/// directory's ``listThreshold``-th such lookup lists it whole: a shared mount moves to a new version
/// at every close, and a create in a directory of many names must not list it each time.
final class BaseVersion: @unchecked Sendable {
    let service: any VolumeService
    let volume: VolumeName
    private let lock = NSLock()
    private var shown: Version
    private var listings: [VolumePath: [Entry]] = [:]
    private var entries: [VolumePath: Entry] = [:]
    /// Names found absent by lookups of their own, in directories not listed.
    private var absent: Set<VolumePath> = []
    /// Lookups of their own so far, per directory not listed.
    private var lookups: [VolumePath: Int] = [:]
    /// How many directories each directory counted so far holds (its link count), carried over from
    /// version to version by the changes between them.
    private var subdirectories: [VolumePath: Int] = [:]

    /// How many names of one directory are fetched alone, per version, before it is listed instead.
    static let listThreshold = 8

    init(service: any VolumeService, volume: VolumeName, version: Version) {
        self.service = service
        self.volume = volume
        self.shown = version
    }

    var version: Version { lock.withLock { shown } }

    /// Shows `version` from now on; what was fetched of the old one is dropped.
    func move(to version: Version) {
        lock.withLock { moveLocked(to: version) }
    }

    private func moveLocked(to version: Version) {
        shown = version
        listings.removeAll()
        entries.removeAll()
        absent.removeAll()
        lookups.removeAll()
        subdirectories.removeAll()
    }

    /// At most this many changed names of unknown former kind are looked up to carry the
    /// subdirectory counts over to a new version; beyond, the counts are dropped.
    static let carryLimit = 64

    /// Shows `version`, which differs from the one shown by `changed` (every path whose entry
    /// differs, as the store reports it), from now on. What was fetched of the old one is dropped but
    /// the subdirectory counts, which the changes carry over exactly: a directory's count moves by
    /// the directories added to and removed from it. (The kernel asks for a directory's attributes
    /// after each create in it, and a shared mount moves to a new version at each.)
    func move(to version: Version, changed: [PathChange]) async throws {
        let (from, counted, known) = lock.withLock { (shown, subdirectories, entries) }
        var carried = counted
        var lookedUp = 0
        for change in changed where !carried.isEmpty {
            // A directory gone or turned into something else takes its own count and those beneath.
            if change.kind == .removed || change.entryKind != .directory {
                carried = carried.filter { !$0.key.isWithin(change.path) }
            }
            guard !change.path.isRoot, carried[change.path.parent] != nil else { continue }
            var before: EntryKind?
            switch change.kind {
            case .added: before = nil
            case .removed: before = change.entryKind
            case .modified:
                if let entry = known[change.path] {
                    before = entry.kind
                } else if lookedUp < Self.carryLimit {
                    lookedUp += 1
                    before = try await service.entry(at: change.path, in: volume, version: from)?.kind
                } else {
                    carried.removeAll()
                    continue
                }
            }
            let after = change.kind == .removed ? nil : change.entryKind
            carried[change.path.parent]! += (after == .directory ? 1 : 0) - (before == .directory ? 1 : 0)
        }
        lock.withLock {
            // Another move came first: the counts were for a version no longer shown.
            guard shown == from else { return moveLocked(to: version) }
            moveLocked(to: version)
            subdirectories = carried
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

    /// The base's entry at `path`, from its parent's listing when that is cached, else fetched alone
    /// (or with the whole listing, once the directory has had its share of lookups). The parent must
    /// be a directory of the base.
    func child(_ path: VolumePath) async throws -> Entry? {
        let (known, lookedUp, version) = lock.withLock { () -> (Entry??, Int, Version) in
            if let entry = entries[path] { return (.some(entry), 0, shown) }
            // A cached listing holds every child: a name not among the cached entries is absent.
            if listings[path.parent] != nil || absent.contains(path) { return (.some(nil), 0, shown) }
            return (nil, lookups[path.parent, default: 0], shown)
        }
        if let known { return known }
        if lookedUp < Self.listThreshold {
            let entry = try await service.entry(at: path, in: volume, version: version)
            lock.withLock {
                guard shown == version else { return }
                lookups[path.parent, default: 0] += 1
                if let entry { entries[path] = entry } else { absent.insert(path) }
            }
            return entry
        }
        let listed = try await listing(of: path.parent)
        // The parent's listing holds every child: once it is cached, a name not among the cached
        // entries is absent (a lookup is a dictionary hit, not a scan of the directory).
        let (found, cached) = lock.withLock { (entries[path], listings[path.parent] != nil) }
        if found != nil || cached { return found }
        // A reload moved the base on while the listing was fetched, so it was not cached.
        return listed.first { $0.path == path }
    }

    /// How many directories `directory` (a directory of the base) holds.
    func subdirectoryCount(of directory: VolumePath) async throws -> Int {
        let (cached, version) = lock.withLock { (subdirectories[directory], shown) }
        if let cached { return cached }
        let count = try await listing(of: directory).count { $0.kind == .directory }
        lock.withLock { if shown == version { subdirectories[directory] = count } }
        return count
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
