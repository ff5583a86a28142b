import Synchronization

/// A lock held across suspension points, granted in arrival order.
///
/// One SQLite connection must not interleave two transactions; an actor would (its methods re-enter at
/// every `await`), so each store operation holds this lock for its whole transaction instead.
final class AsyncMutex: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if !state.locked {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    func withLock<R>(_ body: () async throws -> R) async throws -> R {
        await lock()
        defer { unlock() }
        return try await body()
    }
}
