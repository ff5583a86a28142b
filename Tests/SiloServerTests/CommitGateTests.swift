import SiloCore
import Testing

@testable import SiloServer

/// Shutdown's promise: commits in flight finish, new ones are refused with `unavailable` (503).
@Suite(.timeLimit(.minutes(5))) struct CommitGateTests {
    @Test func drainingRefusesNewCommitsAndWaitsForThoseInFlight() async throws {
        let gate = CommitGate()
        try await gate.enter()
        try await gate.enter()
        // The drain refuses newcomers at once, while two commits are still inside.
        await gate.beginDraining()
        await #expect(throws: SiloError.self) { try await gate.enter() }
        #expect(await gate.commitsInFlight == 2)
        let drained = Task { await gate.waitUntilDrained() }
        await gate.leave()
        #expect(await gate.commitsInFlight == 1)
        await gate.leave()
        // Returns only once both admitted commits have left.
        await drained.value
        #expect(await gate.commitsInFlight == 0)
    }

    @Test func aCommitRefusedDuringShutdownSaysSo() async throws {
        let gate = CommitGate()
        await gate.drain()
        do {
            try await gate.enter()
            Issue.record("a commit was admitted after shutdown began")
        } catch let error as SiloError {
            #expect(error.code == .unavailable)
            #expect(ErrorMiddleware.status(for: error.code) == .serviceUnavailable)
            #expect(error.message.contains("shutting down"))
        }
    }

    @Test func uploadsPerTokenAreCapped() async throws {
        let limiter = UploadLimiter(limit: 2)
        try await limiter.acquire("a")
        try await limiter.acquire("a")
        try await limiter.acquire("b")
        await #expect(throws: SiloError.self) { try await limiter.acquire("a") }
        await limiter.release("a")
        try await limiter.acquire("a")
    }
}
