import SiloCore

extension VolumeFileSystem {
    /// Moves the mount to the volume's latest version, keeping uncommitted changes on top, and tells
    /// the caches above to drop what they hold of the paths that differ, and only those. Returns the
    /// version now shown. Readers meanwhile see the old version or the new one, never a mix of one
    /// listing.
    public func reload() async throws -> Version {
        // One at a time, and never back: a shared mount's follower and its opens both move it.
        try await reloads.withLock { try await moveToLatest(try await service.volume(volume).latestVersion) }
    }

    /// Moves a shared mount to the volume's latest version if it moved, so that this mount sees what
    /// others closed. The caches above are told what changed without waiting (from inside a request,
    /// the kernel would wait on the request itself); a caller that must not go on before the kernel
    /// has dropped what changed drains the invalidations after.
    ///
    /// Under the reload lock, as a reload: a move under way (by the mount's follower, say) ends first,
    /// so that what it invalidates is queued before this returns.
    public func refresh() async throws {
        guard kind == .shared else { return }
        try await reloads.withLock {
            let latest = try await service.volume(volume).latestVersion
            if latest != version { _ = try await moveToLatest(latest) }
        }
    }

    private func moveToLatest(_ latest: Version) async throws -> Version {
        let from = version
        guard latest >= from else { return from }
        let changed = latest == from ? [] : try await service.changes(in: volume, from: from, to: latest)
        var affected = Set(changed.map(\.path))
        // A shared mount's file that stays a file of one name keeps its inode (programs such as
        // SQLite check that a name still leads to the file they hold open); no passthrough open there
        // holds a backing file of it.
        var rewritten = Set<VolumePath>()
        if kind == .shared {
            for change in changed where change.kind == .modified && change.entryKind == .file && inodes.existing(change.path) != nil {
                if let shown = (try? await merged(change.path)) ?? nil, shown.kind == .file, shown.fileID == nil { rewritten.insert(change.path) }
            }
        }
        try await base.move(to: latest, changed: changed)
        if let overlay {
            let (dropped, open) = overlay.dropCommitted()
            affected.formUnion(dropped)
            for copy in open where affected.contains(copy.path) {
                do {
                    try await refreshOpenCopy(copy.path, local: copy.local, generation: copy.generation)
                } catch {
                    overlay.discard([copy.path])  // the descriptors keep what they had; new opens read the new file
                }
            }
        }
        for path in affected.sorted() where !path.isRoot {
            if rewritten.contains(path), ((try? await base.child(path)) ?? nil)?.fileID == nil, let inode = inodes.existing(path) {
                invalidator?.invalidate(inode)
                continue
            }
            // The path's next lookup gets a new inode: opens of the old one stay as they are (a
            // passthrough open's backing file belongs to its inode), and new opens start afresh.
            if let inode = inodes.detach(path) { invalidator?.invalidate(inode) }
            if let parent = inodes.existing(path.parent) { invalidator?.invalidate(name: path.name, in: parent) }
        }
        return latest
    }
}
