import Foundation
import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import SiloCore

/// The embedded metadata database: one SQLite file in WAL mode, shared by every process on the machine.
///
/// Writers take SQLite's write lock up front (`BEGIN IMMEDIATE`), so concurrent commits from several
/// processes queue instead of failing half-way; `synchronous=FULL` makes a returned commit durable.
public final class SQLiteBackend: SQLBackend {
    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let database: any SQLDatabase
    private let mutex = AsyncMutex()
    public let path: String

    public let blobType = "BLOB"
    public let autoIncrementPrimaryKey = "INTEGER PRIMARY KEY AUTOINCREMENT"
    public let pathType = "TEXT"

    /// How long a writer waits for another process's write transaction before giving up.
    public static let busyTimeoutMilliseconds = 60_000

    public static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        // A thread of its own: while SQLite waits out another connection's write lock it blocks the
        // thread it runs on, which must not be one the lock holder needs to finish.
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()
            )
        } catch {
            try? await threadPool.shutdownGracefully()
            throw SiloError(.storage, "could not open the metadata database \(path): \(error)")
        }
        let backend = SQLiteBackend(connection: connection, threadPool: threadPool, path: path)
        do {
            for pragma in [
                "PRAGMA busy_timeout = \(busyTimeoutMilliseconds)",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
            ] {
                try await backend.database.raw(SQLQueryString(pragma)).run()
            }
        } catch {
            try? await backend.close()
            throw backend.mapError(error)
        }
        return backend
    }

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, path: String) {
        self.connection = connection
        self.threadPool = threadPool
        self.database = connection.sql(queryLogLevel: nil)
        self.path = path
    }

    public func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await transaction(begin: "BEGIN IMMEDIATE", body)
    }

    public func readTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await transaction(begin: "BEGIN", body)
    }

    private func transaction<R: Sendable>(begin: String, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await mutex.withLock {
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

    public func close() async throws {
        try await mutex.withLock {
            try await connection.close()
            try await threadPool.shutdownGracefully()
        }
    }
}
