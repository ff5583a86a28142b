import CSiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A POSIX record lock (`fcntl`) or a BSD lock (`flock`, the whole file) on an open file, as a lock
/// request carries it.
public struct FUSELock: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case read, write, unlock
    }

    public var kind: Kind
    /// Bytes `start...end`; `end` is `UInt64.max` for "to the end of the file, however long".
    public var start: UInt64
    public var end: UInt64
    /// The process that asked (in the caller's PID namespace), shown by F_GETLK.
    public var pid: UInt32
    /// Who holds the lock: for a POSIX lock the kernel's lock owner (one per process's file table,
    /// or per open file description for an OFD lock); for a `flock` lock the open file's handle.
    ///
    /// (The kernel's owner of a `flock` lock is the address of its open file, which the next open
    /// may reuse while the release of the closed one is still on its way here: keyed by that, the
    /// late release would drop the new open's lock, and two programs would hold it at once.)
    public var owner: UInt64
    /// A `flock` lock (whole file, owned by the open file) rather than a POSIX one.
    public var isFlock: Bool

    public init(kind: Kind, start: UInt64 = 0, end: UInt64 = .max, pid: UInt32 = 0, owner: UInt64, isFlock: Bool = false) {
        self.kind = kind
        self.start = start
        self.end = end
        self.pid = pid
        self.owner = owner
        self.isFlock = isFlock
    }

    /// The lock a request carries; EINVAL for a type the protocol does not define or a range whose
    /// end is before its start.
    init(_ input: fuse_lk_in) throws {
        switch Int32(bitPattern: input.lk.type) {
        case Int32(F_RDLCK): kind = .read
        case Int32(F_WRLCK): kind = .write
        case Int32(F_UNLCK): kind = .unlock
        default: throw FUSEError(EINVAL)
        }
        guard input.lk.start <= input.lk.end else { throw FUSEError(EINVAL) }
        start = input.lk.start
        end = input.lk.end
        pid = input.lk.pid
        isFlock = input.lk_flags & UInt32(FUSE_LK_FLOCK) != 0
        owner = isFlock ? input.fh : input.owner
    }

    /// Whether this lock and `other`, held by different owners, cannot both be held.
    public func conflicts(with other: FUSELock) -> Bool {
        owner != other.owner && kind != .unlock && other.kind != .unlock && (kind == .write || other.kind == .write)
            && start <= other.end && other.start <= end
    }

    /// The same request answered "nothing is in the way" (F_GETLK's F_UNLCK).
    var unlocked: FUSELock {
        var copy = self
        copy.kind = .unlock
        return copy
    }
}
