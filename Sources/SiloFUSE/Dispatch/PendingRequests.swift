import Synchronization

/// Requests being answered later, by their ids, so that FUSE_INTERRUPT can cancel them.
///
/// An interrupt may be read by one request thread before another has dispatched the request it names;
/// such early interrupts are remembered (the last ``earlyLimit``) and cancel the request as soon as it
/// is registered. Interrupts of requests answered at once are ignored: their reply is on its way.
final class PendingRequests: Sendable {
    static let earlyLimit = 1024

    private struct State {
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var early: [UInt64] = []
    }

    private let state = Mutex(State())

    /// Runs `body` as a task registered under `unique`; once it is done the request leaves the
    /// register, then the answer `body` returned is sent.
    func start(_ unique: UInt64, _ body: @escaping @Sendable () async -> @Sendable () -> Void) {
        state.withLock { state in
            let task = Task { [self] in
                let answer = await body()
                _ = self.state.withLock { $0.tasks.removeValue(forKey: unique) }
                answer()
            }
            state.tasks[unique] = task
            if let index = state.early.firstIndex(of: unique) {
                state.early.remove(at: index)
                task.cancel()
            }
        }
    }

    /// Cancels the request `unique`, now or when it arrives.
    func interrupt(_ unique: UInt64) {
        state.withLock { state in
            if let task = state.tasks[unique] {
                task.cancel()
                return
            }
            state.early.append(unique)
            if state.early.count > Self.earlyLimit { state.early.removeFirst() }
        }
    }

    /// How many requests wait for their answer now.
    var count: Int { state.withLock { $0.tasks.count } }

    /// Cancels every request still waiting and waits until each has answered.
    func cancelAll() async {
        let tasks = state.withLock { state in Array(state.tasks.values) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
