import SiloCore

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
    /// The precondition a commit of `file`'s content carries while this service believes it holds a
    /// lock on it, so that the commit fails if the lease lapsed meanwhile; nil when it holds none or
    /// its locks cannot lapse.
    func fence(for file: VolumePath) -> Precondition?
}

extension LockService {
    public func fence(for file: VolumePath) -> Precondition? { nil }
}
