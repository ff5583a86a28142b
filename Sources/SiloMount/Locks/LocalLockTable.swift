import SiloCore
import Synchronization

/// Locks kept in memory, for the mounts of one process: POSIX semantics per byte range (a lock
/// replaces what its owner held of those bytes; an unlock in the middle splits a lock in two), and
/// waits that end when a conflicting lock goes or when the waiting task is cancelled.
public final class LocalLockTable: LockService {
    private struct State {
        var held: [VolumePath: [FileLock]] = [:]
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter = 0
        /// Counts the changes to the held locks, so a waiter knows whether one came before it waited.
        var changes: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// How many lock requests wait now.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Every lock held on `file`, in the order taken.
    public func held(on file: VolumePath) -> [FileLock] { state.withLock { $0.held[file] ?? [] } }

    public func conflicting(_ lock: FileLock, on file: VolumePath) async throws -> FileLock? {
        state.withLock { state in state.held[file]?.first { $0.conflicts(with: lock) } }
    }

    public func lock(_ lock: FileLock, on file: VolumePath, wait: Bool) async throws {
        while true {
            // nil when taken; else the lock in the way and the count of changes seen.
            let blocked: (FileLock, UInt64)? = state.withLock { state in
                var locks = state.held[file] ?? []
                if let holder = locks.first(where: { $0.conflicts(with: lock) }) { return (holder, state.changes) }
                locks = FileLock.removing(owner: lock.owner, lock.start, lock.end, from: locks)
                locks.append(lock)
                state.held[file] = locks
                // A downgrade may let others in.
                Self.changed(&state)
                return nil
            }
            guard let (holder, seen) = blocked else { return }
            guard wait else {
                throw SiloError(.locked, "\(file) is locked by another owner (process \(holder.pid)); try again once it is released")
            }
            try await waitForAChange(after: seen)
        }
    }

    public func unlock(owner: UInt64, start: UInt64, end: UInt64, on file: VolumePath) async throws {
        state.withLock { state in
            let locks = FileLock.removing(owner: owner, start, end, from: state.held[file] ?? [])
            state.held[file] = locks.isEmpty ? nil : locks
            Self.changed(&state)
        }
    }

    /// Counts a change and wakes every waiter to look again.
    private static func changed(_ state: inout State) {
        state.changes += 1
        for waiter in state.waiters.values { waiter.resume() }
        state.waiters = [:]
    }

    /// Waits until the held locks change after the `seen`-th change (at once if they have), or
    /// throws when the task is cancelled.
    private func waitForAChange(after seen: UInt64) async throws {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Now { case wait, changed, cancelled }
                let now: Now = state.withLock { state in
                    if Task.isCancelled { return .cancelled }
                    if state.changes != seen { return .changed }
                    state.waiters[id] = continuation
                    return .wait
                }
                switch now {
                case .wait: break
                case .changed: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            state.withLock { state in state.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
