import Logging
import NIOCore
import SQLKit
import SiloCore
import SiloStore
import Synchronization

/// A metadata backend that runs everything on SQLite and records what write transactions ask of it:
/// each statement (to explain afterwards) and the rows it returned. The store cannot tell it apart.
final class RecordingBackend: SQLBackend {
    struct Statement: Sendable {
        let query: any SQLExpression
        let sql: String
        var rows: Int
    }

    let inner: SQLiteBackend
    private let recorded = Mutex<[Statement]>([])

    init(_ inner: SQLiteBackend) { self.inner = inner }

    var blobType: String { inner.blobType }
    var autoIncrementPrimaryKey: String { inner.autoIncrementPrimaryKey }
    var pathType: String { inner.pathType }

    /// The statements recorded since the last call, which starts a new record.
    func take() -> [Statement] {
        recorded.withLock { statements in
            defer { statements = [] }
            return statements
        }
    }

    func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await inner.writeTransaction { db in try await body(RecordingDatabase(inner: db, backend: self)) }
    }

    func readTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await inner.readTransaction(body)
    }

    func mapError(_ error: any Error) -> SiloError { inner.mapError(error) }

    func close() async throws { try await inner.close() }

    fileprivate func record(_ query: any SQLExpression, sql: String) -> Int {
        recorded.withLock {
            $0.append(Statement(query: query, sql: sql, rows: 0))
            return $0.count - 1
        }
    }

    fileprivate func countRow(_ index: Int) {
        recorded.withLock { $0[index].rows += 1 }
    }

    /// SQLite's plan for `query`: one line per step, as `EXPLAIN QUERY PLAN` prints them.
    func plan(of query: any SQLExpression) async throws -> [String] {
        try await inner.readTransaction { db in
            let lines = Mutex<[String]>([])
            try await db.execute(sql: ExplainQueryPlan(query: query)) { row in
                let detail = (try? row.decode(column: "detail", as: String.self)) ?? "?"
                lines.withLock { $0.append(detail) }
            }
            return lines.withLock { $0 }
        }
    }
}

/// `EXPLAIN QUERY PLAN` before a statement, with the statement's own binds.
private struct ExplainQueryPlan: SQLExpression {
    let query: any SQLExpression

    func serialize(to serializer: inout SQLSerializer) {
        serializer.write("EXPLAIN QUERY PLAN ")
        query.serialize(to: &serializer)
    }
}

private struct RecordingDatabase: SQLDatabase {
    let inner: any SQLDatabase
    let backend: RecordingBackend

    var logger: Logger { inner.logger }
    var eventLoop: any EventLoop { inner.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { inner.version }
    var dialect: any SQLDialect { inner.dialect }
    var queryLogLevel: Logger.Level? { inner.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let index = backend.record(query, sql: inner.serialize(query).sql)
        let backend = self.backend
        return inner.execute(sql: query) { row in
            backend.countRow(index)
            onRow(row)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let index = backend.record(query, sql: inner.serialize(query).sql)
        let backend = self.backend
        try await inner.execute(sql: query) { row in
            backend.countRow(index)
            onRow(row)
        }
    }
}
