import SiloCore
import SiloFUSE

/// Lock requests, for file systems that keep their locks (``VolumeFileSystem/locks``); the kernel keeps
/// those of every other mount.
extension VolumeFUSEAdapter {
    public var handlesLocks: Bool { fileSystem.locks != nil }

    public func conflictingLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock) throws -> FUSELock? {
        let asked = FileLock(lock)
        return try Bridge.wait { [fileSystem] in try await fileSystem.conflictingLock(asked, on: Inode(node)) }.map(FUSELock.init)
    }

    public func setLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock, wait: Bool) async throws {
        do {
            if lock.kind == .unlock {
                try await fileSystem.unlock(owner: lock.owner, start: lock.start, end: lock.end, on: Inode(node))
            } else {
                try await fileSystem.lock(FileLock(lock), on: Inode(node), wait: wait)
            }
        } catch let error as SiloError {
            throw FUSEError(Errno.of(error))
        }
    }
}

extension FileLock {
    /// The lock a FUSE lock request asks for (a request to unlock has no ``FileLock``: it asks
    /// ``LockService/unlock(owner:start:end:on:)``).
    public init(_ lock: FUSELock) {
        self.init(kind: lock.kind == .read ? .shared : .exclusive, start: lock.start, end: lock.end, owner: lock.owner, pid: lock.pid, isFlock: lock.isFlock)
    }
}

extension FUSELock {
    /// A held lock as F_GETLK reports it.
    public init(_ lock: FileLock) {
        self.init(kind: lock.kind == .shared ? .read : .write, start: lock.start, end: lock.end, pid: lock.pid, owner: lock.owner, isFlock: lock.isFlock)
    }
}
