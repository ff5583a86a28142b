import SiloCore

/// Locks on the volume's files, kept by the mount's ``LockService``: by path, so every mount sharing
/// the service sees one lock per file whatever inode its kernel gave it.
extension VolumeFileSystem {
    /// A lock of another owner that `lock` would conflict with, or nil.
    public func conflictingLock(_ lock: FileLock, on inode: Inode) async throws -> FileLock? {
        try await lockService().conflicting(lock, on: try inodes.path(of: inode))
    }

    /// Takes `lock` on the file; see ``LockService/lock(_:on:wait:)``. In a shared volume, taking a
    /// lock then shows the latest version, so a program sees what the lock's last holder wrote under it,
    /// through descriptors it holds open too: the kernel has dropped the file's old pages before the
    /// lock is granted.
    public func lock(_ lock: FileLock, on inode: Inode, wait: Bool) async throws {
        try await lockService().lock(lock, on: try inodes.path(of: inode), wait: wait)
        // Held now: a failed look at the latest version leaves the next open to move the mount.
        try? await refresh()
        await invalidator?.drain()
    }

    /// Releases what `owner` holds of bytes `start...end` of the file. In a shared volume, what was
    /// written to it is committed first, so the next holder sees it.
    public func unlock(owner: UInt64, start: UInt64, end: UInt64, on inode: Inode) async throws {
        let path = try inodes.path(of: inode)
        var failure: (any Error)?
        if kind == .shared, overlay?.localFile(at: path) != nil {
            do {
                try await publish([path], conflict: SiloError(.io, "\(path) could not be committed"))
            } catch {
                failure = error  // the lock is released all the same; the program hears of it
            }
        }
        try await lockService().unlock(owner: owner, start: start, end: end, on: path)
        if let failure { throw failure }
    }

    private func lockService() throws -> any LockService {
        guard let locks else {
            throw SiloError(.invalidArgument, "this mount keeps no locks of its own: the kernel keeps them")
        }
        return locks
    }
}
