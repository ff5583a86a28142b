import SiloCore

/// Locks on the volume's files, kept by the mount's ``LockService``: by path, so every mount sharing
/// the service sees one lock per file whatever inode its kernel gave it.
extension VolumeFileSystem {
    /// A lock of another owner that `lock` would conflict with, or nil.
    public func conflictingLock(_ lock: FileLock, on inode: Inode) async throws -> FileLock? {
        try await lockService().conflicting(lock, on: try inodes.path(of: inode))
    }

    /// Takes `lock` on the file; see ``LockService/lock(_:on:wait:)``.
    public func lock(_ lock: FileLock, on inode: Inode, wait: Bool) async throws {
        try await lockService().lock(lock, on: try inodes.path(of: inode), wait: wait)
    }

    /// Releases what `owner` holds of bytes `start...end` of the file.
    public func unlock(owner: UInt64, start: UInt64, end: UInt64, on inode: Inode) async throws {
        try await lockService().unlock(owner: owner, start: start, end: end, on: try inodes.path(of: inode))
    }

    private func lockService() throws -> any LockService {
        guard let locks else {
            throw SiloError(.invalidArgument, "this mount keeps no locks of its own: the kernel keeps them")
        }
        return locks
    }
}
