import Foundation
import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import SiloCore
import Synchronization

/// The embedded metadata database: one SQLite file in WAL mode, shared by every process on the machine.
///
/// Writers take SQLite's write lock up front (`BEGIN IMMEDIATE`), so concurrent commits from several
/// processes queue instead of failing half-way; `synchronous=FULL` makes a returned commit durable.
/// Reads run on connections of their own (WAL lets readers proceed beside a writer), so a listing or a
/// token check never waits behind another workspace's long commit.
public final class SQLiteBackend: SQLBackend {
    private let writer: Connection
    private let readers: AsyncPool<Connection>
    private let threadPool: NIOThreadPool
    private let mutex = AsyncMutex()
    private let closed = Mutex(false)
    public let path: String

    public let blobType = "BLOB"
    public let autoIncrementPrimaryKey = "INTEGER PRIMARY KEY AUTOINCREMENT"
    public let pathType = "TEXT"

    /// How long a writer waits for another process's write transaction before giving up.
    public static let busyTimeoutMilliseconds = 60_000
    /// Connections that serve reads at once.
    public static let readerCount = 4

    struct Connection: Sendable {
        let connection: SQLiteConnection
        let database: any SQLDatabase
    }

    public static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        // Threads of their own: while SQLite waits out another connection's write lock it blocks the
        // thread it runs on, which must not be one the lock holder (or a reader) needs to go on.
        let threadPool = NIOThreadPool(numberOfThreads: 1 + readerCount)
        threadPool.start()
        var opened: [Connection] = []
        do {
            for index in 0...readerCount {
                let connection = try await SQLiteConnection.open(
                    storage: .file(path: path), threadPool: threadPool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()
                )
                opened.append(Connection(connection: connection, database: connection.sql(queryLogLevel: nil)))
                let pragmas =
                    index == 0
                    ? ["PRAGMA busy_timeout = \(busyTimeoutMilliseconds)", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"]
                    : ["PRAGMA busy_timeout = \(busyTimeoutMilliseconds)"]
                for pragma in pragmas {
                    try await opened[index].database.raw(SQLQueryString(pragma)).run()
                }
            }
        } catch {
            for connection in opened { try? await connection.connection.close() }
            try? await threadPool.shutdownGracefully()
            if error is SiloError { throw error }
            throw SiloError(.storage, "could not open the metadata database \(path): \(error)")
        }
        return SQLiteBackend(writer: opened[0], readers: Array(opened[1...]), threadPool: threadPool, path: path)
    }

    private init(writer: Connection, readers: [Connection], threadPool: NIOThreadPool, path: String) {
        self.writer = writer
        self.readers = AsyncPool(readers)
        self.threadPool = threadPool
        self.path = path
    }

    public func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await mutex.withLock { try await transaction(begin: "BEGIN IMMEDIATE", on: writer.database, body) }
    }

    public func readTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await readers.with { reader in try await transaction(begin: "BEGIN", on: reader.database, body) }
    }

    private func transaction<R: Sendable>(
        begin: String, on database: any SQLDatabase, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R
    ) async throws -> R {
        do {
            try await database.raw(SQLQueryString(begin)).run()
        } catch {
            throw mapError(error)
        }
        do {
            let result = try await body(database)
            try await database.raw("COMMIT").run()
            return result
        } catch {
            try? await database.raw("ROLLBACK").run()
            throw mapError(error)
        }
    }

    public func mapError(_ error: any Error) -> SiloError {
        if let error = error as? SiloError { return error }
        if let error = error as? SQLiteError {
            switch error.reason {
            case .full:
                return SiloError(.noSpace, "the metadata database \(path) is out of disk space; free some space and try again (nothing was changed)")
            case .busy, .locked:
                return SiloError(.storage, "the metadata database \(path) stayed locked by another process for \(Self.busyTimeoutMilliseconds / 1000) s; try again")
            case .corrupt, .notADatabase:
                return SiloError(.storage, "the metadata database \(path) is damaged: \(error.message)")
            default:
                return SiloError(.storage, "metadata database error: \(error.message)")
            }
        }
        return SiloError(.storage, "metadata database error: \(error)")
    }

    /// Closes every connection once in-flight transactions end; closing again does nothing.
    public func close() async throws {
        guard closed.withLock({ closed in defer { closed = true }; return !closed }) else { return }
        try await mutex.withLock {
            // Wait for every reader to come back before closing them.
            var idle: [Connection] = []
            for _ in readers.all { idle.append(await readers.take()) }
            for reader in idle { try? await reader.connection.close() }
            try await writer.connection.close()
            try await threadPool.shutdownGracefully()
        }
    }
}
