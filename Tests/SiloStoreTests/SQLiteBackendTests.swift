import Foundation
import Logging
import NIOCore
import SQLKit
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// The embedded metadata database's connections: values go in and come back as they were, and a
/// writer that finds another process's write lock taken waits for it instead of failing, while reads
/// go on beside it.
@Suite(.timeLimit(.minutes(2))) struct SQLiteBackendTests {
    @Test func valuesRoundTripAsTheyWereBound() async throws {
        let directory = try TemporaryDirectory()
        let backend = try await SQLiteBackend.open(path: directory.file("metadata.sqlite"), logger: Logger(label: "silo-test"))
        defer { Task { try? await backend.close() } }
        let text = "naïve \u{1F600} with a \u{0} inside"
        let bytes: [UInt8] = [0, 1, 2, 255]
        let row = try await backend.writeTransaction { db -> (any SQLRow) in
            try await db.raw("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, e BLOB, n INTEGER)").run()
            try await db.raw(
                "INSERT INTO t VALUES (\(bind: Int64.max), \(bind: 0.5), \(bind: text), \(bind: Data(bytes)), \(bind: Data()), \(bind: Int64?.none))"
            ).run()
            return try #require(try await db.raw("SELECT * FROM t").first())
        }
        #expect(try row.decode(column: "i", as: Int64.self) == .max)
        #expect(try row.decode(column: "f", as: Double.self) == 0.5)
        #expect(try row.decode(column: "s", as: String.self) == text)
        #expect(try row.decode(column: "b", as: Data.self) == Data(bytes))
        // An empty blob stays an empty value, not NULL.
        #expect(try row.decodeNil(column: "e") == false)
        #expect(try row.decode(column: "e", as: Data.self).isEmpty)
        #expect(try row.decodeNil(column: "n"))
        #expect(row.allColumns == ["i", "f", "s", "b", "e", "n"])
        #expect(throws: (any Error).self) { try row.decode(column: "missing", as: Int.self) }
    }

    @Test func aStatementThatFailsRollsItsTransactionBackAndSaysWhy() async throws {
        let directory = try TemporaryDirectory()
        let backend = try await SQLiteBackend.open(path: directory.file("metadata.sqlite"), logger: Logger(label: "silo-test"))
        defer { Task { try? await backend.close() } }
        try await backend.writeTransaction { db in try await db.raw("CREATE TABLE t (x INTEGER PRIMARY KEY)").run() }
        let failure = await #expect(throws: SiloError.self) {
            try await backend.writeTransaction { db in
                try await db.raw("INSERT INTO t VALUES (1)").run()
                try await db.raw("INSERT INTO t VALUES (1)").run()
            }
        }
        #expect(failure?.code == .storage)
        #expect(failure?.message.contains("UNIQUE constraint failed") == true)
        let count = try await backend.readTransaction { db in
            try await db.raw("SELECT count(*) AS n FROM t").first()!.decode(column: "n", as: Int.self)
        }
        #expect(count == 0)
    }

    @Test func aWriterWaitsForAnotherConnectionsWriteLockWhileReadsGoOn() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("metadata.sqlite")
        let holder = try await SQLiteBackend.open(path: path, logger: Logger(label: "silo-test"))
        let waiter = try await SQLiteBackend.open(path: path, logger: Logger(label: "silo-test"))
        defer { Task { try? await holder.close(); try? await waiter.close() } }
        try await holder.writeTransaction { db in try await db.raw("CREATE TABLE t (x INTEGER)").run() }

        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let first = Task {
            try await holder.writeTransaction { db in
                try await db.raw("INSERT INTO t VALUES (1)").run()
                holding.yield()
                for await _ in released { break }
            }
        }
        for await _ in held { break }
        let writing = Task { try await waiter.writeTransaction { db in try await db.raw("INSERT INTO t VALUES (2)").run() } }
        // The second writer found the lock taken and waits for it, off the caller's thread: a read on
        // the same backend goes on meanwhile and sees what was committed before the lock was taken.
        while waiter.writeLockWaits == 0 { await Task.yield() }
        let before = try await waiter.readTransaction { db in try await db.raw("SELECT count(*) AS n FROM t").first()!.decode(column: "n", as: Int.self) }
        #expect(before == 0)
        release.yield()
        try await first.value
        try await writing.value
        let after = try await waiter.readTransaction { db in try await db.raw("SELECT x FROM t ORDER BY x").all().map { try $0.decode(column: "x", as: Int.self) } }
        #expect(after == [1, 2])
    }
}
