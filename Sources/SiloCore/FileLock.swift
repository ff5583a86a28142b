/// A lock on a volume's file, as programs take them: `fcntl` record locks (POSIX, owned by a
/// process) and `flock` (the whole file, owned by an open file).
public struct FileLock: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
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

    /// Whether this lock and `other` cannot both be held: of one kind (`flock` and `fcntl` locks
    /// never meet, as on Linux), different owners, overlapping bytes, and at least one exclusive.
    public func conflicts(with other: FileLock) -> Bool {
        isFlock == other.isFlock && owner != other.owner && (kind == .exclusive || other.kind == .exclusive) && overlaps(other.start, other.end)
    }

    public func overlaps(_ low: UInt64, _ high: UInt64) -> Bool { start <= high && low <= end }

    /// `locks` without what `owner` held of `start...end`: locks inside go, locks across the range
    /// keep the parts outside it.
    public static func removing(owner: UInt64, _ start: UInt64, _ end: UInt64, from locks: [FileLock]) -> [FileLock] {
        var result: [FileLock] = []
        for lock in locks {
            guard lock.owner == owner, lock.overlaps(start, end) else {
                result.append(lock)
                continue
            }
            if lock.start < start {
                var before = lock
                before.end = start - 1
                result.append(before)
            }
            if lock.end > end {
                var after = lock
                after.start = end + 1
                result.append(after)
            }
        }
        return result
    }
}

/// One call on a volume's lock table, which a shared volume's mounts share (through the embedded store
/// or a server): locks are held by a `holder` (one per mount) for a lease it renews; a holder that
/// stops renewing (its mount killed, its machine gone) loses them when the lease runs out.
public struct LockCall: Sendable, Hashable {
    public enum Action: String, Sendable, Codable, Hashable {
        /// Takes `lock` on `path` unless another's conflicts (the answer is then that lock).
        case take
        /// Answers a lock of another that `lock` would conflict with, taking nothing.
        case test
        /// Releases what `lock.owner` holds of bytes `lock.start...lock.end` of `path`.
        case release
        /// Extends the lease of everything `holder` holds in the volume.
        case renew
        /// Releases everything `holder` holds in the volume.
        case releaseAll = "release-all"
    }

    public var action: Action
    public var holder: String
    public var path: VolumePath?
    public var lock: FileLock?
    /// How long what is taken or renewed stays held without a renewal.
    public var leaseMilliseconds: Int64

    public init(_ action: Action, holder: String, path: VolumePath? = nil, lock: FileLock? = nil, leaseMilliseconds: Int64 = 10_000) {
        self.action = action
        self.holder = holder
        self.path = path
        self.lock = lock
        self.leaseMilliseconds = leaseMilliseconds
    }

    /// Longest holder name and lease a store accepts.
    public static let holderBytes = 128
    /// What a lock holder's name must be, as said to whoever gave a bad one.
    public static let holderNameRule = "a lock holder is named by 1 to \(holderBytes) bytes"

    /// Whether `name` can name a lock holder (in a lock call, or a commit's `leaseOf` precondition).
    public static func isHolderName(_ name: String) -> Bool { !name.isEmpty && name.utf8.count <= holderBytes }
    public static let leaseRange: ClosedRange<Int64> = 100...3_600_000

    /// Checks what a request carries: a holder name, a lease in range, and a path and lock where the
    /// action needs them.
    public func validate() throws(SiloError) {
        guard Self.isHolderName(holder) else {
            throw SiloError(.invalidArgument, Self.holderNameRule)
        }
        guard Self.leaseRange.contains(leaseMilliseconds) else {
            throw SiloError(.invalidArgument, "a lock lease is \(Self.leaseRange.lowerBound) to \(Self.leaseRange.upperBound) ms, not \(leaseMilliseconds)")
        }
        if [.take, .test, .release].contains(action) {
            guard path != nil, let lock else { throw SiloError(.invalidArgument, "a lock \(action.rawValue) names a path and a lock") }
            guard lock.start <= lock.end else { throw SiloError(.invalidArgument, "a lock's range starts after it ends") }
        }
    }
}
