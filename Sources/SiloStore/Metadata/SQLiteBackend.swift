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
/// token check never waits behind another workspace's long commit. Statements run on the calling
/// thread (``SQLiteHandle``); only a wait for another process's write lock moves to a thread of its own.
public final class SQLiteBackend: SQLBackend {
    private let writer: SQLiteSession
    private let readers: AsyncPool<SQLiteSession>
    private let threadPool: NIOThreadPool
    private let mutex = AsyncMutex()
    private let closed = Mutex(false)
    private let waits = Atomic<Int>(0)
    public let path: String

    /// How many write transactions so far found another process's write lock taken and waited for it.
    public var writeLockWaits: Int { waits.load(ordering: .relaxed) }

    public let blobType = "BLOB"
    public let autoIncrementPrimaryKey = "INTEGER PRIMARY KEY AUTOINCREMENT"
    public let pathType = "TEXT"

    /// How long a writer waits for another process's write transaction before giving up.
    public static let busyTimeoutMilliseconds: Int32 = 60_000
    /// Connections that serve reads at once.
    public static let readerCount = 4

    public static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        var opened: [SQLiteSession] = []
        do {
            let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
            for index in 0...readerCount {
                let handle = try SQLiteHandle(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
                opened.append(SQLiteSession(handle: handle, logger: logger, eventLoop: eventLoop))
                if index == 0 {
                    for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"] { try handle.execute(pragma, binds: []) }
                }
            }
        } catch {
            for session in opened { session.handle.close() }
            throw SiloError(.storage, "could not open the metadata database \(path): \(error)")
        }
        // A thread for the one long wait: another process's write lock.
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        return SQLiteBackend(writer: opened[0], readers: Array(opened[1...]), threadPool: threadPool, path: path)
    }

    private init(writer: SQLiteSession, readers: [SQLiteSession], threadPool: NIOThreadPool, path: String) {
        self.writer = writer
        self.readers = AsyncPool(readers)
        self.threadPool = threadPool
        self.path = path
    }

    public func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await mutex.withLock {
            do {
                try await beginImmediate(on: writer.handle)
            } catch {
                throw mapError(error)
            }
            return try await finish(on: writer, body)
        }
    }

    public func readTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await readers.with { reader in
            do {
                try reader.handle.execute("BEGIN", binds: [])
            } catch {
                throw mapError(error)
            }
            return try await finish(on: reader, body)
        }
    }

    /// Takes the write lock: at once when no other process holds it, else waiting (up to the busy
    /// timeout) on the backend's own thread, so that the caller's thread is not held.
    private func beginImmediate(on handle: SQLiteHandle) async throws {
        do {
            handle.setBusyTimeout(0)
            defer { handle.setBusyTimeout(Self.busyTimeoutMilliseconds) }
            try handle.execute("BEGIN IMMEDIATE", binds: [])
            return
        } catch let failure as SQLiteHandle.Failure where failure.code == SQLiteHandle.Failure.busy {}
        waits.add(1, ordering: .relaxed)
        try await threadPool.runIfActive { try handle.execute("BEGIN IMMEDIATE", binds: []) }
    }

    /// Runs `body` in the transaction begun on `session`, then commits it, or rolls it back if
    /// `body` or the commit throws.
    private func finish<R: Sendable>(on session: SQLiteSession, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        do {
            let result = try await body(session)
            try session.handle.execute("COMMIT", binds: [])
            return result
        } catch {
            try? session.handle.execute("ROLLBACK", binds: [])
            throw mapError(error)
        }
    }

    public func mapError(_ error: any Error) -> SiloError {
        if let error = error as? SiloError { return error }
        if let error = error as? SQLiteHandle.Failure {
            switch error.code {
            case SQLiteHandle.Failure.full:
                return SiloError(.noSpace, "the metadata database \(path) is out of disk space; free some space and try again (nothing was changed)")
            case SQLiteHandle.Failure.busy, SQLiteHandle.Failure.locked:
                return SiloError(.storage, "the metadata database \(path) stayed locked by another process for \(Self.busyTimeoutMilliseconds / 1000) s; try again")
            case SQLiteHandle.Failure.corrupt, SQLiteHandle.Failure.notADatabase:
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
            var idle: [SQLiteSession] = []
            for _ in readers.all { idle.append(await readers.take()) }
            for reader in idle { reader.handle.close() }
            writer.handle.close()
            try await threadPool.shutdownGracefully()
        }
    }
}
