import Foundation
import Logging
import SQLKit
import SiloCore
import SiloStore
import SiloTesting
import SiloWire
import Testing

/// One workspace's long commit never holds up another's reads.
@Suite(.timeLimit(.minutes(5))) struct ConcurrentReadTests {
    @Test(.timeLimit(.minutes(5))) func readsAndTokenChecksGoOnWhileAWriteTransactionIsOpen() async throws {
        let directory = try TemporaryDirectory("silo-readers")
        defer { directory.remove() }
        let (store, backend) = try await VolumeStore.open(.local(home: directory.path), logger: Logger(label: "silo-test"))
        let tokens = SQLTokenStore(backend: backend)
        _ = try await store.createVolume(try VolumeName("b-volume"), workspace: "b", author: "t")
        let token = try await tokens.create(workspace: "b", name: "b", role: .member, now: 0)

        // Workspace A's commit: a write transaction held open until B's reads are done.
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let writer = Task {
            try await backend.writeTransaction { db in
                try await db.raw("INSERT INTO volumes (workspace, name, created_at, latest_version) VALUES ('a', 'big', 0, 0)").run()
                enteredContinuation.yield()
                for await _ in release { break }
            }
        }
        for await _ in entered { break }

        // If reads waited for the writer these would never return (the writer waits for them): the
        // time limit would fail the test instead of it passing by luck.
        do {
            let listed = try await store.metadata.listVolumes(workspace: "b")
            let checked = try await tokens.authenticate(token.token!)
            #expect(listed.map(\.name.rawValue) == ["b-volume"])
            #expect(checked?.workspace == "b")
            // And a reader sees only what was committed: not A's volume, still inside its transaction.
            #expect(try await store.metadata.listVolumes(workspace: "a").isEmpty)
            releaseContinuation.yield()
            try await writer.value
            #expect(try await store.metadata.listVolumes(workspace: "a").map(\.name.rawValue) == ["big"])
        } catch {
            releaseContinuation.yield()
            _ = try? await writer.value
            try await store.metadata.close()
            throw error
        }
        try await store.metadata.close()
    }
}
