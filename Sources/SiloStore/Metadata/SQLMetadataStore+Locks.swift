import SQLKit
import SiloCore

/// Shared volumes' lock tables: one row per lock, held by a mount until its lease runs out, and one
/// per holder with its lease. Calls run in write transactions, so two mounts' takes are serialised; a
/// row's lease is checked at every call, so a holder that stopped renewing loses its locks without
/// anyone cleaning up after it, and a holder that comes back after its lease lapsed is refused.
extension SQLMetadataStore {
    /// A lock as a row keeps it, with whose it is.
    private struct Held {
        var holder: String
        var lock: FileLock

        func conflicts(with lock: FileLock, of holder: String) -> Bool {
            // One holder's owners are the kernel's of one machine; another holder's are another's.
            var asked = lock
            if holder != self.holder { asked.owner = self.lock.owner &+ 1 }
            return self.lock.conflicts(with: asked)
        }
    }

    /// How long a lapsed holder's row is kept, refusing its name: a week.
    static let lapsedHolderKeptMilliseconds: Int64 = 7 * 24 * 3_600_000

    public func locks(_ call: LockCall, in volume: VolumeName, workspace: String, now: Int64) async throws -> FileLock? {
        try call.validate()
        enum Outcome { case answered(FileLock?), lapsed }
        let outcome: Outcome = try await backend.writeTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            guard row.info.kind == .shared else {
                throw SiloError(.invalidArgument, "volume '\(volume)' is a snapshot volume: its mounts' locks are kept by each machine's kernel")
            }
            let expires = now &+ call.leaseMilliseconds
            if call.action == .releaseAll {
                try await db.raw("DELETE FROM locks WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)").run()
                try await db.raw("DELETE FROM lock_holders WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)").run()
                return .answered(nil)
            }
            // A holder whose lease lapsed has lost its locks (others may hold them now) and keeps its
            // row, so that neither its calls nor its fenced commits succeed under that name again.
            let lease = try await db.raw(
                "SELECT expires_at FROM lock_holders WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)"
            ).first()?.decode(column: "expires_at", as: Int64.self)
            if let lease, lease < now {
                try await db.raw("DELETE FROM locks WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)").run()
                return .lapsed
            }
            if lease != nil {
                try await db.raw(
                    "UPDATE lock_holders SET expires_at = \(bind: expires) WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)"
                ).run()
            }
            if call.action == .renew {
                try await db.raw(
                    "UPDATE locks SET expires_at = \(bind: expires) WHERE volume_id = \(bind: row.id) AND holder = \(bind: call.holder)"
                ).run()
                return .answered(nil)
            }
            guard let path = call.path, let lock = call.lock else { return .answered(nil) }
            try await db.raw(
                "DELETE FROM locks WHERE volume_id = \(bind: row.id) AND path = \(bind: path.rawValue) AND expires_at < \(bind: now)"
            ).run()
            let held = try await Self.heldLocks(on: path, volume: row.id, db: db)
            if call.action != .release, let blocking = held.first(where: { $0.conflicts(with: lock, of: call.holder) }) {
                return .answered(blocking.lock)
            }
            guard call.action != .test else { return .answered(nil) }
            if call.action == .take && lease == nil {
                try await db.raw(
                    "DELETE FROM lock_holders WHERE volume_id = \(bind: row.id) AND expires_at < \(bind: now &- Self.lapsedHolderKeptMilliseconds)"
                ).run()
                try await db.raw(
                    "INSERT INTO lock_holders (volume_id, holder, expires_at) VALUES (\(bind: row.id), \(bind: call.holder), \(bind: expires))"
                ).run()
            }
            // What this holder's owner held of those bytes is replaced (or, for a release, removed).
            let mine = held.filter { $0.holder == call.holder }.map(\.lock)
            var kept = FileLock.removing(owner: lock.owner, lock.start, lock.end, from: mine)
            if call.action == .take { kept.append(lock) }
            try await db.raw(
                "DELETE FROM locks WHERE volume_id = \(bind: row.id) AND path = \(bind: path.rawValue) AND holder = \(bind: call.holder)"
            ).run()
            for kept in kept {
                try await db.raw(
                    """
                    INSERT INTO locks (volume_id, path, holder, owner, flock, exclusive, start_offset, end_offset, pid, expires_at)
                    VALUES (\(bind: row.id), \(bind: path.rawValue), \(bind: call.holder), \(bind: Int64(bitPattern: kept.owner)),
                        \(bind: kept.isFlock ? 1 : 0), \(bind: kept.kind == .exclusive ? 1 : 0), \(bind: Int64(bitPattern: kept.start)),
                        \(bind: Int64(bitPattern: kept.end)), \(bind: Int64(kept.pid)), \(bind: expires))
                    """
                ).run()
            }
            return .answered(nil)
        }
        switch outcome {
        case .answered(let lock):
            return lock
        case .lapsed:
            throw SiloError(
                .leaseLapsed,
                "lock holder '\(call.holder)' of volume '\(volume)' let its lease run out: the locks it held are released (others may hold them now) and what it writes under them is refused; take locks again under a new holder name"
            )
        }
    }

    private static func heldLocks(on path: VolumePath, volume: Int64, db: any SQLDatabase) async throws -> [Held] {
        try await db.raw(
            """
            SELECT holder, owner, flock, exclusive, start_offset, end_offset, pid FROM locks
            WHERE volume_id = \(bind: volume) AND path = \(bind: path.rawValue)
            """
        ).all().map { row in
            Held(
                holder: try row.decode(column: "holder", as: String.self),
                lock: FileLock(
                    kind: try row.decode(column: "exclusive", as: Int.self) != 0 ? .exclusive : .shared,
                    start: UInt64(bitPattern: try row.decode(column: "start_offset", as: Int64.self)),
                    end: UInt64(bitPattern: try row.decode(column: "end_offset", as: Int64.self)),
                    owner: UInt64(bitPattern: try row.decode(column: "owner", as: Int64.self)),
                    pid: UInt32(truncatingIfNeeded: try row.decode(column: "pid", as: Int64.self)),
                    isFlock: try row.decode(column: "flock", as: Int.self) != 0
                )
            )
        }
    }
}
