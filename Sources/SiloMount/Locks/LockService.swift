import SiloCore

/// A lock on a volume's file, as programs take them: `fcntl` record locks (POSIX, owned by a
/// process) and `flock` (the whole file, owned by an open file).
public struct FileLock: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case shared, exclusive
    }

    public var kind: Kind
    /// Bytes `start...end`; `end` is `UInt64.max` for "to the end of the file, however long".
    public var start: UInt64
    public var end: UInt64
    /// Who holds it: the kernel's lock owner, unique on the machine.
    public var owner: UInt64
    /// The process that took it, shown to F_GETLK.
    public var pid: UInt32
    public var isFlock: Bool

    public init(kind: Kind, start: UInt64 = 0, end: UInt64 = .max, owner: UInt64, pid: UInt32 = 0, isFlock: Bool = false) {
        self.kind = kind
        self.start = start
        self.end = end
        self.owner = owner
        self.pid = pid
        self.isFlock = isFlock
    }

    /// Whether this lock and `other` cannot both be held: different owners, overlapping bytes, and
    /// at least one exclusive.
    public func conflicts(with other: FileLock) -> Bool {
        owner != other.owner && (kind == .exclusive || other.kind == .exclusive) && overlaps(other.start, other.end)
    }

    func overlaps(_ low: UInt64, _ high: UInt64) -> Bool { start <= high && low <= end }
}

/// Where the locks on a volume's files are kept: the port through which a mount's lock requests
/// leave the kernel.
///
/// A snapshot mount has none: each machine's kernel keeps its programs' locks, as for a local disk.
/// A shared volume's mounts share one, so a lock holds across mounts and machines; an implementation
/// across machines leases what it grants (a holder that stops renewing loses its locks) and fences
/// late writes of a holder whose lease lapsed. ``LocalLockTable`` keeps them in memory, for mounts in
/// one process and as the reference others are tested against.
public protocol LockService: Sendable {
    /// A lock of another owner on `file` that `lock` would conflict with, or nil.
    func conflicting(_ lock: FileLock, on file: VolumePath) async throws -> FileLock?
    /// Takes `lock`, replacing what its owner held of those bytes (an upgrade, a downgrade). With
    /// `wait`, waits while another owner holds a conflicting lock, until the task is cancelled
    /// (`CancellationError`); without, a conflict is ``SiloError/Code/locked``.
    func lock(_ lock: FileLock, on file: VolumePath, wait: Bool) async throws
    /// Releases what `owner` holds of bytes `start...end` of `file` (a lock across them is split).
    func unlock(owner: UInt64, start: UInt64, end: UInt64, on file: VolumePath) async throws
}
