import SiloCore

extension VolumeFileSystem {
    /// Moves the mount to the volume's latest version, keeping uncommitted changes on top, and tells
    /// the caches above to drop what they hold of the paths that differ, and only those. Returns the
    /// version now shown. Readers meanwhile see the old version or the new one, never a mix of one
    /// listing.
    public func reload() async throws -> Version {
        // One at a time, and never back: a shared mount's follower and its opens both move it.
        try await reloads.withLock { try await moveToLatest() }
    }

    private func moveToLatest() async throws -> Version {
        let from = version
        let latest = try await service.volume(volume).latestVersion
        guard latest >= from else { return from }
        let changed = latest == from ? [] : try await service.changes(in: volume, from: from, to: latest)
        var affected = Set(changed.map(\.path))
        base.move(to: latest)
        if let overlay { affected.formUnion(overlay.dropCommitted()) }
        for path in affected.sorted() where !path.isRoot {
            // The path's next lookup gets a new inode: opens of the old one stay as they are (a
            // passthrough open's backing file belongs to its inode), and new opens start afresh.
            if let inode = inodes.detach(path) { invalidator?.invalidate(inode) }
            if let parent = inodes.existing(path.parent) { invalidator?.invalidate(name: path.name, in: parent) }
        }
        return latest
    }
}
