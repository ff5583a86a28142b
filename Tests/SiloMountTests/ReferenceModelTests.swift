import Foundation
import SiloCore
import SiloTesting
import Testing

/// The mount's semantics against a plain model, with no kernel: thousands of random operations on two
/// writable mounts of one volume, commits and reloads among them, each checked as it happens, and
/// every few commits a fresh mount of the latest version checked against what the commits made.
@Suite(.timeLimit(.minutes(5)))
struct ReferenceModelTests {
    static let steps = 6_000

    @Test(arguments: [1, 2] as [UInt64]) func randomOperationsOnTwoMountsAgreeWithTheModel(_ seed: UInt64) async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let run = try ModelRun(service: fixture.service, directory: fixture.directory, seed: seed)
            try await run.start { Mount(fileSystem: $0) }
            try await run.run(steps: Self.steps)
            #expect(run.mismatches.isEmpty, "seed \(seed): \(run.mismatches.prefix(5).joined(separator: "\n"))")
            // The run did what it says: enough operations, and commits from both writers.
            #expect(run.operations >= Self.steps * 9 / 10)
            #expect(run.commits >= 100)
        }
    }

    /// The same run over a file system whose writes at an offset land one byte off: the model test
    /// must notice, or it has stopped checking.
    @Test func theModelCatchesAFileSystemThatWritesAtTheWrongOffset() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let run = try ModelRun(service: fixture.service, directory: fixture.directory, seed: 3)
            try await run.start { MountWithShiftedWrites(fileSystem: $0) }
            try await run.run(steps: 500)
            #expect(!run.mismatches.isEmpty)
            #expect(run.mismatches.contains { $0.contains("differ from the model") })
        }
    }
}
