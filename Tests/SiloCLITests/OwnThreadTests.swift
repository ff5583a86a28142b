import Foundation
import SiloTesting
import Testing

/// Tests that block on processes and mounts run on threads of their own, so they never hold the
/// shared pool that every other test's tasks need.
@Suite(.ownThread) struct OwnThreadTests {
    @Test func aTestRunsOnItsOwnThreadBeforeAndAfterItsAwaits() async throws {
        #expect(ThreadExecutor.isCurrent)
        // A suspension that resumes from elsewhere (a timer on the shared pool) comes back here.
        try await Task.sleep(for: .milliseconds(1))
        #expect(ThreadExecutor.isCurrent)
        // The shared pool stays free while this thread blocks: a task there answers the wait.
        let answered = DispatchSemaphore(value: 0)
        Task(executorPreference: globalConcurrentExecutor) { answered.signal() }
        #expect(answered.wait(timeout: .now() + 60) == .success)
    }

    @Test(arguments: [1, 2]) func everyCaseOfAParameterisedTestGetsAThread(_ index: Int) async throws {
        #expect(ThreadExecutor.isCurrent)
    }

}
