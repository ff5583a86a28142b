import Synchronization

/// A lock held across suspension points, granted in arrival order.
///
/// One SQLite connection must not interleave two transactions; an actor would (its methods re-enter at
/// every `await`), so each store operation holds this lock for its whole transaction instead; a mount
/// holds one for each commit.
public final class AsyncMutex: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    public func lock() async {
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

    public func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    public func withLock<R>(_ body: () async throws -> R) async throws -> R {
        await lock()
        defer { unlock() }
        return try await body()
    }
}

/// A fixed set of resources lent one at a time, granted in arrival order when all are out.
public final class AsyncPool<Resource: Sendable>: Sendable {
    private struct State {
        var available: [Resource]
        var waiters: [CheckedContinuation<Resource, Never>] = []
    }

    private let state: Mutex<State>
    public let all: [Resource]

    public init(_ resources: [Resource]) {
        precondition(!resources.isEmpty)
        all = resources
        state = Mutex(State(available: resources))
    }

    public func take() async -> Resource {
        await withCheckedContinuation { (continuation: CheckedContinuation<Resource, Never>) in
            let resource = state.withLock { state -> Resource? in
                if let resource = state.available.popLast() { return resource }
                state.waiters.append(continuation)
                return nil
            }
            if let resource { continuation.resume(returning: resource) }
        }
    }

    public func give(_ resource: Resource) {
        let next = state.withLock { state -> CheckedContinuation<Resource, Never>? in
            if state.waiters.isEmpty {
                state.available.append(resource)
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume(returning: resource)
    }

    public func with<R>(_ body: (Resource) async throws -> R) async throws -> R {
        let resource = await take()
        defer { give(resource) }
        return try await body(resource)
    }
}
