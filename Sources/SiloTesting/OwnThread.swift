import Foundation
import SiloStore
import Synchronization
import Testing

/// Runs each test of a suite on a thread of its own, off the shared pool of Swift's tasks.
///
/// Tests that drive the `silo` binary, mounts and servers spend most of their time blocked: waiting
/// for a child process, reading its pipe, in a system call on a FUSE mount. The shared pool has one
/// thread per core, so on a small machine two such tests hold all of it, and every other test waits
/// behind them with its time limit running (a reader test once failed at its one-minute limit that
/// way, having had no thread for a minute). On a thread of its own a test blocks only itself.
///
/// At most ``concurrentTests`` such tests run at once (the rest wait without holding a thread), so a
/// parallel run does not start every process-driving test on two cores at the same moment.
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    /// How many tests on their own threads run at once: `SILO_TEST_CONCURRENCY`, else two per core.
    public static let concurrentTests: Int = {
        if let text = ProcessInfo.processInfo.environment["SILO_TEST_CONCURRENCY"], let count = Int(text), count > 0 { return count }
        return 2 * ProcessInfo.processInfo.activeProcessorCount
    }()

    private static let slots = AsyncPool(Array(0..<concurrentTests))

    public var isRecursive: Bool { true }

    /// Each test case gets its scope, and so its thread; a suite as a whole does not.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await Self.slots.with { _ in
            let thread = ThreadExecutor(name: "silo-test")
            defer { thread.stop() }
            try await withTaskExecutorPreference(thread) { try await function() }
        }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Each test on a thread of its own: for tests that block on processes, pipes or mounts.
    public static var ownThread: Self { Self() }
}

/// A task executor with one thread of its own, which runs its jobs in order until stopped. A job
/// that arrives later (a task that kept the preference outlived the test) runs on a Dispatch thread.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private var stopped = false
    /// The threads of every executor running now, by pthread id.
    private static let running = Mutex<Set<pthread_t>>([])

    /// Whether the calling code runs on the thread of a ``ThreadExecutor``.
    public static var isCurrent: Bool { running.withLock { $0.contains(pthread_self()) } }

    public init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let queued = condition.withLock {
            guard !stopped else { return false }
            jobs.append(job)
            condition.signal()
            return true
        }
        if !queued {
            DispatchQueue.global().async { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    /// Ends the thread once the jobs queued so far have run.
    public func stop() {
        condition.withLock {
            stopping = true
            condition.signal()
        }
    }

    private func run() {
        _ = Self.running.withLock { $0.insert(pthread_self()) }
        defer { _ = Self.running.withLock { $0.remove(pthread_self()) } }
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            guard !jobs.isEmpty else {
                stopped = true
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs blocking `work` on a thread of its own and waits for it without holding a thread of the
/// shared pool.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
